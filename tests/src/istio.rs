//! Istio resources the tests write again and again, as YAML.

/// A MESH_INTERNAL ServiceEntry `<name>.default.svc.cluster.local` with one
/// port and STATIC endpoints.
pub fn static_service(name: &str, port: u16, protocol: &str, endpoints: &[&str]) -> String {
    let endpoints: Vec<String> = endpoints.iter().map(|a| format!("{{address: {a}}}")).collect();
    format!(
        "apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {{name: {name}, namespace: default}}
spec:
  hosts: [{name}.default.svc.cluster.local]
  ports: [{{number: {port}, name: p{port}, protocol: {protocol}}}]
  location: MESH_INTERNAL
  resolution: STATIC
  endpoints: [{}]
---
",
        endpoints.join(", ")
    )
}

/// A Gateway `name` for `istio: ingressgateway` with one server.
pub fn ingress_gateway(name: &str, port: u16, protocol: &str, hosts: &[&str]) -> String {
    format!(
        "apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {{name: {name}, namespace: default}}
spec:
  selector: {{istio: ingressgateway}}
  servers:
  - port: {{number: {port}, name: p{port}, protocol: {protocol}}}
    hosts: [{}]
---
",
        hosts.join(", ")
    )
}

/// A DestinationRule for `<name>.default.svc.cluster.local` with
/// `traffic_policy` (a YAML flow mapping).
pub fn destination_rule(name: &str, traffic_policy: &str) -> String {
    format!(
        "apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {{name: {name}, namespace: default}}
spec:
  host: {name}.default.svc.cluster.local
  trafficPolicy: {traffic_policy}
---
"
    )
}
