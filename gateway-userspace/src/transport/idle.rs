//! Envoy's idle timeout for downstream connections: a connection that
//! carried no bytes either way (and, for HTTP, has no request in flight) for
//! the whole period is closed. Also the HTTP/1 request-head timeout, counted
//! from a request's first byte (not from the end of the previous request,
//! so an idle keep-alive connection lives to the idle timeout). Both roles'
//! HTTP servers use them, and the gateway's TCP relay the idle timeout.
//!
//! Kept off the per-request path: the clock is read only while no request
//! is in flight (a head's first bytes, a request's end), nothing is
//! allocated per request, and the timers are looked at when they fire, not
//! at every wake-up of the connection's task.

use std::{
    future::Future,
    io,
    pin::Pin,
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering},
    },
    task::{Context, Poll},
    time::Duration,
};

use futures::task::AtomicWaker;
use tokio::{
    io::{AsyncRead, AsyncWrite, ReadBuf},
    time::Instant,
};

use crate::transport::{
    relay::{RelayStats, Resettable, relay_until},
    revoke::Revoke,
};

/// When a connection last carried bytes, how many, and its requests in flight.
pub struct Activity {
    start: Instant,
    last_ms: AtomicU64,
    in_flight: AtomicUsize,
    read: AtomicU64,
    written: AtomicU64,
    /// When the bytes of a request head not yet parsed began (`NO_HEAD`: none).
    head_since_ms: AtomicU64,
    /// The stream began with the HTTP/2 preface: no request-head timer.
    h2: AtomicBool,
}

const NO_HEAD: u64 = u64::MAX;

impl Activity {
    pub fn new() -> Arc<Activity> {
        Arc::new(Activity {
            start: Instant::now(),
            last_ms: AtomicU64::new(0),
            in_flight: AtomicUsize::new(0),
            read: AtomicU64::new(0),
            written: AtomicU64::new(0),
            head_since_ms: AtomicU64::new(NO_HEAD),
            h2: AtomicBool::new(false),
        })
    }

    fn now_ms(&self) -> u64 {
        self.start.elapsed().as_millis() as u64
    }

    fn touch(&self) {
        self.last_ms.store(self.now_ms(), Ordering::Relaxed);
    }

    /// Marks a request in flight until the guard is dropped; its head is
    /// complete.
    pub fn busy(self: &Arc<Self>) -> Busy {
        self.head_since_ms.store(NO_HEAD, Ordering::Relaxed);
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        Busy(self.clone())
    }

    /// Resolves once the connection has been idle for `timeout`; never when
    /// `timeout` is zero (disabled).
    pub async fn idle_for(&self, timeout: Duration) {
        if timeout.is_zero() {
            return std::future::pending().await;
        }
        let limit = timeout.as_millis() as u64;
        loop {
            let quiet = self.now_ms().saturating_sub(self.last_ms.load(Ordering::Relaxed));
            if quiet >= limit && self.in_flight.load(Ordering::Relaxed) == 0 {
                return;
            }
            // A busy connection is looked at again a whole period later.
            let wait = if quiet >= limit { limit } else { limit - quiet };
            tokio::time::sleep(Duration::from_millis(wait.max(1))).await;
        }
    }

    /// Resolves once a request head has been arriving for `timeout` without
    /// being complete; never on HTTP/2 or when `timeout` is zero.
    pub async fn head_overdue(&self, timeout: Duration) {
        if timeout.is_zero() {
            return std::future::pending().await;
        }
        let limit = timeout.as_millis() as u64;
        loop {
            if self.h2.load(Ordering::Relaxed) {
                return std::future::pending().await;
            }
            let since = self.head_since_ms.load(Ordering::Relaxed);
            let waited = if since == NO_HEAD { 0 } else { self.now_ms().saturating_sub(since) };
            if since != NO_HEAD && waited >= limit {
                return;
            }
            tokio::time::sleep(Duration::from_millis((limit - waited).max(1))).await;
        }
    }

    /// Notes bytes read: the preface of HTTP/2, or the start of a request
    /// head. With a request in flight the connection is not idle anyway,
    /// and its end counts as activity: no clock read.
    pub fn on_read(&self, bytes: &[u8]) {
        if self.read.fetch_add(bytes.len() as u64, Ordering::Relaxed) == 0 && bytes.starts_with(b"PRI ") {
            self.h2.store(true, Ordering::Relaxed);
        }
        if self.in_flight.load(Ordering::Relaxed) == 0 {
            let now = self.now_ms();
            if self.head_since_ms.load(Ordering::Relaxed) == NO_HEAD {
                self.head_since_ms.store(now, Ordering::Relaxed);
            }
            self.last_ms.store(now, Ordering::Relaxed);
        }
    }

    fn on_write(&self, n: usize) {
        self.written.fetch_add(n as u64, Ordering::Relaxed);
        if self.in_flight.load(Ordering::Relaxed) == 0 {
            self.touch();
        }
    }

    /// Bytes read from and written to the tracked stream.
    pub fn bytes(&self) -> (u64, u64) {
        (self.read.load(Ordering::Relaxed), self.written.load(Ordering::Relaxed))
    }
}

/// A request in flight; the connection is not idle while one lives.
pub struct Busy(Arc<Activity>);

impl Busy {
    /// Keeps the request in flight until `resp`'s body has been sent (or
    /// dropped). Taken inside the service's own future, so that no layer
    /// around it moves the request's (large) future once more.
    pub fn until_sent<B>(self, resp: hyper::Response<B>) -> hyper::Response<BusyBody<B>> {
        resp.map(|inner| BusyBody { inner, busy: Some(self) })
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        self.0.touch();
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

/// A stream whose reads and writes count as activity.
pub struct Tracked<S> {
    inner: S,
    activity: Arc<Activity>,
}

impl<S> Tracked<S> {
    pub fn new(inner: S, activity: Arc<Activity>) -> Self {
        Tracked { inner, activity }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Tracked<S> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        if buf.filled().len() > before {
            self.activity.on_read(&buf.filled()[before..]);
        }
        polled
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Tracked<S> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write(cx, buf);
        if let Poll::Ready(Ok(n)) = &polled
            && *n > 0
        {
            self.activity.on_write(*n);
        }
        polled
    }

    /// Passed through, so that hyper writes head and body with one
    /// `writev` instead of copying the body behind the head.
    fn poll_write_vectored(mut self: Pin<&mut Self>, cx: &mut Context<'_>, bufs: &[io::IoSlice<'_>]) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        if let Poll::Ready(Ok(n)) = &polled
            && *n > 0
        {
            self.activity.on_write(*n);
        }
        polled
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

impl<S: Resettable> Resettable for Tracked<S> {
    fn reset(&self) {
        self.inner.reset();
    }
}

/// A response body that holds its request in flight until it ends or is
/// dropped.
pub struct BusyBody<B> {
    inner: B,
    busy: Option<Busy>,
}

impl<B: hyper::body::Body + Unpin> hyper::body::Body for BusyBody<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<hyper::body::Frame<B::Data>, B::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        if let Poll::Ready(None) = polled {
            self.busy = None;
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        self.inner.size_hint()
    }
}

/// Runs `conn` (a served HTTP connection) until it ends. Once `activity`
/// has been idle for `timeout`, asks it to shut down gracefully (HTTP/1
/// closes at once when no request is in flight, HTTP/2 sends GOAWAY); once
/// a request head has taken longer than `head_timeout`, drops it (`None`).
pub fn close_when_idle<F: Future, G: FnOnce(Pin<&mut F>) + Unpin>(
    conn: F,
    activity: &Arc<Activity>,
    timeout: Duration,
    head_timeout: Duration,
    shutdown: G,
) -> CloseWhenIdle<F, G> {
    let activity = activity.clone();
    let watch = Box::pin(async move {
        tokio::select! {
            () = activity.idle_for(timeout) => Ending::Idle,
            () = activity.head_overdue(head_timeout) => Ending::HeadOverdue,
        }
    });
    // Rung at first, so that the watch's timers are set on the first poll.
    let alarm = Arc::new(Alarm { rang: AtomicBool::new(true), task: AtomicWaker::new() });
    let alarm_waker = std::task::Waker::from(alarm.clone());
    CloseWhenIdle { conn: Box::pin(conn), watch: Some(watch), alarm, alarm_waker, shutdown: Some(shutdown) }
}

enum Ending {
    Idle,
    HeadOverdue,
}

/// The waker the watch's timers are given: it notes that they fired and
/// wakes the connection's task, which then looks at the watch. Any other
/// wake-up (bytes, a response) polls the connection alone.
struct Alarm {
    rang: AtomicBool,
    task: AtomicWaker,
}

impl std::task::Wake for Alarm {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.rang.store(true, Ordering::Release);
        self.task.wake();
    }
}

/// See [`close_when_idle`]. A plain future rather than an `async fn`: the
/// compiler then proves `Send` for the concrete connection only.
pub struct CloseWhenIdle<F, G> {
    conn: Pin<Box<F>>,
    watch: Option<Pin<Box<dyn Future<Output = Ending> + Send>>>,
    alarm: Arc<Alarm>,
    alarm_waker: std::task::Waker,
    shutdown: Option<G>,
}

impl<F: Future, G: FnOnce(Pin<&mut F>) + Unpin> Future for CloseWhenIdle<F, G> {
    type Output = Option<F::Output>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = &mut *self;
        if let Poll::Ready(out) = this.conn.as_mut().poll(cx) {
            return Poll::Ready(Some(out));
        }
        this.alarm.task.register(cx.waker());
        if !this.alarm.rang.swap(false, Ordering::AcqRel) {
            return Poll::Pending;
        }
        if let Some(watch) = this.watch.as_mut()
            && let Poll::Ready(ending) = watch.as_mut().poll(&mut Context::from_waker(&this.alarm_waker))
        {
            this.watch = None;
            match ending {
                Ending::HeadOverdue => {
                    tracing::debug!("request head not complete in time; closing");
                    return Poll::Ready(None);
                }
                Ending::Idle => {
                    if let Some(shutdown) = this.shutdown.take() {
                        shutdown(this.conn.as_mut());
                    }
                    return this.conn.as_mut().poll(cx).map(Some);
                }
            }
        }
        Poll::Pending
    }
}

/// Relays `client` and `upstream` until both are done, or until neither
/// side sent a byte for `timeout`; then both are closed. The flag says
/// whether the idle timeout ended it. `revoke` ends it as the relay does.
pub async fn relay_until_idle<C: Resettable, U: Resettable>(client: C, upstream: &mut U, timeout: Duration, revoke: &mut Revoke) -> (RelayStats, bool) {
    let activity = Activity::new();
    let mut client = Tracked::new(client, activity.clone());
    tokio::select! {
        stats = relay_until(&mut client, upstream, revoke) => (stats, false),
        () = activity.idle_for(timeout) => {
            let (up, down) = activity.bytes();
            (RelayStats { client_to_upstream: up, upstream_to_client: down, ..Default::default() }, true)
        }
    }
}
