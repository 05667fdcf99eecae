//! What the gateway changes in a forwarded request's and response's heads
//! besides the route's own edits: the headers Envoy sets at the edge, and
//! HTTP/2 downstreams spoken to HTTP/1.1 upstreams.

use std::net::SocketAddr;

use crate::transport::addrs::write_ip;

use hyper::{
    Request,
    header::{HeaderName, HeaderValue},
};

/// The request's path and query, `/` when it has none.
pub fn path_and_query<B>(req: &Request<B>) -> String {
    req.uri().path_and_query().map_or_else(|| "/".to_string(), |p| p.as_str().to_string())
}

/// The length of `uri` as its `Display` writes it, without writing it.
pub fn uri_len(uri: &hyper::Uri) -> usize {
    uri.scheme_str().map_or(0, |s| s.len() + "://".len())
        + uri.authority().map_or(0, |a| a.as_str().len())
        + uri.path().len()
        + uri.query().map_or(0, |q| "?".len() + q.len())
}

/// Upstreams are spoken to in HTTP/1.1: an HTTP/2 request gets origin-form
/// and a Host from its `:authority`.
pub fn as_http11<B>(req: &mut Request<B>) {
    if req.version() != hyper::Version::HTTP_2 {
        return;
    }
    *req.version_mut() = hyper::Version::HTTP_11;
    if let Some(authority) = req.uri().authority().map(|a| a.as_str().to_string())
        && !req.headers().contains_key(hyper::header::HOST)
        && let Ok(v) = HeaderValue::from_str(&authority)
    {
        req.headers_mut().insert(hyper::header::HOST, v);
    }
    if let Ok(origin) = path_and_query(req).parse() {
        *req.uri_mut() = origin;
    }
}

/// HTTP/2 forbids connection-specific headers an HTTP/1.1 upstream may send.
pub fn strip_connection_headers(headers: &mut hyper::HeaderMap) {
    for name in ["connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade"] {
        headers.remove(name);
    }
}

/// `x-forwarded-for` (appended), `x-forwarded-proto` and `x-request-id`, as
/// Envoy sets them at the edge.
pub fn forwarding_headers<B>(req: &mut Request<B>, peer: SocketAddr, scheme: &str) {
    let headers = req.headers_mut();
    let mut xff = Vec::with_capacity(64);
    if let Some(prior) = headers.get(&X_FORWARDED_FOR).and_then(|v| v.to_str().ok()) {
        xff.extend_from_slice(prior.as_bytes());
        xff.extend_from_slice(b", ");
    }
    write_ip(&mut xff, peer.ip());
    if let Ok(v) = HeaderValue::from_maybe_shared(hyper::body::Bytes::from(xff)) {
        headers.insert(&X_FORWARDED_FOR, v);
    }
    headers.insert(&X_FORWARDED_PROTO, HeaderValue::from_static(if scheme == "https" { "https" } else { "http" }));
    if !headers.contains_key(&X_REQUEST_ID) {
        headers.insert(&X_REQUEST_ID, request_id());
    }
}

// Names checked once, not at every request.
static X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
static X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
static X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// A random UUID (version 4, RFC 9562) in text form.
pub(super) fn request_id() -> HeaderValue {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let n = (u128::from(fastrand::u64(..)) << 64) | u128::from(fastrand::u64(..));
    let mut digits = [0u8; 32];
    for (i, d) in digits.iter_mut().enumerate() {
        *d = HEX[((n >> (124 - 4 * i)) & 0xf) as usize];
    }
    digits[12] = b'4'; // the version
    digits[16] = HEX[8 | ((n >> 60) & 0x3) as usize]; // the variant, 10xx, over the digit's own bits
    let mut text = [b'-'; 36];
    // Digits, where they go, how many: 8-4-4-4-12.
    for (from, to, len) in [(0, 0, 8), (8, 9, 4), (12, 14, 4), (16, 19, 4), (20, 24, 12)] {
        text[to..to + len].copy_from_slice(&digits[from..from + len]);
    }
    HeaderValue::from_bytes(&text).expect("hex digits and dashes")
}
