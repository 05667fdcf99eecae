//! Decision tests: YAML in, verdict out; no sockets.

use std::net::{IpAddr, SocketAddr};

use crate::policy::decide::*;
use crate::{
    config::resources::sidecar::OutboundMode,
    policy::{EgressPolicy, PolicySettings},
    test_support::{policy, settings, snapshot},
};

fn policy_with(yaml: &str, mode: OutboundMode) -> EgressPolicy {
    EgressPolicy::build(snapshot(yaml), PolicySettings { outbound_mode: mode, ..settings() })
}

struct Answers(Vec<(&'static str, IpAddr)>);

impl DnsKnowledge for Answers {
    fn answered(&self, _: IpAddr, name: &str, ip: IpAddr) -> bool {
        self.0.iter().any(|(n, i)| *n == name && *i == ip)
    }
    fn names_for(&self, _: IpAddr, ip: IpAddr) -> Vec<String> {
        self.0.iter().filter(|(_, i)| *i == ip).map(|(n, _)| n.to_string()).collect()
    }
}

const CLIENT: &str = "198.18.1.2";

fn verdict_from(p: &EgressPolicy, client: &str, dst: &str, detected: Detected<'_>, dns: &dyn DnsKnowledge) -> Verdict {
    let client: IpAddr = client.parse().unwrap();
    let workload = p.identify(client, None);
    let facts = ConnectionFacts { workload: &workload, client, orig_dst: dst.parse::<SocketAddr>().unwrap(), detected, request: None, pick: 0 };
    decide(&facts, p, dns)
}

fn verdict(p: &EgressPolicy, dst: &str, detected: Detected<'_>) -> Verdict {
    verdict_from(p, CLIENT, dst, detected, &NoDns)
}

fn tls(sni: &str) -> Detected<'_> {
    Detected::Tls { sni: Some(sni) }
}

fn http(host: &str) -> Detected<'_> {
    Detected::Http { host: Some(host) }
}

fn denied(v: &Verdict) -> DenyReason {
    match v {
        Verdict::Deny { reason, .. } => *reason,
        other => panic!("expected a denial, got {other:?}"),
    }
}

fn allowed(v: &Verdict) -> (&Target, AllowReason, Option<&str>) {
    match v {
        Verdict::Allow { target, reason, matched, .. } => (target, *reason, matched.as_ref().map(|m| &*m.name)),
        other => panic!("expected an allow, got {other:?}"),
    }
}

const SE: &str = "apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: allowed, namespace: default}
spec:
  hosts: [allowed.test]
  ports:
  - {number: 443, name: tls, protocol: TLS}
  - {number: 80, name: http, protocol: HTTP}
  location: MESH_EXTERNAL
  resolution: DNS
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: wild, namespace: default}
spec:
  hosts: ['*.example.test']
  ports: [{number: 443, name: tls, protocol: TLS}]
  resolution: NONE
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: pinned, namespace: default}
spec:
  hosts: [pinned.test]
  addresses: [203.0.113.20/32, '2001:db8:113::20/128']
  ports: [{number: 443, name: https, protocol: HTTPS}]
  resolution: NONE
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: db, namespace: default}
spec:
  hosts: [db.internet.test]
  addresses: [203.0.113.128/25]
  ports: [{number: 5432, name: tcp-pg, protocol: TCP}]
  resolution: NONE
";

#[test]
fn a_registered_sni_goes_to_the_proxys_own_resolution_never_the_dialled_ip() {
    let p = policy(SE);
    let v = verdict(&p, "192.0.2.66:443", tls("allowed.test"));
    let (target, reason, matched) = allowed(&v);
    assert_eq!(target, &Target::Resolve { host: "allowed.test".into(), port: 443 });
    assert_eq!((reason, matched), (AllowReason::RegisteredHost, Some("allowed")));
}

#[test]
fn an_unregistered_name_is_denied() {
    let p = policy(SE);
    assert_eq!(denied(&verdict(&p, "203.0.113.10:443", tls("evil.test"))), DenyReason::NotRegistered);
    assert_eq!(denied(&verdict(&p, "203.0.113.10:80", http("evil.test"))), DenyReason::NotRegistered);
}

#[test]
fn a_wildcard_matches_subdomains_only() {
    let p = policy(SE);
    let dns = Answers(vec![("a.example.test", "203.0.113.30".parse().unwrap())]);
    let ok = verdict_from(&p, CLIENT, "203.0.113.30:443", tls("a.example.test"), &dns);
    assert_eq!(allowed(&ok).1, AllowReason::RegisteredHost);
    assert_eq!(denied(&verdict(&p, "203.0.113.30:443", tls("example.test"))), DenyReason::NotRegistered);
    assert_eq!(denied(&verdict(&p, "203.0.113.30:443", tls("a.example.test.evil.test"))), DenyReason::NotRegistered);
}

#[test]
fn resolution_none_needs_the_ip_in_addresses_or_in_our_dns_answer() {
    let p = policy(SE);
    assert_eq!(allowed(&verdict(&p, "203.0.113.20:443", tls("pinned.test"))).0, &Target::Original("203.0.113.20:443".parse().unwrap()));
    assert_eq!(denied(&verdict(&p, "203.0.113.99:443", tls("pinned.test"))), DenyReason::IpNameMismatch);
    // A wildcard NONE entry without addresses: only what our DNS answered.
    assert_eq!(denied(&verdict(&p, "203.0.113.31:443", tls("b.example.test"))), DenyReason::IpNameMismatch);
    let dns = Answers(vec![("b.example.test", "203.0.113.31".parse().unwrap())]);
    let v = verdict_from(&p, CLIENT, "203.0.113.31:443", tls("b.example.test"), &dns);
    assert_eq!(allowed(&v).0, &Target::Original("203.0.113.31:443".parse().unwrap()));
}

#[test]
fn a_host_header_for_a_registered_name_sent_to_another_ip_is_not_sent_there() {
    let p = policy(SE);
    // DNS entry: the proxy resolves allowed.test itself.
    let v = verdict(&p, "192.0.2.66:80", http("allowed.test"));
    assert_eq!(allowed(&v).0, &Target::Resolve { host: "allowed.test".into(), port: 80 });
    // NONE entry with addresses: a foreign IP is refused.
    assert_eq!(denied(&verdict(&p, "192.0.2.66:443", tls("pinned.test"))), DenyReason::IpNameMismatch);
}

#[test]
fn opaque_tcp_is_decided_by_cidr_and_port() {
    let p = policy(SE);
    let v = verdict(&p, "203.0.113.200:5432", Detected::Opaque);
    assert_eq!(allowed(&v), (&Target::Original("203.0.113.200:5432".parse().unwrap()), AllowReason::RegisteredAddress, Some("db")));
    assert_eq!(denied(&verdict(&p, "203.0.113.10:5432", Detected::Opaque)), DenyReason::NotRegistered);
    assert_eq!(denied(&verdict(&p, "203.0.113.200:5433", Detected::Opaque)), DenyReason::PortNotRegistered);
}

#[test]
fn a_tcp_port_admits_any_name_by_address() {
    let p = policy(SE);
    let v = verdict(&p, "203.0.113.200:5432", tls("whatever.test"));
    assert_eq!(allowed(&v).1, AllowReason::RegisteredAddress);
}

#[test]
fn an_address_learned_through_our_dns_allows_opaque_tcp() {
    let p = policy(SE);
    let dns = Answers(vec![("allowed.test", "203.0.113.40".parse().unwrap())]);
    let v = verdict_from(&p, CLIENT, "203.0.113.40:443", Detected::Opaque, &dns);
    assert_eq!(allowed(&v).1, AllowReason::DnsLearned);
    assert_eq!(denied(&verdict(&p, "203.0.113.40:443", Detected::Opaque)), DenyReason::NotRegistered);
}

#[test]
fn wrong_port_and_wrong_protocol_are_named() {
    let p = policy(SE);
    assert_eq!(denied(&verdict(&p, "203.0.113.10:8443", tls("allowed.test"))), DenyReason::PortNotRegistered);
    assert_eq!(denied(&verdict(&p, "203.0.113.10:443", http("allowed.test"))), DenyReason::ProtocolMismatch);
}

#[test]
fn ipv6_addresses_and_mapped_ipv4_match_cidrs() {
    let p = policy(SE);
    let v6 = verdict(&p, "[2001:db8:113::20]:443", tls("pinned.test"));
    assert_eq!(allowed(&v6).1, AllowReason::RegisteredHost);
    let mapped = verdict(&p, "[::ffff:203.0.113.200]:5432", Detected::Opaque);
    assert_eq!(allowed(&mapped).1, AllowReason::RegisteredAddress);
}

#[test]
fn allow_any_lets_unregistered_traffic_through_to_the_dialled_address() {
    let p = policy_with(SE, OutboundMode::AllowAny);
    let v = verdict(&p, "192.0.2.9:443", tls("unknown.test"));
    assert_eq!(allowed(&v), (&Target::Original("192.0.2.9:443".parse().unwrap()), AllowReason::AllowAny, None));
}

const SCOPED: &str = "apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: a, namespace: shop}
spec:
  hosts: [a.test]
  ports: [{number: 443, name: tls, protocol: TLS}]
  resolution: DNS
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: pod-a, namespace: shop}
spec: {address: 198.18.1.2, labels: {app: a}, serviceAccount: sa-a}
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: pod-b, namespace: shop}
spec: {address: 198.18.2.2, labels: {app: b}}
---
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: {name: only-b, namespace: shop}
spec:
  workloadSelector: {labels: {app: b}}
  egress: [{hosts: ['./nothing.test']}]
  outboundTrafficPolicy: {mode: REGISTRY_ONLY}
---
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: {name: open, namespace: lab}
spec:
  outboundTrafficPolicy: {mode: ALLOW_ANY}
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: private, namespace: lab}
spec:
  hosts: [private.test]
  exportTo: ['.']
  ports: [{number: 443, name: tls, protocol: TLS}]
  resolution: DNS
";

#[test]
fn workloads_are_identified_by_address() {
    let p = policy(SCOPED);
    let w = p.identify("198.18.1.2".parse().unwrap(), None);
    assert_eq!((&*w.namespace, w.name.as_deref(), w.service_account.as_deref()), ("shop", Some("pod-a"), Some("sa-a")));
    let unknown = p.identify("198.18.9.9".parse().unwrap(), None);
    assert_eq!((&*unknown.namespace, unknown.name.as_deref()), ("default", None));
}

#[test]
fn a_sidecar_narrows_what_its_workloads_may_reach() {
    let p = policy(SCOPED);
    let a = verdict_from(&p, "198.18.1.2", "203.0.113.10:443", tls("a.test"), &NoDns);
    assert_eq!(allowed(&a).1, AllowReason::RegisteredHost);
    let b = verdict_from(&p, "198.18.2.2", "203.0.113.10:443", tls("a.test"), &NoDns);
    assert_eq!(denied(&b), DenyReason::NotInSidecarScope);
}

#[test]
fn export_to_dot_hides_an_entry_from_other_namespaces() {
    let p = policy(SCOPED);
    // A client of the default namespace cannot see lab's private entry.
    assert_eq!(denied(&verdict(&p, "203.0.113.10:443", tls("private.test"))), DenyReason::NotRegistered);
    // Nor can shop's pod-a.
    let v = verdict_from(&p, "198.18.1.2", "203.0.113.10:443", tls("private.test"), &NoDns);
    assert_eq!(denied(&v), DenyReason::NotRegistered);
}

#[test]
fn a_sidecar_may_switch_its_namespace_to_allow_any() {
    let p = policy(&(SCOPED.to_string() + "---\napiVersion: networking.istio.io/v1\nkind: WorkloadEntry\nmetadata: {name: lab-vm, namespace: lab}\nspec: {address: 198.18.3.2}\n"));
    let v = verdict_from(&p, "198.18.3.2", "192.0.2.1:443", tls("anything.test"), &NoDns);
    assert_eq!(allowed(&v).1, AllowReason::AllowAny);
}

#[test]
fn static_entries_go_to_their_endpoints_with_named_ports() {
    let p = policy(
        "apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: legacy, namespace: default}
spec:
  hosts: [legacy.test]
  ports: [{number: 80, name: http, protocol: HTTP}]
  resolution: STATIC
  endpoints:
  - {address: 198.51.100.5, ports: {http: 8080}}
  - {address: 198.51.100.6}
",
    );
    let v = verdict(&p, "192.0.2.1:80", http("legacy.test"));
    assert_eq!(
        allowed(&v).0,
        &Target::Endpoints(vec!["198.51.100.5:8080".parse().unwrap(), "198.51.100.6:80".parse().unwrap()])
    );
}

#[test]
fn names_match_case_insensitively_and_without_the_trailing_dot() {
    let p = policy(SE);
    assert_eq!(allowed(&verdict(&p, "203.0.113.10:443", tls("Allowed.TEST."))).1, AllowReason::RegisteredHost);
}

#[test]
fn an_unregistered_name_to_an_address_registered_on_another_port_is_not_registered() {
    // 203.0.113.200 is db's, on 5432 only; the name decides the reason.
    let p = policy(SE);
    assert_eq!(denied(&verdict(&p, "203.0.113.200:443", tls("other.test"))), DenyReason::NotRegistered);
    assert_eq!(denied(&verdict(&p, "203.0.113.200:443", Detected::Opaque)), DenyReason::PortNotRegistered);
}

#[test]
fn a_cgroup_named_on_the_command_line_identifies_its_workload_before_the_address() {
    let cgroups = [(42u64, ("shop".to_string(), "pod-b".to_string())), (43, ("infra".to_string(), "agent".to_string()))];
    let p = EgressPolicy::build(snapshot(SCOPED), PolicySettings { cgroup_workloads: cgroups.into_iter().collect(), ..settings() });
    // Same address as pod-a, but the cgroup says pod-b.
    let w = p.identify("198.18.1.2".parse().unwrap(), Some(42));
    assert_eq!((w.name.as_deref(), w.labels.get("app").map(String::as_str)), (Some("pod-b"), Some("b")));
    // An entry the configuration lacks: namespace and name, no labels.
    let w = p.identify("198.18.0.1".parse().unwrap(), Some(43));
    assert_eq!((&*w.namespace, w.name.as_deref(), w.labels.len()), ("infra", Some("agent"), 0));
    // Another cgroup: by address.
    assert_eq!(p.identify("198.18.1.2".parse().unwrap(), Some(7)).name.as_deref(), Some("pod-a"));
}

#[test]
fn at_a_gateway_the_exit_must_fit_the_port_protocol_unless_wrapped_or_opaque() {
    let p = policy(
        "apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: api, namespace: default}
spec:
  hosts: [api.example.com]
  ports: [{number: 80, name: http, protocol: HTTP}, {number: 443, name: tls, protocol: TLS}]
  resolution: DNS
",
    );
    let w = p.identify(CLIENT.parse().unwrap(), None);
    let exit = |port, exit| decide_exit(&p, &w, "api.example.com", port, exit);
    assert!(matches!(exit(80, Exit::Http), Verdict::Allow { .. }));
    assert_eq!(denied(&exit(80, Exit::Tls)), DenyReason::ProtocolMismatch, "a TLS stream passed through needs a TLS port");
    assert!(matches!(exit(80, Exit::Any), Verdict::Allow { .. }), "TLS originated around HTTP");
    assert_eq!(denied(&exit(443, Exit::Http)), DenyReason::ProtocolMismatch);
    assert!(matches!(exit(443, Exit::Tls), Verdict::Allow { .. }) && matches!(exit(443, Exit::Any), Verdict::Allow { .. }));
}
