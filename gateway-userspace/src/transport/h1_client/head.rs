//! The two heads of an exchange: the request's, written from its parts as
//! hyper writes it, and the response's, parsed with `httparse`, with the
//! framing of the body that follows (RFC 9112 §6.3).

use std::{io::Write, ops::Range};


use bytes::{Buf, BytesMut};
use hyper::{
    HeaderMap, Method, Request, StatusCode, Version,
    header::{self, HeaderName, HeaderValue},
};

/// Most headers a response head may carry (hyper's limit).
pub const MAX_HEADERS: usize = 100;
/// Longest response head read before giving up (hyper's read limit).
pub const MAX_HEAD_BYTES: usize = 8192 + 4096 * 100;

/// Why a response head is refused.
#[derive(Debug, thiserror::Error)]
pub enum HeadError {
    #[error("malformed response head: {0}")]
    Malformed(#[from] httparse::Error),
    #[error("response head longer than {MAX_HEAD_BYTES} bytes")]
    TooLarge,
    #[error("101 Switching Protocols to a request that asked for no upgrade")]
    UnaskedUpgrade,
    #[error("invalid or conflicting Content-Length")]
    ContentLength,
    #[error("invalid header: {0}")]
    Header(String),
}

/// Where a header's name or value lies in the head (the read buffer stays
/// within [`MAX_HEAD_BYTES`] and one read more, so `u32` holds any offset).
#[derive(Clone, Copy)]
struct Span {
    at: u32,
    len: u32,
}

impl Span {
    fn range(self) -> Range<usize> {
        self.at as usize..(self.at + self.len) as usize
    }
}

/// How the response body is delimited.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Framing {
    /// No body: a HEAD request's answer, 204, 304, or `Content-Length: 0`.
    Empty,
    Length(u64),
    Chunked,
    /// Until the upstream closes (no length given); the connection ends with it.
    UntilClose,
}

/// A parsed response head.
#[derive(Debug)]
pub struct ResponseHead {
    pub status: StatusCode,
    pub version: Version,
    pub headers: HeaderMap,
    pub framing: Framing,
    /// Whether the connection may carry another request once the body is read.
    pub keep_alive: bool,
}

/// What the response's framing depends on in its request.
#[derive(Clone, Copy, Debug)]
pub struct Asked {
    pub head: bool,
    /// The request said `Connection: close`.
    pub close: bool,
}

impl Asked {
    pub fn of<B>(req: &Request<B>) -> Self {
        Asked { head: req.method() == Method::HEAD, close: has_token(req.headers(), "close") }
    }
}

/// Appends `req`'s head: method, target (origin or absolute form, as the
/// URI was given), `HTTP/1.1`, and the headers as they are.
pub fn encode_request<B>(req: &Request<B>, out: &mut Vec<u8>) {
    out.extend_from_slice(req.method().as_str().as_bytes());
    out.push(b' ');
    let uri = req.uri();
    match uri.path_and_query() {
        Some(pq) if uri.scheme().is_none() && uri.authority().is_none() => out.extend_from_slice(pq.as_str().as_bytes()),
        _ => {
            let _ = write!(out, "{uri}");
        }
    }
    out.extend_from_slice(b" HTTP/1.1\r\n");
    for (name, value) in req.headers() {
        out.extend_from_slice(name.as_str().as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"\r\n");
}

/// Parses the response head at the front of `buf` and takes it out; 1xx
/// interim responses before it are taken out and skipped. `None` while the
/// head is incomplete.
pub fn parse_response(buf: &mut BytesMut, asked: Asked) -> Result<Option<ResponseHead>, HeadError> {
    loop {
        let mut slots = [const { std::mem::MaybeUninit::<httparse::Header<'_>>::uninit() }; MAX_HEADERS];
        let mut parsed = httparse::Response::new(&mut []);
        let len = match httparse::ParserConfig::default().parse_response_with_uninit_headers(&mut parsed, buf, &mut slots)? {
            httparse::Status::Complete(len) => len,
            httparse::Status::Partial if buf.len() > MAX_HEAD_BYTES => return Err(HeadError::TooLarge),
            httparse::Status::Partial => return Ok(None),
        };
        let code = parsed.code.unwrap_or_default();
        if (100..200).contains(&code) {
            if code == 101 {
                return Err(HeadError::UnaskedUpgrade);
            }
            buf.advance(len);
            continue;
        }
        let version = if parsed.version == Some(0) { Version::HTTP_10 } else { Version::HTTP_11 };
        // Where each header lies in `buf`, so that the values can share its bytes.
        let base = buf.as_ptr() as usize;
        let span = |s: &[u8]| {
            let at = s.as_ptr() as usize - base;
            Span { at: at as u32, len: s.len() as u32 }
        };
        // Only the first `count` are written: zeroing all of them touched 1.6 KiB per answer.
        let mut spans = [const { std::mem::MaybeUninit::<(Span, Span)>::uninit() }; MAX_HEADERS];
        let count = parsed.headers.len();
        for (slot, h) in spans.iter_mut().zip(parsed.headers.iter()) {
            slot.write((span(h.name.as_bytes()), span(h.value)));
        }
        let status = StatusCode::from_u16(code).map_err(|_| HeadError::Header(format!("status {code}")))?;
        let head = buf.split_to(len).freeze();
        let mut headers = HeaderMap::with_capacity(count);
        for slot in &spans[..count] {
            // SAFETY: the loop above wrote the first `count` slots (httparse
            // fills at most `MAX_HEADERS`, so the zip stops at `count`).
            let (name, value) = unsafe { slot.assume_init_ref() };
            let name = HeaderName::from_bytes(&head[name.range()]).map_err(|e| HeadError::Header(e.to_string()))?;
            // SAFETY: httparse let through only the bytes a header value may hold (tab, space,
            // visible ASCII, obs-text), the same `HeaderValue` allows; hyper relies on it too.
            let value = unsafe { HeaderValue::from_maybe_shared_unchecked(head.slice(value.range())) };
            headers.append(name, value);
        }
        let (framing, sound) = framing(status, &headers, asked)?;
        let keep_alive = sound && !asked.close && framing != Framing::UntilClose && persistent(version, &headers);
        return Ok(Some(ResponseHead { status, version, headers, framing, keep_alive }));
    }
}

/// The body's framing, and whether the head leaves the connection sound
/// for another request (not when it gives both a length and chunking).
fn framing(status: StatusCode, headers: &HeaderMap, asked: Asked) -> Result<(Framing, bool), HeadError> {
    if asked.head || status == StatusCode::NO_CONTENT || status == StatusCode::NOT_MODIFIED {
        return Ok((Framing::Empty, true));
    }
    let has_length = headers.contains_key(header::CONTENT_LENGTH);
    if headers.contains_key(header::TRANSFER_ENCODING) {
        let last = headers.get_all(header::TRANSFER_ENCODING).iter().filter_map(|v| v.to_str().ok()).flat_map(|v| v.split(',')).map(str::trim).rfind(|c| !c.is_empty());
        let chunked = last.is_some_and(|c| c.eq_ignore_ascii_case("chunked"));
        return Ok((if chunked { Framing::Chunked } else { Framing::UntilClose }, !has_length));
    }
    if !has_length {
        return Ok((Framing::UntilClose, true));
    }
    // Every value, and every item of a list, must be the same number.
    let mut length = None;
    for value in headers.get_all(header::CONTENT_LENGTH) {
        for item in value.to_str().map_err(|_| HeadError::ContentLength)?.split(',') {
            let item = item.trim();
            if item.is_empty() || item.len() > 19 || !item.bytes().all(|b| b.is_ascii_digit()) {
                return Err(HeadError::ContentLength);
            }
            let n: u64 = item.parse().map_err(|_| HeadError::ContentLength)?;
            if length.is_some_and(|l| l != n) {
                return Err(HeadError::ContentLength);
            }
            length = Some(n);
        }
    }
    match length {
        Some(0) => Ok((Framing::Empty, true)),
        Some(n) => Ok((Framing::Length(n), true)),
        None => Err(HeadError::ContentLength),
    }
}

/// HTTP/1.1 persists unless `close` is said; HTTP/1.0 only if `keep-alive` is.
fn persistent(version: Version, headers: &HeaderMap) -> bool {
    if version == Version::HTTP_11 { !has_token(headers, "close") } else { has_token(headers, "keep-alive") }
}

/// Whether a `Connection` header lists `token`.
fn has_token(headers: &HeaderMap, token: &str) -> bool {
    let listed = |v: &HeaderValue| v.as_bytes().split(|b| *b == b',').any(|t| t.trim_ascii().eq_ignore_ascii_case(token.as_bytes()));
    headers.get_all(header::CONNECTION).iter().any(listed)
}
