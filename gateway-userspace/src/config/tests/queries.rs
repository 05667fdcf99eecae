//! The snapshot's lookups: gateways by instance labels, VirtualServices by
//! gateway or mesh, DestinationRules by host, ServiceEntries, Sidecars and
//! WorkloadEntries by workload, with `exportTo` honoured.

use super::listing;
use crate::config::{Labels, LoadOptions, Snapshot, load_str};
use std::path::Path;

const CONFIG: &str = r#"
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: ingress, namespace: istio-system}
spec:
  selector: {istio: ingressgateway}
  servers:
  - port: {number: 80, name: http, protocol: HTTP}
    hosts: ["*/*.example.com"]
---
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: egress, namespace: istio-system}
spec:
  selector: {istio: egressgateway}
  servers:
  - port: {number: 80, name: http, protocol: http}
    hosts: ["*"]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: shop, namespace: shop}
spec:
  hosts: [shop.example.com]
  gateways: [istio-system/ingress, mesh]
  http:
  - route:
    - destination: {host: shop}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: private, namespace: shop}
spec:
  hosts: [private]
  exportTo: ["."]
  http:
  - route:
    - destination: {host: private}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: wildcard, namespace: istio-system}
spec:
  host: "*.shop.svc.cluster.local"
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: exact, namespace: istio-system}
spec:
  host: shop.shop.svc.cluster.local
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: local, namespace: shop}
spec:
  host: "*.shop.svc.cluster.local"
  exportTo: ["."]
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: public, namespace: shop}
spec:
  hosts: [api.example.org]
  ports: [{number: 443, name: https, protocol: HTTPS}]
  resolution: DNS
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: only-billing, namespace: shop}
spec:
  hosts: [billing.example.org]
  exportTo: [billing]
  ports: [{number: 443, name: https, protocol: HTTPS}]
  resolution: DNS
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: vms, namespace: shop}
spec:
  hosts: [vm.shop.internal]
  ports: [{number: 8080, name: http, protocol: HTTP}]
  resolution: STATIC
  workloadSelector:
    labels: {app: vm}
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: vm-1, namespace: shop}
spec:
  address: 192.0.2.10
  labels: {app: vm, istio: egressgateway}
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: vm-2, namespace: other}
spec:
  address: 192.0.2.11
  labels: {app: vm}
---
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: {name: default, namespace: istio-system}
spec:
  egress: [{hosts: ["*/*"]}]
---
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: {name: shop-default, namespace: shop}
spec:
  egress: [{hosts: ["./*"]}]
---
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: {name: shop-frontend, namespace: shop}
spec:
  workloadSelector:
    labels: {app: frontend}
  egress: [{hosts: ["./*", "istio-system/*"]}]
  outboundTrafficPolicy: {mode: REGISTRY_ONLY}
"#;

fn snapshot() -> std::sync::Arc<Snapshot> {
    let opts = LoadOptions {
        instance_labels: Labels::from([("istio".to_string(), "ingressgateway".to_string())]),
        ..LoadOptions::default()
    };
    let loaded = load_str(Path::new("queries.yaml"), CONFIG, &opts);
    assert!(loaded.findings.is_empty(), "{}", listing(&loaded));
    loaded.snapshot.unwrap()
}

fn labels(pairs: &[(&str, &str)]) -> Labels {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn gateways_by_instance_labels() {
    let s = snapshot();
    let names: Vec<&str> = s
        .gateways_for_instance(&labels(&[("istio", "ingressgateway"), ("app", "x")]))
        .iter()
        .map(|g| g.meta.name.as_str())
        .collect();
    assert_eq!(names, ["ingress"]);
    assert!(s.gateways_for_instance(&labels(&[("app", "x")])).is_empty());
}

#[test]
fn virtual_services_by_gateway_and_mesh() {
    let s = snapshot();
    let bound = s.virtual_services_for_gateway("istio-system", "ingress");
    assert_eq!(bound.len(), 1);
    assert_eq!(bound[0].meta.name, "shop");
    assert!(
        s.virtual_services_for_gateway("istio-system", "egress")
            .is_empty()
    );
    let in_shop: Vec<&str> = s
        .virtual_services_for_mesh("shop")
        .iter()
        .map(|v| v.meta.name.as_str())
        .collect();
    assert_eq!(in_shop, ["private", "shop"]);
    let elsewhere: Vec<&str> = s
        .virtual_services_for_mesh("web")
        .iter()
        .map(|v| v.meta.name.as_str())
        .collect();
    assert_eq!(elsewhere, ["shop"]);
}

#[test]
fn destination_rule_by_host() {
    let s = snapshot();
    let host = "shop.shop.svc.cluster.local";
    assert_eq!(
        s.destination_rule_for(host, "shop").unwrap().meta.name,
        "local"
    );
    assert_eq!(
        s.destination_rule_for(host, "web").unwrap().meta.name,
        "exact"
    );
    let other = "cart.shop.svc.cluster.local";
    assert_eq!(
        s.destination_rule_for(other, "web").unwrap().meta.name,
        "wildcard"
    );
    assert!(
        s.destination_rule_for("cart.web.svc.cluster.local", "web")
            .is_none()
    );
}

#[test]
fn service_entries_honour_export_to() {
    let s = snapshot();
    let names = |ns: &str| -> Vec<String> {
        s.service_entries_for(ns)
            .iter()
            .map(|e| e.meta.name.clone())
            .collect()
    };
    assert_eq!(names("billing"), ["only-billing", "public", "vms"]);
    assert_eq!(names("shop"), ["public", "vms"]);
}

#[test]
fn sidecar_by_workload() {
    let s = snapshot();
    let pick =
        |ns: &str, l: &[(&str, &str)]| s.sidecar_for(ns, &labels(l)).map(|x| x.meta.name.clone());
    assert_eq!(
        pick("shop", &[("app", "frontend")]).as_deref(),
        Some("shop-frontend")
    );
    assert_eq!(
        pick("shop", &[("app", "cart")]).as_deref(),
        Some("shop-default")
    );
    assert_eq!(
        pick("web", &[("app", "frontend")]).as_deref(),
        Some("default")
    );
}

#[test]
fn workload_entries_by_selector() {
    let s = snapshot();
    let vms = s
        .service_entries
        .iter()
        .find(|e| e.meta.name == "vms")
        .unwrap();
    let selected: Vec<&str> = s
        .workload_entries_for_service_entry(vms)
        .iter()
        .map(|w| w.meta.name.as_str())
        .collect();
    assert_eq!(selected, ["vm-1"]);
    assert_eq!(
        s.workload_entries_for("other", &labels(&[("app", "vm")]))
            .len(),
        1
    );
    assert!(
        s.workload_entries_for("shop", &labels(&[("app", "db")]))
            .is_empty()
    );
}

#[test]
fn snapshot_serialises_for_config_dump() {
    let s = snapshot();
    let json = serde_json::to_value(&*s).unwrap();
    assert_eq!(json["gateways"][0]["meta"]["name"], "egress");
    assert_eq!(
        json["gateways"][0]["servers"][0]["port"]["protocol"],
        "HTTP"
    );
    assert_eq!(json["service_entries"][2]["resolution"], "STATIC");
}
