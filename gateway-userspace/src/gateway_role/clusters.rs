//! Per-destination state shared by every connection of the role, as Envoy
//! keeps per cluster: requests in flight (DestinationRule `connectionPool`)
//! and endpoint health (`outlierDetection`).

use std::{
    collections::HashMap,
    net::SocketAddr,
    sync::{
        Arc, Mutex,
        atomic::{AtomicU32, Ordering},
    },
    time::{Duration, Instant},
};

use crate::config::resources::destination_rule::{ConnectionPool, OutlierDetection};

#[derive(Default)]
pub struct Clusters {
    by_destination: Mutex<HashMap<(String, u16), Arc<Cluster>>>,
}

impl Clusters {
    pub fn get(&self, host: &str, port: u16) -> Arc<Cluster> {
        self.by_destination.lock().expect("clusters lock").entry((host.to_string(), port)).or_default().clone()
    }
}

#[derive(Default)]
pub struct Cluster {
    in_flight: AtomicU32,
    endpoints: Mutex<HashMap<SocketAddr, Health>>,
    /// Requests in progress per endpoint, for LEAST_REQUEST.
    active: Mutex<HashMap<SocketAddr, u32>>,
    round_robin: std::sync::atomic::AtomicUsize,
}

/// Counts one request at an endpoint until dropped.
pub struct Active(Arc<Cluster>, SocketAddr);

impl Drop for Active {
    fn drop(&mut self) {
        if let Some(n) = self.0.active.lock().expect("cluster lock").get_mut(&self.1) {
            *n = n.saturating_sub(1);
        }
    }
}

#[derive(Default, Clone, Copy)]
struct Health {
    consecutive_5xx: u32,
    consecutive_gateway: u32,
    ejections: u32,
    ejected_until: Option<Instant>,
}

/// Holds one in-flight slot until dropped.
pub struct Slot(Arc<Cluster>);

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Requests a destination may have in flight: its connections plus the
/// requests allowed to wait for one, and at most `http2MaxRequests`.
pub fn limit(pool: Option<&ConnectionPool>) -> Option<u32> {
    let p = pool?;
    let connections = match (p.tcp_max_connections, p.http1_max_pending_requests) {
        (None, None) => None,
        (c, q) => Some(c.unwrap_or(u32::MAX / 2).saturating_add(q.unwrap_or(u32::MAX / 2))),
    };
    [connections, p.http2_max_requests].into_iter().flatten().min()
}

impl Cluster {
    pub fn next_round_robin(&self) -> usize {
        self.round_robin.fetch_add(1, Ordering::Relaxed)
    }

    /// Requests in progress at `addr`.
    pub fn active(&self, addr: SocketAddr) -> u32 {
        self.active.lock().expect("cluster lock").get(&addr).copied().unwrap_or(0)
    }

    /// Counts a request at `addr` while the guard lives.
    pub fn start(self: &Arc<Self>, addr: SocketAddr) -> Active {
        *self.active.lock().expect("cluster lock").entry(addr).or_default() += 1;
        Active(self.clone(), addr)
    }

    /// A slot, or `None` when `limit` requests are already in flight.
    pub fn admit(self: &Arc<Self>, limit: Option<u32>) -> Option<Slot> {
        let now = self.in_flight.fetch_add(1, Ordering::AcqRel);
        if limit.is_some_and(|l| now >= l) {
            self.in_flight.fetch_sub(1, Ordering::AcqRel);
            return None;
        }
        Some(Slot(self.clone()))
    }

    /// The endpoints not ejected now. All of them when every one is ejected
    /// (better than none, as Envoy's panic threshold decides).
    pub fn healthy(&self, candidates: &[SocketAddr], now: Instant) -> Vec<SocketAddr> {
        let endpoints = self.endpoints.lock().expect("cluster lock");
        let up: Vec<SocketAddr> = candidates
            .iter()
            .copied()
            .filter(|a| endpoints.get(a).and_then(|h| h.ejected_until).is_none_or(|t| t <= now))
            .collect();
        if up.is_empty() { candidates.to_vec() } else { up }
    }

    /// Counts an answer from `addr` (a status, or `None` when it did not
    /// answer); ejects the endpoint when a consecutive-error threshold is met
    /// and fewer than `maxEjectionPercent` are out (at least one may be).
    pub fn report(&self, addr: SocketAddr, status: Option<u16>, od: &OutlierDetection, endpoints_total: usize, now: Instant) {
        let mut endpoints = self.endpoints.lock().expect("cluster lock");
        let ejected_now = endpoints.values().filter(|h| h.ejected_until.is_some_and(|t| t > now)).count();
        let h = endpoints.entry(addr).or_default();
        let gateway_error = matches!(status, None | Some(502..=504));
        let five_xx = status.is_none_or(|s| s >= 500);
        if five_xx {
            h.consecutive_5xx += 1;
        } else {
            h.consecutive_5xx = 0;
        }
        if gateway_error {
            h.consecutive_gateway += 1;
        } else {
            h.consecutive_gateway = 0;
        }
        let tripped = od.consecutive_5xx_errors.is_some_and(|n| n > 0 && h.consecutive_5xx >= n)
            || od.consecutive_gateway_errors.is_some_and(|n| n > 0 && h.consecutive_gateway >= n);
        let max = (endpoints_total * od.max_ejection_percent.unwrap_or(10) as usize / 100).max(1);
        if tripped && ejected_now < max {
            h.ejections += 1;
            let base = od.base_ejection_time.unwrap_or(Duration::from_secs(30));
            h.ejected_until = Some(now + base * h.ejections);
            (h.consecutive_5xx, h.consecutive_gateway) = (0, 0);
            tracing::info!(endpoint = %addr, until_secs = (base * h.ejections).as_secs_f64(), "endpoint ejected");
        }
    }
}
