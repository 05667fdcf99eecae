//! The splice relay: bytes both ways through its pipes, half-close and
//! resets, over real (loopback) sockets as `splice()` needs.

use super::{Relayed, relayed};
use crate::transport::{revoke::Revoke, splice::relay};

async fn spliced() -> Relayed {
    relayed(|client, upstream| async move { relay(&client, &upstream, &mut Revoke::never()).await }).await
}

keeps_every_relays_promises!(spliced());
