//! HTTP/2 with prior knowledge (RFC 9113 §3.3): the connection preface, the
//! client's SETTINGS and other connection frames, then the first request's
//! HEADERS and CONTINUATION frames, decoded with HPACK.

use super::hpack::{DEFAULT_TABLE_SIZE, Decoder, Field};
use super::{Reader, Step, Stop, check_authority};

/// The client connection preface.
pub(crate) const PREFACE: &[u8; 24] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
const FRAME_HEADER_LEN: usize = 9;
/// SETTINGS_MAX_FRAME_SIZE default; the server has not raised it yet.
const MAX_FRAME_LEN: usize = 1 << 14;

const DATA: u8 = 0;
const HEADERS: u8 = 1;
const PRIORITY: u8 = 2;
const RST_STREAM: u8 = 3;
const SETTINGS: u8 = 4;
const PUSH_PROMISE: u8 = 5;
const PING: u8 = 6;
const GOAWAY: u8 = 7;
const WINDOW_UPDATE: u8 = 8;
const CONTINUATION: u8 = 9;

const FLAG_ACK: u8 = 0x1;
const FLAG_END_HEADERS: u8 = 0x4;
const FLAG_PADDED: u8 = 0x8;
const FLAG_PRIORITY: u8 = 0x20;

/// Pseudo-headers (and a few fields) of the first request on the connection.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Http2Request {
    /// `:authority`, lowercased, port kept; the `host` header when
    /// `:authority` is absent.
    pub authority: Option<String>,
    /// `:method`.
    pub method: Option<String>,
    /// `:path` (absent for CONNECT).
    pub path: Option<String>,
    /// `:scheme` (absent for CONNECT).
    pub scheme: Option<String>,
}

/// Whether `buf` starts with, or is a prefix of, the preface.
pub(crate) fn preface_prefix(buf: &[u8]) -> bool {
    let n = buf.len().min(PREFACE.len());
    buf.get(..n) == PREFACE.get(..n)
}

struct Frame<'a> {
    kind: u8,
    flags: u8,
    stream: u32,
    payload: &'a [u8],
}

/// Read the frame at `buf[pos..]`, checking its header before the payload
/// has arrived; returns the frame and the position after it.
fn frame(buf: &[u8], pos: usize) -> Step<(Frame<'_>, usize)> {
    let mut r = Reader::new(buf.get(pos..).unwrap_or_default());
    let (Some(len), Some(kind), Some(flags), Some(stream)) = (r.u24(), r.u8(), r.u8(), r.take(4))
    else {
        return Err(Stop::NeedMore);
    };
    if len > MAX_FRAME_LEN {
        return Err(Stop::Malformed(
            "http2: frame larger than the default max frame size",
        ));
    }
    let stream = match stream {
        &[a, b, c, d] => u32::from_be_bytes([a, b, c, d]) & 0x7fff_ffff,
        _ => return Err(Stop::NeedMore),
    };
    let payload = r.take(len).ok_or(Stop::NeedMore)?;
    Ok((
        Frame {
            kind,
            flags,
            stream,
            payload,
        },
        pos + FRAME_HEADER_LEN + len,
    ))
}

/// Parse connection frames up to the first complete header block; `buf`
/// starts with (a prefix of) [`PREFACE`].
pub(crate) fn sniff(buf: &[u8]) -> Step<Http2Request> {
    if buf.len() < PREFACE.len() {
        return Err(Stop::NeedMore);
    }
    let mut pos = PREFACE.len();
    let mut first = true;
    loop {
        let (f, next) = frame(buf, pos)?;
        if first && f.kind != SETTINGS {
            return Err(Stop::Malformed("http2: preface not followed by SETTINGS"));
        }
        first = false;
        pos = next;
        let len = f.payload.len();
        let ok = match f.kind {
            SETTINGS if f.flags & FLAG_ACK != 0 => f.stream == 0 && len == 0,
            SETTINGS => f.stream == 0 && len.is_multiple_of(6),
            WINDOW_UPDATE => len == 4,
            PING => f.stream == 0 && len == 8,
            PRIORITY => f.stream != 0 && len == 5,
            HEADERS => return headers(buf, pos, f),
            DATA | RST_STREAM | PUSH_PROMISE | GOAWAY | CONTINUATION => {
                return Err(Stop::Malformed("http2: unexpected frame before HEADERS"));
            }
            // Unknown frame types are ignored (RFC 9113 §4.1).
            _ => true,
        };
        if !ok {
            return Err(Stop::Malformed("http2: invalid connection frame"));
        }
    }
}

/// Gather the header block of `first` (a HEADERS frame) and its
/// CONTINUATION frames starting at `pos`, then decode it.
fn headers(buf: &[u8], mut pos: usize, first: Frame<'_>) -> Step<Http2Request> {
    if first.stream == 0 || first.stream.is_multiple_of(2) {
        return Err(Stop::Malformed(
            "http2: HEADERS on a stream a client cannot open",
        ));
    }
    let mut r = Reader::new(first.payload);
    let pad = if first.flags & FLAG_PADDED != 0 {
        r.u8().map(usize::from)
    } else {
        Some(0)
    };
    let priority = if first.flags & FLAG_PRIORITY != 0 {
        r.take(5).map(|_| ())
    } else {
        Some(())
    };
    let (Some(pad), Some(())) = (pad, priority) else {
        return Err(Stop::Malformed("http2: HEADERS too short for its flags"));
    };
    let rest = r.remaining();
    let Some(fragment) = rest.len().checked_sub(pad).and_then(|n| rest.get(..n)) else {
        return Err(Stop::Malformed("http2: padding exceeds HEADERS payload"));
    };
    let mut block = fragment.to_vec();
    let mut flags = first.flags;
    while flags & FLAG_END_HEADERS == 0 {
        let (f, next) = frame(buf, pos)?;
        if f.kind != CONTINUATION || f.stream != first.stream {
            return Err(Stop::Malformed("http2: header block interrupted"));
        }
        block.extend_from_slice(f.payload);
        flags = f.flags;
        pos = next;
    }
    let fields = Decoder::new(DEFAULT_TABLE_SIZE)
        .decode(&block)
        .map_err(Stop::Malformed)?;
    request(fields)
}

/// Validate the decoded fields of a request (RFC 9113 §8.2, §8.3).
fn request(fields: Vec<Field>) -> Step<Http2Request> {
    let mut req = Http2Request::default();
    let mut host: Option<String> = None;
    let mut regular_seen = false;
    for (name, value) in fields {
        if value.iter().any(|&b| b == 0 || b == b'\r' || b == b'\n')
            || value.first().is_some_and(|&b| b == b' ' || b == b'\t')
            || value.last().is_some_and(|&b| b == b' ' || b == b'\t')
        {
            return Err(Stop::Malformed("http2: invalid header value"));
        }
        let text = || {
            String::from_utf8(value.clone()).map_err(|_| Stop::Malformed("http2: non-utf-8 value"))
        };
        if let Some(pseudo) = name.strip_prefix(b":") {
            if regular_seen {
                return Err(Stop::Malformed("http2: pseudo-header after regular header"));
            }
            let slot = match pseudo {
                b"authority" => &mut req.authority,
                b"method" => &mut req.method,
                b"path" => &mut req.path,
                b"scheme" => &mut req.scheme,
                b"protocol" => continue,
                _ => return Err(Stop::Malformed("http2: unknown or response pseudo-header")),
            };
            if slot.is_some() {
                return Err(Stop::Malformed("http2: duplicate pseudo-header"));
            }
            *slot = Some(text()?);
            continue;
        }
        regular_seen = true;
        if name.is_empty()
            || !name
                .iter()
                .all(|&b| super::is_tchar(b) && !b.is_ascii_uppercase())
        {
            return Err(Stop::Malformed("http2: invalid header name"));
        }
        match name.as_slice() {
            b"connection" | b"keep-alive" | b"proxy-connection" | b"transfer-encoding"
            | b"upgrade" => {
                return Err(Stop::Malformed("http2: connection-specific header"));
            }
            b"te" if value != b"trailers" => {
                return Err(Stop::Malformed("http2: te other than trailers"));
            }
            b"host" if host.is_some() => {
                return Err(Stop::Malformed("http2: duplicate host header"));
            }
            b"host" => host = Some(text()?.to_ascii_lowercase()),
            _ => {}
        }
    }
    if let Some(authority) = &mut req.authority {
        authority.make_ascii_lowercase();
        if host.as_ref().is_some_and(|h| h != authority) {
            return Err(Stop::Malformed(
                "http2: host header differs from :authority",
            ));
        }
    } else {
        req.authority = host;
    }
    if let Some(authority) = &req.authority
        && check_authority(authority, false).is_err()
    {
        return Err(Stop::Malformed("http2: invalid authority"));
    }
    let connect = req.method.as_deref() == Some("CONNECT");
    let complete = match (&req.method, connect) {
        (None, _) => false,
        (Some(_), true) => req.authority.is_some(),
        (Some(_), false) => {
            req.scheme.is_some() && req.path.as_deref().is_some_and(|p| !p.is_empty())
        }
    };
    if !complete {
        return Err(Stop::Malformed("http2: missing required pseudo-header"));
    }
    Ok(req)
}
