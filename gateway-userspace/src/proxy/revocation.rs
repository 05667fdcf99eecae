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
        stands: impl Fn(&ActiveConfig) -> bool + Send + 'static,
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
        let mut revoking = loop {
            if !look_now && configs.changed().await.is_err() {
                return std::future::pending().await; // the store is gone: nothing newer comes
            }
            look_now = false;
            let config = configs.borrow_and_update().clone();
            if !stands(&config) {
                break config.generation;
            }
        };
        tracing::debug!(generation = revoking, ?drain, "a connection is no longer allowed; closing it after the drain");
        let deadline = Instant::now() + drain;
        loop {
            tokio::select! {
                () = tokio::time::sleep_until(deadline) => return revoking,
                changed = configs.changed() => {
                    if changed.is_err() {
                        tokio::time::sleep_until(deadline).await;
                        return revoking;
                    }
                    let config = configs.borrow_and_update().clone();
                    if stands(&config) {
                        break; // allowed again: wait for the next generation
                    }
                    revoking = config.generation;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::active_config;

    fn generation(n: u64) -> Arc<ActiveConfig> {
        active_config("", n)
    }

    const DRAIN: Duration = Duration::from_secs(5);

    /// Generations whose number is in `bad` do not let the connection stand.
    fn revoke(rx: watch::Receiver<Arc<ActiveConfig>>, decided: u64, bad: &'static [u64]) -> Revoke {
        Revoke::when(rx, decided, DRAIN, move |c| !bad.contains(&c.generation))
    }

    #[tokio::test(start_paused = true)]
    async fn fires_a_drain_after_a_generation_that_refuses() {
        let (tx, rx) = watch::channel(generation(1));
        let mut r = revoke(rx, 1, &[3]);
        tx.send(generation(2)).unwrap();
        assert!(tokio::time::timeout(Duration::from_secs(60), &mut r).await.is_err(), "generation 2 allows it");
        tx.send(generation(3)).unwrap();
        let start = Instant::now();
        assert_eq!((&mut r).await, 3);
        assert!(start.elapsed() >= DRAIN, "{:?}", start.elapsed());
        assert_eq!(r.await, 3, "stays resolved");
    }

    #[tokio::test(start_paused = true)]
    async fn a_newer_generation_that_allows_again_cancels_the_drain() {
        let (tx, rx) = watch::channel(generation(1));
        let mut r = revoke(rx, 1, &[2]);
        tx.send(generation(2)).unwrap();
        assert!(tokio::time::timeout(DRAIN / 2, &mut r).await.is_err());
        tx.send(generation(3)).unwrap();
        assert!(tokio::time::timeout(Duration::from_secs(60), &mut r).await.is_err(), "generation 3 allows it again");
    }

    #[tokio::test(start_paused = true)]
    async fn a_reload_before_it_started_waiting_is_not_missed() {
        let (_tx, rx) = watch::channel(generation(2));
        let r = revoke(rx, 1, &[2]);
        assert_eq!(tokio::time::timeout(DRAIN * 2, r).await.ok(), Some(2));
    }

    #[tokio::test(start_paused = true)]
    async fn never_resolves_without_a_store() {
        let (tx, rx) = watch::channel(generation(1));
        let r = revoke(rx, 1, &[1]);
        drop(tx);
        assert!(tokio::time::timeout(Duration::from_secs(3600), r).await.is_err());
        assert!(tokio::time::timeout(Duration::from_secs(3600), Revoke::never()).await.is_err());
    }
}
