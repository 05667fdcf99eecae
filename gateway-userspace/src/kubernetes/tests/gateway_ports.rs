//! The Service port → target port map of a gateway pod.

use crate::kubernetes::gateway_ports::*;
use k8s_openapi::api::{core::v1::Service, discovery::v1::EndpointSlice};
use std::sync::Arc;

const SERVICE_NAME: &str = "kubernetes.io/service-name";

fn service(name: &str, ports: serde_json::Value) -> Arc<Service> {
    Arc::new(serde_json::from_value(serde_json::json!({"metadata": {"name": name, "namespace": "gw"}, "spec": {"ports": ports}})).unwrap())
}

fn slice(service: &str, pod: &str, ports: serde_json::Value) -> Arc<EndpointSlice> {
    Arc::new(
        serde_json::from_value(serde_json::json!({
            "metadata": {"name": format!("{service}-x"), "namespace": "gw", "labels": {SERVICE_NAME: service}},
            "addressType": "IPv4",
            "endpoints": [{"addresses": ["10.0.0.9"], "targetRef": {"kind": "Pod", "name": pod, "namespace": "gw"}}],
            "ports": ports,
        }))
        .unwrap(),
    )
}

fn pod() -> GatewayPod {
    GatewayPod { namespace: "gw".into(), name: "ingress-1".into() }
}

#[test]
fn service_ports_map_to_the_resolved_target_ports() {
    let services = [service("ingress", serde_json::json!([{"name": "http", "port": 80, "targetPort": "http"}, {"name": "https", "port": 443, "targetPort": 8443}]))];
    let slices = [slice("ingress", "ingress-1", serde_json::json!([{"name": "http", "port": 8080}, {"name": "https", "port": 8443}]))];
    let map = port_map(&services, &slices, &pod());
    assert_eq!(map.listen_ports(80), vec![8080]);
    assert_eq!(map.listen_ports(443), vec![8443]);
    // Not a Service port: as declared.
    assert_eq!(map.listen_ports(9000), vec![9000]);
}

#[test]
fn only_slices_listing_this_pod_count() {
    let services = [service("other", serde_json::json!([{"port": 80, "targetPort": 9090}]))];
    let slices = [slice("other", "someone-else", serde_json::json!([{"port": 9090}]))];
    assert!(port_map(&services, &slices, &pod()).is_empty());
    let slices = [slice("other", "ingress-1", serde_json::json!([{"port": 9090}]))];
    assert_eq!(port_map(&services, &slices, &pod()).listen_ports(80), vec![9090]);
}

#[test]
fn udp_ports_and_unknown_services_are_ignored() {
    let services = [service("ingress", serde_json::json!([{"name": "dns", "port": 53, "protocol": "UDP"}]))];
    let slices = [
        slice("ingress", "ingress-1", serde_json::json!([{"name": "dns", "port": 5353, "protocol": "UDP"}])),
        slice("gone", "ingress-1", serde_json::json!([{"port": 8080}])),
    ];
    assert!(port_map(&services, &slices, &pod()).is_empty());
}
