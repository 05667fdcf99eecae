//! `--relay auto` without the kernel relay (no maps here: a stream that is
//! not bulk is copied on): the promises every relay keeps, from the first
//! watch on. Moving a stream to the kernel relay needs root and the kernel
//! programs: `tests/tests/relay_modes.rs`.

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::{Relayed, bounded, relayed};
use crate::transport::{
    relay_auto::{WATCH, relay},
    revoke::Revoke,
};

async fn auto() -> Relayed {
    relayed(|client, upstream| async move { relay(None, &client, &upstream, &mut Revoke::never()).await.0 }).await
}

keeps_every_relays_promises!(auto());

/// A stream quiet for a whole watch is copied on, as there is no kernel
/// relay to take it: what comes after the pause crosses both ways, in order,
/// and is counted with what came before.
#[tokio::test]
async fn a_quiet_stream_is_copied_on_without_the_kernel_relay() {
    bounded(async {
        let Relayed { mut client, mut upstream, stats } = auto().await;
        for round in 0..3 {
            client.write_all(b"ping").await.expect("client writes");
            let mut ping = [0u8; 4];
            upstream.read_exact(&mut ping).await.expect("the ping crosses");
            upstream.write_all(b"pong!").await.expect("upstream answers");
            let mut pong = [0u8; 5];
            client.read_exact(&mut pong).await.expect("the pong crosses");
            assert_eq!((&ping, &pong), (b"ping", b"pong!"), "round {round}");
            tokio::time::sleep(WATCH * 2).await;
        }
        drop((client, upstream));
        let stats = stats.await.expect("relay task");
        assert_eq!((stats.client_to_upstream, stats.upstream_to_client, stats.reset), (12, 15, false));
    })
    .await;
}
