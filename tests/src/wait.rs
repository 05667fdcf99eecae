//! Bounded polling: every wait in the harness has both a time limit and a round limit.

use std::thread;
use std::time::{Duration, Instant};

/// Polls `check` every `interval` until it returns `Some`, for at most `timeout`.
/// Returns `None` when the time runs out (or after `timeout / interval + 1` rounds).
pub fn poll<T>(
    timeout: Duration,
    interval: Duration,
    mut check: impl FnMut() -> Option<T>,
) -> Option<T> {
    let deadline = Instant::now() + timeout;
    let max_rounds = timeout.as_millis() / interval.as_millis().max(1) + 1;
    for _ in 0..max_rounds {
        if let Some(value) = check() {
            return Some(value);
        }
        if Instant::now() >= deadline {
            break;
        }
        thread::sleep(interval);
    }
    check()
}

/// Like [`poll`] for a condition; panics with `what` when it does not become true in time.
pub fn until(what: &str, timeout: Duration, mut condition: impl FnMut() -> bool) {
    if poll(timeout, Duration::from_millis(50), || {
        condition().then_some(())
    })
    .is_none()
    {
        panic!("timed out after {timeout:?} waiting for {what}");
    }
}
