//! A connection's request series, kept from one request to the next. The
//! requests of a kept-alive connection mostly count in the series the one
//! before counted in; they find its counters here instead of building
//! their labels and hashing them into the families each time.

use std::sync::Arc;

use prometheus_client::metrics::{counter::Counter, histogram::Histogram};

use crate::access_log::{Decision, Reason, RequestRecord, ResponseFlag};

/// The series a connection's last request counted in.
#[derive(Clone, Debug, Default)]
pub struct RequestSeries(Option<Box<Series>>);

#[derive(Clone, Debug)]
pub(super) struct Series {
    key: Key,
    pub requests: Counter,
    pub istio_requests: Counter,
    pub istio_duration: Histogram,
}

/// What the labels of the request families are made of.
#[derive(Clone, Debug, PartialEq)]
struct Key {
    role: &'static str,
    decision: Decision,
    reason: Reason,
    namespace: Arc<str>,
    name: Option<Arc<str>>,
    matched_host: Option<Arc<str>>,
    destination: Option<String>,
    status: u16,
    flags: Vec<ResponseFlag>,
    mutual_tls: bool,
}

impl Key {
    fn of(r: &RequestRecord) -> Key {
        Key {
            role: r.role,
            decision: r.decision,
            reason: r.reason,
            namespace: r.workload.namespace.clone(),
            name: r.workload.name.clone(),
            matched_host: r.matched.as_ref().map(|m| m.host.clone()),
            destination: destination(r).map(str::to_string),
            status: r.status,
            flags: r.flags.clone(),
            mutual_tls: r.peer_identity.is_some(),
        }
    }

    /// Whether `r` has these labels, compared without building them.
    fn is(&self, r: &RequestRecord) -> bool {
        self.role == r.role
            && self.decision == r.decision
            && self.reason == r.reason
            && self.status == r.status
            && self.mutual_tls == r.peer_identity.is_some()
            && self.flags == r.flags
            && self.namespace == r.workload.namespace
            && self.name == r.workload.name
            && self.matched_host.as_deref() == r.matched.as_ref().map(|m| &*m.host)
            && self.destination.as_deref() == destination(r)
    }
}

impl RequestSeries {
    /// The series of `r`: the last one if `r` has its labels, else the one
    /// `find` gives, kept for the next request.
    pub(super) fn of(&mut self, r: &RequestRecord, find: impl FnOnce() -> (Counter, Counter, Histogram)) -> &Series {
        if !self.0.as_ref().is_some_and(|s| s.key.is(r)) {
            let (requests, istio_requests, istio_duration) = find();
            self.0 = Some(Box::new(Series { key: Key::of(r), requests, istio_requests, istio_duration }));
        }
        self.0.as_deref().expect("just set")
    }
}

/// Istio's `destination_service`: the host a route chose, else the
/// registered host the request matched.
pub(super) fn destination(r: &RequestRecord) -> Option<&str> {
    r.route
        .as_ref()
        .map(|route| &*route.destination)
        .filter(|d| !d.is_empty())
        .or_else(|| r.matched.as_ref().map(|m| &*m.host))
}
