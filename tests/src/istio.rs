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

/// The egress gateway of Istio's mutual-TLS egress tasks, reached at 198.18.10.2:443: its
/// ServiceEntry, a Gateway terminating ISTIO_MUTUAL for httpbin.test, and the DestinationRule
/// whose subset `httpbin` sends ISTIO_MUTUAL (SNI httpbin.test). Ends with `---`.
pub const MUTUAL_EGRESS_GATEWAY: &str = "apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: istio-egressgateway, namespace: istio-system}
spec:
  hosts: [istio-egressgateway.istio-system.svc.cluster.local]
  ports: [{number: 443, name: https, protocol: HTTPS}]
  location: MESH_INTERNAL
  resolution: STATIC
  endpoints: [{address: 198.18.10.2}]
---
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: istio-egressgateway, namespace: default}
spec:
  selector: {istio: egressgateway}
  servers:
  - port: {number: 443, name: https, protocol: HTTPS}
    hosts: [httpbin.test]
    tls: {mode: ISTIO_MUTUAL}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: egressgateway-for-httpbin, namespace: default}
spec:
  host: istio-egressgateway.istio-system.svc.cluster.local
  subsets:
  - name: httpbin
    trafficPolicy:
      portLevelSettings:
      - port: {number: 443}
        tls: {mode: ISTIO_MUTUAL, sni: httpbin.test}
---
";
