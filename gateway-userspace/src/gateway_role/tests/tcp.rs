//! Tests of `gateway_role/tcp.rs`.

use crate::gateway_role::servers::{TcpFacts, tcp_route};
use crate::{config::Labels, test_support::gateway_snapshot};

const YAML: &str = "apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: gw, namespace: edge}
spec:
  selector: {istio: ingressgateway}
  servers:
  - port: {number: 31400, name: tcp, protocol: TCP}
    hosts: ['*']
  - port: {number: 31401, name: tcp-b, protocol: TCP}
    hosts: [team-a/*]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: db, namespace: edge}
spec:
  hosts: ['*']
  gateways: [gw]
  tcp:
  - match: [{port: 31400, sourceLabels: {tier: blue}}]
    route: [{destination: {host: blue.edge.svc.cluster.local, port: {number: 5432}}}]
  - match: [{port: 31400, destinationSubnets: [198.51.100.0/24]}]
    route: [{destination: {host: other.edge.svc.cluster.local, port: {number: 5432}}}]
  - match: [{port: 31400}]
    route:
    - {destination: {host: v1.edge.svc.cluster.local, port: {number: 5432}}, weight: 75}
    - {destination: {host: v2.edge.svc.cluster.local, port: {number: 5432}}, weight: 25}
  - route: [{destination: {host: fallback.edge.svc.cluster.local, port: {number: 5432}}}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: a, namespace: team-a}
spec:
  hosts: ['*']
  gateways: [edge/gw]
  tcp: [{route: [{destination: {host: a.team-a.svc.cluster.local, port: {number: 5432}}}]}]
";

fn labels(extra: &[(&str, &str)]) -> Labels {
    let mut l: Labels = [("istio".into(), "ingressgateway".into())].into();
    l.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    l
}

fn ask(gateway_labels: &Labels, port: u16, local: [u8; 4], pick: u32) -> Option<String> {
    let s = gateway_snapshot(YAML, gateway_labels);
    let (ports, skipped) = super::super::servers::plan(&s, gateway_labels);
    assert!(skipped.is_empty(), "{skipped:?}");
    let plan = ports.into_iter().find(|p| p.port == port).expect("the port is planned");
    assert_eq!(plan.kind, super::super::ServerKind::Tcp);
    let gateway = crate::policy::WorkloadIdentity { namespace: "edge".into(), name: None, labels: gateway_labels.clone().into(), service_account: None };
    let facts = TcpFacts { local: local.into(), gateway: &gateway };
    tcp_route(&s, &plan, &facts, pick).map(|r| r.destination.to_string())
}

#[test]
fn first_fitting_tcp_route_by_port_labels_and_local_address() {
    let plain = labels(&[]);
    assert_eq!(ask(&plain, 31400, [198, 18, 0, 1], 0).as_deref(), Some("v1.edge.svc.cluster.local"));
    assert_eq!(ask(&plain, 31400, [198, 18, 0, 1], 80).as_deref(), Some("v2.edge.svc.cluster.local"), "weights 75/25");
    assert_eq!(ask(&plain, 31400, [198, 51, 100, 7], 0).as_deref(), Some("other.edge.svc.cluster.local"), "destinationSubnets");
    assert_eq!(ask(&labels(&[("tier", "blue")]), 31400, [198, 18, 0, 1], 0).as_deref(), Some("blue.edge.svc.cluster.local"), "sourceLabels: the gateway's own");
}

#[test]
fn a_server_host_scope_says_whose_virtual_services_bind() {
    assert_eq!(ask(&labels(&[]), 31401, [198, 18, 0, 1], 0).as_deref(), Some("a.team-a.svc.cluster.local"), "31401 admits team-a's only");
}
