//! The copy relay: bytes both ways, half-close, resets and revocation.

use tokio::{io::AsyncReadExt, sync::oneshot};

use super::{Relayed, bounded, relayed};
use crate::transport::{
    relay::{RelayStats, relay, relay_until},
    revoke::Revoke,
};

async fn copy() -> Relayed {
    relayed(|mut client, mut upstream| async move { relay(&mut client, &mut upstream).await }).await
}

keeps_every_relays_promises!(copy());

#[tokio::test]
async fn a_revocation_resets_both_sides_and_names_its_generation() {
    bounded(async {
        let (revoke_now, revoked) = oneshot::channel::<u64>();
        let Relayed { mut client, mut upstream, stats } = relayed(|mut c, mut u| async move {
            let mut revoke = Revoke::on(async move { revoked.await.unwrap_or(0) });
            relay_until(&mut c, &mut u, &mut revoke).await
        })
        .await;
        revoke_now.send(9).expect("the relay waits on the revocation");
        let stats = stats.await.expect("relay task");
        assert_eq!(stats, RelayStats { reset: true, revoked: Some(9), ..RelayStats::default() });
        for side in [&mut client, &mut upstream] {
            let after = side.read(&mut [0u8; 16]).await;
            assert!(
                matches!(&after, Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset),
                "a revoked stream is reset on both sides: {after:?}"
            );
        }
    })
    .await;
}
