//! The HTTP/1 request-head sniffer against `httparse`, the parser under
//! hyper, i.e. what an upstream HTTP server reads.
//!
//! - A head the sniffer accepts, httparse accepts too, whole (never as
//!   malformed, never as still incomplete): the gateway decides on nothing
//!   an HTTP server would refuse to read.
//! - When both accept, method, target, head length and `Host` agree, so the
//!   destination the gateway routes on is the one the server sees.
//! - A head httparse completes is never left waiting by the sniffer.

#![no_main]

use gateway_fuzz::check_prefixes;
use gateway_userspace::sniff::{Http1Request, MAX_SNIFF_BYTES, SniffOutcome, Sniffed, parse_http1_head, sniff};
use libfuzzer_sys::fuzz_target;

/// What httparse made of the bytes; header values as bytes.
#[derive(Debug)]
enum Theirs {
    Complete { method: String, path: String, hosts: Vec<Vec<u8>>, len: usize },
    Partial,
    Invalid(#[allow(dead_code, reason = "read through Debug in failure messages")] httparse::Error),
}

fn httparse_view(buf: &[u8]) -> Theirs {
    // Room for every line, so TooManyHeaders never hides a verdict.
    let lines = buf.iter().filter(|&&b| b == b'\n').count() + 1;
    let mut headers = vec![httparse::EMPTY_HEADER; lines];
    let mut req = httparse::Request::new(&mut headers);
    match req.parse(buf) {
        Ok(httparse::Status::Complete(len)) => Theirs::Complete {
            method: req.method.unwrap_or_default().to_owned(),
            path: req.path.unwrap_or_default().to_owned(),
            hosts: req
                .headers
                .iter()
                .filter(|h| h.name.eq_ignore_ascii_case("host"))
                .map(|h| h.value.to_vec())
                .collect(),
            len,
        },
        Ok(httparse::Status::Partial) => Theirs::Partial,
        Err(e) => Theirs::Invalid(e),
    }
}

fn compare(ours: &Http1Request, theirs: &Theirs) {
    let Theirs::Complete { method, path, hosts, len } = theirs else {
        panic!("the sniffer accepted {ours:?}; httparse says {theirs:?}");
    };
    assert_eq!(&ours.method, method, "method");
    assert_eq!(&ours.target, path, "request target");
    assert_eq!(ours.head_len, *len, "head length");
    let their_host = match hosts.as_slice() {
        [] => None,
        [one] => {
            let trimmed = one.trim_ascii();
            Some(String::from_utf8_lossy(&trimmed.to_ascii_lowercase()).into_owned())
        }
        more => panic!("the sniffer accepted {} Host headers", more.len()),
    };
    assert_eq!(ours.host, their_host, "Host header");
}

fuzz_target!(|data: &[u8]| {
    let outcome = sniff(data);
    check_prefixes(data, &outcome);
    let theirs = httparse_view(data);
    // As at a keep-alive request boundary, where bytes that are no request
    // line are an error rather than opaque.
    let at_boundary = parse_http1_head(data);
    for verdict in [&outcome, &at_boundary] {
        match verdict {
            SniffOutcome::Done(Sniffed::Http1(req)) => compare(req, &theirs),
            SniffOutcome::NeedMore if data.len() < MAX_SNIFF_BYTES => {
                if let Theirs::Complete { len, .. } = theirs {
                    panic!("httparse read a {len}-byte head the sniffer still waits on");
                }
            }
            _ => {}
        }
    }
});
