//! Tests of `services.rs`.

use crate::kubernetes::services::*;
use k8s_openapi::api::{core::v1::Service, discovery::v1::EndpointSlice};
use serde_json::{Value, json};

fn service(v: Value) -> std::sync::Arc<Service> {
    std::sync::Arc::new(serde_json::from_value(v).unwrap())
}

#[test]
fn a_cluster_ip_service_is_registered_by_name_and_address() {
    let svc = service(json!({
        "metadata": {"name": "reviews", "namespace": "bookinfo"},
        "spec": {"clusterIP": "198.51.100.20", "clusterIPs": ["198.51.100.20"],
                 "ports": [{"port": 9080, "name": "http-api"}, {"port": 53, "protocol": "UDP"}]}
    }));
    let out = service_entries(&[svc], &[], "cluster.local");
    let (_, _, doc) = &out[0];
    assert_eq!(doc["spec"]["hosts"], json!(["reviews.bookinfo.svc.cluster.local", "reviews.bookinfo.svc"]));
    assert_eq!(doc["spec"]["addresses"], json!(["198.51.100.20"]));
    assert_eq!(doc["spec"]["ports"], json!([{"number": 9080, "name": "http-api", "protocol": "HTTP"}]));
}

#[test]
fn a_headless_service_is_registered_with_its_ready_endpoints() {
    let svc = service(json!({
        "metadata": {"name": "db", "namespace": "a", "annotations": {EXPORT_TO: "."}},
        "spec": {"clusterIP": "None", "ports": [{"port": 5432, "appProtocol": "tcp"}]}
    }));
    let slice: EndpointSlice = serde_json::from_value(json!({
        "metadata": {"name": "db-x", "namespace": "a", "labels": {SERVICE_NAME: "db"}},
        "addressType": "IPv4",
        "endpoints": [{"addresses": ["198.51.100.7"], "conditions": {"ready": true}},
                      {"addresses": ["198.51.100.8"], "conditions": {"ready": false}}]
    }))
    .unwrap();
    let out = service_entries(&[svc], &[std::sync::Arc::new(slice)], "cluster.local");
    let (_, _, doc) = &out[0];
    assert_eq!(doc["spec"]["addresses"], json!(["198.51.100.7"]));
    assert_eq!(doc["spec"]["exportTo"], json!(["."]));
    assert_eq!(doc["spec"]["ports"][0]["protocol"], "TCP");
}

#[test]
fn external_name_services_are_not_registered() {
    let svc = service(json!({
        "metadata": {"name": "ext", "namespace": "a"},
        "spec": {"type": "ExternalName", "externalName": "example.com", "ports": [{"port": 443}]}
    }));
    assert!(service_entries(&[svc], &[], "cluster.local").is_empty());
}
