//! Counters of what the DNS server answered, read by the metrics endpoint.

use std::sync::atomic::{AtomicU64, Ordering};

/// One counter per outcome of a query.
#[derive(Debug, Default)]
pub struct DnsStats {
    /// Answered from a registered name's addresses (including NODATA).
    pub answered_registered: AtomicU64,
    /// Answered with what an upstream resolver said.
    pub forwarded: AtomicU64,
    /// Answered NXDOMAIN because the name is not registered.
    pub refused: AtomicU64,
    /// Answered SERVFAIL because no upstream resolver answered.
    pub servfail: AtomicU64,
    /// Malformed queries, answered FORMERR or dropped.
    pub formerr: AtomicU64,
}

/// The outcome of one query, for counting.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Outcome {
    AnsweredRegistered,
    Forwarded,
    Refused,
    ServFail,
    FormErr,
}

impl DnsStats {
    pub fn new() -> Self {
        Self::default()
    }

    pub(crate) fn count(&self, outcome: Outcome) {
        let counter = match outcome {
            Outcome::AnsweredRegistered => &self.answered_registered,
            Outcome::Forwarded => &self.forwarded,
            Outcome::Refused => &self.refused,
            Outcome::ServFail => &self.servfail,
            Outcome::FormErr => &self.formerr,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// The counters by name, in a fixed order.
    pub fn snapshot(&self) -> Vec<(&'static str, u64)> {
        let read = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        vec![
            ("answered_registered", read(&self.answered_registered)),
            ("forwarded", read(&self.forwarded)),
            ("refused", read(&self.refused)),
            ("servfail", read(&self.servfail)),
            ("formerr", read(&self.formerr)),
        ]
    }
}
