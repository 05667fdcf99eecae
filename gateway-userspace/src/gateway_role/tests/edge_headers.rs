//! Tests of `edge_headers.rs`.

use std::collections::HashSet;

use hyper::Request;

use super::super::edge_headers::{forwarding_headers, request_id, uri_len};

#[test]
fn a_request_id_is_a_version_4_uuid() {
    let mut seen = HashSet::new();
    for _ in 0..1_000 {
        let id = request_id();
        let text = id.to_str().expect("ASCII");
        assert_eq!(text.len(), 36, "{text}");
        for (i, c) in text.chars().enumerate() {
            match i {
                8 | 13 | 18 | 23 => assert_eq!(c, '-', "{text}"),
                14 => assert_eq!(c, '4', "the version: {text}"),
                19 => assert!("89ab".contains(c), "the variant: {text}"),
                _ => assert!(c.is_ascii_hexdigit() && !c.is_ascii_uppercase(), "{text}"),
            }
        }
        assert!(seen.insert(text.to_string()), "{text} came twice");
    }
}

#[test]
fn the_edge_headers_append_to_a_forwarded_for_and_keep_a_request_id() {
    let peer = "198.51.100.7:40000".parse().unwrap();
    let mut req = Request::builder().header("x-forwarded-for", "203.0.113.1").header("x-request-id", "given").body(()).unwrap();
    forwarding_headers(&mut req, peer, "https");
    let h = req.headers();
    assert_eq!(h["x-forwarded-for"], "203.0.113.1, 198.51.100.7");
    assert_eq!(h["x-forwarded-proto"], "https");
    assert_eq!(h["x-request-id"], "given");

    let mut req = Request::builder().body(()).unwrap();
    forwarding_headers(&mut req, peer, "http");
    let h = req.headers();
    assert_eq!(h["x-forwarded-for"], "198.51.100.7");
    assert_eq!(h["x-forwarded-proto"], "http");
    assert_eq!(h["x-request-id"].len(), 36);
}

#[test]
fn a_uri_is_measured_as_it_is_written() {
    for text in ["/", "/a/b?c=d&e", "*", "http://example.test/x?y", "https://example.test:8443/", "example.test:443", "http://example.test"] {
        let uri: hyper::Uri = text.parse().unwrap();
        assert_eq!(uri_len(&uri), uri.to_string().len(), "{text}");
    }
}
