//! Revocation: a reload that refuses an open connection drains it, a newer one that allows it again cancels.

use std::{sync::Arc, time::Duration};

use tokio::{sync::watch, time::Instant};

use crate::reload::ActiveConfig;
use crate::test_support::active_config;
use crate::transport::revoke::Revoke;

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
