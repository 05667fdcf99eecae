//! Destination sniffing for intercepted outbound connections.
//!
//! The proxy peeks (never consumes) the first bytes a client sends and hands
//! every byte peeked so far to [`sniff`]. The answer is one of:
//!
//! * [`SniffOutcome::NeedMore`]: the bytes are a consistent prefix of a
//!   recognised protocol; peek again once more bytes arrive.
//! * [`SniffOutcome::Done`]: a TLS ClientHello, an HTTP/1.x request head or an
//!   HTTP/2 prior-knowledge request was read completely, or the bytes cannot
//!   be any of them ([`Sniffed::Opaque`]).
//! * [`SniffOutcome::Malformed`]: the bytes claim one of the protocols but
//!   break its rules; the reason is a stable, static string fit for logs and
//!   metric labels.
//!
//! [`sniff`] never returns `NeedMore` for a buffer of [`MAX_SNIFF_BYTES`] or
//! more, so a caller that peeks at most that many bytes always gets a verdict.
//! Every function here is pure, allocation-bounded and panic-free on any input.

pub mod hpack;
mod http1;
mod http2;
mod huffman;
mod tls;

#[cfg(test)]
mod tests;

pub use http1::{Http1Request, host_without_port, parse_http1_head, split_host_port};
pub use http2::Http2Request;
pub use tls::ClientHelloInfo;

/// Most bytes a caller needs to peek: a 16 KiB ClientHello or request head
/// plus room for TLS record and HTTP/2 frame headers.
pub const MAX_SNIFF_BYTES: usize = 16 * 1024 + 1024;

/// What the first bytes of a connection turned out to be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Sniffed {
    /// A complete TLS ClientHello.
    Tls(ClientHelloInfo),
    /// A complete HTTP/1.0 or HTTP/1.1 request head.
    Http1(Http1Request),
    /// An HTTP/2 prior-knowledge connection and its first request headers.
    Http2(Http2Request),
    /// Bytes that are none of the above.
    Opaque,
}

impl Sniffed {
    /// The destination name the client asked for, if the protocol carries one:
    /// the SNI, the absolute-form or CONNECT authority, the `Host` header, or
    /// `:authority`. The port, when present, is kept.
    pub fn authority(&self) -> Option<&str> {
        match self {
            Sniffed::Tls(hello) => hello.sni.as_deref(),
            Sniffed::Http1(req) => req.absolute_authority.as_deref().or(req.host.as_deref()),
            Sniffed::Http2(req) => req.authority.as_deref(),
            Sniffed::Opaque => None,
        }
    }
}

/// Verdict of [`sniff`] on the bytes peeked so far.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SniffOutcome {
    /// Consistent so far; wait for more bytes.
    NeedMore,
    /// Enough bytes were seen to decide.
    Done(Sniffed),
    /// The bytes claim a known protocol but violate it.
    Malformed(&'static str),
}

/// Work out what `buf` (every byte peeked so far) is.
pub fn sniff(buf: &[u8]) -> SniffOutcome {
    let step = match buf.first() {
        None => Err(Stop::NeedMore),
        Some(&tls::HANDSHAKE_RECORD) => tls::sniff(buf).map(Sniffed::Tls),
        Some(_) if http2::preface_prefix(buf) => http2::sniff(buf).map(Sniffed::Http2),
        Some(_) => http1::parse(buf).map(Sniffed::Http1),
    };
    finish(step, buf.len())
}

/// Why a parser stopped before reaching a verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stop {
    NeedMore,
    Opaque,
    Malformed(&'static str),
}

pub(crate) type Step<T> = Result<T, Stop>;

pub(crate) fn finish(step: Step<Sniffed>, len: usize) -> SniffOutcome {
    match step {
        Ok(found) => SniffOutcome::Done(found),
        Err(Stop::Opaque) => SniffOutcome::Done(Sniffed::Opaque),
        Err(Stop::Malformed(reason)) => SniffOutcome::Malformed(reason),
        Err(Stop::NeedMore) if len >= MAX_SNIFF_BYTES => {
            SniffOutcome::Malformed("sniff: no verdict within MAX_SNIFF_BYTES")
        }
        Err(Stop::NeedMore) => SniffOutcome::NeedMore,
    }
}

/// Bounds-checked big-endian reader over a byte slice.
pub(crate) struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    pub(crate) fn new(buf: &'a [u8]) -> Self {
        Reader { rest: buf }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.rest.is_empty()
    }

    pub(crate) fn remaining(&self) -> &'a [u8] {
        self.rest
    }

    pub(crate) fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if n > self.rest.len() {
            return None;
        }
        let (head, tail) = self.rest.split_at(n);
        self.rest = tail;
        Some(head)
    }

    pub(crate) fn u8(&mut self) -> Option<u8> {
        self.take(1).and_then(|b| b.first().copied())
    }

    pub(crate) fn u16(&mut self) -> Option<u16> {
        match self.take(2)? {
            &[a, b] => Some(u16::from_be_bytes([a, b])),
            _ => None,
        }
    }

    pub(crate) fn u24(&mut self) -> Option<usize> {
        match self.take(3)? {
            &[a, b, c] => Some(usize::from(a) << 16 | usize::from(b) << 8 | usize::from(c)),
            _ => None,
        }
    }

    /// A vector with a one-byte length prefix.
    pub(crate) fn vec8(&mut self) -> Option<&'a [u8]> {
        let n = self.u8()?;
        self.take(usize::from(n))
    }

    /// A vector with a two-byte length prefix.
    pub(crate) fn vec16(&mut self) -> Option<&'a [u8]> {
        let n = self.u16()?;
        self.take(usize::from(n))
    }
}

/// Whether `b` may appear in an HTTP token (RFC 9110 §5.6.2).
pub(crate) fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// Check the `host [ ":" port ]` form shared by HTTP `Host`, absolute-form
/// and CONNECT targets and `:authority`. `host` is a bracketed IPv6 literal
/// or a registered name / IPv4 address made of unreserved characters.
pub(crate) fn check_authority(s: &str, require_port: bool) -> Result<(), ()> {
    let (host, port) = split_host_port_raw(s);
    let host_ok = if let Some(inner) = host.strip_prefix('[') {
        inner.strip_suffix(']').is_some_and(|v6| {
            !v6.is_empty()
                && v6
                    .bytes()
                    .all(|b| b.is_ascii_hexdigit() || b == b':' || b == b'.')
        })
    } else {
        !host.is_empty()
            && host.len() <= 253
            && host
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b))
    };
    let port_ok = match port {
        None => !require_port,
        Some(p) => {
            (!require_port || !p.is_empty())
                && p.len() <= 5
                && p.bytes().all(|b| b.is_ascii_digit())
                && p.parse::<u32>().map_or(p.is_empty(), |n| n <= 65535)
        }
    };
    if host_ok && port_ok { Ok(()) } else { Err(()) }
}

/// Split `host[:port]` without validating; `[v6]` keeps its brackets and an
/// unbracketed string with several colons is taken to be all host.
pub(crate) fn split_host_port_raw(s: &str) -> (&str, Option<&str>) {
    if s.starts_with('[') {
        return match s.find(']') {
            Some(end) => {
                let (host, rest) = s.split_at(end + 1);
                match rest.strip_prefix(':') {
                    Some(port) => (host, Some(port)),
                    None if rest.is_empty() => (host, None),
                    None => (s, None),
                }
            }
            None => (s, None),
        };
    }
    match s.split_once(':') {
        Some((host, port)) if !port.contains(':') => (host, Some(port)),
        _ => (s, None),
    }
}
