//! What the gateway changes in a forwarded request's and response's heads
//! besides the route's own edits: the headers Envoy sets at the edge, and
//! HTTP/2 downstreams spoken to HTTP/1.1 upstreams.

use std::net::SocketAddr;

use hyper::{Request, header::HeaderValue};

/// The request's path and query, `/` when it has none.
pub fn path_and_query<B>(req: &Request<B>) -> String {
    req.uri().path_and_query().map_or_else(|| "/".to_string(), |p| p.as_str().to_string())
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
    let xff = match headers.get("x-forwarded-for").and_then(|v| v.to_str().ok()) {
        Some(prior) => format!("{prior}, {}", peer.ip()),
        None => peer.ip().to_string(),
    };
    if let Ok(v) = HeaderValue::from_str(&xff) {
        headers.insert("x-forwarded-for", v);
    }
    headers.insert("x-forwarded-proto", HeaderValue::from_static(if scheme == "https" { "https" } else { "http" }));
    if !headers.contains_key("x-request-id")
        && let Ok(v) = HeaderValue::from_str(&request_id())
    {
        headers.insert("x-request-id", v);
    }
}

/// A random UUID (version 4) in text form.
fn request_id() -> String {
    use std::hash::{BuildHasher, Hasher};
    let state = std::collections::hash_map::RandomState::new();
    let mut words = [0u64; 2];
    for (i, w) in words.iter_mut().enumerate() {
        let mut h = state.build_hasher();
        h.write_usize(i);
        h.write_u128(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos()));
        *w = h.finish();
    }
    let (a, b) = (words[0], words[1]);
    format!(
        "{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}",
        a >> 32,
        (a >> 16) & 0xffff,
        a & 0x0fff,
        0x8000 | (b >> 48) & 0x3fff,
        b & 0xffff_ffff_ffff
    )
}
