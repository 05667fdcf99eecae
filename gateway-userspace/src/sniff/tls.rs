//! TLS ClientHello: server name (SNI) and ALPN protocols.
//!
//! The ClientHello may be fragmented over several handshake records (RFC 8446
//! §5.1) and those over several TCP segments; the message is reassembled from
//! the records' payloads and parsed only once it is complete.

use super::{MAX_SNIFF_BYTES, Reader, Step, Stop};

/// TLS record content type `handshake`.
pub(crate) const HANDSHAKE_RECORD: u8 = 0x16;
const RECORD_HEADER_LEN: usize = 5;
/// Largest TLSPlaintext fragment (RFC 8446 §5.1).
const MAX_RECORD_LEN: usize = 1 << 14;
const HANDSHAKE_HEADER_LEN: usize = 4;
const CLIENT_HELLO: u8 = 1;
/// Largest ClientHello body accepted; with record headers it fits in
/// [`MAX_SNIFF_BYTES`].
pub(crate) const MAX_CLIENT_HELLO_LEN: usize = MAX_SNIFF_BYTES - 1024;
const EXT_SERVER_NAME: u16 = 0;
const EXT_ALPN: u16 = 16;
const NAME_TYPE_HOST_NAME: u8 = 0;
/// Longest DNS name in text form (RFC 1035: 255 octets on the wire).
const MAX_DNS_NAME_LEN: usize = 253;

const TRUNCATED: Stop = Stop::Malformed("tls: client hello field overruns its container");

/// What a ClientHello says about where the client is going.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClientHelloInfo {
    /// `host_name` from the server_name extension, lowercased, without a
    /// trailing dot; `None` if the client sent none.
    pub sni: Option<String>,
    /// Protocols offered in the ALPN extension, in the client's order.
    pub alpn: Vec<String>,
    /// `legacy_version` of the ClientHello (0x0303 for TLS 1.2 and 1.3).
    pub legacy_version: u16,
}

/// Reassemble and parse a ClientHello; `buf[0]` is [`HANDSHAKE_RECORD`].
pub(crate) fn sniff(buf: &[u8]) -> Step<ClientHelloInfo> {
    let mut message: Vec<u8> = Vec::new();
    let mut pos = 0;
    loop {
        let first = pos == 0;
        let header = buf.get(pos..).unwrap_or_default();
        check_record_header(header, first)?;
        let (Some(&hi), Some(&lo)) = (header.get(3), header.get(4)) else {
            return Err(Stop::NeedMore);
        };
        let len = usize::from(u16::from_be_bytes([hi, lo]));
        if len == 0 {
            return Err(Stop::Malformed("tls: empty handshake record"));
        }
        if len > MAX_RECORD_LEN {
            return Err(Stop::Malformed("tls: record longer than 2^14 bytes"));
        }
        let start = pos + RECORD_HEADER_LEN;
        let end = start + len;
        let available = buf.get(start..end.min(buf.len())).unwrap_or_default();
        message.extend_from_slice(available);
        let wanted = check_handshake_header(&message)?;
        if let Some(total) = wanted {
            if message.len() > total {
                return Err(Stop::Malformed("tls: data after client hello"));
            }
            if message.len() == total && available.len() == len {
                let body = message.get(HANDSHAKE_HEADER_LEN..).unwrap_or_default();
                return parse_client_hello(body);
            }
        }
        if available.len() < len {
            return Err(Stop::NeedMore);
        }
        pos = end;
    }
}

/// Validate as much of a record header as has arrived.
fn check_record_header(header: &[u8], first: bool) -> Step<()> {
    if let Some(&content_type) = header.first()
        && content_type != HANDSHAKE_RECORD
    {
        return Err(Stop::Malformed(
            "tls: non-handshake record inside client hello",
        ));
    }
    if let Some(&major) = header.get(1)
        && major != 0x03
    {
        // A first byte of 0x16 alone does not make a TLS connection.
        return Err(if first {
            Stop::Opaque
        } else {
            Stop::Malformed("tls: bad record version")
        });
    }
    Ok(())
}

/// Check the handshake header once four bytes are in; returns the total
/// message length (header included) when known.
fn check_handshake_header(message: &[u8]) -> Step<Option<usize>> {
    if let Some(&msg_type) = message.first()
        && msg_type != CLIENT_HELLO
    {
        return Err(Stop::Malformed(
            "tls: first handshake message is not a client hello",
        ));
    }
    let mut r = Reader::new(message);
    let (Some(_), Some(len)) = (r.u8(), r.u24()) else {
        return Ok(None);
    };
    if len > MAX_CLIENT_HELLO_LEN {
        return Err(Stop::Malformed("tls: client hello too large"));
    }
    if len < 2 + 32 + 1 + 2 + 2 + 1 {
        return Err(Stop::Malformed("tls: client hello too short"));
    }
    Ok(Some(HANDSHAKE_HEADER_LEN + len))
}

/// Parse a complete ClientHello body (RFC 8446 §4.1.2).
fn parse_client_hello(body: &[u8]) -> Step<ClientHelloInfo> {
    let mut r = Reader::new(body);
    let legacy_version = r.u16().ok_or(TRUNCATED)?;
    if legacy_version >> 8 != 0x03 {
        return Err(Stop::Malformed("tls: bad client hello version"));
    }
    r.take(32).ok_or(TRUNCATED)?;
    let session_id = r.vec8().ok_or(TRUNCATED)?;
    if session_id.len() > 32 {
        return Err(Stop::Malformed("tls: session id longer than 32 bytes"));
    }
    let suites = r.vec16().ok_or(TRUNCATED)?;
    if suites.is_empty() || !suites.len().is_multiple_of(2) {
        return Err(Stop::Malformed("tls: bad cipher suite list"));
    }
    let compression = r.vec8().ok_or(TRUNCATED)?;
    if compression.is_empty() {
        return Err(Stop::Malformed("tls: empty compression method list"));
    }
    let mut info = ClientHelloInfo {
        legacy_version,
        ..ClientHelloInfo::default()
    };
    if r.is_empty() {
        return Ok(info);
    }
    let extensions = r.vec16().ok_or(TRUNCATED)?;
    if !r.is_empty() {
        return Err(Stop::Malformed("tls: trailing bytes after extensions"));
    }
    let mut seen: Vec<u16> = Vec::new();
    let mut r = Reader::new(extensions);
    while !r.is_empty() {
        let ext_type = r.u16().ok_or(TRUNCATED)?;
        let data = r.vec16().ok_or(TRUNCATED)?;
        seen.push(ext_type);
        match ext_type {
            EXT_SERVER_NAME => info.sni = parse_server_name(data)?,
            EXT_ALPN => info.alpn = parse_alpn(data)?,
            _ => {}
        }
    }
    seen.sort_unstable();
    if seen.windows(2).any(|w| w.first() == w.get(1)) {
        return Err(Stop::Malformed("tls: duplicate extension"));
    }
    Ok(info)
}

/// server_name extension (RFC 6066 §3).
fn parse_server_name(data: &[u8]) -> Step<Option<String>> {
    let mut outer = Reader::new(data);
    let list = outer.vec16().ok_or(TRUNCATED)?;
    if !outer.is_empty() {
        return Err(Stop::Malformed("tls: trailing bytes in server_name"));
    }
    if list.is_empty() {
        return Err(Stop::Malformed("tls: empty server_name list"));
    }
    let mut r = Reader::new(list);
    let mut host = None;
    while !r.is_empty() {
        let name_type = r.u8().ok_or(TRUNCATED)?;
        let name = r.vec16().ok_or(TRUNCATED)?;
        if name_type != NAME_TYPE_HOST_NAME {
            continue;
        }
        if host.is_some() {
            return Err(Stop::Malformed("tls: more than one host_name"));
        }
        host = Some(dns_name(name).map_err(Stop::Malformed)?);
    }
    Ok(host)
}

/// Validate an SNI host_name and return it lowercased without trailing dot.
pub(crate) fn dns_name(raw: &[u8]) -> Result<String, &'static str> {
    let name = raw.strip_suffix(b".").unwrap_or(raw);
    if name.is_empty() {
        return Err("tls: sni is empty");
    }
    if name.len() > MAX_DNS_NAME_LEN {
        return Err("tls: sni longer than a dns name");
    }
    let mut last_label_numeric = false;
    for label in name.split(|&b| b == b'.') {
        if label.is_empty() || label.len() > 63 {
            return Err("tls: sni has an empty or overlong label");
        }
        if !label
            .iter()
            .all(|&b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Err("tls: sni has a character not allowed in a dns name");
        }
        if label.starts_with(b"-") || label.ends_with(b"-") {
            return Err("tls: sni label starts or ends with a hyphen");
        }
        last_label_numeric = label.iter().all(u8::is_ascii_digit);
    }
    if last_label_numeric {
        return Err("tls: sni is an ip address");
    }
    let lower = name.to_ascii_lowercase();
    String::from_utf8(lower).map_err(|_| "tls: sni is not ascii")
}

/// application_layer_protocol_negotiation extension (RFC 7301 §3.1).
fn parse_alpn(data: &[u8]) -> Step<Vec<String>> {
    let mut outer = Reader::new(data);
    let list = outer.vec16().ok_or(TRUNCATED)?;
    if !outer.is_empty() || list.is_empty() {
        return Err(Stop::Malformed("tls: bad alpn extension"));
    }
    let mut r = Reader::new(list);
    let mut protocols = Vec::new();
    while !r.is_empty() {
        let name = r.vec8().ok_or(TRUNCATED)?;
        if name.is_empty() {
            return Err(Stop::Malformed("tls: empty alpn protocol name"));
        }
        let name = std::str::from_utf8(name)
            .map_err(|_| Stop::Malformed("tls: alpn protocol name is not utf-8"))?;
        protocols.push(name.to_owned());
    }
    Ok(protocols)
}
