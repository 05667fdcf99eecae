//! Steering tests: Istio's egress-gateway task resources, node side.

use std::net::SocketAddr;

use crate::policy::*;
use crate::policy::decide::*;
use crate::{
    policy::EgressPolicy,
    test_support::{gateway_snapshot, labels, settings},
};

const TASK: &str = "apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: httpbin, namespace: default}
spec:
  hosts: [httpbin.test]
  ports:
  - {number: 80, name: http, protocol: HTTP}
  - {number: 443, name: tls, protocol: TLS}
  location: MESH_EXTERNAL
  resolution: DNS
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: egressgateway, namespace: istio-system}
spec:
  hosts: [istio-egressgateway.istio-system.svc.cluster.local]
  ports:
  - {number: 80, name: http, protocol: HTTP}
  - {number: 443, name: tls, protocol: TLS}
  location: MESH_INTERNAL
  resolution: STATIC
  endpoints: [{address: 198.18.10.2, labels: {istio: egressgateway}}]
---
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: istio-egressgateway, namespace: default}
spec:
  selector: {istio: egressgateway}
  servers:
  - port: {number: 443, name: tls, protocol: TLS}
    hosts: [httpbin.test]
    tls: {mode: PASSTHROUGH}
  - port: {number: 80, name: http, protocol: HTTP}
    hosts: [httpbin.test]
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: egressgateway-for-httpbin, namespace: default}
spec:
  host: istio-egressgateway.istio-system.svc.cluster.local
  subsets: [{name: httpbin}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: direct-httpbin-through-egress-gateway, namespace: default}
spec:
  hosts: [httpbin.test]
  gateways: [mesh, istio-egressgateway]
  tls:
  - match:
    - gateways: [mesh]
      port: 443
      sniHosts: [httpbin.test]
    route:
    - destination: {host: istio-egressgateway.istio-system.svc.cluster.local, subset: httpbin, port: {number: 443}}
  - match:
    - gateways: [istio-egressgateway]
      port: 443
      sniHosts: [httpbin.test]
    route:
    - destination: {host: httpbin.test, port: {number: 443}}
  http:
  - match:
    - gateways: [mesh]
      port: 80
    route:
    - destination: {host: istio-egressgateway.istio-system.svc.cluster.local, subset: httpbin, port: {number: 80}}
  - match:
    - gateways: [istio-egressgateway]
      port: 80
    route:
    - destination: {host: httpbin.test, port: {number: 80}}
";

fn policy(yaml: &str) -> EgressPolicy {
    EgressPolicy::build(gateway_snapshot(yaml, &labels(&[("istio", "egressgateway")])), settings())
}

fn verdict(p: &EgressPolicy, dst: &str, detected: Detected<'_>) -> Verdict {
    let client = "198.18.1.2".parse().unwrap();
    let workload = p.identify(client, None);
    let facts = ConnectionFacts { workload: &workload, client, orig_dst: dst.parse::<SocketAddr>().unwrap(), detected, request: None, pick: 0 };
    decide(&facts, p, &NoDns)
}

fn steered(v: &Verdict) -> (&Target, &RouteChoice) {
    match v {
        Verdict::Steer { target, route, .. } => (target, route),
        other => panic!("expected a steer, got {other:?}"),
    }
}

#[test]
fn tls_for_the_task_host_is_steered_to_the_gateway_with_its_sni_intact() {
    let p = policy(TASK);
    let v = verdict(&p, "203.0.113.10:443", Detected::Tls { sni: Some("httpbin.test") });
    let (target, route) = steered(&v);
    assert_eq!(target, &Target::Endpoints(vec!["198.18.10.2:443".parse().unwrap()]));
    assert_eq!((&*route.name, route.subset.as_deref()), ("direct-httpbin-through-egress-gateway", Some("httpbin")));
}

#[test]
fn http_on_port_80_is_steered_and_keeps_its_host() {
    let p = policy(TASK);
    let v = verdict(&p, "203.0.113.10:80", Detected::Http { host: Some("httpbin.test") });
    assert_eq!(steered(&v).0, &Target::Endpoints(vec!["198.18.10.2:80".parse().unwrap()]));
}

#[test]
fn routes_bound_only_to_the_gateway_do_not_apply_on_the_node() {
    // Without the mesh routes, only the gateway-side routes remain.
    let gateway_only = TASK.replace("    - gateways: [mesh]\n      port: 443\n      sniHosts: [httpbin.test]\n", "    - gateways: [istio-egressgateway]\n      port: 8443\n      sniHosts: [httpbin.test]\n");
    let p = policy(&gateway_only);
    let v = verdict(&p, "203.0.113.10:443", Detected::Tls { sni: Some("httpbin.test") });
    assert!(matches!(v, Verdict::Allow { .. }), "no mesh route: the registry's own verdict, {v:?}");
}

#[test]
fn the_port_and_sni_of_a_match_must_fit() {
    let p = policy(TASK);
    // HTTP on another registered port: no mesh route matches port 443 for HTTP.
    let other_sni = TASK.replace("      sniHosts: [httpbin.test]\n    route:\n    - destination: {host: istio-egressgateway", "      sniHosts: [other.test]\n    route:\n    - destination: {host: istio-egressgateway");
    let p2 = policy(&other_sni);
    let v = verdict(&p2, "203.0.113.10:443", Detected::Tls { sni: Some("httpbin.test") });
    assert!(matches!(v, Verdict::Allow { .. }), "sniHosts does not match: {v:?}");
    let v = verdict(&p, "203.0.113.10:443", Detected::Tls { sni: Some("httpbin.test") });
    assert!(matches!(v, Verdict::Steer { .. }));
}

#[test]
fn first_matching_route_wins() {
    let two = TASK.replace(
        "  http:\n  - match:\n    - gateways: [mesh]\n      port: 80\n",
        "  http:\n  - match:\n    - gateways: [mesh]\n      port: 80\n      uri: {prefix: /direct}\n    route:\n    - destination: {host: httpbin.test, port: {number: 80}}\n  - match:\n    - gateways: [mesh]\n      port: 80\n",
    );
    let p = policy(&two);
    let client = "198.18.1.2".parse().unwrap();
    let workload = p.identify(client, None);
    let header = |_: &str| None;
    let ask = |path: &str| {
        let request = HttpFacts { authority: "httpbin.test", path, method: "GET", query: "", scheme: "http", header: &header };
        let facts = ConnectionFacts {
            workload: &workload,
            client,
            orig_dst: "203.0.113.10:80".parse().unwrap(),
            detected: Detected::Http { host: Some("httpbin.test") },
            request: Some(request),
            pick: 0,
        };
        decide(&facts, &p, &NoDns)
    };
    assert!(matches!(ask("/direct/x"), Verdict::Allow { .. }), "the first route sends it to the host itself");
    assert!(matches!(ask("/other"), Verdict::Steer { .. }), "the second route steers");
}

#[test]
fn an_unregistered_host_is_denied_not_steered() {
    let p = policy(TASK);
    let v = verdict(&p, "203.0.113.10:443", Detected::Tls { sni: Some("evil.test") });
    assert!(matches!(v, Verdict::Deny { reason: DenyReason::NotRegistered, .. }), "{v:?}");
}

/// A route to the host the client asked for, with a subset: nothing is
/// steered, and the subset goes with the verdict for its DestinationRule
/// settings.
#[test]
fn a_route_to_the_same_host_keeps_its_subset_without_steering() {
    let yaml = "apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: secure, namespace: default}
spec:
  hosts: [secure.test]
  ports: [{number: 80, name: http, protocol: HTTP, targetPort: 443}]
  resolution: DNS
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: secure, namespace: default}
spec:
  host: secure.test
  subsets: [{name: originate, trafficPolicy: {tls: {mode: SIMPLE}}}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: secure, namespace: default}
spec:
  hosts: [secure.test]
  http: [{route: [{destination: {host: secure.test, subset: originate}}]}]
";
    let v = verdict(&crate::test_support::policy(yaml), "203.0.113.10:80", Detected::Http { host: Some("secure.test") });
    match v {
        Verdict::Allow { target, subset, .. } => {
            assert_eq!(target, Target::Resolve { host: "secure.test".into(), port: 443 });
            assert_eq!(subset.as_deref(), Some("originate"));
        }
        other => panic!("expected an allow, got {other:?}"),
    }
}
