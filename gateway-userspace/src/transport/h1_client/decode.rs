//! The response body's framing undone, without I/O: [`Decoder::decode`]
//! takes what has been read so far and gives a frame, the end, or asks for
//! more. `body.rs` reads for it; the fuzz target `http1_response` feeds it
//! bytes in pieces of every size.

use bytes::{Buf, Bytes, BytesMut};
use hyper::{
    HeaderMap,
    body::{Frame, SizeHint},
    header::{HeaderName, HeaderValue},
};

use super::head::{Framing, MAX_HEADERS};

/// Longest chunk-size line, and trailer section, waited for.
const MAX_CHUNK_LINE: usize = 4096;
const MAX_TRAILERS: usize = 64 * 1024;

/// Why a response body could not be read to its end.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("the upstream closed the connection before the body's end")]
    Truncated,
    #[error("malformed chunked body")]
    Chunked,
    #[error("malformed trailers: {0}")]
    Trailers(String),
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// What [`Decoder::decode`] made of the bytes it was given.
#[derive(Debug)]
pub enum Decoded {
    Frame(Frame<Bytes>),
    /// The body has ended; what follows in the buffer is not its.
    End,
    /// More bytes are needed.
    NeedMore,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// Bytes of a length-delimited body still to come.
    Length(u64),
    /// Before a chunk-size line.
    ChunkSize,
    /// Bytes of the current chunk still to come.
    ChunkData(u64),
    /// The CRLF after a chunk's data.
    ChunkEnd,
    /// After the last chunk: trailers, or the empty line.
    Trailers,
    UntilClose,
    Done,
}

#[derive(Debug)]
pub struct Decoder {
    state: State,
}

impl Decoder {
    pub fn new(framing: Framing) -> Self {
        let state = match framing {
            Framing::Empty | Framing::Length(0) => State::Done,
            Framing::Length(n) => State::Length(n),
            Framing::Chunked => State::ChunkSize,
            Framing::UntilClose => State::UntilClose,
        };
        Decoder { state }
    }

    /// Whether the body has ended.
    pub fn is_end(&self) -> bool {
        self.state == State::Done
    }

    pub fn size_hint(&self) -> SizeHint {
        match self.state {
            State::Length(n) => SizeHint::with_exact(n),
            State::Done => SizeHint::with_exact(0),
            _ => SizeHint::default(),
        }
    }

    /// Takes the body's next frame out of `buf`; `closed` says no more bytes
    /// will come (the upstream closed the connection).
    pub fn decode(&mut self, buf: &mut BytesMut, closed: bool) -> Result<Decoded, ReadError> {
        // Short of a whole piece: wait for more, unless none can come or the
        // piece is already longer than it may be.
        let need_more = |buf: &BytesMut, limit: usize, malformed: ReadError| {
            if closed {
                Err(ReadError::Truncated)
            } else if buf.len() >= limit {
                Err(malformed)
            } else {
                Ok(Decoded::NeedMore)
            }
        };
        loop {
            match self.state {
                State::Done => return Ok(Decoded::End),
                State::Length(left) | State::ChunkData(left) => {
                    if buf.is_empty() {
                        return need_more(buf, usize::MAX, ReadError::Truncated);
                    }
                    let take = left.min(buf.len() as u64);
                    let data = buf.split_to(take as usize).freeze();
                    let left = left - take;
                    self.state = match self.state {
                        State::Length(_) if left == 0 => State::Done,
                        State::Length(_) => State::Length(left),
                        _ if left == 0 => State::ChunkEnd,
                        _ => State::ChunkData(left),
                    };
                    return Ok(Decoded::Frame(Frame::data(data)));
                }
                State::UntilClose => {
                    if !buf.is_empty() {
                        return Ok(Decoded::Frame(Frame::data(buf.split().freeze())));
                    }
                    if closed {
                        self.state = State::Done;
                        return Ok(Decoded::End);
                    }
                    return Ok(Decoded::NeedMore);
                }
                State::ChunkSize => match httparse::parse_chunk_size(buf) {
                    Ok(httparse::Status::Complete((used, size))) => {
                        buf.advance(used);
                        self.state = if size == 0 { State::Trailers } else { State::ChunkData(size) };
                    }
                    Ok(httparse::Status::Partial) => return need_more(buf, MAX_CHUNK_LINE, ReadError::Chunked),
                    Err(_) => return Err(ReadError::Chunked),
                },
                State::ChunkEnd => {
                    if buf.len() < 2 {
                        if buf.first().is_some_and(|b| *b != b'\r') {
                            return Err(ReadError::Chunked);
                        }
                        return need_more(buf, usize::MAX, ReadError::Chunked);
                    }
                    if &buf[..2] != b"\r\n" {
                        return Err(ReadError::Chunked);
                    }
                    buf.advance(2);
                    self.state = State::ChunkSize;
                }
                State::Trailers => match trailers(buf)? {
                    Some((used, trailers)) => {
                        buf.advance(used);
                        self.state = State::Done;
                        match trailers {
                            Some(trailers) => return Ok(Decoded::Frame(Frame::trailers(trailers))),
                            None => return Ok(Decoded::End),
                        }
                    }
                    None => return need_more(buf, MAX_TRAILERS, ReadError::Trailers("too long".into())),
                },
            }
        }
    }
}

/// The trailer section at the front of `buf` and its length; the map is
/// `None` when it is only the closing empty line. `None` while incomplete.
fn trailers(buf: &[u8]) -> Result<Option<(usize, Option<HeaderMap>)>, ReadError> {
    if buf.starts_with(b"\r\n") {
        return Ok(Some((2, None)));
    }
    let mut slots = [httparse::EMPTY_HEADER; MAX_HEADERS];
    match httparse::parse_headers(buf, &mut slots) {
        Ok(httparse::Status::Complete((used, headers))) => {
            let mut map = HeaderMap::with_capacity(headers.len());
            for h in headers {
                let name = HeaderName::from_bytes(h.name.as_bytes()).map_err(|e| ReadError::Trailers(e.to_string()))?;
                let value = HeaderValue::from_bytes(h.value).map_err(|e| ReadError::Trailers(e.to_string()))?;
                map.append(name, value);
            }
            Ok(Some((used, Some(map))))
        }
        Ok(httparse::Status::Partial) => Ok(None),
        Err(e) => Err(ReadError::Trailers(e.to_string())),
    }
}
