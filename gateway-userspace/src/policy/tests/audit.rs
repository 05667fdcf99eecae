//! Audit mode (`audit.rs`): decided as under REGISTRY_ONLY, a refusal let go
//! to the dialled address and reported; re-decided audited.

use std::net::{IpAddr, SocketAddr};

use crate::{
    config::resources::sidecar::OutboundMode,
    policy::{
        AllowReason, ConnectionFacts, DenyReason, Detected, EgressPolicy, Enforcement, NoDns, PolicySettings, Target, Verdict, WouldDeny,
        decide_and_keep_enforced, decide_enforced,
    },
    test_support::{settings, snapshot},
};

const SE: &str = "apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: allowed, namespace: default}
spec:
  hosts: [allowed.test]
  ports: [{number: 443, name: tls, protocol: TLS}]
  resolution: DNS
";

fn policy(mode: OutboundMode) -> EgressPolicy {
    EgressPolicy::build(snapshot(SE), PolicySettings { outbound_mode: mode, ..settings() })
}

fn decide(p: &EgressPolicy, dst: &str, sni: &str, enforcement: Enforcement) -> (Verdict, Option<WouldDeny>) {
    let client: IpAddr = "198.18.1.2".parse().unwrap();
    let workload = p.identify(client, None);
    let facts =
        ConnectionFacts { workload: &workload, client, orig_dst: dst.parse().unwrap(), detected: Detected::Tls { sni: Some(sni) }, request: None, pick: 0 };
    decide_enforced(&facts, p, &NoDns, enforcement)
}

fn original(dst: &str) -> Target {
    Target::Original(dst.parse::<SocketAddr>().unwrap())
}

#[test]
fn a_refusal_goes_to_the_dialled_address_and_says_why() {
    let p = policy(OutboundMode::RegistryOnly);
    let (verdict, would) = decide(&p, "192.0.2.9:443", "other.test", Enforcement::Audit);
    assert!(matches!(verdict, Verdict::Allow { ref target, matched: None, .. } if *target == original("192.0.2.9:443")), "{verdict:?}");
    assert_eq!(would.map(|w| w.reason), Some(DenyReason::NotRegistered));
    // A near miss keeps its entry for the audit line, not for the target.
    let (_, would) = decide(&p, "192.0.2.9:8443", "allowed.test", Enforcement::Audit);
    let would = would.expect("port 8443 is not registered");
    assert_eq!(would.reason, DenyReason::PortNotRegistered);
    assert_eq!(would.matched.map(|m| m.host.to_string()), Some("allowed.test".to_string()));
}

#[test]
fn what_the_registry_allows_is_decided_as_without_audit() {
    let p = policy(OutboundMode::RegistryOnly);
    let audited = decide(&p, "192.0.2.9:443", "allowed.test", Enforcement::Audit);
    let enforced = decide(&p, "192.0.2.9:443", "allowed.test", Enforcement::Enforce);
    assert_eq!(audited, enforced);
    assert!(audited.1.is_none());
}

#[test]
fn allow_any_is_audited_as_registry_only() {
    let p = policy(OutboundMode::AllowAny);
    let (verdict, would) = decide(&p, "192.0.2.9:443", "other.test", Enforcement::Enforce);
    assert!(matches!(verdict, Verdict::Allow { reason: AllowReason::AllowAny, .. }));
    assert!(would.is_none());
    let (verdict, would) = decide(&p, "192.0.2.9:443", "other.test", Enforcement::Audit);
    assert!(matches!(verdict, Verdict::Allow { ref target, .. } if *target == original("192.0.2.9:443")));
    assert_eq!(would.map(|w| w.reason), Some(DenyReason::NotRegistered));
}

#[test]
fn enforced_refusals_are_unchanged() {
    let p = policy(OutboundMode::RegistryOnly);
    let (verdict, would) = decide(&p, "192.0.2.9:443", "other.test", Enforcement::Enforce);
    assert!(matches!(verdict, Verdict::Deny { reason: DenyReason::NotRegistered, .. }));
    assert!(would.is_none());
}

#[test]
fn an_audited_stream_stands_through_a_reload_that_still_would_refuse_it() {
    let p = policy(OutboundMode::RegistryOnly);
    let client: IpAddr = "198.18.1.2".parse().unwrap();
    let workload = p.identify(client, None);
    let dst: SocketAddr = "192.0.2.9:443".parse().unwrap();
    let facts = ConnectionFacts { workload: &workload, client, orig_dst: dst, detected: Detected::Tls { sni: Some("other.test") }, request: None, pick: 0 };
    let (_, would, audited) = decide_and_keep_enforced(&facts, &p, &NoDns, Enforcement::Audit);
    assert!(would.is_some());
    assert!(audited.stands(&p, &NoDns, dst), "re-decided audited, it is still let go");
    let (_, _, enforced) = decide_and_keep_enforced(&facts, &p, &NoDns, Enforcement::Enforce);
    assert!(!enforced.stands(&p, &NoDns, dst));
}
