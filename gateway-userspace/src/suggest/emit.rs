//! The proposal as Istio YAML, written with serde_yaml: one document per
//! resource, each preceded by comments saying what was seen (counts, deny
//! reasons, first and last time).

use std::fmt::Write as _;

use serde::Serialize;

use super::{
    observed::{Seen, SeenProtocol},
    plan::{EntryPlan, Plan, SidecarPlan},
};

const API_VERSION: &str = "networking.istio.io/v1";

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Resource<S> {
    api_version: &'static str,
    kind: &'static str,
    metadata: Metadata,
    spec: S,
}

#[derive(Serialize)]
struct Metadata {
    name: String,
    namespace: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ServiceEntrySpec {
    hosts: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    addresses: Vec<String>,
    ports: Vec<Port>,
    location: &'static str,
    resolution: &'static str,
    export_to: Vec<String>,
}

#[derive(Serialize)]
struct Port {
    number: u16,
    name: String,
    protocol: &'static str,
}

#[derive(Serialize)]
struct SidecarSpec {
    egress: Vec<EgressListener>,
}

#[derive(Serialize)]
struct EgressListener {
    hosts: Vec<String>,
}

/// Istio's port protocol for what was seen on `port`.
pub fn port_protocol(port: u16, seen: SeenProtocol) -> &'static str {
    match seen {
        SeenProtocol::Tls if port == 443 => "HTTPS",
        SeenProtocol::Tls => "TLS",
        SeenProtocol::Http => "HTTP",
        SeenProtocol::Http2 => "HTTP2",
        SeenProtocol::Tcp => "TCP",
    }
}

/// The whole proposal: documents separated by `---`.
pub fn to_yaml(plan: &Plan) -> Result<String, serde_yaml::Error> {
    let mut docs = Vec::new();
    for e in &plan.entries {
        docs.push(format!("{}{}", entry_comment(e), serde_yaml::to_string(&service_entry(e))?));
    }
    for s in &plan.sidecars {
        docs.push(format!("{}{}", sidecar_comment(s), serde_yaml::to_string(&sidecar(s))?));
    }
    for (comment, doc) in &plan.steering {
        docs.push(format!("{comment}{}", serde_yaml::to_string(doc)?));
    }
    Ok(docs.join("---\n"))
}

fn service_entry(e: &EntryPlan) -> Resource<ServiceEntrySpec> {
    Resource {
        api_version: API_VERSION,
        kind: "ServiceEntry",
        metadata: Metadata { name: e.name.clone(), namespace: e.namespace.clone() },
        spec: ServiceEntrySpec {
            hosts: e.hosts.clone(),
            addresses: e.addresses.iter().map(|a| a.to_string()).collect(),
            ports: e
                .ports
                .iter()
                .map(|(number, seen, _)| {
                    let protocol = port_protocol(*number, *seen);
                    Port { number: *number, name: format!("{}-{number}", protocol.to_ascii_lowercase()), protocol }
                })
                .collect(),
            location: "MESH_EXTERNAL",
            resolution: e.resolution,
            export_to: e.export_to.clone(),
        },
    }
}

fn sidecar(s: &SidecarPlan) -> Resource<SidecarSpec> {
    Resource {
        api_version: API_VERSION,
        kind: "Sidecar",
        metadata: Metadata { name: "default".to_string(), namespace: s.namespace.clone() },
        spec: SidecarSpec { egress: vec![EgressListener { hosts: s.hosts.clone() }] },
    }
}

fn describe(seen: &Seen) -> String {
    let reasons: Vec<String> = seen.reasons.iter().map(|(r, n)| format!("{r} {n}")).collect();
    format!("{} denied ({}), first {}, last {}", seen.count, reasons.join(", "), or_unknown(&seen.first), or_unknown(&seen.last))
}

fn or_unknown(t: &str) -> &str {
    if t.is_empty() { "unknown" } else { t }
}

fn entry_comment(e: &EntryPlan) -> String {
    let mut c = format!("# Suggested from the audit log: {}\n", describe(&e.seen()));
    if e.ports.len() > 1 {
        for (port, seen_as, seen) in &e.ports {
            let _ = writeln!(c, "#   port {port} ({}): {}", port_protocol(*port, *seen_as), describe(seen));
        }
    }
    if !e.covers.is_empty() {
        let _ = writeln!(c, "# Covers {}. Resolution NONE: calls must use addresses the gateway's DNS answered.", e.covers.join(", "));
    }
    if !e.addresses.is_empty() {
        let _ = writeln!(c, "# Calls that named no host (opaque TCP); the host name is a placeholder.");
    }
    c
}

fn sidecar_comment(s: &SidecarPlan) -> String {
    format!(
        "# Egress hosts of namespace {}: the entries above and the hosts its calls were allowed to.\n\
         # It hides every other host from the namespace; review before applying.\n",
        s.namespace
    )
}
