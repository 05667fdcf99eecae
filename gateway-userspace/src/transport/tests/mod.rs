//! Unit tests of the I/O toolkit, one file per source file. The relays run
//! between loopback TCP pairs (the relays reset sockets, and splice needs
//! real ones): no root, no kernel program. The sockmap relay needs both and
//! is tested through the binary in `tests/tests/`.
//!
//! The scenarios below are what every relay promises (ARCHITECTURE.md, "The
//! relay of a decided stream"); `relay.rs`, `relay_auto.rs` and `splice.rs`
//! run them on their relay. Each is bounded by [`LIMIT`], so a relay that
//! hangs fails the test instead of blocking the run; nothing is timed.

/// The scenarios below, one test each, run on the relay that `$start` (an
/// expression giving a future of [`Relayed`]) starts.
macro_rules! keeps_every_relays_promises {
    ($start:expr) => {
        #[tokio::test]
        async fn bytes_cross_both_ways_in_order_and_are_counted() {
            super::bounded(async { super::bytes_cross_both_ways($start.await).await }).await;
        }

        #[tokio::test]
        async fn a_half_close_is_carried_over_and_the_other_direction_keeps_flowing() {
            super::bounded(async { super::half_close_keeps_the_other_direction($start.await).await }).await;
        }

        #[tokio::test]
        async fn a_reset_from_upstream_resets_the_client() {
            super::bounded(async {
                let super::Relayed { client, upstream, stats } = $start.await;
                super::reset_carries_over(stats, upstream, client).await;
            })
            .await;
        }

        #[tokio::test]
        async fn a_reset_from_the_client_resets_upstream() {
            super::bounded(async {
                let super::Relayed { client, upstream, stats } = $start.await;
                super::reset_carries_over(stats, client, upstream).await;
            })
            .await;
        }
    };
}

mod addrs;
mod h1_client;
mod http_pool;
mod idle;
mod low_water;
mod pools;
mod relay;
mod relay_auto;
mod relay_mode;
mod rewind;
mod splice;

use std::{future::Future, io::ErrorKind, time::Duration};

use tokio::{
    io::{AsyncRead, AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream},
    task::JoinHandle,
};

use crate::transport::relay::RelayStats;

/// Far longer than any scenario takes, even on a loaded machine.
const LIMIT: Duration = Duration::from_secs(60);

/// A relay running between two loopback connections: the test holds the
/// far ends, as the pod's application and the upstream server would.
pub(super) struct Relayed {
    pub client: TcpStream,
    pub upstream: TcpStream,
    pub stats: JoinHandle<RelayStats>,
}

/// Starts `run` on the proxy's ends of two fresh loopback connections.
/// `run` owns those ends and drops them when the relay returns.
pub(super) async fn relayed<F, Fut>(run: F) -> Relayed
where
    F: FnOnce(TcpStream, TcpStream) -> Fut,
    Fut: Future<Output = RelayStats> + Send + 'static,
{
    let (client, proxy_client) = tcp_pair().await;
    let (proxy_upstream, upstream) = tcp_pair().await;
    let stats = tokio::spawn(run(proxy_client, proxy_upstream));
    Relayed { client, upstream, stats }
}

/// Both ends of one loopback connection: (connecting side, accepted side).
async fn tcp_pair() -> (TcpStream, TcpStream) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind a loopback listener");
    let addr = listener.local_addr().expect("listener address");
    let (connected, accepted) = tokio::join!(TcpStream::connect(addr), listener.accept());
    (connected.expect("connect over loopback"), accepted.expect("accept over loopback").0)
}

/// Runs one scenario, failing it if it has not finished within [`LIMIT`].
pub(super) async fn bounded(scenario: impl Future<Output = ()>) {
    tokio::time::timeout(LIMIT, scenario)
        .await
        .expect("the relay neither finished nor failed within the limit");
}

/// `len` bytes whose order matters: a reordered or dropped chunk shows.
fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len).map(|i| (i % 251) as u8 ^ seed).collect()
}

async fn read_all(from: impl AsyncRead + Unpin) -> Vec<u8> {
    let mut from = from;
    let mut got = Vec::new();
    from.read_to_end(&mut got).await.expect("read until the end of stream");
    got
}

/// Sizes above every buffer and pipe of the relays, sent both ways at once,
/// each side closing when done: everything arrives in order and is counted,
/// and the relay ends cleanly.
pub(super) async fn bytes_cross_both_ways(relay: Relayed) {
    let Relayed { client, upstream, stats } = relay;
    let (request, response) = (pattern(3 << 20, 0x5a), pattern(700_000, 0xa5));
    let (client_read, mut client_write) = client.into_split();
    let (upstream_read, mut upstream_write) = upstream.into_split();
    let client_sends = async {
        client_write.write_all(&request).await.expect("client writes");
        client_write.shutdown().await.expect("client half-closes");
    };
    let upstream_sends = async {
        upstream_write.write_all(&response).await.expect("upstream writes");
        upstream_write.shutdown().await.expect("upstream half-closes");
    };
    let (at_upstream, at_client, (), ()) =
        tokio::join!(read_all(upstream_read), read_all(client_read), client_sends, upstream_sends);
    let (sent_up, sent_down) = (request.len(), response.len());
    assert!(at_upstream == request, "upstream got {} bytes, not the {sent_up} the client sent, in order", at_upstream.len());
    assert!(at_client == response, "client got {} bytes, not the {sent_down} upstream sent, in order", at_client.len());
    let stats = stats.await.expect("relay task");
    let expected = RelayStats {
        client_to_upstream: request.len() as u64,
        upstream_to_client: response.len() as u64,
        reset: false,
        revoked: None,
    };
    assert_eq!(stats, expected);
}

/// The client sends a request and half-closes: upstream reads it to the end
/// of stream, and only then answers, over the direction still open.
pub(super) async fn half_close_keeps_the_other_direction(relay: Relayed) {
    let Relayed { mut client, mut upstream, stats } = relay;
    client.write_all(b"request").await.expect("client writes");
    client.shutdown().await.expect("client half-closes");
    assert_eq!(read_all(&mut upstream).await, b"request", "upstream sees the request, then the end of stream");
    assert!(!stats.is_finished(), "the relay must keep the upstream-to-client direction open");
    for chunk in [&b"after "[..], b"the ", b"half-close"] {
        upstream.write_all(chunk).await.expect("upstream answers after the client's half-close");
    }
    upstream.shutdown().await.expect("upstream closes");
    assert_eq!(read_all(&mut client).await, b"after the half-close");
    let stats = stats.await.expect("relay task");
    let expected = RelayStats { client_to_upstream: 7, upstream_to_client: 20, reset: false, revoked: None };
    assert_eq!(stats, expected);
}

/// `from` sends `ping`; `to` reads it and answers `pong`, which `from` reads.
pub(super) async fn round_trip(from: &mut TcpStream, to: &mut TcpStream, ping: &[u8], pong: &[u8], what: &str) {
    from.write_all(ping).await.expect("the ping is written");
    let mut got_ping = vec![0u8; ping.len()];
    to.read_exact(&mut got_ping).await.expect("the ping crosses");
    to.write_all(pong).await.expect("the pong is written");
    let mut got_pong = vec![0u8; pong.len()];
    from.read_exact(&mut got_pong).await.expect("the pong crosses");
    assert_eq!((got_ping.as_slice(), got_pong.as_slice()), (ping, pong), "{what}");
}

/// After an exchange, `resetting` (one far end) is closed with a reset: the
/// relay resets its other side, so `other` reads a reset and not a clean
/// end of stream, and the stats count the exchange and say reset.
pub(super) async fn reset_carries_over(stats: JoinHandle<RelayStats>, resetting: TcpStream, mut other: TcpStream) {
    let mut resetting = resetting;
    round_trip(&mut other, &mut resetting, b"ping", b"pong", "before the reset").await;

    resetting.set_zero_linger().expect("SO_LINGER 0");
    drop(resetting);
    let after = other.read(&mut [0u8; 16]).await;
    assert!(
        matches!(&after, Err(e) if e.kind() == ErrorKind::ConnectionReset),
        "the other side must be reset, not closed cleanly: {after:?}"
    );
    let stats = stats.await.expect("relay task");
    let expected = RelayStats { client_to_upstream: 4, upstream_to_client: 4, reset: true, revoked: None };
    assert_eq!(stats, expected);
}
