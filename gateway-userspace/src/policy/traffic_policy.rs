//! Which DestinationRule settings apply to one destination: host, subset
//! and port. The one place that reads a rule's `trafficPolicy` for the
//! proxy, the gateway role and mutual TLS alike.
//!
//! Istio's precedence, field by field (`tls`, `connectionPool`,
//! `loadBalancer`, `outlierDetection`): a subset inherits the rule's
//! traffic policy and overrides what it sets itself; within each level, the
//! `portLevelSettings` entry for the port overrides that level's own value.
//! Most specific first: the subset's port entry, the subset, the rule's port
//! entry, the rule. A field is taken whole from the level that sets it
//! (a `connectionPool` is not merged setting by setting).

use crate::config::{
    Snapshot,
    resources::destination_rule::{
        ClientTls, ClientTlsMode, ConnectionPool, DestinationRule, LoadBalancer, OutlierDetection, PortTrafficPolicy,
        TrafficPolicy,
    },
};

/// The effective settings for one destination; `None` where no level sets
/// the field.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ResolvedTrafficPolicy {
    pub tls: Option<ClientTls>,
    pub connection_pool: Option<ConnectionPool>,
    pub load_balancer: Option<LoadBalancer>,
    pub outlier_detection: Option<OutlierDetection>,
}

/// How the proxy speaks to the destination, from the resolved `tls`.
#[derive(Clone, Debug, PartialEq)]
pub enum UpstreamTls<'a> {
    /// No `tls`, or `DISABLE`.
    Plain,
    /// `SIMPLE` or `MUTUAL`: the proxy originates TLS with these settings.
    Originate(&'a ClientTls),
    /// `ISTIO_MUTUAL`: the workload's own mesh identity.
    IstioMutual,
}

impl ResolvedTrafficPolicy {
    pub fn upstream_tls(&self) -> UpstreamTls<'_> {
        match &self.tls {
            Some(t) if matches!(t.mode, ClientTlsMode::Simple | ClientTlsMode::Mutual) => UpstreamTls::Originate(t),
            Some(t) if t.mode == ClientTlsMode::IstioMutual => UpstreamTls::IstioMutual,
            _ => UpstreamTls::Plain,
        }
    }
}

/// The settings for `host:port` (and `subset`, when a route names one)
/// seen by a workload in `namespace`.
pub fn resolve_traffic_policy(
    snapshot: &Snapshot,
    namespace: &str,
    host: &str,
    subset: Option<&str>,
    port: u16,
) -> ResolvedTrafficPolicy {
    match snapshot.destination_rule_for(host, namespace) {
        Some(rule) => resolve_in_rule(rule, subset, port),
        None => ResolvedTrafficPolicy::default(),
    }
}

/// [`resolve_traffic_policy`] within one rule. A subset the rule does not
/// define contributes nothing: the rule's own levels apply.
fn resolve_in_rule(rule: &DestinationRule, subset: Option<&str>, port: u16) -> ResolvedTrafficPolicy {
    let subset_policy = subset.and_then(|s| rule.subset(s)).and_then(|s| s.traffic_policy.as_ref());
    let mut levels: Vec<Level<'_>> = Vec::with_capacity(4);
    for policy in [subset_policy, rule.traffic_policy.as_ref()].into_iter().flatten() {
        if let Some(at_port) = policy.port_level_settings.iter().find(|p| p.port == Some(port)) {
            levels.push(Level::Port(at_port));
        }
        levels.push(Level::Whole(policy));
    }
    ResolvedTrafficPolicy {
        tls: levels.iter().find_map(|l| l.tls()).cloned(),
        connection_pool: levels.iter().find_map(|l| l.connection_pool()).cloned(),
        load_balancer: levels.iter().find_map(|l| l.load_balancer()).cloned(),
        outlier_detection: levels.iter().find_map(|l| l.outlier_detection()).cloned(),
    }
}

/// One level of precedence: a traffic policy's own fields, or its entry
/// for the port.
enum Level<'a> {
    Whole(&'a TrafficPolicy),
    Port(&'a PortTrafficPolicy),
}

impl Level<'_> {
    fn tls(&self) -> Option<&ClientTls> {
        match self {
            Level::Whole(p) => p.tls.as_ref(),
            Level::Port(p) => p.tls.as_ref(),
        }
    }

    fn connection_pool(&self) -> Option<&ConnectionPool> {
        match self {
            Level::Whole(p) => p.connection_pool.as_ref(),
            Level::Port(p) => p.connection_pool.as_ref(),
        }
    }

    fn load_balancer(&self) -> Option<&LoadBalancer> {
        match self {
            Level::Whole(p) => p.load_balancer.as_ref(),
            Level::Port(p) => p.load_balancer.as_ref(),
        }
    }

    fn outlier_detection(&self) -> Option<&OutlierDetection> {
        match self {
            Level::Whole(p) => p.outlier_detection.as_ref(),
            Level::Port(p) => p.outlier_detection.as_ref(),
        }
    }
}
