//! HTTP/1.1 exchanges on pooled upstream connections, run in the request's
//! own task: the request head is written, the response head read, and the
//! body read by whoever polls it. No connection task, no channels.
//!
//! It carries the requests most traffic is, those without a body and
//! without an upgrade ([`takes`]). The others (a body that streams while
//! the response may already come, `Expect`, upgrades, HTTP/1.0) go through
//! hyper's client over the same connection (`http_pool.rs`).
//!
//! - `head.rs`: the request head written, the response head parsed, and
//!   the body's framing;
//! - `decode.rs`: the body's framing undone (length, chunked with
//!   trailers, or until close), without I/O;
//! - `body.rs`: the body, read as it is polled, giving the connection back
//!   at its end.

mod body;
mod decode;
mod head;

use std::{
    io,
    pin::Pin,
    task::{Context, Poll, Waker},
};

use bytes::BytesMut;
use hyper::{Method, Request, Response, Version, header};
use tokio::{
    io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf},
    net::TcpStream,
};
use tokio_rustls::client::TlsStream;

pub use body::{BoxError, PutBack, ResponseBody};
pub use decode::{Decoded, Decoder, ReadError};
pub use head::{Asked, Framing, HeadError, ResponseHead, parse_response};

/// How much a read asks for at least.
const READ_CHUNK: usize = 8 * 1024;
/// A kept connection's read buffer larger than this is let go while idle.
const KEEP_BUFFER: usize = 32 * 1024;

/// An upstream connection as dialled: plain, or with TLS originated.
pub enum UpstreamIo {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
}

/// A connection between exchanges, with what it read past the last one's
/// end (nothing, for one fit to keep).
pub struct Kept {
    io: UpstreamIo,
    buf: BytesMut,
}

impl Kept {
    pub fn new(io: UpstreamIo) -> Self {
        Kept { io, buf: BytesMut::new() }
    }

    /// The connection, for hyper's client; it holds no unread bytes.
    pub fn into_io(self) -> UpstreamIo {
        self.io
    }

    /// Whether the upstream has closed the idle connection, or sent on it
    /// unasked (either way it cannot carry a request): one read, polled
    /// without waiting.
    pub fn is_closed(&mut self) -> bool {
        let mut probe = [0u8; 1];
        let mut buf = ReadBuf::new(&mut probe);
        Pin::new(&mut self.io).poll_read(&mut Context::from_waker(Waker::noop()), &mut buf).is_ready()
    }

    /// Ready to be kept: a large read buffer is let go.
    fn for_keeping(mut self) -> Self {
        if self.buf.capacity() > KEEP_BUFFER {
            self.buf = BytesMut::new();
        }
        self
    }

    /// Reads what the upstream sent into the buffer; 0 at its end.
    fn poll_fill(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<usize>> {
        if self.buf.capacity() - self.buf.len() < READ_CHUNK / 2 {
            self.buf.reserve(READ_CHUNK);
        }
        let mut read = ReadBuf::uninit(self.buf.spare_capacity_mut());
        std::task::ready!(Pin::new(&mut self.io).poll_read(cx, &mut read))?;
        let n = read.filled().len();
        // SAFETY: `poll_read` initialised the first `n` bytes of the spare capacity.
        unsafe { self.buf.set_len(self.buf.len() + n) };
        Poll::Ready(Ok(n))
    }

    async fn fill(&mut self) -> io::Result<usize> {
        std::future::poll_fn(|cx| self.poll_fill(cx)).await
    }
}

/// Whether [`exchange`] carries `req`: HTTP/1.1 with no body, no upgrade,
/// no `Expect` and no CONNECT.
pub fn takes<B: hyper::body::Body>(req: &Request<B>) -> bool {
    let plain = |(name, value): (&header::HeaderName, &header::HeaderValue)| match *name {
        header::TRANSFER_ENCODING | header::UPGRADE | header::EXPECT => false,
        header::CONTENT_LENGTH => value.as_bytes() == b"0",
        _ => true,
    };
    req.version() == Version::HTTP_11 && req.method() != Method::CONNECT && req.body().is_end_stream() && req.headers().iter().all(plain)
}

/// Why an exchange failed.
#[derive(Debug)]
pub enum ExchangeError<B, R> {
    /// A kept connection the upstream had closed: the request did not
    /// reach it, or, idempotent, got nothing back, and may go on another.
    /// The pool's part comes back with it.
    Unsent(Box<(Request<B>, R)>),
    Failed(BoxError),
}

/// Sends `req` (one [`takes`] carries) on `kept` and reads the response's
/// head; `reused` says the connection carried a request before. The
/// response body reads on from the connection and hands it to `back` at
/// its end, if the response lets it carry another request.
pub async fn exchange<B, R: PutBack>(mut kept: Kept, req: Request<B>, reused: bool, back: R) -> Result<Response<ResponseBody<R>>, ExchangeError<B, R>> {
    let asked = Asked::of(&req);
    let written = {
        let mut bytes = Vec::with_capacity(256);
        head::encode_request(&req, &mut bytes);
        write_head(&mut kept.io, &bytes).await
    };
    if let Err(e) = written {
        // A request not wholly written was not taken: another connection may carry it.
        return Err(if reused { ExchangeError::Unsent(Box::new((req, back))) } else { ExchangeError::Failed(e.into()) });
    }
    let head = loop {
        let nothing_yet = kept.buf.is_empty();
        match kept.fill().await {
            Ok(n) if n > 0 => {}
            // Closed or reset as it arrived: the upstream took none of it.
            ended if reused && nothing_yet && idempotent(req.method()) => {
                tracing::debug!(error = ?ended.err(), "kept upstream connection closed under a request");
                return Err(ExchangeError::Unsent(Box::new((req, back))));
            }
            Ok(_) => return Err(ExchangeError::Failed("the upstream closed the connection before its response".into())),
            Err(e) => return Err(ExchangeError::Failed(e.into())),
        }
        match head::parse_response(&mut kept.buf, asked) {
            Ok(Some(head)) => break head,
            Ok(None) => {}
            Err(e) => return Err(ExchangeError::Failed(e.into())),
        }
    };
    let ResponseHead { status, version, headers, framing, keep_alive } = head;
    let mut resp = Response::new(ResponseBody::new(kept, framing, keep_alive, back));
    *resp.status_mut() = status;
    *resp.version_mut() = version;
    *resp.headers_mut() = headers;
    Ok(resp)
}

async fn write_head(io: &mut UpstreamIo, head: &[u8]) -> io::Result<()> {
    io.write_all(head).await?;
    io.flush().await
}

/// Methods a client may send again (RFC 9110 §9.2.2).
fn idempotent(method: &Method) -> bool {
    matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS | Method::TRACE | Method::PUT | Method::DELETE)
}

impl AsyncRead for UpstreamIo {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            UpstreamIo::Plain(s) => Pin::new(s).poll_read(cx, buf),
            UpstreamIo::Tls(s) => Pin::new(s).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for UpstreamIo {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            UpstreamIo::Plain(s) => Pin::new(s).poll_write(cx, buf),
            UpstreamIo::Tls(s) => Pin::new(s).poll_write(cx, buf),
        }
    }

    fn poll_write_vectored(self: Pin<&mut Self>, cx: &mut Context<'_>, bufs: &[io::IoSlice<'_>]) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            UpstreamIo::Plain(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            UpstreamIo::Tls(s) => Pin::new(s).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            UpstreamIo::Plain(s) => s.is_write_vectored(),
            UpstreamIo::Tls(s) => s.is_write_vectored(),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            UpstreamIo::Plain(s) => Pin::new(s).poll_flush(cx),
            UpstreamIo::Tls(s) => Pin::new(s).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            UpstreamIo::Plain(s) => Pin::new(s).poll_shutdown(cx),
            UpstreamIo::Tls(s) => Pin::new(s).poll_shutdown(cx),
        }
    }
}
