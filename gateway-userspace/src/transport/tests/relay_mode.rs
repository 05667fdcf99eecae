//! What each relayed stream's task carries: the relay's future is part of
//! it, held for as long as the stream lasts, idle ones included. The parts
//! only some streams reach (`relay_auto.rs`'s copies) are boxed; a copy's
//! state inlined in this future once made it 2.8 KiB, and an idle
//! intercepted connection 6.7 KiB instead of 4.8.

use super::tcp_pair;
use crate::transport::{
    relay_mode::{RelayChoice, RelayMode},
    revoke::Revoke,
};

/// Room above today's size (under 1 KiB) for small changes, none for a
/// relay's state inlined by mistake.
const MOST_BYTES: usize = 1536;

#[tokio::test]
async fn the_future_every_relayed_stream_carries_stays_small() {
    let (mut client, _far_client) = tcp_pair().await;
    let (mut upstream, _far_upstream) = tcp_pair().await;
    let choice = RelayChoice { default: RelayMode::Auto, by_port: Vec::new(), maps: None };
    let mut revoke = Revoke::never();
    let relay = choice.relay(&mut client, &mut upstream, 80, &mut revoke);
    let size = std::mem::size_of_val(&relay);
    assert!(size <= MOST_BYTES, "the relay's future takes {size} bytes per stream, more than {MOST_BYTES}");
}
