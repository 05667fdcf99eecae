//! Synthetic HTTP/2 prior-knowledge connections.

use super::super::{Http2Request, SniffOutcome, Sniffed, sniff};
use super::{
    assert_prefixes_need_more, done, get_block, h2_frame, h2_start, hpack_lit, hpack_str,
    malformed, with_block,
};

const HEADERS: u8 = 1;
const CONTINUATION: u8 = 9;
const END_HEADERS: u8 = 0x4;

fn req(buf: &[u8]) -> Http2Request {
    match done(buf) {
        Sniffed::Http2(req) => req,
        other => panic!("expected HTTP/2, got {other:?}"),
    }
}

#[test]
fn huffman_encoded_authority() {
    let buf = with_block(&get_block("Api.Example.test:8443", true));
    assert_prefixes_need_more(&buf);
    assert_eq!(
        req(&buf),
        Http2Request {
            authority: Some("api.example.test:8443".into()),
            method: Some("GET".into()),
            path: Some("/".into()),
            scheme: Some("https".into()),
        }
    );
}

#[test]
fn header_block_split_over_continuation_frames() {
    let mut block = get_block("cont.example.test", true);
    block.extend(hpack_lit("user-agent", "sniff-test", false));
    for cuts in [
        vec![1],
        vec![3, 4],
        vec![block.len() - 1],
        vec![1; block.len() - 1],
    ] {
        let mut buf = h2_start();
        buf.extend(h2_frame(8, 0, 0, &[0, 0, 0x10, 0])); // WINDOW_UPDATE
        let mut rest = block.as_slice();
        let mut kind = HEADERS;
        for &cut in &cuts {
            let (chunk, tail) = rest.split_at(cut);
            buf.extend(h2_frame(kind, 0, 3, chunk));
            kind = CONTINUATION;
            rest = tail;
        }
        buf.extend(h2_frame(CONTINUATION, END_HEADERS, 3, rest));
        assert_prefixes_need_more(&buf);
        assert_eq!(
            req(&buf).authority.as_deref(),
            Some("cont.example.test"),
            "{cuts:?}"
        );
    }
}

#[test]
fn padded_and_priority_headers() {
    let block = get_block("pad.example.test", false);
    let mut payload = vec![3];
    payload.extend([0x80, 0, 0, 1, 16]);
    payload.extend(&block);
    payload.extend([0; 3]);
    let mut buf = h2_start();
    buf.extend(h2_frame(HEADERS, END_HEADERS | 0x8 | 0x20, 1, &payload));
    assert_eq!(req(&buf).authority.as_deref(), Some("pad.example.test"));
    let mut buf = h2_start();
    buf.extend(h2_frame(HEADERS, END_HEADERS | 0x8, 1, &[200, 0x82]));
    assert_eq!(malformed(&buf), "http2: padding exceeds HEADERS payload");
}

#[test]
fn host_header_and_authority_rules() {
    let mut block = vec![0x82, 0x86, 0x84];
    block.extend(hpack_lit("host", "Host.Example.test", false));
    assert_eq!(
        req(&with_block(&block)).authority.as_deref(),
        Some("host.example.test")
    );
    let mut block = get_block("a.test", false);
    block.extend(hpack_lit("host", "b.test", false));
    assert_eq!(
        malformed(&with_block(&block)),
        "http2: host header differs from :authority"
    );
    assert_eq!(
        malformed(&with_block(&get_block("a b", false))),
        "http2: invalid authority"
    );
}

#[test]
fn request_rule_violations_are_malformed() {
    let lit = |n: &str, v: &str| hpack_lit(n, v, false);
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (
            [get_block("a.test", false), lit("X-Upper", "1")].concat(),
            "http2: invalid header name",
        ),
        (
            [get_block("a.test", false), lit("connection", "close")].concat(),
            "http2: connection-specific header",
        ),
        (
            [get_block("a.test", false), lit("te", "gzip")].concat(),
            "http2: te other than trailers",
        ),
        (
            [lit("accept", "*/*"), get_block("a.test", false)].concat(),
            "http2: pseudo-header after regular header",
        ),
        (
            [get_block("a.test", false), vec![0x82]].concat(),
            "http2: duplicate pseudo-header",
        ),
        (
            [get_block("a.test", false), lit(":status", "200")].concat(),
            "http2: unknown or response pseudo-header",
        ),
        (
            [get_block("a.test", false), lit("x", " padded")].concat(),
            "http2: invalid header value",
        ),
        (vec![0x82, 0x87], "http2: missing required pseudo-header"),
        (
            vec![0x20, 0x82, 0x3f, 0xe1, 0x1f],
            "hpack: table size update after a header field",
        ),
        (
            vec![0x3f, 0xe2, 0x1f],
            "hpack: table size update above the limit",
        ),
        (vec![0xff], "hpack: truncated integer"),
        (
            vec![0xff, 0xff, 0xff, 0xff, 0xff, 0x7f],
            "hpack: integer too large",
        ),
        (vec![0x80], "hpack: index 0"),
        (vec![0xbe], "hpack: index beyond the dynamic table"),
        (vec![0x3f], "hpack: truncated integer"),
        (vec![0x41, 0x05, b'a'], "hpack: string overruns the block"),
        (vec![0x41, 0x81, 0x00], "hpack: invalid huffman padding"),
    ];
    for (block, want) in cases {
        assert_eq!(malformed(&with_block(&block)), want, "{block:02x?}");
    }
    let mut connect = vec![0x00];
    connect.extend(hpack_str(b":method", false));
    connect.extend(hpack_str(b"CONNECT", false));
    connect.extend([0x41]);
    connect.extend(hpack_str(b"db.test:5432", false));
    let got = req(&with_block(&connect));
    assert_eq!((got.method.as_deref(), got.path), (Some("CONNECT"), None));
}

#[test]
fn frame_rule_violations_are_malformed() {
    let block = get_block("a.test", false);
    let preface = super::super::http2::PREFACE.to_vec();
    let no_settings = [preface.clone(), h2_frame(HEADERS, END_HEADERS, 1, &block)].concat();
    assert_eq!(
        malformed(&no_settings),
        "http2: preface not followed by SETTINGS"
    );
    let even = [h2_start(), h2_frame(HEADERS, END_HEADERS, 2, &block)].concat();
    assert!(malformed(&even).starts_with("http2: HEADERS on a stream"));
    let data_first = [h2_start(), h2_frame(0, 0, 1, b"x")].concat();
    assert_eq!(
        malformed(&data_first),
        "http2: unexpected frame before HEADERS"
    );
    let bad_settings = [preface.clone(), h2_frame(4, 0, 0, &[0; 5])].concat();
    assert_eq!(malformed(&bad_settings), "http2: invalid connection frame");
    let mut huge = preface.clone();
    huge.extend([0x00, 0x40, 0x01, 4, 0, 0, 0, 0, 0]);
    assert!(malformed(&huge).starts_with("http2: frame larger"));
    let interrupted = [
        h2_start(),
        h2_frame(HEADERS, 0, 1, &block[..2]),
        h2_frame(CONTINUATION, END_HEADERS, 3, &block[2..]),
    ]
    .concat();
    assert_eq!(malformed(&interrupted), "http2: header block interrupted");
    // Unknown frame types and PING are skipped.
    let skipping = [
        h2_start(),
        h2_frame(0xfa, 0, 0, b"ext"),
        h2_frame(6, 0, 0, &[0; 8]),
        h2_frame(HEADERS, END_HEADERS, 1, &block),
    ]
    .concat();
    assert_eq!(req(&skipping).authority.as_deref(), Some("a.test"));
}

#[test]
fn preface_prefixes_need_more_and_lookalikes_are_not_http2() {
    assert_prefixes_need_more(&h2_start());
    assert_eq!(
        sniff(b"PRI * HTTP/2.1\r\n\r\n"),
        SniffOutcome::Done(Sniffed::Opaque)
    );
    assert_eq!(
        sniff(b"PRI * HTTP/2.0\r\n\r\nXX"),
        SniffOutcome::Done(Sniffed::Opaque)
    );
}

/// A CONTINUATION flood (a HEADERS frame without END_HEADERS, then header
/// block fragments that never end it) is never buffered past
/// `MAX_SNIFF_BYTES`: the sniffer asks for more only until then, and the
/// full peek buffer is malformed, which the proxy resets.
#[test]
fn continuation_flood_is_malformed_at_the_sniff_limit() {
    use super::super::MAX_SNIFF_BYTES;
    let block = get_block("flood.example.test", false);
    for fragment in [&[][..], &block[..1]] {
        let mut buf = h2_start();
        buf.extend(h2_frame(HEADERS, 0, 1, &block));
        while buf.len() < MAX_SNIFF_BYTES + 64 {
            buf.extend(h2_frame(CONTINUATION, 0, 1, fragment));
        }
        for cut in [MAX_SNIFF_BYTES / 2, MAX_SNIFF_BYTES - 1] {
            assert_eq!(sniff(&buf[..cut]), SniffOutcome::NeedMore, "cut at {cut}");
        }
        assert_eq!(malformed(&buf[..MAX_SNIFF_BYTES]), "sniff: no verdict within MAX_SNIFF_BYTES");
    }
}
