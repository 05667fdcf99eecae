//! Synthetic HTTP/1.x request heads.

use super::super::{
    Http1Request, MAX_SNIFF_BYTES, SniffOutcome, Sniffed, host_without_port, sniff, split_host_port,
};
use super::{assert_prefixes_need_more, done, malformed};

fn req(buf: &[u8]) -> Http1Request {
    match done(buf) {
        Sniffed::Http1(req) => req,
        other => panic!("expected HTTP/1, got {other:?}"),
    }
}

#[test]
fn origin_form_with_host() {
    let buf = b"GET /a?b=c HTTP/1.1\r\nHost: API.Example.Test:8080\r\nAccept: */*\r\n\r\nbody";
    let got = req(buf);
    assert_eq!(got.method, "GET");
    assert_eq!(got.target, "/a?b=c");
    assert_eq!(got.host.as_deref(), Some("api.example.test:8080"));
    assert_eq!(got.absolute_authority, None);
    assert_eq!(got.head_len, buf.len() - 4);
    assert_prefixes_need_more(&buf[..got.head_len]);
}

#[test]
fn header_names_are_case_insensitive() {
    for name in ["host", "HOST", "hOsT"] {
        let buf = format!("GET / HTTP/1.1\r\n{name}:   a.test \t\r\n\r\n");
        assert_eq!(
            req(buf.as_bytes()).host.as_deref(),
            Some("a.test"),
            "{name}"
        );
    }
}

#[test]
fn absolute_form_gives_the_authority() {
    let buf = b"POST HTTP://Up.Example.test:8080/p?q HTTP/1.1\r\nHost: other.test\r\n\r\n";
    let got = req(buf);
    assert_eq!(
        got.absolute_authority.as_deref(),
        Some("up.example.test:8080")
    );
    assert_eq!(got.host.as_deref(), Some("other.test"));
    assert_eq!(got.target, "HTTP://Up.Example.test:8080/p?q");
    let v6 = req(b"GET https://[2001:db8::1]:443 HTTP/1.1\r\nHost: [2001:db8::1]:443\r\n\r\n");
    assert_eq!(v6.absolute_authority.as_deref(), Some("[2001:db8::1]:443"));
    assert_eq!(
        malformed(b"GET http://user@evil.test/ HTTP/1.1\r\nHost: x\r\n\r\n"),
        "http1: userinfo in request target"
    );
    assert!(malformed(b"GET http:///p HTTP/1.1\r\nHost: x\r\n\r\n").starts_with("http1: invalid"));
    assert!(malformed(b"GET ftp://a.test/ HTTP/1.1\r\nHost: x\r\n\r\n").starts_with("http1:"));
}

#[test]
fn connect_authority_form() {
    let got = req(b"CONNECT Db.Example.test:5432 HTTP/1.1\r\nHost: db.example.test:5432\r\n\r\n");
    assert_eq!(
        got.absolute_authority.as_deref(),
        Some("db.example.test:5432")
    );
    for bad in [
        "db.example.test",
        "db.example.test:",
        "db.example.test:99999",
        "/x",
    ] {
        let buf = format!("CONNECT {bad} HTTP/1.1\r\nHost: h\r\n\r\n");
        assert_eq!(
            malformed(buf.as_bytes()),
            "http1: connect target is not host:port",
            "{bad}"
        );
    }
}

#[test]
fn host_rules() {
    assert_eq!(
        malformed(b"GET / HTTP/1.1\r\nHost: a.test\r\nhost: b.test\r\n\r\n"),
        "http1: duplicate host header"
    );
    assert_eq!(
        malformed(b"GET / HTTP/1.1\r\nHost: a.test\r\nHOST: a.test\r\n\r\n"),
        "http1: duplicate host header"
    );
    assert_eq!(
        malformed(b"GET / HTTP/1.1\r\nAccept: */*\r\n\r\n"),
        "http1: missing host header"
    );
    assert_eq!(req(b"GET / HTTP/1.0\r\n\r\n").host, None);
    assert_eq!(
        req(b"GET / HTTP/1.1\r\nHost:\r\n\r\n").host.as_deref(),
        Some("")
    );
    for bad in [
        "a b.test",
        "a.test/x",
        "a.test:80:90",
        "[::1",
        "a.test:http",
    ] {
        let buf = format!("GET / HTTP/1.1\r\nHost: {bad}\r\n\r\n");
        assert_eq!(
            malformed(buf.as_bytes()),
            "http1: invalid host header",
            "{bad}"
        );
    }
}

#[test]
fn syntax_violations_after_the_request_line_are_malformed() {
    let cases: &[(&[u8], &str)] = &[
        (b"GET / HTTP/1.1\nHost: a\r\n\r\n", ""),
        (b"GET / HTTP/1.1\r\nHost: a\n\r\n", "http1: bare LF"),
        (
            b"GET / HTTP/1.1\r\nHost : a\r\n\r\n",
            "http1: invalid header name",
        ),
        (
            b"GET / HTTP/1.1\r\nHost: a\r\n folded\r\n\r\n",
            "http1: obsolete line folding",
        ),
        (
            b"GET / HTTP/1.1\r\nHost a\r\n\r\n",
            "http1: header line without colon",
        ),
        (
            b"GET / HTTP/1.1\r\nHost: a\r\nX: a\0b\r\n\r\n",
            "http1: invalid byte in header value",
        ),
        (b"OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n", "ok"),
        (
            b"GET * HTTP/1.1\r\nHost: a\r\n\r\n",
            "http1: asterisk target outside OPTIONS",
        ),
        (
            b"GET a.test:80 HTTP/1.1\r\nHost: a\r\n\r\n",
            "http1: unsupported request target",
        ),
    ];
    for (buf, want) in cases {
        match (sniff(buf), *want) {
            // A bare LF ending the request line is not a request line at all.
            (SniffOutcome::Done(Sniffed::Opaque), "") => {}
            (SniffOutcome::Done(Sniffed::Http1(_)), "ok") => {}
            (SniffOutcome::Malformed(reason), want) => assert_eq!(reason, want),
            (other, want) => panic!(
                "{:?}: got {other:?}, want {want}",
                String::from_utf8_lossy(buf)
            ),
        }
    }
}

#[test]
fn ambiguous_body_framing_is_malformed() {
    let cases: &[(&str, &str)] = &[
        (
            "Content-Length: 5\r\nTransfer-Encoding: chunked",
            "http1: both content-length and transfer-encoding",
        ),
        (
            "Content-Length: 5\r\nContent-Length: 6",
            "http1: conflicting content-length headers",
        ),
        ("Content-Length: +5", "http1: invalid content-length"),
        (
            "Transfer-Encoding: chunked, gzip",
            "http1: transfer-encoding does not end in chunked",
        ),
    ];
    for (headers, want) in cases {
        let buf = format!("POST / HTTP/1.1\r\nHost: a\r\n{headers}\r\n\r\n");
        assert_eq!(malformed(buf.as_bytes()), *want, "{headers}");
    }
    let ok = "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\ncontent-length: 5\r\n\r\n";
    assert_eq!(req(ok.as_bytes()).head_len, ok.len());
    let ok = "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip ,Chunked\r\n\r\n";
    assert_eq!(req(ok.as_bytes()).head_len, ok.len());
}

#[test]
fn things_that_are_not_http_are_opaque() {
    let cases: &[&[u8]] = &[
        b"SSH-2.0-OpenSSH_9.2p1 Debian-2\r\n",
        b"GET / HTTP/2.0\r\n",
        b"GET / HTTP/1.1 \r\n",
        b"GET  / HTTP/1.1\r\n",
        b" GET / HTTP/1.1\r\n",
        b"get\t/ HTTP/1.1\r\n",
        b"ABCDEFGHIJKLMNOPQRSTUVWXYZ / HTTP/1.1\r\n",
        b"GET /\x7f HTTP/1.1\r\n",
        b"\r\n",
        b"*1\r\n$4\r\nPING\r\n",
    ];
    for buf in cases {
        assert_eq!(
            sniff(buf),
            SniffOutcome::Done(Sniffed::Opaque),
            "{:?}",
            String::from_utf8_lossy(buf)
        );
    }
    for partial in [
        &b"G"[..],
        b"GET",
        b"GET /",
        b"GET / HTTP/1.",
        b"PUT /x HTTP/1.0\r",
    ] {
        assert_eq!(sniff(partial), SniffOutcome::NeedMore);
    }
}

#[test]
fn endless_headers_get_a_verdict_at_the_limit() {
    let mut buf = b"GET / HTTP/1.1\r\nHost: a\r\n".to_vec();
    while buf.len() < MAX_SNIFF_BYTES {
        buf.extend_from_slice(b"X-Filler: 0123456789\r\n");
    }
    assert_eq!(sniff(&buf[..MAX_SNIFF_BYTES - 1]), SniffOutcome::NeedMore);
    assert_eq!(malformed(&buf), "sniff: no verdict within MAX_SNIFF_BYTES");
}

#[test]
fn host_port_helpers() {
    let cases = [
        ("a.test", "a.test", None),
        ("a.test:8080", "a.test", Some(8080)),
        ("a.test:", "a.test", None),
        ("[::1]", "[::1]", None),
        ("[::1]:443", "[::1]", Some(443)),
        ("[2001:db8::1]:x", "[2001:db8::1]", None),
        ("::1", "::1", None),
        ("10.0.0.1:99999", "10.0.0.1", None),
        ("", "", None),
    ];
    for (input, host, port) in cases {
        assert_eq!(host_without_port(input), host, "{input}");
        assert_eq!(split_host_port(input), (host, port), "{input}");
    }
}
