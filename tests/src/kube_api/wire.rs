//! HTTP/1.1 as kube-rs (hyper) speaks it to the API server: requests with a `Content-Length` or
//! chunked body on a keep-alive connection; answers with a length, or chunked for a watch.

use std::io::{self, BufRead, Read, Write};

/// Limits that keep a malformed or hostile request from exhausting the test process.
const MAX_HEAD: usize = 64 * 1024;
const MAX_BODY: usize = 16 * 1024 * 1024;

/// One parsed request.
#[derive(Debug)]
pub struct Request {
    pub method: String,
    /// The percent-decoded path, without the query.
    pub path: String,
    /// The raw query string.
    pub query: String,
    /// Decoded query parameters, in order.
    pub params: Vec<(String, String)>,
    headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

/// Why a request could not be read: the peer left, or sent something that is not HTTP/1.1.
#[derive(Debug)]
pub enum ReadError {
    Closed,
    /// The connection failed (or was shut down by `stop`).
    Io,
    Malformed(String),
}

impl Request {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// A boolean query parameter: `true` or `1`.
    pub fn flag(&self, name: &str) -> bool {
        matches!(self.param(name), Some("true" | "1"))
    }

    /// Does the client want the connection closed after this answer?
    pub fn wants_close(&self) -> bool {
        self.header("connection")
            .is_some_and(|v| v.eq_ignore_ascii_case("close"))
    }
}

/// Reads the next request; `Closed` when the peer closed between requests.
pub fn read_request(r: &mut impl BufRead) -> Result<Request, ReadError> {
    let mut head_len = 0;
    let request_line = loop {
        let line = read_line(r, &mut head_len)?;
        if !line.is_empty() {
            break line; // RFC 9112 lets a server skip empty lines before the request line
        }
    };
    let mut parts = request_line.split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(ReadError::Malformed(format!(
            "bad request line {request_line:?}"
        )));
    };
    if version != "HTTP/1.1" && version != "HTTP/1.0" {
        return Err(ReadError::Malformed(format!(
            "unsupported protocol {version:?}"
        )));
    }
    let mut headers = Vec::new();
    loop {
        let line = read_line(r, &mut head_len)?;
        if line.is_empty() {
            break;
        }
        let Some((name, value)) = line.split_once(':') else {
            return Err(ReadError::Malformed(format!("bad header line {line:?}")));
        };
        headers.push((name.trim().to_string(), value.trim().to_string()));
    }
    let (raw_path, query) = target.split_once('?').unwrap_or((target, ""));
    let mut request = Request {
        method: method.to_string(),
        path: percent_decode(raw_path, false)
            .ok_or_else(|| ReadError::Malformed(format!("bad path {raw_path:?}")))?,
        query: query.to_string(),
        params: parse_query(query)
            .ok_or_else(|| ReadError::Malformed(format!("bad query {query:?}")))?,
        headers,
        body: Vec::new(),
    };
    request.body = read_body(r, &request)?;
    Ok(request)
}

fn read_line(r: &mut impl BufRead, head_len: &mut usize) -> Result<String, ReadError> {
    let mut line = Vec::new();
    let n = (&mut *r)
        .take((MAX_HEAD - *head_len) as u64 + 1)
        .read_until(b'\n', &mut line)
        .map_err(|_| ReadError::Io)?;
    if n == 0 {
        return Err(if *head_len == 0 {
            ReadError::Closed
        } else {
            ReadError::Malformed("truncated head".into())
        });
    }
    *head_len += n;
    if *head_len > MAX_HEAD || line.last() != Some(&b'\n') {
        return Err(ReadError::Malformed(
            "request head too long or truncated".into(),
        ));
    }
    line.pop();
    if line.last() == Some(&b'\r') {
        line.pop();
    }
    String::from_utf8(line).map_err(|_| ReadError::Malformed("head is not UTF-8".into()))
}

fn read_body(r: &mut impl BufRead, request: &Request) -> Result<Vec<u8>, ReadError> {
    if request
        .header("transfer-encoding")
        .is_some_and(|v| v.eq_ignore_ascii_case("chunked"))
    {
        return read_chunked(r);
    }
    let Some(length) = request.header("content-length") else {
        return Ok(Vec::new());
    };
    let length: usize = length
        .parse()
        .map_err(|_| ReadError::Malformed(format!("bad content-length {length:?}")))?;
    if length > MAX_BODY {
        return Err(ReadError::Malformed(format!(
            "body of {length} bytes is too large"
        )));
    }
    let mut body = vec![0; length];
    r.read_exact(&mut body).map_err(|_| ReadError::Io)?;
    Ok(body)
}

fn read_chunked(r: &mut impl BufRead) -> Result<Vec<u8>, ReadError> {
    let mut body = Vec::new();
    let mut head_len = 0;
    loop {
        let size_line = read_line(r, &mut head_len)?;
        let size_text = size_line.split(';').next().unwrap_or("").trim();
        let size = usize::from_str_radix(size_text, 16)
            .map_err(|_| ReadError::Malformed(format!("bad chunk size {size_line:?}")))?;
        if size == 0 {
            while !read_line(r, &mut head_len)?.is_empty() {} // trailers
            return Ok(body);
        }
        if body.len() + size > MAX_BODY {
            return Err(ReadError::Malformed("chunked body too large".into()));
        }
        let start = body.len();
        body.resize(start + size, 0);
        r.read_exact(&mut body[start..])
            .map_err(|_| ReadError::Io)?;
        if !read_line(r, &mut head_len)?.is_empty() {
            return Err(ReadError::Malformed("chunk not followed by CRLF".into()));
        }
    }
}

/// Decodes `application/x-www-form-urlencoded` pairs.
pub fn parse_query(query: &str) -> Option<Vec<(String, String)>> {
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            Some((percent_decode(k, true)?, percent_decode(v, true)?))
        })
        .collect()
}

fn percent_decode(text: &str, plus_is_space: bool) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let hex = text.get(i + 1..i + 3)?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 3;
            }
            b'+' if plus_is_space => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok()
}

fn reason_phrase(status: u16) -> &'static str {
    match status {
        200 => "OK",
        201 => "Created",
        400 => "Bad Request",
        401 => "Unauthorized",
        404 => "Not Found",
        405 => "Method Not Allowed",
        406 => "Not Acceptable",
        409 => "Conflict",
        410 => "Gone",
        415 => "Unsupported Media Type",
        422 => "Unprocessable Entity",
        500 => "Internal Server Error",
        504 => "Gateway Timeout",
        _ => "Status",
    }
}

/// Writes a whole answer with a `Content-Length`.
pub fn write_response(
    w: &mut impl Write,
    status: u16,
    content_type: &str,
    body: &[u8],
    close: bool,
) -> io::Result<()> {
    let connection = if close { "close" } else { "keep-alive" };
    write!(
        w,
        "HTTP/1.1 {status} {}\r\nContent-Type: {content_type}\r\nCache-Control: no-cache, private\r\nContent-Length: {}\r\nConnection: {connection}\r\n\r\n",
        reason_phrase(status),
        body.len()
    )?;
    w.write_all(body)?;
    w.flush()
}

/// A chunked answer, one chunk per [`Chunked::send`], as a watch streams its events.
pub struct Chunked<'a, W: Write> {
    w: &'a mut W,
}

impl<'a, W: Write> Chunked<'a, W> {
    pub fn start(w: &'a mut W, content_type: &str) -> io::Result<Chunked<'a, W>> {
        write!(
            w,
            "HTTP/1.1 200 OK\r\nContent-Type: {content_type}\r\nCache-Control: no-cache, private\r\nTransfer-Encoding: chunked\r\n\r\n"
        )?;
        w.flush()?;
        Ok(Chunked { w })
    }

    pub fn send(&mut self, data: &[u8]) -> io::Result<()> {
        write!(self.w, "{:x}\r\n", data.len())?;
        self.w.write_all(data)?;
        self.w.write_all(b"\r\n")?;
        self.w.flush()
    }

    /// The terminating chunk: the answer ends and the connection may carry another request.
    pub fn finish(self) -> io::Result<()> {
        self.w.write_all(b"0\r\n\r\n")?;
        self.w.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(raw: &str) -> Result<Request, ReadError> {
        read_request(&mut io::BufReader::new(raw.as_bytes()))
    }

    #[test]
    fn reads_requests_with_query_and_bodies() {
        let r = parse("GET /api/v1/pods?watch=true&fieldSelector=spec.nodeName%3Dn1&labelSelector=a+in+(b) HTTP/1.1\r\nHost: x\r\nAccept: application/json\r\n\r\n").unwrap();
        assert_eq!(
            (r.method.as_str(), r.path.as_str()),
            ("GET", "/api/v1/pods")
        );
        assert!(r.flag("watch"));
        assert_eq!(r.param("fieldSelector"), Some("spec.nodeName=n1"));
        assert_eq!(r.param("labelSelector"), Some("a in (b)"));
        assert_eq!(r.header("accept"), Some("application/json"));
        let r = parse("POST /x HTTP/1.1\r\nContent-Length: 2\r\n\r\n{}").unwrap();
        assert_eq!(r.body, b"{}");
        let r = parse("PATCH /x HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{\"\r\n1\r\n}\r\n0\r\n\r\n").unwrap();
        assert_eq!(r.body, b"{\"}");
    }

    #[test]
    fn refuses_malformed_requests() {
        assert!(matches!(parse(""), Err(ReadError::Closed)));
        for raw in [
            "GARBAGE\r\n\r\n",
            "GET /x HTTP/2\r\n\r\n",
            "GET /x HTTP/1.1\r\nno colon\r\n\r\n",
            "GET /%zz HTTP/1.1\r\n\r\n",
            "POST /x HTTP/1.1\r\nContent-Length: 99999999999\r\n\r\n",
            "GET /x HTTP/1.1\r\nHost: x",
        ] {
            assert!(
                matches!(parse(raw), Err(ReadError::Malformed(_))),
                "{raw:?} should be malformed"
            );
        }
    }

    #[test]
    fn writes_chunks() {
        let mut out = Vec::new();
        let mut c = Chunked::start(&mut out, "application/json").unwrap();
        c.send(b"{}\n").unwrap();
        c.finish().unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(
            text.starts_with("HTTP/1.1 200 OK\r\n")
                && text.ends_with("\r\n\r\n3\r\n{}\n\r\n0\r\n\r\n"),
            "{text}"
        );
    }
}
