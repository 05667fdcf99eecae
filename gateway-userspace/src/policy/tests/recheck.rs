//! Re-decision tests: a connection decided under one configuration, asked
//! again under the next; no sockets.

use std::net::{IpAddr, SocketAddr};

use crate::policy::*;
use crate::policy::recheck::*;
use crate::policy::AllowReason;
use crate::{policy::NoDns, test_support::policy};

const CLIENT: &str = "198.18.1.2";

const DB: &str = "apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: db, namespace: default}
spec:
  hosts: [db.test]
  addresses: [203.0.113.20/32]
  ports: [{number: 5432, name: tcp-pg, protocol: TCP}]
  resolution: NONE
";

const WEB: &str = "apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: web, namespace: default}
spec:
  hosts: [web.test]
  ports: [{number: 443, name: tls, protocol: TLS}]
  resolution: DNS
";

const LEARNED: &str = "apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: learned, namespace: default}
spec:
  hosts: [learned.test]
  ports: [{number: 7, name: tcp-echo, protocol: TCP}]
  resolution: DNS
";

const STATIC_AB: &str = "apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: pool, namespace: default}
spec:
  hosts: [pool.test]
  ports: [{number: 9000, name: tcp, protocol: TCP}]
  resolution: STATIC
  endpoints: [{address: 203.0.113.30}, {address: 203.0.113.31}]
";

/// `pool.test` on port 443 of the STATIC endpoints, steered by a mesh route.
const STEER_TO_POOL: &str = "apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: via-pool, namespace: default}
spec:
  hosts: [web.test]
  gateways: [mesh]
  tls:
  - match: [{port: 443, sniHosts: [web.test]}]
    route: [{destination: {host: pool.test, port: {number: 9000}}}]
";

fn yaml(docs: &[&str]) -> String {
    docs.join("---\n")
}

struct Told(&'static str, IpAddr);

impl DnsKnowledge for Told {
    fn answered(&self, _: IpAddr, name: &str, ip: IpAddr) -> bool {
        name == self.0 && ip == self.1
    }
    fn names_for(&self, _: IpAddr, ip: IpAddr) -> Vec<String> {
        if ip == self.1 { vec![self.0.to_string()] } else { Vec::new() }
    }
}

/// Decides under `p`; returns the verdict and the kept facts.
fn decided(p: &EgressPolicy, dst: &str, detected: Detected<'_>, dns: &dyn DnsKnowledge) -> (Verdict, Decided) {
    let client: IpAddr = CLIENT.parse().unwrap();
    let workload = p.identify(client, None);
    let facts = ConnectionFacts { workload: &workload, client, orig_dst: dst.parse().unwrap(), detected, request: None, pick: 0 };
    decide_and_keep(&facts, p, dns)
}

fn sock(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

#[test]
fn an_opaque_stream_stands_while_its_address_stays_registered() {
    let before = policy(DB);
    let (verdict, kept) = decided(&before, "203.0.113.20:5432", Detected::Opaque, &NoDns);
    assert!(matches!(verdict, Verdict::Allow { .. }), "{verdict:?}");
    let upstream = sock("203.0.113.20:5432");
    assert!(kept.stands(&before, &NoDns, upstream));
    assert!(kept.stands(&policy(&yaml(&[DB, WEB])), &NoDns, upstream), "an unrelated addition changes nothing");
    assert!(!kept.stands(&policy(WEB), &NoDns, upstream), "its entry removed");
    assert!(!kept.stands(&policy(&DB.replace("5432", "5433")), &NoDns, upstream), "its port removed");
}

#[test]
fn a_tls_stream_stands_while_its_host_is_registered_on_its_port() {
    let (_, kept) = decided(&policy(WEB), "198.51.100.9:443", Detected::Tls { sni: Some("web.test") }, &NoDns);
    let upstream = sock("198.51.100.80:443");
    assert!(kept.stands(&policy(&yaml(&[WEB, DB])), &NoDns, upstream));
    assert!(!kept.stands(&policy(DB), &NoDns, upstream));
    assert!(!kept.stands(&policy(&WEB.replace("protocol: TLS", "protocol: HTTP")), &NoDns, upstream), "a port no longer TLS");
}

#[test]
fn what_the_dns_server_told_at_the_decision_outlives_its_ttl() {
    let dst: IpAddr = "198.51.100.7".parse().unwrap();
    let p = policy(LEARNED);
    let (verdict, kept) = decided(&p, "198.51.100.7:7", Detected::Opaque, &Told("learned.test", dst));
    assert!(matches!(&verdict, Verdict::Allow { reason: AllowReason::DnsLearned, .. }), "{verdict:?}");
    let upstream = sock("198.51.100.7:7");
    assert!(kept.stands(&policy(&yaml(&[LEARNED, DB])), &NoDns, upstream), "the answer expired, the fact stays");
    assert!(!kept.stands(&policy(DB), &NoDns, upstream), "the name is no longer registered");
}

#[test]
fn endpoints_stand_while_they_still_list_the_one_connected_to() {
    let p = policy(&yaml(&[WEB, STATIC_AB, STEER_TO_POOL]));
    let (verdict, kept) = decided(&p, "198.51.100.9:443", Detected::Tls { sni: Some("web.test") }, &NoDns);
    assert!(matches!(verdict, Verdict::Steer { .. }), "{verdict:?}");
    let upstream = sock("203.0.113.31:9000");
    let only_b = STATIC_AB.replace("{address: 203.0.113.30}, ", "");
    let only_a = STATIC_AB.replace(", {address: 203.0.113.31}", "");
    assert!(kept.stands(&policy(&yaml(&[WEB, &only_b, STEER_TO_POOL])), &NoDns, upstream));
    assert!(!kept.stands(&policy(&yaml(&[WEB, &only_a, STEER_TO_POOL])), &NoDns, upstream), "its endpoint removed");
    assert!(!kept.stands(&policy(&yaml(&[WEB, STATIC_AB])), &NoDns, upstream), "no longer steered: it would go direct");
}

#[test]
fn a_direct_stream_falls_when_a_route_starts_steering_it() {
    let (_, kept) = decided(&policy(&yaml(&[WEB, STATIC_AB])), "198.51.100.9:443", Detected::Tls { sni: Some("web.test") }, &NoDns);
    let upstream = sock("198.51.100.80:443");
    assert!(!kept.stands(&policy(&yaml(&[WEB, STATIC_AB, STEER_TO_POOL])), &NoDns, upstream));
}

#[test]
fn a_denied_connection_never_stands() {
    let (verdict, kept) = decided(&policy(WEB), "203.0.113.20:5432", Detected::Opaque, &NoDns);
    assert!(matches!(verdict, Verdict::Deny { .. }));
    assert!(!kept.stands(&policy(DB), &NoDns, sock("203.0.113.20:5432")));
}

#[test]
fn a_gateway_exit_stands_while_the_registry_lets_its_destination_out() {
    let route = RouteChoice {
        kind: "tcp",
        namespace: "default".into(),
        name: "r".into(),
        destination: "pool.test".into(),
        port: Some(9000),
        subset: None,
    };
    let gateway = WorkloadIdentity { namespace: "default".into(), name: None, labels: Default::default(), service_account: None };
    let p = policy(STATIC_AB);
    let Verdict::Allow { target, .. } = decide_route_exit(&p, &gateway, &route, 9000, Exit::Any) else { panic!("allowed") };
    let kept = ExitDecided { workload: gateway, route, port: 9000, exit: Exit::Any, target };
    let upstream = sock("203.0.113.30:9000");
    assert!(kept.stands(&p, upstream));
    assert!(!kept.stands(&policy(DB), upstream), "its entry removed");
    assert!(!kept.stands(&policy(&STATIC_AB.replace("{address: 203.0.113.30}, ", "")), upstream), "its endpoint removed");
}
