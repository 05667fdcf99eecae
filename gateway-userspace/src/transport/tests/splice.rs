//! The splice relay: bytes both ways through its pipes, half-close and
//! resets, over real (loopback) sockets as `splice()` needs.

use super::{Relayed, bounded, bytes_cross_both_ways, half_close_keeps_the_other_direction, relayed, reset_carries_over};
use crate::transport::{revoke::Revoke, splice::relay};

async fn spliced() -> Relayed {
    relayed(|client, upstream| async move { relay(&client, &upstream, &mut Revoke::never()).await }).await
}

#[tokio::test]
async fn bytes_cross_both_ways_in_order_and_are_counted() {
    bounded(async { bytes_cross_both_ways(spliced().await).await }).await;
}

#[tokio::test]
async fn a_half_close_is_carried_over_and_the_other_direction_keeps_flowing() {
    bounded(async { half_close_keeps_the_other_direction(spliced().await).await }).await;
}

#[tokio::test]
async fn a_reset_from_upstream_resets_the_client() {
    bounded(async {
        let Relayed { client, upstream, stats } = spliced().await;
        reset_carries_over(stats, upstream, client).await;
    })
    .await;
}

#[tokio::test]
async fn a_reset_from_the_client_resets_upstream() {
    bounded(async {
        let Relayed { client, upstream, stats } = spliced().await;
        reset_carries_over(stats, client, upstream).await;
    })
    .await;
}
