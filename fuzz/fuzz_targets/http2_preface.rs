//! HTTP/2 prior-knowledge sniffing: the input follows the client preface
//! (frames: SETTINGS, then connection frames, then HEADERS/CONTINUATION).
//! No panic; a verdict on a prefix is the final one; a request that is
//! accepted has a valid authority and fields no longer than the header
//! list limit.

#![no_main]

use gateway_fuzz::check_prefixes;
use gateway_userspace::sniff::{SniffOutcome, Sniffed, hpack::MAX_HEADER_LIST_SIZE, sniff};
use libfuzzer_sys::fuzz_target;

const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

fuzz_target!(|data: &[u8]| {
    let mut buf = PREFACE.to_vec();
    buf.extend_from_slice(data);
    let outcome = sniff(&buf);
    check_prefixes(&buf, &outcome);
    match &outcome {
        SniffOutcome::Done(Sniffed::Http2(req)) => {
            let fields = [&req.authority, &req.method, &req.path, &req.scheme];
            let total: usize = fields.iter().filter_map(|f| f.as_ref()).map(String::len).sum();
            assert!(total <= MAX_HEADER_LIST_SIZE, "request fields exceed the header list limit");
            assert!(req.method.is_some(), "a request without :method");
            if let Some(authority) = &req.authority {
                assert_eq!(authority, &authority.to_ascii_lowercase(), "authority not lowercased");
                assert!(!authority.is_empty() && authority.is_ascii(), "bad authority {authority:?}");
            }
        }
        SniffOutcome::Done(other) => panic!("a preface sniffed as {other:?}"),
        _ => {}
    }
});
