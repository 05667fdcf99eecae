//! Real client captures (see tests/fixtures/sniff/README.md).

use super::super::{ClientHelloInfo, Http1Request, Http2Request, Sniffed, parse_http1_head};
use super::super::{SniffOutcome, sniff};
use super::{FIXTURES, assert_prefixes_need_more, done, fixture};

fn tls(sni: Option<&str>, alpn: &[&str]) -> Sniffed {
    Sniffed::Tls(ClientHelloInfo {
        sni: sni.map(str::to_owned),
        alpn: alpn.iter().map(|s| (*s).to_owned()).collect(),
        legacy_version: 0x0303,
    })
}

fn http1(method: &str, target: &str, absolute: Option<&str>, head_len: usize) -> Sniffed {
    Sniffed::Http1(Http1Request {
        method: method.into(),
        target: target.into(),
        host: Some(absolute.unwrap_or("api.example.test:8080").into()),
        absolute_authority: absolute.map(str::to_owned),
        head_len,
    })
}

#[test]
fn every_capture_has_the_expected_verdict() {
    let h2_h1 = &["h2", "http/1.1"][..];
    let expected: &[(&str, Sniffed)] = &[
        (
            "curl_h2_prior_knowledge.bin",
            Sniffed::Http2(Http2Request {
                authority: Some("api.example.test:8080".into()),
                method: Some("GET".into()),
                path: Some("/v1/items".into()),
                scheme: Some("http".into()),
            }),
        ),
        (
            "curl_http1_host.bin",
            http1("GET", "/v1/items?q=1", None, 97),
        ),
        (
            "curl_http1_proxy_absolute.bin",
            http1(
                "GET",
                "http://api.example.test:8080/v1/items",
                Some("api.example.test:8080"),
                151,
            ),
        ),
        (
            "curl_http1_proxy_connect.bin",
            http1(
                "CONNECT",
                "api.example.test:8443",
                Some("api.example.test:8443"),
                126,
            ),
        ),
        (
            "curl_https_alpn_h2.bin",
            tls(Some("api.example.test"), h2_h1),
        ),
        ("go_http1_client.bin", http1("GET", "/v1/items", None, 110)),
        ("go_https_client.bin", tls(Some("api.example.test"), h2_h1)),
        // Go sends the ServerName as given ("API.Example.test").
        ("go_tls_dial_alpn.bin", tls(Some("api.example.test"), h2_h1)),
        (
            "openssl_tls12_sni.bin",
            tls(Some("api.example.test"), h2_h1),
        ),
        ("openssl_tls13_no_sni.bin", tls(None, &[])),
        ("openssl_tls13_sni.bin", tls(Some("api.example.test"), &[])),
    ];
    assert_eq!(expected.len(), FIXTURES.len());
    for (name, want) in expected {
        assert!(FIXTURES.contains(name), "{name} is not listed in FIXTURES");
        assert_eq!(&done(&fixture(name)), want, "{name}");
    }
}

#[test]
fn every_prefix_of_a_capture_needs_more() {
    for name in FIXTURES {
        assert_prefixes_need_more(&fixture(name));
    }
}

#[test]
fn capture_split_at_every_offset_reassembles() {
    // A ClientHello peeked in two steps gives the same answer at the end.
    for name in FIXTURES {
        let buf = fixture(name);
        let whole = sniff(&buf);
        for cut in 1..buf.len() {
            let mut peeked = buf.get(..cut).unwrap_or_default().to_vec();
            assert_eq!(sniff(&peeked), SniffOutcome::NeedMore, "{name} cut {cut}");
            peeked.extend_from_slice(buf.get(cut..).unwrap_or_default());
            assert_eq!(sniff(&peeked), whole, "{name} cut {cut}");
        }
    }
}

#[test]
fn keep_alive_heads_are_parsed_one_at_a_time() {
    let first = fixture("curl_http1_host.bin");
    let second = fixture("go_http1_client.bin");
    let stream = [first.as_slice(), second.as_slice(), b"GET /x HT"].concat();
    let SniffOutcome::Done(Sniffed::Http1(req)) = parse_http1_head(&stream) else {
        panic!("first head not parsed");
    };
    assert_eq!(req.head_len, first.len());
    let rest = stream.get(req.head_len..).unwrap_or_default();
    let SniffOutcome::Done(Sniffed::Http1(req2)) = parse_http1_head(rest) else {
        panic!("second head not parsed");
    };
    assert_eq!(req2.target, "/v1/items");
    let tail = rest.get(req2.head_len..).unwrap_or_default();
    assert_eq!(parse_http1_head(tail), SniffOutcome::NeedMore);
    assert_eq!(parse_http1_head(b""), SniffOutcome::NeedMore);
}

#[test]
fn non_http_on_a_keep_alive_boundary_is_malformed() {
    let tls = fixture("openssl_tls13_sni.bin");
    assert!(matches!(parse_http1_head(&tls), SniffOutcome::Malformed(_)));
    assert!(matches!(
        parse_http1_head(b"\r\nGET / HTTP/1.1\r\n"),
        SniffOutcome::Malformed(_)
    ));
}

#[test]
fn authority_helper_picks_the_destination() {
    let names = [
        ("curl_h2_prior_knowledge.bin", "api.example.test:8080"),
        ("curl_http1_proxy_connect.bin", "api.example.test:8443"),
        ("go_tls_dial_alpn.bin", "api.example.test"),
    ];
    for (name, authority) in names {
        assert_eq!(done(&fixture(name)).authority(), Some(authority), "{name}");
    }
    assert_eq!(done(&fixture("openssl_tls13_no_sni.bin")).authority(), None);
}
