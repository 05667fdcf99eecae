//! The response body, read from the connection by whoever polls it, in
//! the request's own task. At its end the connection goes back to its
//! pool ([`PutBack`]); dropped before its end, or after an error, it
//! closes the connection, whose state is then unknown.

use std::{
    io,
    pin::Pin,
    task::{Context, Poll, ready},
};

use bytes::{Buf, Bytes};
use hyper::{
    HeaderMap,
    body::{Frame, SizeHint},
    header::{HeaderName, HeaderValue},
};

use super::{
    Kept,
    head::{Framing, MAX_HEADERS},
};

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Longest chunk-size line or trailer section waited for.
const MAX_CHUNK_LINE: usize = 4096;
const MAX_TRAILERS: usize = 64 * 1024;

/// Where a connection goes once its response has been read.
pub trait PutBack: Send + Sync + Unpin + 'static {
    fn put_back(self, kept: Kept);
}

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
    Io(#[from] io::Error),
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

pub struct ResponseBody<R: PutBack> {
    /// `None` once the body has ended or failed.
    kept: Option<Kept>,
    state: State,
    keep_alive: bool,
    back: Option<R>,
}

impl<R: PutBack> ResponseBody<R> {
    /// The body after `kept`'s response head; an empty one returns the
    /// connection at once.
    pub fn new(kept: Kept, framing: Framing, keep_alive: bool, back: R) -> Self {
        let state = match framing {
            Framing::Empty => State::Done,
            Framing::Length(n) => State::Length(n),
            Framing::Chunked => State::ChunkSize,
            Framing::UntilClose => State::UntilClose,
        };
        let mut body = ResponseBody { kept: Some(kept), state, keep_alive, back: Some(back) };
        if state == State::Done {
            body.finish();
        }
        body
    }

    /// The body has ended: the connection goes back if it may carry
    /// another request and nothing unasked follows the response.
    fn finish(&mut self) {
        self.state = State::Done;
        if let Some(kept) = self.kept.take()
            && self.keep_alive
            && kept.buf.is_empty()
            && let Some(back) = self.back.take()
        {
            back.put_back(kept.for_keeping());
        }
    }

    fn fail(&mut self, e: ReadError) -> Poll<Option<Result<Frame<Bytes>, ReadError>>> {
        self.kept = None;
        self.state = State::Done;
        Poll::Ready(Some(Err(e)))
    }

    fn poll_next(&mut self, cx: &mut Context<'_>) -> Poll<Result<Option<Frame<Bytes>>, ReadError>> {
        loop {
            let Some(kept) = self.kept.as_mut() else { return Poll::Ready(Ok(None)) };
            match self.state {
                State::Done => {
                    self.finish();
                    return Poll::Ready(Ok(None));
                }
                State::Length(left) | State::ChunkData(left) => {
                    if kept.buf.is_empty() && ready!(kept.poll_fill(cx))? == 0 {
                        return Poll::Ready(Err(ReadError::Truncated));
                    }
                    let take = left.min(kept.buf.len() as u64);
                    let data = kept.buf.split_to(take as usize).freeze();
                    let left = left - take;
                    match self.state {
                        State::Length(_) if left == 0 => self.finish(),
                        State::Length(_) => self.state = State::Length(left),
                        _ if left == 0 => self.state = State::ChunkEnd,
                        _ => self.state = State::ChunkData(left),
                    }
                    return Poll::Ready(Ok(Some(Frame::data(data))));
                }
                State::UntilClose => {
                    if kept.buf.is_empty() && ready!(kept.poll_fill(cx))? == 0 {
                        self.kept = None; // the connection ended with the body
                        self.state = State::Done;
                        return Poll::Ready(Ok(None));
                    }
                    return Poll::Ready(Ok(Some(Frame::data(kept.buf.split().freeze()))));
                }
                State::ChunkSize => match httparse::parse_chunk_size(&kept.buf) {
                    Ok(httparse::Status::Complete((used, size))) => {
                        kept.buf.advance(used);
                        self.state = if size == 0 { State::Trailers } else { State::ChunkData(size) };
                    }
                    Ok(httparse::Status::Partial) if kept.buf.len() < MAX_CHUNK_LINE => {
                        if ready!(kept.poll_fill(cx))? == 0 {
                            return Poll::Ready(Err(ReadError::Truncated));
                        }
                    }
                    _ => return Poll::Ready(Err(ReadError::Chunked)),
                },
                State::ChunkEnd => {
                    if kept.buf.len() < 2 {
                        if ready!(kept.poll_fill(cx))? == 0 {
                            return Poll::Ready(Err(ReadError::Truncated));
                        }
                        continue;
                    }
                    if &kept.buf[..2] != b"\r\n" {
                        return Poll::Ready(Err(ReadError::Chunked));
                    }
                    kept.buf.advance(2);
                    self.state = State::ChunkSize;
                }
                State::Trailers => match trailers(&kept.buf)? {
                    Some((used, trailers)) => {
                        kept.buf.advance(used);
                        self.finish();
                        if let Some(trailers) = trailers {
                            return Poll::Ready(Ok(Some(Frame::trailers(trailers))));
                        }
                        return Poll::Ready(Ok(None));
                    }
                    None if kept.buf.len() < MAX_TRAILERS => {
                        if ready!(kept.poll_fill(cx))? == 0 {
                            return Poll::Ready(Err(ReadError::Truncated));
                        }
                    }
                    None => return Poll::Ready(Err(ReadError::Trailers("too long".into()))),
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

impl<R: PutBack> hyper::body::Body for ResponseBody<R> {
    type Data = Bytes;
    type Error = ReadError;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, ReadError>>> {
        let this = self.get_mut();
        match this.poll_next(cx) {
            Poll::Ready(Ok(frame)) => Poll::Ready(frame.map(Ok)),
            Poll::Ready(Err(e)) => this.fail(e),
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.state == State::Done
    }

    fn size_hint(&self) -> SizeHint {
        match self.state {
            State::Length(n) => SizeHint::with_exact(n),
            State::Done => SizeHint::with_exact(0),
            _ => SizeHint::default(),
        }
    }
}
