//! The signal that ends a relay early.
//!
//! A [`Revoke`] resolves, with the configuration generation that revoked
//! the stream, once the stream must close. The relays (`relay.rs`,
//! `splice.rs`, `sockmap.rs`, `relay_auto.rs`) race it against their work
//! and reset both sides when it fires. What makes it fire is the proxy's
//! business: `proxy/revocation.rs` builds the one that follows the
//! configuration store (`Revoke::when`).

use std::{
    future::Future,
    pin::Pin,
    task::{Context, Poll},
};

type Waiting = Pin<Box<dyn Future<Output = u64> + Send>>;

/// Resolves, with the generation that revoked it, once the connection it
/// belongs to must close. Once resolved it stays resolved, so each stage
/// of a relay can be raced against it in turn.
pub struct Revoke {
    waiting: Option<Waiting>,
    fired: Option<u64>,
}

impl Revoke {
    /// Never resolves: for streams nothing can revoke.
    pub fn never() -> Self {
        Revoke { waiting: None, fired: None }
    }

    /// Resolves when `waiting` does, and stays resolved.
    pub fn on(waiting: impl Future<Output = u64> + Send + 'static) -> Self {
        Revoke { waiting: Some(Box::pin(waiting)), fired: None }
    }
}

impl Future for Revoke {
    type Output = u64;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<u64> {
        if let Some(generation) = self.fired {
            return Poll::Ready(generation);
        }
        let Some(waiting) = self.waiting.as_mut() else { return Poll::Pending };
        let generation = std::task::ready!(waiting.as_mut().poll(cx));
        (self.waiting, self.fired) = (None, Some(generation));
        Poll::Ready(generation)
    }
}
