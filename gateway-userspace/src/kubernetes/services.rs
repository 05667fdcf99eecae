//! Kubernetes Services in the registry, as Istio has them: each Service is
//! a `MESH_INTERNAL` ServiceEntry for `<name>.<namespace>.svc.<domain>` with
//! its cluster IPs. A headless Service is registered with the addresses of
//! its ready endpoints (from its EndpointSlices), which is what its name
//! resolves to. The documents go through the same decoding and validation as
//! every other resource.

use std::collections::BTreeMap;

use k8s_openapi::api::{core::v1::Service, discovery::v1::EndpointSlice};
use serde_json::{Value, json};

/// The annotation Istio reads a Service's visibility from.
pub(super) const EXPORT_TO: &str = "networking.istio.io/exportTo";
/// The label tying an EndpointSlice to its Service.
pub(super) const SERVICE_NAME: &str = "kubernetes.io/service-name";

/// One ServiceEntry document per Service that can be registered.
pub fn service_entries(services: &[std::sync::Arc<Service>], slices: &[std::sync::Arc<EndpointSlice>], domain: &str) -> Vec<(String, String, Value)> {
    let mut endpoints: BTreeMap<(String, String), Vec<String>> = BTreeMap::new();
    for slice in slices {
        let (Some(ns), Some(svc)) = (slice.metadata.namespace.clone(), slice.metadata.labels.as_ref().and_then(|l| l.get(SERVICE_NAME)))
        else {
            continue;
        };
        let ready = slice
            .endpoints
            .iter()
            .filter(|e| e.conditions.as_ref().and_then(|c| c.ready).unwrap_or(true))
            .flat_map(|e| e.addresses.iter().cloned());
        endpoints.entry((ns, svc.clone())).or_default().extend(ready);
    }
    services.iter().filter_map(|svc| entry(svc, &endpoints, domain)).collect()
}

fn entry(svc: &Service, endpoints: &BTreeMap<(String, String), Vec<String>>, domain: &str) -> Option<(String, String, Value)> {
    let ns = svc.metadata.namespace.clone()?;
    let name = svc.metadata.name.clone()?;
    let spec = svc.spec.as_ref()?;
    if spec.type_.as_deref() == Some("ExternalName") {
        // Not registered: a name outside the cluster must be a ServiceEntry.
        return None;
    }
    let headless = spec.cluster_ip.as_deref() == Some("None");
    let mut addresses: Vec<String> = if headless {
        endpoints.get(&(ns.clone(), name.clone())).cloned().unwrap_or_default()
    } else {
        spec.cluster_ips.clone().or_else(|| spec.cluster_ip.clone().map(|ip| vec![ip])).unwrap_or_default()
    };
    addresses.sort();
    addresses.dedup();
    let ports: Vec<Value> = spec
        .ports
        .iter()
        .flatten()
        .filter(|p| p.protocol.as_deref().is_none_or(|p| p == "TCP"))
        .map(|p| {
            let mut port = json!({"number": p.port, "name": p.name.clone().unwrap_or_else(|| format!("port-{}", p.port))});
            if let Some(proto) = protocol(p.app_protocol.as_deref(), p.name.as_deref()) {
                port["protocol"] = json!(proto);
            }
            port
        })
        .collect();
    if ports.is_empty() {
        return None;
    }
    // Pods name a Service `<name>.<namespace>.svc` as often as by its full
    // name (`kubernetes.default.svc`). Shorter forms (`<name>.<namespace>`)
    // are not registered: they can spell a public name (`example.com`).
    let mut spec_out = json!({
        "hosts": [format!("{name}.{ns}.svc.{domain}"), format!("{name}.{ns}.svc")],
        "ports": ports,
        "location": "MESH_INTERNAL",
        "resolution": "NONE",
    });
    if !addresses.is_empty() {
        spec_out["addresses"] = json!(addresses);
    }
    if let Some(export) = svc.metadata.annotations.as_ref().and_then(|a| a.get(EXPORT_TO)) {
        spec_out["exportTo"] = json!(export.split(',').map(str::trim).filter(|s| !s.is_empty()).collect::<Vec<_>>());
    }
    let doc = json!({
        "apiVersion": "networking.istio.io/v1",
        "kind": "ServiceEntry",
        "metadata": {"name": format!("service.{name}"), "namespace": ns},
        "spec": spec_out,
    });
    Some((ns, name, doc))
}

/// Istio's protocol for a Service port: `appProtocol`, else the port name's
/// prefix (`http-web` → HTTP); unknown ones are left to detection.
fn protocol(app_protocol: Option<&str>, name: Option<&str>) -> Option<&'static str> {
    let from = |s: &str| -> Option<&'static str> {
        Some(match s.to_ascii_lowercase().as_str() {
            "http" | "kubernetes.io/ws" => "HTTP",
            "http2" | "kubernetes.io/h2c" => "HTTP2",
            "https" | "kubernetes.io/wss" => "HTTPS",
            "grpc" => "GRPC",
            "grpc-web" => "GRPC-WEB",
            "tls" => "TLS",
            "tcp" => "TCP",
            "mongo" => "MONGO",
            "mysql" => "MYSQL",
            "redis" => "REDIS",
            _ => return None,
        })
    };
    if let Some(p) = app_protocol.and_then(from) {
        return Some(p);
    }
    let name = name?;
    from(name).or_else(|| from(name.split_once('-')?.0))
}
