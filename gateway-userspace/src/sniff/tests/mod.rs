//! Tests for the sniffers, one file per source file (`tls`, `http1`,
//! `http2`, `hpack`, `huffman`) and two of the module as a whole: real
//! client captures (`captures`) and a deterministic mutation sweep
//! (`mutation`). Helpers here build TLS records and HTTP/2 frames.

mod captures;
mod hpack;
mod http1;
mod http2;
mod huffman;
mod mutation;
mod tls;

use super::{SniffOutcome, Sniffed, sniff};

pub(super) const FIXTURE_DIR: &str =
    concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/fixtures/sniff/");

/// Every capture in the fixture directory.
pub(super) const FIXTURES: &[&str] = &[
    "curl_h2_prior_knowledge.bin",
    "curl_http1_host.bin",
    "curl_http1_proxy_absolute.bin",
    "curl_http1_proxy_connect.bin",
    "curl_https_alpn_h2.bin",
    "go_http1_client.bin",
    "go_https_client.bin",
    "go_tls_dial_alpn.bin",
    "openssl_tls12_sni.bin",
    "openssl_tls13_no_sni.bin",
    "openssl_tls13_sni.bin",
];

pub(super) fn fixture(name: &str) -> Vec<u8> {
    let path = format!("{FIXTURE_DIR}{name}");
    std::fs::read(&path).unwrap_or_else(|e| panic!("reading {path}: {e}"))
}

pub(super) fn done(buf: &[u8]) -> Sniffed {
    match sniff(buf) {
        SniffOutcome::Done(found) => found,
        other => panic!("expected Done, got {other:?}"),
    }
}

pub(super) fn malformed(buf: &[u8]) -> &'static str {
    match sniff(buf) {
        SniffOutcome::Malformed(reason) => reason,
        other => panic!("expected Malformed, got {other:?}"),
    }
}

/// Assert every proper prefix of `buf` asks for more bytes.
pub(super) fn assert_prefixes_need_more(buf: &[u8]) {
    for cut in 0..buf.len() {
        let prefix = buf.get(..cut).unwrap_or_default();
        assert_eq!(
            sniff(prefix),
            SniffOutcome::NeedMore,
            "cut at {cut} of {}",
            buf.len()
        );
    }
}

// ---- TLS ----

fn vec16(data: &[u8]) -> Vec<u8> {
    let mut v = u16::try_from(data.len()).unwrap().to_be_bytes().to_vec();
    v.extend_from_slice(data);
    v
}

pub(super) fn ext(kind: u16, data: &[u8]) -> Vec<u8> {
    let mut v = kind.to_be_bytes().to_vec();
    v.extend(vec16(data));
    v
}

pub(super) fn sni_ext(host: &[u8]) -> Vec<u8> {
    let mut entry = vec![0u8];
    entry.extend(vec16(host));
    ext(0, &vec16(&entry))
}

pub(super) fn alpn_ext(protocols: &[&str]) -> Vec<u8> {
    let mut list = Vec::new();
    for p in protocols {
        list.push(u8::try_from(p.len()).unwrap());
        list.extend_from_slice(p.as_bytes());
    }
    ext(16, &vec16(&list))
}

/// A ClientHello handshake message (header included) with `extensions`.
pub(super) fn hello_message(extensions: &[Vec<u8>]) -> Vec<u8> {
    let mut body = vec![0x03, 0x03];
    body.extend([0x5a; 32]);
    body.push(32);
    body.extend([0x11; 32]);
    body.extend(vec16(&[0x13, 0x01, 0x13, 0x02, 0xc0, 0x2f]));
    body.extend([1, 0]);
    body.extend(vec16(&extensions.concat()));
    let len = u32::try_from(body.len()).unwrap().to_be_bytes();
    let mut msg = vec![1, len[1], len[2], len[3]];
    msg.extend(body);
    msg
}

/// Wrap `message` in handshake records whose payloads have the given sizes;
/// the last record takes whatever is left.
pub(super) fn records(message: &[u8], sizes: &[usize]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut rest = message;
    for &size in sizes.iter().chain(std::iter::once(&usize::MAX)) {
        if rest.is_empty() {
            break;
        }
        let (chunk, tail) = rest.split_at(size.min(rest.len()));
        out.extend([0x16, 0x03, 0x01]);
        out.extend(vec16(chunk));
        rest = tail;
    }
    out
}

/// A ClientHello in one record; no ALPN extension when `alpn` is empty.
pub(super) fn hello(host: &str, alpn: &[&str]) -> Vec<u8> {
    let mut extensions = vec![sni_ext(host.as_bytes())];
    if !alpn.is_empty() {
        extensions.push(alpn_ext(alpn));
    }
    records(&hello_message(&extensions), &[])
}

// ---- HTTP/2 ----

pub(super) fn h2_frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let len = u32::try_from(payload.len()).unwrap().to_be_bytes();
    let mut f = vec![len[1], len[2], len[3], kind, flags];
    f.extend(stream.to_be_bytes());
    f.extend_from_slice(payload);
    f
}

/// Preface, an empty SETTINGS frame, and one HEADERS frame (END_HEADERS,
/// END_STREAM) on stream 1 carrying `block`.
pub(super) fn with_block(block: &[u8]) -> Vec<u8> {
    const HEADERS: u8 = 0x1;
    const END_STREAM_AND_HEADERS: u8 = 0x1 | 0x4;
    let mut buf = h2_start();
    buf.extend(h2_frame(HEADERS, END_STREAM_AND_HEADERS, 1, block));
    buf
}

/// Preface plus an empty SETTINGS frame.
pub(super) fn h2_start() -> Vec<u8> {
    let mut v = super::http2::PREFACE.to_vec();
    v.extend(h2_frame(4, 0, 0, &[0, 3, 0, 0, 0, 100]));
    v
}

/// HPACK integer with `prefix` bits, the high bits of the first byte `flags`.
pub(super) fn hpack_int(flags: u8, prefix: u8, value: usize) -> Vec<u8> {
    let max = usize::from(u8::MAX >> (8 - prefix));
    if value < max {
        return vec![flags | value as u8];
    }
    let mut out = vec![flags | max as u8];
    let mut rest = value - max;
    while rest >= 128 {
        out.push((rest % 128) as u8 | 0x80);
        rest /= 128;
    }
    out.push(rest as u8);
    out
}

pub(super) fn hpack_str(s: &[u8], huffman: bool) -> Vec<u8> {
    let data = if huffman {
        super::huffman::encode(s)
    } else {
        s.to_vec()
    };
    let mut out = hpack_int(if huffman { 0x80 } else { 0 }, 7, data.len());
    out.extend(data);
    out
}

/// Literal without indexing, new name.
pub(super) fn hpack_lit(name: &str, value: &str, huffman: bool) -> Vec<u8> {
    let mut out = vec![0];
    out.extend(hpack_str(name.as_bytes(), huffman));
    out.extend(hpack_str(value.as_bytes(), huffman));
    out
}

/// A typical GET header block: static `:method GET`, `:scheme https`,
/// `:path /`, then `:authority` as a literal.
pub(super) fn get_block(authority: &str, huffman: bool) -> Vec<u8> {
    let mut block = vec![0x82, 0x87, 0x84];
    block.push(0x41); // literal with incremental indexing, name index 1
    block.extend(hpack_str(authority.as_bytes(), huffman));
    block
}
