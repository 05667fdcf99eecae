//! The DestinationRule resolver: Istio's precedence, field by field.

use crate::policy::traffic_policy::*;
use crate::{config::resources::destination_rule::SimpleLb, test_support::snapshot};

const HOST: &str = "api.default.svc.cluster.local";

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
      tls: {mode: SIMPLE, sni: port.test}
  subsets:
  - name: v2
    labels: {version: v2}
    trafficPolicy:
      loadBalancer: {consistentHash: {useSourceIp: true}}
  - name: secure
    labels: {version: v3}
    trafficPolicy:
      tls: {mode: SIMPLE, sni: subset.test}
      portLevelSettings:
      - port: {number: 8443}
        tls: {mode: ISTIO_MUTUAL}
  - name: plain
    labels: {version: v4}
    trafficPolicy:
      tls: {mode: DISABLE}
";

fn resolve(subset: Option<&str>, port: u16) -> ResolvedTrafficPolicy {
    resolve_traffic_policy(&snapshot(RULE), "default", HOST, subset, port)
}

fn sni(p: &ResolvedTrafficPolicy) -> Option<&str> {
    p.tls.as_ref().and_then(|t| t.sni.as_deref())
}

#[test]
fn a_subset_overrides_the_rule_and_a_port_overrides_its_level() {
    let top = resolve(None, 80);
    assert_eq!(top.load_balancer.and_then(|b| b.simple), Some(SimpleLb::RoundRobin));
    assert_eq!(top.connection_pool.and_then(|p| p.tcp_max_connections), Some(10));
    assert_eq!(top.tls, None);
    let port = resolve(None, 9090);
    assert_eq!(port.load_balancer.as_ref().and_then(|b| b.simple), Some(SimpleLb::Random));
    assert_eq!(sni(&port), Some("port.test"));
    let v2 = resolve(Some("v2"), 80);
    assert!(v2.load_balancer.is_some_and(|b| b.consistent_hash.is_some()), "the subset's balancer");
    assert_eq!(v2.connection_pool.and_then(|p| p.tcp_max_connections), Some(10), "the rule's pool still applies");
}

#[test]
fn a_subset_tls_applies_where_the_rule_has_none() {
    let secure = resolve(Some("secure"), 80);
    assert_eq!(sni(&secure), Some("subset.test"));
    assert!(matches!(secure.upstream_tls(), UpstreamTls::Originate(_)));
    assert_eq!(secure.connection_pool.and_then(|p| p.tcp_max_connections), Some(10), "inherited");
    // The subset's own level beats the rule's port entry.
    assert_eq!(sni(&resolve(Some("secure"), 9090)), Some("subset.test"));
    // The subset's port entry beats everything.
    assert_eq!(resolve(Some("secure"), 8443).upstream_tls(), UpstreamTls::IstioMutual);
    // DISABLE at the subset turns the rule's port TLS off.
    assert_eq!(resolve(Some("plain"), 9090).upstream_tls(), UpstreamTls::Plain);
}

#[test]
fn an_unknown_subset_or_host_falls_back() {
    assert_eq!(resolve(Some("nope"), 9090), resolve(None, 9090));
    let other = resolve_traffic_policy(&snapshot(RULE), "default", "other.test", None, 80);
    assert_eq!(other, ResolvedTrafficPolicy::default());
    assert_eq!(other.upstream_tls(), UpstreamTls::Plain);
}
