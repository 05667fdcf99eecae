//! Sending chosen hosts through an egress gateway (`--egress-gateway
//! HOST`), as Istio's egress gateway task does: per host a Gateway on the
//! gateway's instances (HTTP ports as `HTTP`, TLS ports passed through by
//! SNI), a VirtualService bound to `mesh` and to that Gateway (from the
//! workloads to the gateway's Service, from the gateway to the host), and
//! one DestinationRule for the gateway's Service with a subset per host.
//! Resources go to the gateway's namespace; opaque TCP is not steered.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::{
    observed::SeenProtocol,
    plan::{EntryPlan, resource_name},
};

/// Where the egress gateway runs.
#[derive(Debug, Clone)]
pub struct EgressGateway {
    pub namespace: String,
    /// Labels its instances carry (`istio=egressgateway`).
    pub selector: BTreeMap<String, String>,
    /// Its Service's host name.
    pub service: String,
}

impl EgressGateway {
    pub fn new(namespace: &str, selector: BTreeMap<String, String>, cluster_domain: &str) -> Self {
        let service = format!("istio-egressgateway.{namespace}.svc.{cluster_domain}");
        Self { namespace: namespace.to_string(), selector, service }
    }
}

/// The ports of `host` in the proposal, with the protocol seen on each.
fn ports_of(entries: &[EntryPlan], host: &str) -> BTreeMap<u16, SeenProtocol> {
    let mut ports = BTreeMap::new();
    for e in entries.iter().filter(|e| e.hosts.iter().any(|h| h == host)) {
        for (number, protocol, _) in &e.ports {
            ports.entry(*number).or_insert(*protocol);
        }
    }
    ports
}

/// The Gateway, VirtualService and DestinationRule documents for `hosts`
/// (those of them the proposal has named entries for), with comments.
pub fn resources(entries: &[EntryPlan], hosts: &[String], gw: &EgressGateway) -> Vec<(String, Value)> {
    let mut out = Vec::new();
    let mut subsets = Vec::new();
    for host in hosts {
        let ports = ports_of(entries, host);
        if ports.is_empty() || host.starts_with('*') {
            continue;
        }
        let name = format!("egress-{}", resource_name(host));
        let subset = resource_name(host);
        let mut servers = Vec::new();
        let (mut http, mut tls) = (Vec::new(), Vec::new());
        for (port, seen) in &ports {
            let to_gateway = json!([{"destination": {"host": gw.service, "subset": subset, "port": {"number": port}}}]);
            let to_host = json!([{"destination": {"host": host, "port": {"number": port}}}]);
            match seen {
                SeenProtocol::Tls => {
                    let protocol = if *port == 443 { "HTTPS" } else { "TLS" };
                    servers.push(json!({"port": {"number": port, "name": format!("tls-{port}"), "protocol": protocol}, "hosts": [host], "tls": {"mode": "PASSTHROUGH"}}));
                    tls.push(json!({"match": [{"gateways": ["mesh"], "port": port, "sniHosts": [host]}], "route": to_gateway}));
                    tls.push(json!({"match": [{"gateways": [name], "port": port, "sniHosts": [host]}], "route": to_host}));
                }
                SeenProtocol::Http | SeenProtocol::Http2 => {
                    servers.push(json!({"port": {"number": port, "name": format!("http-{port}"), "protocol": "HTTP"}, "hosts": [host]}));
                    http.push(json!({"match": [{"gateways": ["mesh"], "port": port}], "route": to_gateway}));
                    http.push(json!({"match": [{"gateways": [name], "port": port}], "route": to_host}));
                }
                SeenProtocol::Tcp => {}
            }
        }
        if servers.is_empty() {
            continue;
        }
        subsets.push(json!({"name": subset}));
        let comment = format!("# The egress gateway's instances serve {host}.\n");
        out.push((comment, document("Gateway", &name, &gw.namespace, json!({"selector": gw.selector, "servers": servers}))));
        let mut spec = json!({"hosts": [host], "gateways": [name, "mesh"]});
        if !http.is_empty() {
            spec["http"] = Value::Array(http);
        }
        if !tls.is_empty() {
            spec["tls"] = Value::Array(tls);
        }
        let comment = format!("# Workloads' calls to {host} go to the egress gateway, which sends them on.\n");
        out.push((comment, document("VirtualService", &name, &gw.namespace, spec)));
    }
    if !subsets.is_empty() {
        let comment = "# The egress gateway's Service, one subset per steered host.\n".to_string();
        let spec = json!({"host": gw.service, "subsets": subsets});
        out.push((comment, document("DestinationRule", "egress-gateway-subsets", &gw.namespace, spec)));
    }
    out
}

fn document(kind: &str, name: &str, namespace: &str, spec: Value) -> Value {
    // serde_json keeps keys sorted, which puts these four in their usual order.
    json!({"apiVersion": "networking.istio.io/v1", "kind": kind, "metadata": {"name": name, "namespace": namespace}, "spec": spec})
}
