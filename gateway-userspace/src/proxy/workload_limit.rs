//! The per-workload connection limit (`--max-connections-per-workload`):
//! how many intercepted connections one workload may hold open at once.
//!
//! Each open connection holds a [`WorkloadSlot`], given back when the
//! connection ends. A connection over the limit is refused: the caller
//! resets it and writes its audit line with the reason `connection-limit`;
//! here it is counted (`gateway_workload_connection_refusals_total`, by
//! workload) and logged, the first refusal at once and then at most one
//! summary line per workload every [`LOG_INTERVAL`], so a flood does not
//! flood the log. Other workloads keep their own count and are unaffected.

use std::{
    collections::HashMap,
    net::IpAddr,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use crate::{metrics::Metrics, policy::WorkloadIdentity};

/// At most one refusal log line per workload this often.
pub const LOG_INTERVAL: Duration = Duration::from_secs(10);

/// The audit reason of a connection refused over the limit.
pub const REASON: &str = "connection-limit";

/// Whom a count belongs to: a named workload (pod or WorkloadEntry), or,
/// for a client no entry names, its namespace and address, so unnamed
/// clients do not share one count.
#[derive(Clone, Debug, Hash, PartialEq, Eq)]
struct WorkloadKey {
    namespace: String,
    who: Who,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq)]
enum Who {
    Named(String),
    Unnamed(IpAddr),
}

impl WorkloadKey {
    fn of(workload: &WorkloadIdentity, client: IpAddr) -> Self {
        let who = match &workload.name {
            Some(name) => Who::Named(name.to_string()),
            None => Who::Unnamed(client),
        };
        Self { namespace: workload.namespace.to_string(), who }
    }
}

/// One workload's open connections and its refusals not yet logged.
#[derive(Debug, Default)]
struct Count {
    open: usize,
    unlogged_refusals: u64,
    last_logged: Option<Instant>,
}

/// What a refusal should log, decided under the lock, written outside it.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum RefusalLog {
    /// The first refusal since the last line, or the first ever: log it
    /// with the refusals counted since (`refused`, this one included).
    Now { refused: u64 },
    /// A line was written less than [`LOG_INTERVAL`] ago: counted for the next.
    Later,
}

/// The open connections of every workload, against one limit.
pub struct WorkloadLimits {
    /// Zero: no limit.
    limit: usize,
    counts: Arc<Mutex<HashMap<WorkloadKey, Count>>>,
}

/// Held while the connection is open; gives its place back when dropped.
#[derive(Debug)]
pub struct WorkloadSlot {
    key: Option<WorkloadKey>,
    counts: Arc<Mutex<HashMap<WorkloadKey, Count>>>,
}

impl Drop for WorkloadSlot {
    fn drop(&mut self) {
        let Some(key) = self.key.take() else { return };
        let mut counts = self.counts.lock().expect("workload limits lock");
        if let Some(count) = counts.get_mut(&key) {
            count.open = count.open.saturating_sub(1);
            // A workload with nothing open takes no room.
            if count.open == 0 {
                counts.remove(&key);
            }
        }
    }
}

impl WorkloadLimits {
    /// `limit` open connections per workload; 0: unlimited.
    pub fn new(limit: usize) -> Self {
        Self { limit, counts: Default::default() }
    }

    /// Takes a place for a new connection of `workload` from `client`, or
    /// counts and logs its refusal (`None`): the caller resets it.
    pub fn admit(&self, workload: &WorkloadIdentity, client: IpAddr, metrics: &Metrics) -> Option<WorkloadSlot> {
        match self.try_admit(workload, client, Instant::now()) {
            Ok(slot) => Some(slot),
            Err(log) => {
                metrics.record_workload_refusal(workload);
                if let RefusalLog::Now { refused } = log {
                    tracing::warn!(
                        limit = self.limit,
                        refused,
                        "connections over --max-connections-per-workload refused (further refusals of this workload are summed up every {}s)",
                        LOG_INTERVAL.as_secs()
                    );
                }
                None
            }
        }
    }

    /// [`admit`](Self::admit) without its side effects, at time `now`.
    pub(super) fn try_admit(&self, workload: &WorkloadIdentity, client: IpAddr, now: Instant) -> Result<WorkloadSlot, RefusalLog> {
        if self.limit == 0 {
            return Ok(WorkloadSlot { key: None, counts: self.counts.clone() });
        }
        let key = WorkloadKey::of(workload, client);
        let mut counts = self.counts.lock().expect("workload limits lock");
        let count = counts.entry(key.clone()).or_default();
        if count.open < self.limit {
            count.open += 1;
            drop(counts);
            return Ok(WorkloadSlot { key: Some(key), counts: self.counts.clone() });
        }
        count.unlogged_refusals += 1;
        match count.last_logged {
            Some(at) if now.saturating_duration_since(at) < LOG_INTERVAL => Err(RefusalLog::Later),
            _ => {
                count.last_logged = Some(now);
                Err(RefusalLog::Now { refused: std::mem::take(&mut count.unlogged_refusals) })
            }
        }
    }

    /// Open connections of `workload` from `client`, as counted.
    #[cfg(test)]
    pub(super) fn open(&self, workload: &WorkloadIdentity, client: IpAddr) -> usize {
        let counts = self.counts.lock().expect("workload limits lock");
        counts.get(&WorkloadKey::of(workload, client)).map_or(0, |c| c.open)
    }
}
