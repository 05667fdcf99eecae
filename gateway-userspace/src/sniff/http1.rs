//! HTTP/1.0 and HTTP/1.1 request heads (RFC 9112).
//!
//! Until the request line is complete, bytes that cannot start a request line
//! make the connection [`Sniffed::Opaque`](super::Sniffed::Opaque); after it,
//! any violation is `Malformed`. Framing that a proxy could read differently
//! from the upstream (request smuggling) is rejected.

use super::{SniffOutcome, Sniffed, Step, Stop, check_authority, finish, is_tchar};

/// Longest method token accepted (the longest registered one has 17 bytes).
const MAX_METHOD_LEN: usize = 24;

/// A parsed request head.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Http1Request {
    /// Request method, case preserved (methods are case-sensitive).
    pub method: String,
    /// Request target exactly as sent.
    pub target: String,
    /// The `Host` header value, lowercased, port kept; `None` only for
    /// HTTP/1.0 requests without one.
    pub host: Option<String>,
    /// Lowercased authority of an absolute-form target
    /// (`http://host:port/path`) or of a CONNECT target (`host:port`). When
    /// present it takes precedence over `host` (RFC 9112 §3.2.2).
    pub absolute_authority: Option<String>,
    /// Bytes up to and including the blank line that ends the head.
    pub head_len: usize,
}

/// Parse one request head starting at `buf[0]`, e.g. at a request boundary
/// of a keep-alive connection. Unlike [`sniff`](super::sniff), bytes that
/// cannot start a request are `Malformed` here, not `Opaque`.
pub fn parse_http1_head(buf: &[u8]) -> SniffOutcome {
    let step = match parse(buf) {
        Err(Stop::Opaque) => Err(Stop::Malformed("http1: not a request line")),
        other => other.map(Sniffed::Http1),
    };
    finish(step, buf.len())
}

/// The host part of an authority (`host`, `host:port`, `[v6]`, `[v6]:port`):
/// the port is dropped, IPv6 brackets are kept.
pub fn host_without_port(authority: &str) -> &str {
    split_host_port(authority).0
}

/// Split an authority into its host (IPv6 brackets kept) and numeric port.
/// A port that is absent, empty or not a number yields `None`.
pub fn split_host_port(authority: &str) -> (&str, Option<u16>) {
    let (host, port) = super::split_host_port_raw(authority);
    (host, port.and_then(|p| p.parse().ok()))
}

pub(crate) fn parse(buf: &[u8]) -> Step<Http1Request> {
    let (method, target, minor, line_len) = request_line(buf)?;
    let mut pos = line_len;
    let mut host: Option<String> = None;
    let mut content_length: Option<&[u8]> = None;
    let mut chunked_last = None;
    let head_len = loop {
        let rest = buf.get(pos..).unwrap_or_default();
        let Some(nl) = rest.iter().position(|&b| b == b'\n') else {
            return Err(Stop::NeedMore);
        };
        let line = match rest.get(..nl).and_then(|l| l.strip_suffix(b"\r")) {
            Some(line) => line,
            None => return Err(Stop::Malformed("http1: bare LF")),
        };
        pos += nl + 1;
        if line.is_empty() {
            break pos;
        }
        let (name, value) = header_line(line)?;
        if name.eq_ignore_ascii_case(b"host") {
            if host.is_some() {
                return Err(Stop::Malformed("http1: duplicate host header"));
            }
            let value = ascii_lower(value);
            if !value.is_empty() && check_authority(&value, false).is_err() {
                return Err(Stop::Malformed("http1: invalid host header"));
            }
            host = Some(value);
        } else if name.eq_ignore_ascii_case(b"content-length") {
            if value.is_empty() || !value.iter().all(u8::is_ascii_digit) {
                return Err(Stop::Malformed("http1: invalid content-length"));
            }
            if content_length.is_some_and(|seen| seen != value) {
                return Err(Stop::Malformed("http1: conflicting content-length headers"));
            }
            content_length = Some(value);
        } else if name.eq_ignore_ascii_case(b"transfer-encoding") {
            let last = value.rsplit(|&b| b == b',').next().unwrap_or_default();
            chunked_last = Some(trim_ows(last).eq_ignore_ascii_case(b"chunked"));
        }
    };
    if content_length.is_some() && chunked_last.is_some() {
        return Err(Stop::Malformed(
            "http1: both content-length and transfer-encoding",
        ));
    }
    if chunked_last == Some(false) {
        return Err(Stop::Malformed(
            "http1: transfer-encoding does not end in chunked",
        ));
    }
    if host.is_none() && minor == 1 {
        return Err(Stop::Malformed("http1: missing host header"));
    }
    let absolute_authority = target_authority(method, target)?;
    Ok(Http1Request {
        method: String::from_utf8_lossy(method).into_owned(),
        target: String::from_utf8_lossy(target).into_owned(),
        host,
        absolute_authority,
        head_len,
    })
}

/// `method SP request-target SP HTTP/1.x CRLF`: returns method, target, the
/// minor version and the line length. Inconsistent bytes are `Opaque`.
fn request_line(buf: &[u8]) -> Step<(&[u8], &[u8], u8, usize)> {
    let method_len = buf.iter().take_while(|&&b| is_tchar(b)).count();
    if method_len > MAX_METHOD_LEN {
        return Err(Stop::Opaque);
    }
    match buf.get(method_len) {
        None => return Err(Stop::NeedMore),
        Some(b' ') if method_len > 0 => {}
        Some(_) => return Err(Stop::Opaque),
    }
    let after_method = buf.get(method_len + 1..).unwrap_or_default();
    let target_len = after_method
        .iter()
        .take_while(|&&b| b.is_ascii_graphic())
        .count();
    match after_method.get(target_len) {
        None => return Err(Stop::NeedMore),
        Some(b' ') if target_len > 0 => {}
        Some(_) => return Err(Stop::Opaque),
    }
    let version_at = method_len + 1 + target_len + 1;
    let version = buf.get(version_at..).unwrap_or_default();
    let minor = [(b"HTTP/1.1\r\n", 1), (b"HTTP/1.0\r\n", 0)]
        .iter()
        .find_map(|(want, minor)| {
            let n = version.len().min(want.len());
            (version.get(..n) == want.get(..n)).then_some((*minor, n == want.len()))
        });
    match minor {
        None => Err(Stop::Opaque),
        Some((_, false)) => Err(Stop::NeedMore),
        Some((minor, true)) => {
            let method = buf.get(..method_len).unwrap_or_default();
            let target = after_method.get(..target_len).unwrap_or_default();
            Ok((method, target, minor, version_at + 10))
        }
    }
}

/// `field-name ":" OWS field-value OWS`.
fn header_line(line: &[u8]) -> Step<(&[u8], &[u8])> {
    if line.first().is_some_and(|&b| b == b' ' || b == b'\t') {
        return Err(Stop::Malformed("http1: obsolete line folding"));
    }
    let Some(colon) = line.iter().position(|&b| b == b':') else {
        return Err(Stop::Malformed("http1: header line without colon"));
    };
    let name = line.get(..colon).unwrap_or_default();
    if name.is_empty() || !name.iter().all(|&b| is_tchar(b)) {
        return Err(Stop::Malformed("http1: invalid header name"));
    }
    let value = trim_ows(line.get(colon + 1..).unwrap_or_default());
    if !value
        .iter()
        .all(|&b| b == b'\t' || (b' '..=b'~').contains(&b) || b >= 0x80)
    {
        return Err(Stop::Malformed("http1: invalid byte in header value"));
    }
    Ok((name, value))
}

/// The authority of an absolute-form or CONNECT target, checking the target
/// form fits the method.
fn target_authority(method: &[u8], target: &[u8]) -> Step<Option<String>> {
    if method == b"CONNECT" {
        let authority = ascii_lower(target);
        return match check_authority(&authority, true) {
            Ok(()) => Ok(Some(authority)),
            Err(()) => Err(Stop::Malformed("http1: connect target is not host:port")),
        };
    }
    if target.starts_with(b"/") {
        return Ok(None);
    }
    if target == b"*" {
        return match method {
            b"OPTIONS" => Ok(None),
            _ => Err(Stop::Malformed("http1: asterisk target outside OPTIONS")),
        };
    }
    let lower = ascii_lower(target);
    let Some(rest) = lower
        .strip_prefix("http://")
        .or_else(|| lower.strip_prefix("https://"))
    else {
        return Err(Stop::Malformed("http1: unsupported request target"));
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    if authority.contains('@') {
        return Err(Stop::Malformed("http1: userinfo in request target"));
    }
    if check_authority(authority, false).is_err() {
        return Err(Stop::Malformed(
            "http1: invalid authority in request target",
        ));
    }
    Ok(Some(authority.to_owned()))
}

fn trim_ows(mut s: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = s {
        s = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = s {
        s = rest;
    }
    s
}

/// Lowercase ASCII; any other byte (obs-text) becomes U+FFFD.
fn ascii_lower(bytes: &[u8]) -> String {
    String::from_utf8_lossy(&bytes.to_ascii_lowercase()).into_owned()
}
