//! The DestinationRule settings that apply to one destination: a subset's
//! traffic policy over the rule's, and port-level settings over both levels'
//! defaults, field by field, as Istio merges them.

use crate::config::{
    Snapshot,
    resources::destination_rule::{ConnectionPool, LoadBalancer, OutlierDetection, TrafficPolicy},
};

#[derive(Clone, Debug, Default, PartialEq)]
pub struct UpstreamPolicy {
    pub pool: Option<ConnectionPool>,
    pub outlier: Option<OutlierDetection>,
    pub balancer: Option<LoadBalancer>,
}

/// The settings for `host:port` (and `subset`) seen from `namespace`.
pub fn upstream_policy(snapshot: &Snapshot, namespace: &str, host: &str, subset: Option<&str>, port: u16) -> UpstreamPolicy {
    let Some(rule) = snapshot.destination_rule_for(host, namespace) else {
        return UpstreamPolicy::default();
    };
    let subset_policy = subset.and_then(|s| rule.subset(s)).and_then(|s| s.traffic_policy.as_ref());
    // Most specific first.
    let levels: Vec<&TrafficPolicy> = subset_policy.into_iter().chain(rule.traffic_policy.as_ref()).collect();
    let at_port = |l: &TrafficPolicy| l.port_level_settings.iter().find(|p| p.port == Some(port)).cloned();
    UpstreamPolicy {
        pool: levels.iter().find_map(|l| at_port(l).and_then(|p| p.connection_pool).or_else(|| l.connection_pool.clone())),
        outlier: levels.iter().find_map(|l| at_port(l).and_then(|p| p.outlier_detection).or_else(|| l.outlier_detection.clone())),
        balancer: levels.iter().find_map(|l| at_port(l).and_then(|p| p.load_balancer).or_else(|| l.load_balancer.clone())),
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::config::{LoadOptions, load_str, resources::destination_rule::SimpleLb};

    const RULE: &str = "apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: r, namespace: default}
spec:
  host: api.default.svc.cluster.local
  trafficPolicy:
    loadBalancer: {simple: ROUND_ROBIN}
    connectionPool: {tcp: {maxConnections: 10}}
    portLevelSettings:
    - port: {number: 9090}
      loadBalancer: {simple: RANDOM}
  subsets:
  - name: v2
    labels: {version: v2}
    trafficPolicy:
      loadBalancer: {consistentHash: {useSourceIp: true}}
";

    #[test]
    fn a_subset_overrides_the_rule_and_a_port_overrides_its_level() {
        let s = load_str(Path::new("/fixtures/dr.yaml"), RULE, &LoadOptions::default()).snapshot.expect("snapshot");
        let host = "api.default.svc.cluster.local";
        let top = upstream_policy(&s, "default", host, None, 80);
        assert_eq!(top.balancer.and_then(|b| b.simple), Some(SimpleLb::RoundRobin));
        assert_eq!(top.pool.and_then(|p| p.tcp_max_connections), Some(10));
        let port = upstream_policy(&s, "default", host, None, 9090);
        assert_eq!(port.balancer.and_then(|b| b.simple), Some(SimpleLb::Random));
        let v2 = upstream_policy(&s, "default", host, Some("v2"), 80);
        assert!(v2.balancer.is_some_and(|b| b.consistent_hash.is_some()), "the subset's balancer");
        assert_eq!(v2.pool.and_then(|p| p.tcp_max_connections), Some(10), "the rule's pool still applies");
        assert_eq!(upstream_policy(&s, "default", "other.test", None, 80), UpstreamPolicy::default());
    }
}
