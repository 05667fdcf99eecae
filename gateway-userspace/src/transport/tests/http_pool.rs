//! The upstream pool against a loopback HTTP/1.1 server that counts the
//! connections it accepts: a connection is reused once its response body
//! has been read, never while it may still be carrying one, and a kept
//! connection the server has closed costs a new connection, not the
//! request.

use std::{
    net::SocketAddr,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use http_body_util::{BodyExt, Empty};
use hyper::{Request, body::Bytes};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream},
};

use super::bounded;
use crate::{
    policy::Target,
    transport::{
        dial::{Dialer, NoResolver},
        http_pool::{Body, Grant, Reuse, Upstream, UpstreamPool},
    },
};

/// A server answering every request on a connection with `body`; when
/// `close_after_one`, it closes each connection after its first answer
/// (without saying so, as an upstream's idle timeout does).
pub(super) async fn server(body: &'static str, close_after_one: bool) -> (SocketAddr, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("address");
    let accepted = Arc::new(AtomicUsize::new(0));
    let count = accepted.clone();
    tokio::spawn(async move {
        loop {
            let (stream, _) = listener.accept().await.expect("accept");
            count.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(answer(stream, body, close_after_one));
        }
    });
    (addr, accepted)
}

async fn answer(mut stream: TcpStream, body: &'static str, close_after_one: bool) {
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        while let Some(end) = seen.windows(4).position(|w| w == b"\r\n\r\n") {
            seen.drain(..end + 4);
            let head = format!("HTTP/1.1 200 OK\r\ncontent-length: {}\r\n\r\n{body}", body.len());
            if stream.write_all(head.as_bytes()).await.is_err() || close_after_one {
                return;
            }
        }
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => seen.extend_from_slice(&buf[..n]),
        }
    }
}

fn get() -> Request<Body> {
    Request::get("/").header("host", "upstream.test").body(Empty::<Bytes>::new().map_err(|never| match never {}).boxed()).expect("request")
}

/// Let go under generation 0, and still allowed by every configuration after it.
fn grant() -> Grant {
    Grant { generation: 0, stands: Arc::new(|_, _| true) }
}

/// Sends one request through `pool` and returns the response body, read
/// to its end unless `read` is false (then dropped unread).
async fn exchange(pool: &Arc<UpstreamPool>, to: SocketAddr, read: bool) -> Option<Bytes> {
    exchange_under(pool, to, read, grant()).await
}

/// [`exchange`], the request let go by `grant`.
pub(super) async fn exchange_under(pool: &Arc<UpstreamPool>, to: SocketAddr, read: bool, grant: Grant) -> Option<Bytes> {
    let rotate = AtomicUsize::new(0);
    let dialer = Dialer { mark: 0, timeout: Duration::from_secs(5), resolver: &NoResolver, rotate: &rotate };
    let upstream = Upstream::Target(Target::Original(to));
    let (resp, _) = pool.send(dialer, &upstream, None, Reuse::default(), get(), grant).await.expect("the upstream answers");
    assert_eq!(resp.status(), 200);
    match read {
        true => Some(resp.into_body().collect().await.expect("the body arrives").to_bytes()),
        false => None,
    }
}

/// Three requests one after another through one pool, each body read and
/// checked; the connections the server accepted for them.
async fn three_requests(body: &'static str, close_after_one: bool) -> usize {
    let (addr, accepted) = server(body, close_after_one).await;
    let pool = Arc::new(UpstreamPool::default());
    for _ in 0..3 {
        assert_eq!(exchange(&pool, addr, true).await.as_deref(), Some(body.as_bytes()));
    }
    accepted.load(Ordering::SeqCst)
}

#[tokio::test]
async fn a_connection_whose_body_was_read_is_reused() {
    bounded(async {
        assert_eq!(three_requests("hello", false).await, 1, "three requests, one after another, share one connection");
    })
    .await;
}

#[tokio::test]
async fn a_body_dropped_unread_gives_up_its_connection() {
    bounded(async {
        let (addr, accepted) = server("a body nobody reads", false).await;
        let pool = Arc::new(UpstreamPool::default());
        exchange(&pool, addr, false).await;
        assert_eq!(exchange(&pool, addr, true).await.as_deref(), Some(&b"a body nobody reads"[..]));
        assert_eq!(accepted.load(Ordering::SeqCst), 2, "a connection with an unread body is not reused");
    })
    .await;
}

#[tokio::test]
async fn a_kept_connection_the_upstream_closed_costs_a_connection_not_the_request() {
    bounded(async {
        assert_eq!(three_requests("once", true).await, 3, "each request needs a new connection, and each gets its answer");
    })
    .await;
}

/// A request with a body goes through hyper's client on the kept
/// connection the bodiless ones used, and the one after it takes that
/// connection back from hyper's client: one connection for all three.
#[tokio::test]
async fn a_request_with_a_body_shares_the_kept_connection() {
    bounded(async {
        let (addr, accepted) = server("answered", false).await;
        let pool = Arc::new(UpstreamPool::default());
        assert_eq!(exchange(&pool, addr, true).await.as_deref(), Some(&b"answered"[..]));
        let rotate = AtomicUsize::new(0);
        let dialer = Dialer { mark: 0, timeout: Duration::from_secs(5), resolver: &NoResolver, rotate: &rotate };
        let post = Request::post("/").header("host", "upstream.test").body(http_body_util::Full::new(Bytes::from_static(b"payload")).map_err(|never| match never {}).boxed()).expect("request");
        let upstream = Upstream::Target(Target::Original(addr));
        let (resp, _) = pool.send(dialer, &upstream, None, Reuse::default(), post, grant()).await.expect("the upstream answers the POST");
        assert_eq!(resp.into_body().collect().await.expect("the body arrives").to_bytes(), "answered");
        assert_eq!(exchange(&pool, addr, true).await.as_deref(), Some(&b"answered"[..]));
        assert_eq!(accepted.load(Ordering::SeqCst), 1, "one connection carried the three");
    })
    .await;
}
