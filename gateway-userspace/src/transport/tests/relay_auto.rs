//! `--relay auto` without the kernel relay (no maps here: a stream that is
//! not bulk is copied on): the promises every relay keeps, from the first
//! watch on. Moving a stream to the kernel relay needs root and the kernel
//! programs: `tests/tests/relay_modes.rs`.

use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};

use super::{Relayed, bounded, pattern, relayed, round_trip};
use crate::transport::{
    relay_auto::{WATCH, relay},
    revoke::Revoke,
};

async fn auto() -> Relayed {
    relayed(|client, upstream| async move { relay(None, &client, &upstream, &mut Revoke::never()).await.0 }).await
}

keeps_every_relays_promises!(auto());

/// Three rounds of a 4-byte ping and a 5-byte pong, each followed by a pause
/// of two watches.
async fn ping_pong_across_watches(client: &mut TcpStream, upstream: &mut TcpStream) {
    for round in 0..3 {
        round_trip(client, upstream, b"ping", b"pong!", &format!("round {round}")).await;
        tokio::time::sleep(WATCH * 2).await;
    }
}

/// A stream quiet for a whole watch is copied on, as there is no kernel
/// relay to take it: what comes after the pause crosses both ways, in order,
/// and is counted with what came before.
#[tokio::test]
async fn a_quiet_stream_is_copied_on_without_the_kernel_relay() {
    bounded(async {
        let Relayed { mut client, mut upstream, stats } = auto().await;
        ping_pong_across_watches(&mut client, &mut upstream).await;
        drop((client, upstream));
        let stats = stats.await.expect("relay task");
        assert_eq!((stats.client_to_upstream, stats.upstream_to_client, stats.reset), (12, 15, false));
    })
    .await;
}

/// A stream that moves bulk for five watches' time (so the window after the
/// bulk reads with a low-water mark) and then turns to small messages: the
/// last bulk bytes and every message after them cross in order, none is
/// held behind a mark, and all are counted.
#[tokio::test]
async fn a_bulk_stream_that_turns_to_small_messages_holds_nothing_back() {
    bounded(async {
        let Relayed { mut client, mut upstream, stats } = auto().await;
        const CHUNK: usize = 64 * 1024;
        let (total_tx, mut total_rx) = tokio::sync::oneshot::channel::<usize>();
        // Upstream checks every byte as it comes, until the client's total.
        let reader = tokio::spawn(async move {
            let mut buf = vec![0u8; 256 * 1024];
            let (mut got, mut total) = (0usize, None);
            while total != Some(got) {
                tokio::select! {
                    n = upstream.read(&mut buf) => {
                        let n = n.expect("upstream reads");
                        assert!(n > 0, "the stream ended after {got} bytes");
                        for (i, b) in buf[..n].iter().enumerate() {
                            let at = got + i;
                            assert_eq!(*b, ((at % CHUNK) % 251) as u8 ^ 3, "byte {at}");
                        }
                        got += n;
                    }
                    t = &mut total_rx, if total.is_none() => total = Some(t.expect("the client's total")),
                }
            }
            upstream
        });
        let bulk = pattern(CHUNK, 3);
        let start = tokio::time::Instant::now();
        let mut sent = 0;
        while start.elapsed() < WATCH * 5 {
            client.write_all(&bulk).await.expect("client writes bulk");
            sent += CHUNK;
        }
        // A tail far below any mark, the connection left open.
        client.write_all(&bulk[..777]).await.expect("client writes the tail");
        sent += 777;
        total_tx.send(sent).expect("the reader waits");
        let mut upstream = reader.await.expect("every bulk byte crossed");
        ping_pong_across_watches(&mut client, &mut upstream).await;
        drop((client, upstream));
        let stats = stats.await.expect("relay task");
        assert_eq!((stats.client_to_upstream, stats.upstream_to_client, stats.reset), (sent as u64 + 12, 15, false));
    })
    .await;
}
