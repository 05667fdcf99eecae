//! Prometheus metrics, served on the admin address at `/metrics`.
//!
//! Label sets are typed and their values bounded: no label takes a value
//! from the network.

use prometheus_client::{
    encoding::{EncodeLabelSet, EncodeLabelValue},
    metrics::{
        counter::Counter,
        family::Family,
        gauge::Gauge,
        histogram::{Histogram, exponential_buckets},
    },
    registry::Registry,
};

use crate::{
    access_log::{ConnectionRecord, Decision, Reason, RequestRecord},
    policy::{MatchedEntry, WorkloadIdentity},
    suggest::LiveRefusals,
};

#[path = "metrics_audit.rs"]
mod audit;
#[path = "metrics_series.rs"]
mod series;
pub use series::RequestSeries;
pub use audit::{MAX_SERIES as MAX_WOULD_DENY_SERIES, WouldDenyLabels};

/// Labels from configuration only: the workload's WorkloadEntry and the
/// matched ServiceEntry host, `unknown` otherwise.
fn labels(
    role: &'static str,
    decision: Decision,
    reason: &'static str,
    workload: Option<&WorkloadIdentity>,
    matched: Option<&MatchedEntry>,
) -> ConnectionLabels {
    let workload = workload.map_or_else(
        || "unknown".to_string(),
        |w| format!("{}/{}", w.namespace, w.name.as_deref().unwrap_or("unknown")),
    );
    let host = matched.map_or_else(|| "unknown".to_string(), |m| m.host.to_string());
    ConnectionLabels { decision: decision.as_str(), reason, workload, host, role }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelValue)]
pub enum ReloadResult {
    Applied,
    Rejected,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReloadLabels {
    pub result: ReloadResult,
}

/// `workload` and `host` come from the configuration (WorkloadEntry names,
/// ServiceEntry hosts), never from the client: unregistered is `unknown`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ConnectionLabels {
    pub decision: &'static str,
    pub reason: &'static str,
    pub workload: String,
    pub host: String,
    /// `node` or `egress-gateway`.
    pub role: &'static str,
}

/// Istio's standard request labels, as far as a gateway knows them; values
/// come from configuration and status codes, never from raw request data.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct IstioRequestLabels {
    pub reporter: &'static str,
    pub source_workload: String,
    pub destination_service: String,
    pub response_code: u16,
    pub response_flags: String,
    pub request_protocol: &'static str,
    pub connection_security_policy: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DnsLabels {
    pub outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KernelLabels {
    pub event: &'static str,
}

/// A gateway listener, by port.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ListenerLabels {
    pub port: u16,
}

/// A workload as the configuration names it (`namespace/name`, `unknown`
/// for a client no entry names).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct WorkloadLabels {
    pub workload: String,
}

/// A gateway listener that could not be opened or re-keyed, and why
/// (`bind`, `tls`).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ListenerFailureLabels {
    pub port: u16,
    pub reason: &'static str,
}

pub struct Metrics {
    registry: Registry,
    /// Gateway listeners not opened (or not re-keyed) at a configuration.
    pub listener_failures: Family<ListenerFailureLabels, Counter>,
    /// Connections a gateway listener closed at accept, over its limit.
    pub listener_overflow: Family<ListenerLabels, Counter>,
    /// Connections open on each gateway listener.
    pub listener_connections: Family<ListenerLabels, Gauge>,
    pub config_reloads: Family<ReloadLabels, Counter>,
    pub config_generation: Gauge,
    /// Resources from the API server kept out of the configuration for errors.
    pub config_rejected_resources: Gauge,
    /// Connections refused because their pod was not known in time.
    pub unknown_workload_denials: Counter,
    /// Connections refused over `--max-connections-per-workload`.
    workload_connection_refusals: Family<WorkloadLabels, Counter>,
    pub connections: Family<ConnectionLabels, Counter>,
    pub requests: Family<ConnectionLabels, Counter>,
    pub bytes_up: Counter,
    pub bytes_down: Counter,
    /// Time the policy decision takes, per connection.
    pub decision_seconds: Histogram,
    kernel_events: Family<KernelLabels, Counter>,
    dns_answers: Family<DnsLabels, Counter>,
    pub istio_requests: Family<IstioRequestLabels, Counter>,
    pub istio_request_duration: Family<IstioRequestLabels, Histogram>,
    /// Audit mode: calls allowed that the registry would have refused.
    would_deny: audit::WouldDeny,
    /// Refusals of destinations `/suggest` had no room to keep.
    suggest_dropped: Counter,
    /// Every refusal (and would-be refusal), for the admin `/suggest`.
    pub refusals: LiveRefusals,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut root = Registry::default();
        let m = Self {
            listener_failures: Family::default(),
            listener_overflow: Family::default(),
            listener_connections: Family::default(),
            config_reloads: Family::default(),
            config_generation: Gauge::default(),
            config_rejected_resources: Gauge::default(),
            unknown_workload_denials: Counter::default(),
            workload_connection_refusals: Family::default(),
            connections: Family::default(),
            requests: Family::default(),
            bytes_up: Counter::default(),
            bytes_down: Counter::default(),
            decision_seconds: Histogram::new(exponential_buckets(1e-7, 4.0, 10)),
            kernel_events: Family::default(),
            dns_answers: Family::default(),
            istio_requests: Family::default(),
            istio_request_duration: Family::new_with_constructor(|| {
                Histogram::new([1.0, 5.0, 10.0, 25.0, 50.0, 100.0, 250.0, 500.0, 1000.0, 2500.0, 5000.0, 10000.0])
            }),
            would_deny: Default::default(),
            suggest_dropped: Counter::default(),
            refusals: LiveRefusals::default(),
            registry: Registry::default(),
        };
        root.register("istio_requests", "Requests, with Istio's standard labels", m.istio_requests.clone());
        root.register(
            "istio_request_duration_milliseconds",
            "Request durations in milliseconds, with Istio's standard labels",
            m.istio_request_duration.clone(),
        );
        let registry = root.sub_registry_with_prefix("gateway");
        registry.register("config_reloads", "Configuration reloads by result", m.config_reloads.clone());
        registry.register("config_generation", "Generation of the live configuration", m.config_generation.clone());
        registry.register(
            "config_rejected_resources",
            "Resources from the API server kept out of the configuration (or held at their last good version) for errors",
            m.config_rejected_resources.clone(),
        );
        registry.register(
            "unknown_workload_denials",
            "Connections refused because the pod behind their cgroup was not known within the wait",
            m.unknown_workload_denials.clone(),
        );
        registry.register(
            "workload_connection_refusals",
            "Connections refused because their workload already held --max-connections-per-workload open connections",
            m.workload_connection_refusals.clone(),
        );
        registry.register("connections", "Closed connections by decision and reason", m.connections.clone());
        registry.register("requests", "HTTP requests on intercepted connections, by decision and reason", m.requests.clone());
        registry.register("bytes_up", "Bytes from clients to upstreams", m.bytes_up.clone());
        registry.register("bytes_down", "Bytes from upstreams to clients", m.bytes_down.clone());
        registry.register("decision_seconds", "Policy decision time", m.decision_seconds.clone());
        registry.register("kernel_events", "Events counted by the kernel programs", m.kernel_events.clone());
        registry.register("dns_answers", "DNS queries answered, by outcome", m.dns_answers.clone());
        registry.register("listener_overflow", "Connections closed at accept over the listener's limit", m.listener_overflow.clone());
        registry.register("listener_connections", "Connections open on each gateway listener", m.listener_connections.clone());
        registry.register(
            "listener_failures",
            "Gateway listeners a configuration could not open (bind) or re-key (tls); tried again at the next one",
            m.listener_failures.clone(),
        );
        registry.register(
            "audit_would_deny",
            "Calls audit mode allowed that the registry would have refused, by workload, host (capped) and reason",
            m.would_deny.family.clone(),
        );
        registry.register(
            "suggest_dropped",
            "Refusals of destinations past the limit the admin /suggest keeps in memory",
            m.suggest_dropped.clone(),
        );
        Self { registry: root, ..m }
    }
}

impl Metrics {
    /// Brings the kernel counters up to the values read from the kernel.
    pub fn set_kernel_events(&self, values: &[(&'static str, u64)]) {
        for (event, v) in values {
            let c = self.kernel_events.get_or_create(&KernelLabels { event });
            c.inc_by(v.saturating_sub(c.get()));
        }
    }

    /// Brings the DNS counters up to the server's values.
    pub fn set_dns_answers(&self, values: &[(&'static str, u64)]) {
        for (outcome, v) in values {
            let c = self.dns_answers.get_or_create(&DnsLabels { outcome });
            c.inc_by(v.saturating_sub(c.get()));
        }
    }

    pub fn record_connection(&self, r: &ConnectionRecord) {
        self.connections.get_or_create(&labels(r.role, r.decision, r.reason.as_str(), r.workload.as_ref(), r.matched.as_ref())).inc();
        // A plain HTTP connection's line sums its requests, counted on their own.
        if r.requests.is_none() && registry_refusal(r.role, r.reason) {
            let audited = Audited { would: r.would, workload: r.workload.as_ref(), reason: r.reason.as_str() };
            self.refused(r, audited, || {
                let named = r.sni.as_deref().or(r.host.as_deref()).map(crate::sniff::host_without_port);
                named.map(str::to_ascii_lowercase).or_else(|| r.orig_dst.map(|a| a.to_string())).unwrap_or_default()
            });
        }
        self.bytes_up.inc_by(r.bytes_up);
        self.bytes_down.inc_by(r.bytes_down);
    }

    /// A connection refused over the per-workload connection limit.
    pub fn record_workload_refusal(&self, workload: &WorkloadIdentity) {
        let workload = format!("{}/{}", workload.namespace, workload.name.as_deref().unwrap_or("unknown"));
        self.workload_connection_refusals.get_or_create(&WorkloadLabels { workload }).inc();
    }

    /// Counts `r` in the series `series` kept from the connection's last
    /// request, or in its own.
    pub fn record_request(&self, r: &RequestRecord, series: &mut RequestSeries) {
        let found = series.of(r, || {
            let istio = IstioRequestLabels {
                reporter: "source",
                source_workload: r.workload.name.as_deref().unwrap_or("unknown").to_string(),
                destination_service: series::destination(r).unwrap_or("unknown").to_string(),
                response_code: r.status,
                response_flags: r.response_flags(),
                request_protocol: "http",
                connection_security_policy: if r.peer_identity.is_some() { "mutual_tls" } else { "none" },
            };
            (
                self.requests.get_or_create(&labels(r.role, r.decision, r.reason.as_str(), Some(&r.workload), r.matched.as_ref())).clone(),
                self.istio_requests.get_or_create(&istio).clone(),
                self.istio_request_duration.get_or_create(&istio).clone(),
            )
        });
        found.requests.inc();
        found.istio_requests.inc();
        found.istio_duration.observe(r.duration_ms as f64);
        if registry_refusal(r.role, r.reason) {
            let audited = Audited { would: r.would, workload: Some(&r.workload), reason: r.reason.as_str() };
            self.refused(r, audited, || r.host.as_deref().map_or_else(|| r.orig_dst.to_string(), str::to_string));
        }
    }

    /// A refusal, or audit mode's would-be refusal: kept for `/suggest`, and
    /// counted by workload and host when audit mode let it go.
    fn refused(&self, record: &impl serde::Serialize, audited: Audited<'_>, host: impl FnOnce() -> String) {
        if !self.refusals.observe(record) {
            self.suggest_dropped.inc();
        }
        if let (Some(Decision::Deny), Some(workload)) = (audited.would, audited.workload) {
            self.would_deny.count(workload, host(), audited.reason);
        }
    }

    pub fn encode(&self) -> String {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry)
            .expect("writing to a String does not fail");
        out
    }
}

/// A node's refusal (or audit mode's would-be refusal) by the registry: a
/// deny reason, which only the policy gives. The proxy's own refusals
/// (`malformed-request`…) and the gateway role's are not the registry's.
fn registry_refusal(role: &str, reason: Reason) -> bool {
    role == "node" && matches!(reason, Reason::Deny(_))
}

/// What a refused record says of audit mode.
struct Audited<'a> {
    would: Option<Decision>,
    workload: Option<&'a WorkloadIdentity>,
    reason: &'static str,
}
