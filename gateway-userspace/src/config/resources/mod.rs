//! Istio resource kinds: the envelope (`apiVersion`, `kind`, `metadata`)
//! and dispatch to the decoder of each kind.

pub mod authorization;
pub mod common;
pub mod destination_rule;
pub mod gateway;
pub mod http_policy;
pub mod http_route;
pub mod service_entry;
pub mod sidecar;
pub mod virtual_service;

#[cfg(test)]
mod tests;

use super::decode::Cx;
use super::findings::{Code, Finding, Pos, ResourceRef, Severity};
use super::values::{is_dns_label, is_dns_subdomain};
use super::yaml::Node;
use common::{Meta, labels};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// A decoded resource of one of the kinds the gateway uses.
#[derive(Debug, Clone, PartialEq)]
#[allow(clippy::large_enum_variant)] // built once per document, then moved into the snapshot
pub enum Resource {
    Gateway(gateway::Gateway),
    VirtualService(virtual_service::VirtualService),
    DestinationRule(destination_rule::DestinationRule),
    ServiceEntry(service_entry::ServiceEntry),
    Sidecar(sidecar::Sidecar),
    WorkloadEntry(service_entry::WorkloadEntry),
    AuthorizationPolicy(authorization::AuthorizationPolicy),
}

const NETWORKING: &str = "networking.istio.io";
const SECURITY: &str = "security.istio.io";
const NETWORKING_VERSIONS: &[&str] = &["v1alpha3", "v1beta1", "v1"];
const SECURITY_VERSIONS: &[&str] = &["v1beta1", "v1"];

/// The API group and versions a kind is read from, if the gateway uses it.
fn group_of(kind: &str) -> Option<(&'static str, &'static [&'static str])> {
    match kind {
        "Gateway" | "VirtualService" | "DestinationRule" | "ServiceEntry" | "Sidecar"
        | "WorkloadEntry" => Some((NETWORKING, NETWORKING_VERSIONS)),
        "AuthorizationPolicy" => Some((SECURITY, SECURITY_VERSIONS)),
        _ => None,
    }
}

/// One document after decoding, with what reference checks need.
#[derive(Debug)]
pub(crate) struct Decoded {
    pub file: PathBuf,
    pub reference: ResourceRef,
    /// `None` when the spec could not be read at all.
    pub resource: Option<Resource>,
    /// Whether the document had error findings of its own.
    pub damaged: bool,
    pub positions: BTreeMap<String, Pos>,
    pub doc_pos: Pos,
}

impl Decoded {
    /// Position of `field`, or of its closest recorded parent.
    pub fn pos_of(&self, field: &str) -> Pos {
        let mut f = field;
        loop {
            if let Some(p) = self.positions.get(f) {
                return *p;
            }
            match f.rfind(['.', '[']) {
                Some(i) => f = &f[..i],
                None => return self.doc_pos,
            }
        }
    }
}

/// Decodes one document. Returns `None` for documents that are skipped or
/// too broken to name a resource.
pub(crate) fn decode_document(
    file: &Path,
    root: &Node,
    default_namespace: &str,
    findings: &mut Vec<Finding>,
) -> Option<Decoded> {
    let errors_before = count_errors(findings);
    let mut cx = Cx {
        file,
        namespace: default_namespace.to_string(),
        resource: None,
        findings,
        positions: BTreeMap::new(),
        doc_pos: root.pos,
    };
    let mut f = cx.map(root, "")?;
    let api_version = f.req(&mut cx, "apiVersion", |cx, n, p| cx.string(n, p));
    let kind = f.req(&mut cx, "kind", |cx, n, p| cx.string(n, p))?;
    let (group, versions) = match group_of(&kind) {
        Some(g) => g,
        None => return skip(&mut cx, &kind, api_version.as_deref()),
    };
    let (api_group, version) = match api_version.as_deref().map(|v| v.split_once('/')) {
        Some(Some((g, v))) => (g.to_string(), v.to_string()),
        Some(None) => (String::new(), api_version.clone().unwrap_or_default()),
        None => (group.to_string(), String::new()),
    };
    if api_group != group {
        return skip(&mut cx, &kind, api_version.as_deref());
    }
    let meta = f.req(&mut cx, "metadata", metadata);
    let meta = meta?;
    cx.namespace = meta.namespace.clone();
    let reference = ResourceRef {
        kind: kind.clone(),
        namespace: meta.namespace.clone(),
        name: meta.name.clone(),
    };
    cx.resource = Some(reference.clone());
    for finding in cx.findings.iter_mut().skip(errors_before.1) {
        finding.resource.get_or_insert_with(|| reference.clone());
    }
    if !version.is_empty() && !versions.contains(&version.as_str()) {
        let msg = format!(
            "{kind} is read from {group}/{}, not `{}`; change apiVersion",
            versions.join(", "),
            api_version.clone().unwrap_or_default()
        );
        cx.report(
            Code::UnsupportedVersion,
            cx.pos_of("apiVersion"),
            "apiVersion",
            msg,
        );
    }
    // Istio accepts a Sidecar without spec: its defaults apply.
    let empty_spec = Node { pos: root.pos, value: super::yaml::Value::Map(Vec::new()) };
    let resource = if kind == "Sidecar" {
        let spec = f.get(&mut cx, "spec", |_, spec, _| Some(spec)).unwrap_or(&empty_spec);
        sidecar::decode(&mut cx, spec, meta).map(Resource::Sidecar)
    } else {
        f.req(&mut cx, "spec", |cx, spec, _| match kind.as_str() {
            "Gateway" => gateway::decode(cx, spec, meta).map(Resource::Gateway),
            "VirtualService" => virtual_service::decode(cx, spec, meta).map(Resource::VirtualService),
            "DestinationRule" => {
                destination_rule::decode(cx, spec, meta).map(Resource::DestinationRule)
            }
            "ServiceEntry" => service_entry::decode(cx, spec, meta).map(Resource::ServiceEntry),
            "WorkloadEntry" => {
                service_entry::decode_workload_entry(cx, spec, meta).map(Resource::WorkloadEntry)
            }
            _ => authorization::decode(cx, spec, meta).map(Resource::AuthorizationPolicy),
        })
    };
    f.ignore(&["status"]);
    f.finish(&mut cx);
    let positions = std::mem::take(&mut cx.positions);
    let damaged = count_errors(cx.findings).0 > errors_before.0;
    Some(Decoded {
        file: file.to_path_buf(),
        reference,
        resource,
        damaged,
        positions,
        doc_pos: root.pos,
    })
}

/// (error findings, all findings)
fn count_errors(findings: &[Finding]) -> (usize, usize) {
    (
        findings
            .iter()
            .filter(|f| f.severity == Severity::Error)
            .count(),
        findings.len(),
    )
}

fn skip(cx: &mut Cx<'_>, kind: &str, api_version: Option<&str>) -> Option<Decoded> {
    let what = match api_version {
        Some(v) => format!("{kind} ({v})"),
        None => kind.to_string(),
    };
    let msg = format!("{what} is not a kind the gateway reads; it was skipped");
    cx.report(Code::SkippedKind, cx.pos_of("kind"), "kind", msg);
    None
}

const IGNORED_METADATA: &[&str] = &[
    "uid",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "managedFields",
    "finalizers",
    "ownerReferences",
    "generateName",
    "selfLink",
];

fn metadata(cx: &mut Cx<'_>, n: &Node, p: &str) -> Option<Meta> {
    let mut f = cx.map(n, p)?;
    let name = f.req(cx, "name", |cx, n, p| {
        let s = cx.string(n, p)?;
        if !is_dns_subdomain(&s) {
            let msg =
                format!("`{s}` is not a valid name; use lowercase letters, digits, `-` and `.`");
            cx.report(Code::InvalidName, n.pos, p, msg);
        }
        Some(s)
    });
    let namespace = f.get(cx, "namespace", |cx, n, p| {
        let s = cx.string(n, p)?;
        if !is_dns_label(&s) {
            let msg =
                format!("`{s}` is not a valid namespace; use lowercase letters, digits and `-`");
            cx.report(Code::InvalidName, n.pos, p, msg);
        }
        Some(s)
    });
    let labels = f.get(cx, "labels", labels).unwrap_or_default();
    let annotations = f.string_map(cx, "annotations");
    f.ignore(IGNORED_METADATA);
    f.finish(cx);
    Some(Meta {
        name: name?,
        namespace: namespace.unwrap_or_else(|| cx.namespace.clone()),
        labels,
        annotations,
    })
}
