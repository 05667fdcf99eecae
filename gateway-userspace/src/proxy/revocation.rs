//! Closing what a reload no longer allows.
//!
//! A relayed stream (opaque TCP, TLS, HTTP/2 after its first decision, a
//! steered stream, a gateway's TCP or passthrough route) keeps the facts it
//! was decided on. The configuration store publishes each new generation on
//! a `watch` channel; a [`Revoke`] waits on it inside the connection's own
//! task (no task of its own, nothing per byte), re-decides the facts, and,
//! if the verdict no longer lets the stream go to the same place, fires
//! after `--revocation-drain-secs`, unless a newer generation lets it stand
//! again meanwhile. The relays in `transport/` race it against their work
//! and reset both sides when it fires (`transport/revoke.rs`).

use std::{sync::Arc, time::Duration};

use tokio::{sync::watch, time::Instant};

use crate::transport::revoke::Revoke;
use crate::reload::ActiveConfig;

impl Revoke {
    /// Resolves once a generation newer than `decided` no longer lets the
    /// connection stand (`stands` says no) and `drain` then passes without
    /// a newer one that lets it stand again.
    pub fn when(
        configs: watch::Receiver<Arc<ActiveConfig>>,
        decided: u64,
        drain: Duration,
        stands: impl Fn(&ActiveConfig) -> bool + Send + Sync + 'static,
    ) -> Self {
        Revoke::on(revoked(configs, decided, drain, stands))
    }
}

async fn revoked(
    mut configs: watch::Receiver<Arc<ActiveConfig>>,
    decided: u64,
    drain: Duration,
    stands: impl Fn(&ActiveConfig) -> bool,
) -> u64 {
    // A reload between the decision and now is asked about at once.
    let mut look_now = configs.borrow_and_update().generation != decided;
    loop {
        let revoking = loop {
            if !look_now && configs.changed().await.is_err() {
                return std::future::pending().await; // the store is gone: nothing newer comes
            }
            look_now = false;
            let config = configs.borrow_and_update().clone();
            if !stands(&config) {
                break config.generation;
            }
        };
        // Boxed: the drain's timer is kept only by streams being revoked.
        if let Some(generation) = Box::pin(drain_phase(&mut configs, revoking, drain, &stands)).await {
            return generation;
        }
    }
}

/// Waits out the drain of a stream that `revoking` no longer allows:
/// `Some` with the generation that revokes it once the drain passes, `None`
/// if a newer generation lets it stand again meanwhile.
async fn drain_phase(
    configs: &mut watch::Receiver<Arc<ActiveConfig>>,
    mut revoking: u64,
    drain: Duration,
    stands: &impl Fn(&ActiveConfig) -> bool,
) -> Option<u64> {
    tracing::debug!(generation = revoking, ?drain, "a connection is no longer allowed; closing it after the drain");
    let deadline = Instant::now() + drain;
    loop {
        tokio::select! {
            () = tokio::time::sleep_until(deadline) => return Some(revoking),
            changed = configs.changed() => {
                if changed.is_err() {
                    tokio::time::sleep_until(deadline).await;
                    return Some(revoking);
                }
                let config = configs.borrow_and_update().clone();
                if stands(&config) {
                    return None; // allowed again: wait for the next generation
                }
                revoking = config.generation;
            }
        }
    }
}
