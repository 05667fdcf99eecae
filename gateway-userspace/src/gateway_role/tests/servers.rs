use super::super::{bound_routes::BoundRoutes, servers::*};
use crate::{
    config::{Labels, Snapshot},
    policy::{HttpFacts, WorkloadIdentity},
    test_support::{gateway_snapshot, labels},
};

const EGRESS: &str = include_str!("../../../../tests/fixtures/istio/good/v1/03-egress-gateway.yaml");

fn snapshot() -> std::sync::Arc<Snapshot> {
    gateway_snapshot(EGRESS, &labels(&[("istio", "egressgateway")]))
}

#[test]
fn the_task_gateway_gives_one_passthrough_port_for_matching_labels_only() {
    let s = snapshot();
    let labels: Labels = [("istio".into(), "egressgateway".into())].into();
    let (ports, skipped) = plan(&s, &labels);
    assert_eq!(
        ports,
        vec![PortPlan {
            bind: None,
            port: 443,
            kind: ServerKind::Passthrough,
            gateways: vec![("default".into(), "egressgateway".into())],
            https_redirect: false,
            tls: None,
            server_hosts: vec![(("default".into(), "egressgateway".into()), crate::config::ServerHost::parse("httpbin.org"))],
        }]
    );
    assert!(skipped.is_empty());
    assert!(plan(&s, &[("istio".into(), "ingressgateway".into())].into()).0.is_empty());
}

#[test]
fn a_server_host_scope_limits_which_namespaces_may_bind() {
    let yaml = "apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: gw, namespace: edge}
spec:
  selector: {istio: ingressgateway}
  servers:
  - port: {number: 80, name: http, protocol: HTTP}
    hosts: [team-a/a.test, '*/open.test']
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: a, namespace: team-b}
spec:
  hosts: [a.test, open.test, other.test]
  gateways: [edge/gw]
  http: [{route: [{destination: {host: x.team-b.svc.cluster.local}}]}]
";
    let s = gateway_snapshot(yaml, &labels(&[("istio", "ingressgateway")]));
    let port = plan(&s, &[("istio".into(), "ingressgateway".into())].into()).0.remove(0);
    let gateway = WorkloadIdentity { namespace: "edge".into(), name: None, labels: Default::default(), service_account: None };
    let routes = BoundRoutes::new(s.clone());
    let ask = |host: &str| http_route(&routes, &port, &HttpFacts::get(host), &gateway, 0);
    assert!(ask("open.test").is_some(), "any namespace may bind */open.test");
    assert!(ask("a.test").is_none(), "a.test is team-a's only");
    assert!(ask("other.test").is_none(), "the server does not list other.test");
}

#[test]
fn sni_routes_to_the_external_host_only_through_gateway_bound_matches() {
    let s = snapshot();
    let labels: Labels = [("istio".into(), "egressgateway".into())].into();
    let port = plan(&s, &labels).0.remove(0);
    let gateway = WorkloadIdentity { namespace: "default".into(), name: None, labels: labels.clone().into(), service_account: None };
    let r = tls_route(&s, &port, "httpbin.org", &gateway, 0).expect("a route");
    assert_eq!((&*r.destination, r.port), ("httpbin.org", Some(443)));
    assert!(tls_route(&s, &port, "other.org", &gateway, 0).is_none());
}
