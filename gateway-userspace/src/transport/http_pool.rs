//! Connections to upstreams, kept and reused. An HTTP/1.1 connection
//! carries one request at a time and returns to the pool once its response
//! has been read; an HTTP/2 connection (gRPC) carries many at once.
//!
//! An HTTP/1.1 request without a body is exchanged by `h1_client/` in the
//! request's own task; others go through hyper's client.
//!
//! Each kept connection holds the [`Grant`] of the request that last used
//! it. On a reload, [`UpstreamPool::revoke`] closes those the new
//! configuration no longer allows to their destination; a connection busy
//! with a request then is checked when it comes back.

use std::{
    collections::HashMap,
    net::SocketAddr,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use futures::{FutureExt, future::Either};
use http_body_util::{BodyExt, Full, combinators::BoxBody};
use hyper::{Request, Response, StatusCode, body::Bytes, client::conn::http1, client::conn::http2};
use hyper_util::rt::{TokioExecutor, TokioIo};

use super::{
    addrs::UpstreamAddr,
    dial::Dialer,
    h1_client::{self, ExchangeError, Kept, ReadError, UpstreamIo},
};
use crate::{policy::Target, reload::ActiveConfig};

pub type Body = BoxBody<Bytes, BodyError>;

/// Why a body being carried failed.
#[derive(Debug, thiserror::Error)]
pub enum BodyError {
    #[error(transparent)]
    Hyper(#[from] hyper::Error),
    #[error(transparent)]
    Upstream(#[from] ReadError),
}

/// A body hyper read, as a [`Body`].
pub fn incoming(body: hyper::body::Incoming) -> Body {
    body.map_err(BodyError::Hyper).boxed()
}

/// TLS to originate on a connection: the client config and the server name
/// to present (what `proxy/origination.rs` builds from a DestinationRule).
pub type Origination = (Arc<rustls::ClientConfig>, String);

/// Header carrying the reason on a denied HTTP request.
pub const DENIED_HEADER: &str = "x-gateway-denied";

/// Where pooled connections go: a policy target (any of its addresses), or
/// one endpoint a load balancer chose.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Upstream {
    Target(Target),
    Endpoint(SocketAddr),
}

/// How long and how often a connection is reused (DestinationRule
/// `connectionPool.http`: `idleTimeout`, `maxRequestsPerConnection`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Reuse {
    pub max_requests: Option<u32>,
    pub idle_timeout: Duration,
}

impl Default for Reuse {
    /// Envoy's defaults: unlimited requests, one hour idle.
    fn default() -> Self {
        Reuse { max_requests: None, idle_timeout: Duration::from_secs(3600) }
    }
}

/// Whether a configuration still lets a request reach an address.
pub type Stands = dyn Fn(&ActiveConfig, SocketAddr) -> bool + Send + Sync;

/// What let a request use an upstream connection: the generation it was
/// decided under, and whether a newer configuration still lets it reach
/// the connection's address.
#[derive(Clone)]
pub struct Grant {
    pub generation: u64,
    pub stands: Arc<Stands>,
}

impl Grant {
    fn stands(&self, config: &ActiveConfig, addr: UpstreamAddr) -> bool {
        config.generation == self.generation || (self.stands)(config, addr.0)
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct Key {
    upstream: Upstream,
    /// The TLS server name, when TLS is originated.
    tls_name: Option<String>,
    h2: bool,
}

struct Idle {
    expires: Instant,
    conn: H1Conn,
    addr: UpstreamAddr,
    requests: u32,
    grant: Grant,
}

struct Shared {
    sender: http2::SendRequest<Body>,
    addr: UpstreamAddr,
    requests: u32,
    grant: Grant,
}

/// Keys come from the configuration or a decided destination; a fast hash
/// is enough (the pool is looked up twice per request).
type Map<V> = HashMap<Key, V, foldhash::fast::RandomState>;

#[derive(Default)]
pub struct UpstreamPool {
    idle: Mutex<Map<Vec<Idle>>>,
    h2: Mutex<Map<Shared>>,
    reaping: AtomicBool,
    /// The newest configuration [`UpstreamPool::revoke`] was given.
    latest: Mutex<Option<Arc<ActiveConfig>>>,
}

/// A connection checked out for one request.
pub struct Conn {
    pool: Arc<UpstreamPool>,
    key: Key,
    /// For a new connection should this one turn out closed.
    tls: Option<Origination>,
    reuse: Reuse,
    sender: Sender,
    addr: UpstreamAddr,
    /// Requests it carried before this one.
    requests: u32,
    /// This request's.
    grant: Grant,
}

enum Sender {
    H1(H1Conn),
    H2(http2::SendRequest<Body>),
}

/// An HTTP/1.1 connection: as dialled, for `h1_client`'s exchanges, or
/// handed to hyper's client by a request that needed it.
enum H1Conn {
    Direct(Kept),
    Hyper(http1::SendRequest<Body>),
}

impl H1Conn {
    fn is_closed(&mut self) -> bool {
        match self {
            H1Conn::Direct(kept) => kept.is_closed(),
            H1Conn::Hyper(sender) => sender.is_closed(),
        }
    }
}

impl UpstreamPool {
    /// Sends `req` to `upstream` over a kept connection, or a new one.
    pub async fn send(
        self: &Arc<Self>,
        dialer: Dialer<'_>,
        upstream: &Upstream,
        tls: Option<Origination>,
        reuse: Reuse,
        req: Request<Body>,
        grant: Grant,
    ) -> Result<(Response<Body>, UpstreamAddr), StatusCode> {
        let h2 = req.version() == hyper::Version::HTTP_2;
        // `connection` inline: a kept connection is found without awaiting,
        // so this future holds no dialling state beside the exchange.
        let conn = match self.kept(upstream, &tls, reuse, h2, &grant) {
            Some(conn) => conn,
            None => Box::pin(self.open(&dialer, upstream, tls, reuse, h2, grant)).await?,
        };
        conn.send(&dialer, req).await
    }

    /// A kept connection to `upstream`, or a new one.
    pub async fn connection(
        self: &Arc<Self>,
        dialer: &Dialer<'_>,
        upstream: &Upstream,
        tls: Option<Origination>,
        reuse: Reuse,
        h2: bool,
        grant: Grant,
    ) -> Result<Conn, StatusCode> {
        match self.kept(upstream, &tls, reuse, h2, &grant) {
            Some(conn) => Ok(conn),
            // Boxed: dialling and the TLS handshake are a large future, and
            // most requests find a kept connection.
            None => Box::pin(self.open(dialer, upstream, tls, reuse, h2, grant)).await,
        }
    }

    /// Closes the kept connections `config` no longer allows to their
    /// destination (dropping a sender closes its connection; an HTTP/2 one
    /// once its streams in flight are done).
    pub fn revoke(&self, config: Arc<ActiveConfig>) {
        let mut closed = 0;
        self.idle.lock().expect("pool lock").retain(|_, list| {
            let before = list.len();
            list.retain(|i| i.grant.stands(&config, i.addr));
            closed += before - list.len();
            !list.is_empty()
        });
        self.h2.lock().expect("pool lock").retain(|_, s| {
            let stands = s.grant.stands(&config, s.addr);
            closed += usize::from(!stands);
            stands
        });
        if closed > 0 {
            tracing::info!(generation = config.generation, closed, "closed pooled upstream connections the configuration no longer allows");
        }
        *self.latest.lock().expect("pool lock") = Some(config);
    }

    /// Whether a connection coming back under `grant` is still allowed.
    fn still_allowed(&self, grant: &Grant, addr: UpstreamAddr) -> bool {
        let latest = self.latest.lock().expect("pool lock").clone();
        latest.is_none_or(|config| config.generation <= grant.generation || grant.stands(&config, addr))
    }

    fn kept(self: &Arc<Self>, upstream: &Upstream, tls: &Option<Origination>, reuse: Reuse, h2: bool, grant: &Grant) -> Option<Conn> {
        let key = Key { upstream: upstream.clone(), tls_name: tls.as_ref().map(|(_, n)| n.clone()), h2 };
        let conn = |key, sender, addr, requests| Conn {
            pool: self.clone(),
            key,
            tls: tls.clone(),
            reuse,
            sender,
            addr,
            requests,
            grant: grant.clone(),
        };
        if key.h2 {
            let mut shared = self.h2.lock().expect("pool lock");
            let s = shared.get_mut(&key).filter(|s| !s.sender.is_closed())?;
            s.requests += 1;
            s.grant = grant.clone();
            let (sender, addr, requests) = (Sender::H2(s.sender.clone()), s.addr, s.requests - 1);
            if reuse.max_requests.is_some_and(|m| s.requests >= m) {
                shared.remove(&key);
            }
            return Some(conn(key, sender, addr, requests));
        }
        loop {
            // Taken out first: whether it is closed is a read, not done under the lock.
            let mut i = self.idle.lock().expect("pool lock").get_mut(&key)?.pop()?;
            if i.expires > Instant::now() && !i.conn.is_closed() {
                return Some(conn(key, Sender::H1(i.conn), i.addr, i.requests));
            }
        }
    }

    async fn open(
        self: &Arc<Self>,
        dialer: &Dialer<'_>,
        upstream: &Upstream,
        tls: Option<Origination>,
        reuse: Reuse,
        h2: bool,
        grant: Grant,
    ) -> Result<Conn, StatusCode> {
        let (stream, addr) = match upstream {
            Upstream::Target(t) => dialer.connect(t).await,
            Upstream::Endpoint(a) => dialer.connect_first(&[*a]).await,
        }
        .map_err(|e| {
            tracing::debug!(?upstream, error = %e, "upstream connect failed");
            StatusCode::SERVICE_UNAVAILABLE
        })?;
        let key = Key { upstream: upstream.clone(), tls_name: tls.as_ref().map(|(_, n)| n.clone()), h2 };
        let sender = match tls.clone() {
            None if h2 => handshake_h2(stream).await?,
            None => Sender::H1(H1Conn::Direct(Kept::new(UpstreamIo::Plain(stream)))),
            Some((config, name)) => {
                // HTTP/2 over TLS is agreed by ALPN.
                let config = if h2 {
                    let mut c = (*config).clone();
                    c.alpn_protocols = vec![b"h2".to_vec()];
                    Arc::new(c)
                } else {
                    config
                };
                let tls_stream = tokio::time::timeout(dialer.timeout, crate::tls::originate(stream, &name, config))
                    .await
                    .map_err(|_| StatusCode::SERVICE_UNAVAILABLE)?
                    .map_err(|e| {
                        tracing::warn!(?upstream, server_name = %name, error = %e, "TLS origination failed");
                        StatusCode::SERVICE_UNAVAILABLE
                    })?;
                if h2 && tls_stream.get_ref().1.alpn_protocol() != Some(b"h2") {
                    tracing::warn!(?upstream, "the upstream did not agree to HTTP/2");
                    return Err(StatusCode::BAD_GATEWAY);
                }
                if h2 {
                    handshake_h2(tls_stream).await?
                } else {
                    Sender::H1(H1Conn::Direct(Kept::new(UpstreamIo::Tls(Box::new(tls_stream)))))
                }
            }
        };
        if let Sender::H2(s) = &sender {
            let shared = Shared { sender: s.clone(), addr, requests: 1, grant: grant.clone() };
            self.h2.lock().expect("pool lock").insert(key.clone(), shared);
        }
        Ok(Conn { pool: self.clone(), key, tls, reuse, sender, addr, requests: 0, grant })
    }

    /// Keeps an HTTP/1.1 connection whose response has been read, until its
    /// idle timeout, if the configuration still allows it.
    fn put_back(self: &Arc<Self>, key: Key, conn: H1Conn, addr: UpstreamAddr, requests: u32, reuse: Reuse, grant: Grant) {
        if !self.still_allowed(&grant, addr) {
            return; // dropping it closes the connection
        }
        let expires = Instant::now() + reuse.idle_timeout;
        self.idle.lock().expect("pool lock").entry(key).or_default().push(Idle { expires, conn, addr, requests, grant });
        if !self.reaping.swap(true, Ordering::AcqRel) {
            tokio::spawn(reap(Arc::downgrade(self)));
        }
    }
}

/// Closes idle connections past their timeout or closed by the upstream,
/// once a second, while any are kept.
async fn reap(pool: std::sync::Weak<UpstreamPool>) {
    loop {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let Some(pool) = pool.upgrade() else { return };
        let now = Instant::now();
        let mut idle = pool.idle.lock().expect("pool lock");
        // Dropping a connection closes it.
        idle.retain(|_, list| {
            list.retain_mut(|i| i.expires > now && !i.conn.is_closed());
            !list.is_empty()
        });
        if idle.is_empty() {
            pool.reaping.store(false, Ordering::Release);
            return;
        }
    }
}

async fn handshake_h2<S>(stream: S) -> Result<Sender, StatusCode>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (sender, conn) = http2::handshake(TokioExecutor::new(), TokioIo::new(stream)).await.map_err(|_| StatusCode::BAD_GATEWAY)?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    Ok(Sender::H2(sender))
}

/// hyper's HTTP/1.1 client on a connection, driven by a task of its own.
async fn handshake_h1(io: UpstreamIo) -> Result<http1::SendRequest<Body>, StatusCode> {
    let (sender, conn) = http1::handshake(TokioIo::new(io)).await.map_err(|_| StatusCode::BAD_GATEWAY)?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    Ok(sender)
}

/// What an HTTP/1.1 connection needs to go back to its pool.
struct PutBack {
    pool: Arc<UpstreamPool>,
    key: Key,
    addr: UpstreamAddr,
    requests: u32,
    reuse: Reuse,
    grant: Grant,
}

impl PutBack {
    fn put_back_conn(self, conn: H1Conn) {
        let PutBack { pool, key, addr, requests, reuse, grant } = self;
        pool.put_back(key, conn, addr, requests, reuse, grant);
    }
}

impl h1_client::PutBack for PutBack {
    /// Unless it carried its last request.
    fn put_back(self, kept: Kept) {
        if self.reuse.max_requests.is_none_or(|m| self.requests < m) {
            self.put_back_conn(H1Conn::Direct(kept));
        }
    }
}

/// A response body that returns its connection to the pool when it ends,
/// in the task that reads it (no task of its own per request). Dropped
/// before its end, it drops the connection, whose state is then unknown.
struct ReturningBody {
    body: hyper::body::Incoming,
    back: Option<(PutBack, http1::SendRequest<Body>)>,
}

impl ReturningBody {
    fn put_back(&mut self) {
        if let Some((back, sender)) = self.back.take() {
            back.put_back_conn(H1Conn::Hyper(sender));
        }
    }
}

impl hyper::body::Body for ReturningBody {
    type Data = Bytes;
    type Error = BodyError;

    fn poll_frame(mut self: std::pin::Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> std::task::Poll<Option<Result<hyper::body::Frame<Bytes>, BodyError>>> {
        let polled = std::pin::Pin::new(&mut self.body).poll_frame(cx);
        if let std::task::Poll::Ready(None) = polled {
            self.put_back();
        }
        polled.map(|f| f.map(|f| f.map_err(BodyError::Hyper)))
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        self.body.size_hint()
    }
}

impl Drop for ReturningBody {
    /// A body known to be empty may be dropped unread.
    fn drop(&mut self) {
        if hyper::body::Body::is_end_stream(&self.body) {
            self.put_back();
        }
    }
}

/// Why a send failed.
enum Failure {
    /// The request was not sent and may go on another connection.
    Unsent(Box<Unsent>),
    Failed(StatusCode),
}

/// A request a closed kept connection did not send, and what opening
/// another connection for it takes: that connection's own parts, handed
/// back rather than copied for every request in case it is needed.
struct Unsent {
    req: Request<Body>,
    pool: Arc<UpstreamPool>,
    key: Key,
    tls: Option<Origination>,
    reuse: Reuse,
    grant: Grant,
}

impl Conn {
    pub fn addr(&self) -> UpstreamAddr {
        self.addr
    }

    /// Sends `req`. A kept connection the upstream had just closed (the
    /// request not written, or, idempotent, not answered at all) gives it
    /// to a new one, once. A connect failure is 503, as Envoy answers it; a
    /// failed exchange 502. (Chained, like [`Conn::send_once`], rather than
    /// an `async fn` holding its arguments.)
    pub fn send<'a>(self, dialer: &'a Dialer<'_>, req: Request<Body>) -> impl Future<Output = Result<(Response<Body>, UpstreamAddr), StatusCode>> + Send + 'a {
        self.send_once(req).then(move |sent| match sent {
            Ok(answer) => Either::Left(std::future::ready(Ok(answer))),
            Err(Failure::Failed(status)) => Either::Left(std::future::ready(Err(status))),
            // Boxed: the rare path's state is not carried in every request's future.
            Err(Failure::Unsent(unsent)) => Either::Right(Box::pin(Self::resend(dialer, *unsent))),
        })
    }

    /// The request a closed kept connection did not send, on a new connection.
    async fn resend(dialer: &Dialer<'_>, unsent: Unsent) -> Result<(Response<Body>, UpstreamAddr), StatusCode> {
        let Unsent { req, pool, key, tls, reuse, grant } = unsent;
        match pool.open(dialer, &key.upstream, tls, reuse, key.h2, grant).await?.send_once(req).await {
            Ok(answer) => Ok(answer),
            Err(Failure::Failed(status)) => Err(status),
            Err(Failure::Unsent(_)) => Err(StatusCode::BAD_GATEWAY),
        }
    }

    /// Sends `req`; an HTTP/1.1 connection goes back to the pool once the
    /// response has been read, unless it carried its last request. Not an
    /// `async fn`: the future is the direct exchange's, mapped, or hyper's,
    /// boxed, with no state of this function's own beside it.
    fn send_once(self, req: Request<Body>) -> impl Future<Output = Result<(Response<Body>, UpstreamAddr), Failure>> + Send {
        let Conn { pool, key, tls, reuse, sender, addr, requests, grant } = self;
        let kept = match sender {
            Sender::H1(H1Conn::Direct(kept)) if h1_client::takes(&req) => kept,
            // Boxed: hyper's futures are large, and most requests go the direct way.
            sender => return Either::Right(Box::pin(Conn { pool, key, tls, reuse, sender, addr, requests, grant }.send_by_hyper(req))),
        };
        let back = PutBack { pool, key, addr, requests: requests + 1, reuse, grant };
        Either::Left(h1_client::exchange(kept, req, requests > 0, back).map(move |exchanged| match exchanged {
            Ok(resp) => Ok((resp.map(|b| b.map_err(BodyError::Upstream).boxed()), addr)),
            Err(ExchangeError::Unsent(unsent)) => {
                let (req, PutBack { pool, key, reuse, grant, .. }) = *unsent;
                Err(Failure::Unsent(Box::new(Unsent { req, pool, key, tls, reuse, grant })))
            }
            Err(ExchangeError::Failed(e)) => {
                tracing::debug!(error = %e, "upstream request failed");
                Err(Failure::Failed(StatusCode::BAD_GATEWAY))
            }
        }))
    }

    /// [`Conn::send_once`] through hyper's client: HTTP/2, or an HTTP/1.1
    /// request `h1_client` does not carry.
    async fn send_by_hyper(self, req: Request<Body>) -> Result<(Response<Body>, UpstreamAddr), Failure> {
        let Conn { pool, key, tls, reuse, sender, addr, requests, grant } = self;
        let failed = |e: hyper::Error| {
            tracing::debug!(error = %e, "upstream request failed");
            Failure::Failed(StatusCode::BAD_GATEWAY)
        };
        let resp = match sender {
            Sender::H1(conn) => {
                let mut s = match conn {
                    H1Conn::Hyper(s) => s,
                    H1Conn::Direct(kept) => handshake_h1(kept.into_io()).await.map_err(Failure::Failed)?,
                };
                // A kept connection is ready once it has finished the response
                // before; one the upstream closed meanwhile never is.
                if requests > 0 && s.ready().await.is_err() {
                    return Err(Failure::Unsent(Box::new(Unsent { req, pool, key, tls, reuse, grant })));
                }
                let resp = match s.try_send_request(req).await {
                    Ok(resp) => resp,
                    Err(mut e) if requests > 0 && e.error().is_canceled() => match e.take_message() {
                        Some(req) => return Err(Failure::Unsent(Box::new(Unsent { req, pool, key, tls, reuse, grant }))),
                        None => return Err(failed(e.into_error())),
                    },
                    Err(e) => return Err(failed(e.into_error())),
                };
                let carried = requests + 1;
                if reuse.max_requests.is_none_or(|m| carried < m) {
                    let back = PutBack { pool, key, addr, requests: carried, reuse, grant };
                    return Ok((resp.map(|body| ReturningBody { body, back: Some((back, s)) }.boxed()), addr));
                }
                resp
            }
            Sender::H2(mut s) => {
                s.ready().await.map_err(failed)?;
                s.send_request(req).await.map_err(failed)?
            }
        };
        Ok((resp.map(incoming), addr))
    }
}

/// A plain-text response; `denied` adds the reason header of a denial.
pub fn text(status: StatusCode, body: String, denied: Option<&str>) -> Response<Body> {
    let mut b = Response::builder().status(status).header("content-type", "text/plain; charset=utf-8");
    if let Some(reason) = denied {
        b = b.header(DENIED_HEADER, reason);
    }
    b.body(Full::new(Bytes::from(body)).map_err(|never| match never {}).boxed())
        .expect("static response parts are valid")
}
