//! The response body, read from the connection by whoever polls it, in
//! the request's own task, and decoded by `decode.rs`. At its end the
//! connection goes back to its pool ([`PutBack`]); dropped before its end,
//! or after an error, it closes the connection, whose state is then
//! unknown.

use std::{
    pin::Pin,
    task::{Context, Poll, ready},
};

use bytes::Bytes;
use hyper::body::{Frame, SizeHint};

use super::{
    Kept,
    decode::{Decoded, Decoder, ReadError},
    head::Framing,
};

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Where a connection goes once its response has been read.
pub trait PutBack: Send + Sync + Unpin + 'static {
    fn put_back(self, kept: Kept);
}

pub struct ResponseBody<R: PutBack> {
    /// `None` once the body has ended or failed.
    kept: Option<Kept>,
    decoder: Decoder,
    keep_alive: bool,
    back: Option<R>,
}

impl<R: PutBack> ResponseBody<R> {
    /// The body after `kept`'s response head; an empty one returns the
    /// connection at once.
    pub fn new(kept: Kept, framing: Framing, keep_alive: bool, back: R) -> Self {
        let mut body = ResponseBody { kept: Some(kept), decoder: Decoder::new(framing), keep_alive, back: Some(back) };
        if body.decoder.is_end() {
            body.finish();
        }
        body
    }

    /// The body has ended: the connection goes back if it may carry
    /// another request and nothing unasked follows the response.
    fn finish(&mut self) {
        if let Some(kept) = self.kept.take()
            && self.keep_alive
            && kept.buf.is_empty()
            && let Some(back) = self.back.take()
        {
            back.put_back(kept.for_keeping());
        }
    }

    fn poll_next(&mut self, cx: &mut Context<'_>) -> Poll<Result<Option<Frame<Bytes>>, ReadError>> {
        let mut closed = false;
        loop {
            let Some(kept) = self.kept.as_mut() else { return Poll::Ready(Ok(None)) };
            match self.decoder.decode(&mut kept.buf, closed)? {
                Decoded::Frame(frame) => {
                    // The last data may be the end: the connection goes back now, as
                    // hyper need not poll a body again once it says it has ended.
                    if self.decoder.is_end() {
                        self.finish();
                    }
                    return Poll::Ready(Ok(Some(frame)));
                }
                Decoded::End => {
                    if closed {
                        self.kept = None;
                    }
                    self.finish();
                    return Poll::Ready(Ok(None));
                }
                Decoded::NeedMore => closed = ready!(kept.poll_fill(cx))? == 0,
            }
        }
    }
}

impl<R: PutBack> hyper::body::Body for ResponseBody<R> {
    type Data = Bytes;
    type Error = ReadError;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, ReadError>>> {
        let this = self.get_mut();
        match this.poll_next(cx) {
            Poll::Ready(Ok(frame)) => Poll::Ready(frame.map(Ok)),
            Poll::Ready(Err(e)) => {
                this.kept = None;
                Poll::Ready(Some(Err(e)))
            }
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.decoder.is_end()
    }

    fn size_hint(&self) -> SizeHint {
        self.decoder.size_hint()
    }
}
