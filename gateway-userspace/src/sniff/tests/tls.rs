//! Synthetic ClientHellos.

use super::super::{ClientHelloInfo, MAX_SNIFF_BYTES, SniffOutcome, Sniffed, sniff};
use super::{
    alpn_ext, assert_prefixes_need_more, done, ext, hello, hello_message, malformed, records,
    sni_ext,
};

fn info(buf: &[u8]) -> ClientHelloInfo {
    match done(buf) {
        Sniffed::Tls(info) => info,
        other => panic!("expected TLS, got {other:?}"),
    }
}

#[test]
fn sni_and_alpn_are_extracted() {
    let got = info(&hello("api.example.test", &["h2", "http/1.1"]));
    assert_eq!(got.sni.as_deref(), Some("api.example.test"));
    assert_eq!(got.alpn, ["h2", "http/1.1"]);
    assert_eq!(got.legacy_version, 0x0303);
}

#[test]
fn sni_is_lowercased_and_trailing_dot_dropped() {
    assert_eq!(
        info(&hello("Api.EXAMPLE.Test.", &["h2"])).sni.as_deref(),
        Some("api.example.test")
    );
}

#[test]
fn hello_split_across_two_records_needs_more_until_complete() {
    let message = hello_message(&[sni_ext(b"split.example.test"), alpn_ext(&["h2"])]);
    for first_len in [1, 3, 4, 5, 40, message.len() - 1] {
        let buf = records(&message, &[first_len]);
        assert_prefixes_need_more(&buf);
        assert_eq!(
            info(&buf).sni.as_deref(),
            Some("split.example.test"),
            "split {first_len}"
        );
    }
}

#[test]
fn hello_in_many_tiny_records() {
    let message = hello_message(&[sni_ext(b"tiny.example.test")]);
    let buf = records(&message, &vec![7; message.len() / 7]);
    assert_eq!(info(&buf).sni.as_deref(), Some("tiny.example.test"));
}

#[test]
fn sni_absent_and_no_extensions_at_all() {
    let got = info(&records(&hello_message(&[alpn_ext(&["http/1.1"])]), &[]));
    assert_eq!((got.sni, got.alpn), (None, vec!["http/1.1".to_owned()]));
    // A ClientHello that ends after compression methods has no extensions.
    let mut message = hello_message(&[]);
    message.truncate(message.len() - 2);
    message[3] -= 2;
    assert_eq!(
        info(&records(&message, &[])),
        ClientHelloInfo {
            legacy_version: 0x0303,
            ..ClientHelloInfo::default()
        }
    );
}

#[test]
fn bad_sni_names_are_malformed() {
    let long = format!("{}.test", vec!["a".repeat(63); 4].join("."));
    assert!(long.len() > 255);
    let label = format!("{}.test", "b".repeat(64));
    for bad in [
        "nul\0.example.test",
        "sp ace.example.test",
        &long,
        &label,
        "a..b",
        "-a.test",
        "10.0.0.1",
        ".",
    ] {
        let buf = hello(bad, &[]);
        assert!(malformed(&buf).starts_with("tls: sni"), "{bad:?}");
    }
    let max = format!("{}.{}", vec!["c".repeat(63); 3].join("."), "d".repeat(61));
    assert_eq!(max.len(), 253);
    assert_eq!(info(&hello(&max, &[])).sni.as_deref(), Some(max.as_str()));
    assert!(malformed(&hello("caf\u{e9}.test", &[])).starts_with("tls: sni"));
}

#[test]
fn duplicate_extensions_and_names_are_malformed() {
    let two = records(
        &hello_message(&[sni_ext(b"a.test"), sni_ext(b"b.test")]),
        &[],
    );
    assert_eq!(malformed(&two), "tls: duplicate extension");
    let mut list = Vec::new();
    for host in [&b"a.test"[..], b"b.test"] {
        list.push(0);
        list.extend((host.len() as u16).to_be_bytes());
        list.extend_from_slice(host);
    }
    let mut data = (list.len() as u16).to_be_bytes().to_vec();
    data.extend(list);
    let buf = records(&hello_message(&[ext(0, &data)]), &[]);
    assert_eq!(malformed(&buf), "tls: more than one host_name");
}

#[test]
fn garbage_lengths_are_malformed() {
    let good = hello("len.example.test", &["h2"]);
    // Record length 0 and over 2^14.
    for (hi, lo) in [(0, 0), (0x40, 0x01), (0xff, 0xff)] {
        let mut buf = good.clone();
        buf[3] = hi;
        buf[4] = lo;
        assert!(
            matches!(sniff(&buf), SniffOutcome::Malformed(_)),
            "record len {hi:#x}{lo:02x}"
        );
    }
    // Handshake length beyond the sniff limit is refused before it arrives.
    let mut buf = good.clone();
    buf[6..9].copy_from_slice(&[0x01, 0x00, 0x00]);
    assert_eq!(malformed(&buf[..9]), "tls: client hello too large");
    // Handshake length shorter than the record: bytes after the hello.
    let mut buf = good.clone();
    buf[8] -= 1;
    assert_eq!(malformed(&buf), "tls: data after client hello");
    // Inner vectors that overrun their container.
    // The host_name length, before 16 name bytes and the 9-byte ALPN extension.
    let sni_len_at = good.len() - 9 - 16 - 2;
    for at in [9 + 34, 9 + 35 + 32 + 1, sni_len_at] {
        let mut buf = good.clone();
        buf[at] = 0xff;
        assert!(
            matches!(sniff(&buf), SniffOutcome::Malformed(_)),
            "byte {at}"
        );
    }
}

#[test]
fn structure_violations_are_malformed() {
    let message = hello_message(&[sni_ext(b"x.test")]);
    // Not a ClientHello.
    let mut other = message.clone();
    other[0] = 2;
    assert_eq!(
        malformed(&records(&other, &[])),
        "tls: first handshake message is not a client hello"
    );
    // A ChangeCipherSpec record in the middle of the hello.
    let mut buf = records(&message, &[10]);
    buf[5 + 10] = 0x14;
    assert_eq!(
        malformed(&buf),
        "tls: non-handshake record inside client hello"
    );
    // Trailing bytes after the extensions block.
    let mut long = message.clone();
    long.push(0);
    long[3] += 1;
    assert_eq!(
        malformed(&records(&long, &[])),
        "tls: trailing bytes after extensions"
    );
    // Empty ALPN protocol name and an empty server_name list.
    let buf = records(&hello_message(&[ext(16, &[0, 2, 1, 0x61, 0])]), &[]);
    assert!(malformed(&buf).starts_with("tls:"));
    let buf = records(&hello_message(&[ext(16, &[0, 1, 0])]), &[]);
    assert_eq!(malformed(&buf), "tls: empty alpn protocol name");
    let buf = records(&hello_message(&[ext(0, &[0, 0])]), &[]);
    assert_eq!(malformed(&buf), "tls: empty server_name list");
}

#[test]
fn non_tls_bytes_are_opaque() {
    for buf in [
        &[0x16, 0x01, 0x00][..],
        &[0x16, 0xfe, 0xfd],
        b"\x00\x01\x02\x03",
        b"\x80\x2e\x01",
    ] {
        assert_eq!(sniff(buf), SniffOutcome::Done(Sniffed::Opaque), "{buf:?}");
    }
    assert_eq!(sniff(&[0x16]), SniffOutcome::NeedMore);
    assert_eq!(sniff(&[0x16, 0x03]), SniffOutcome::NeedMore);
    assert_eq!(sniff(b""), SniffOutcome::NeedMore);
}

#[test]
fn large_hello_is_accepted_and_sniff_always_decides_at_the_limit() {
    let padding = ext(21, &vec![0; 12 * 1024]);
    let message = hello_message(&[sni_ext(b"big.example.test"), padding]);
    let buf = records(&message, &[4000, 4000]);
    assert_eq!(info(&buf).sni.as_deref(), Some("big.example.test"));
    let buf = records(&hello_message(&[sni_ext(b"slow.example.test")]), &[1; 200]);
    assert!(buf.len() < MAX_SNIFF_BYTES);
    assert_eq!(info(&buf).sni.as_deref(), Some("slow.example.test"));
    // One-byte records carrying a 4 KiB hello never finish within the limit.
    let mut message = vec![1, 0, 0x10, 0];
    message.resize(4 + 4096, 0);
    let endless = records(&message, &vec![1; message.len()]);
    let endless = &endless[..MAX_SNIFF_BYTES];
    assert_eq!(
        malformed(endless),
        "sniff: no verdict within MAX_SNIFF_BYTES"
    );
}
