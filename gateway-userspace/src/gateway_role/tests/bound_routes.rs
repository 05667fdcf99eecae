use std::sync::Arc;

use super::super::bound_routes::{BoundRoutes, BoundRoutesCache};
use crate::test_support::{gateway_snapshot, labels};

const BOUND: &str = "apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: gw, namespace: edge}
spec:
  selector: {istio: ingressgateway}
  servers:
  - port: {number: 80, name: http, protocol: HTTP}
    hosts: ['*/*.test']
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: first, namespace: edge}
spec:
  hosts: [a.test]
  gateways: [gw, edge/gw]
  http: [{route: [{destination: {host: a.edge.svc.cluster.local}}]}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: mesh-only, namespace: edge}
spec:
  hosts: [b.test]
  http: [{route: [{destination: {host: b.edge.svc.cluster.local}}]}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: second, namespace: team}
spec:
  hosts: [c.test]
  gateways: [edge/gw, mesh]
  http: [{route: [{destination: {host: c.team.svc.cluster.local}}]}]
";

fn names(routes: &BoundRoutes, gateway: (&str, &str)) -> Vec<String> {
    routes.bound_to(&(gateway.0.to_string(), gateway.1.to_string())).map(|vs| vs.meta.name.clone()).collect()
}

#[test]
fn each_gateway_lists_what_the_snapshot_binds_to_it_in_order_once() {
    let snapshot = gateway_snapshot(BOUND, &labels(&[("istio", "ingressgateway")]));
    let routes = BoundRoutes::new(snapshot.clone());
    let scanned: Vec<String> = snapshot.virtual_services_for_gateway("edge", "gw").iter().map(|vs| vs.meta.name.clone()).collect();
    assert_eq!(names(&routes, ("edge", "gw")), scanned);
    assert_eq!(scanned, ["first", "second"], "named twice, bound once; mesh-only is not bound");
    assert!(names(&routes, ("edge", "other")).is_empty());
}

#[test]
fn the_cache_keeps_a_snapshots_routes_and_finds_a_new_snapshots_anew() {
    let cache = BoundRoutesCache::default();
    let first = gateway_snapshot(BOUND, &labels(&[("istio", "ingressgateway")]));
    let a = cache.get(&first);
    assert!(Arc::ptr_eq(&a, &cache.get(&first)), "the same snapshot: found once");
    let second = gateway_snapshot(BOUND, &labels(&[("istio", "ingressgateway")]));
    assert!(!Arc::ptr_eq(&a, &cache.get(&second)), "another snapshot: found again");
}
