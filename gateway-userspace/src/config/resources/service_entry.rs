//! `ServiceEntry` and `WorkloadEntry` (networking.istio.io): services and
//! workloads added to the registry by hand.

use super::common::{Labels, Meta, export_to, host, labels, workload_selector};
use super::gateway::{Protocol, protocol};
use crate::config::decode::{Cx, Fields, IstioEnum, istio_enum};
use crate::config::findings::Code;
use crate::config::hosts::host_problem;
use crate::config::values::{Cidr, parse_cidr};
use crate::config::yaml::Node;
use serde::Serialize;
use std::collections::BTreeMap;
use std::net::IpAddr;

istio_enum!(
    /// Whether the service is inside or outside the mesh.
    Location { MeshExternal = "MESH_EXTERNAL", MeshInternal = "MESH_INTERNAL" }
);

istio_enum!(
    /// How endpoint addresses are found.
    Resolution { None = "NONE", Static = "STATIC", Dns = "DNS", DnsRoundRobin = "DNS_ROUND_ROBIN" }
);

/// A ServiceEntry resource. Hosts are kept as written (lowercased).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ServiceEntry {
    pub meta: Meta,
    pub hosts: Vec<String>,
    pub addresses: Vec<Cidr>,
    pub ports: Vec<ServicePort>,
    pub location: Location,
    pub resolution: Resolution,
    pub endpoints: Vec<WorkloadEntrySpec>,
    pub workload_selector: Option<Labels>,
    pub export_to: Vec<String>,
    pub subject_alt_names: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ServicePort {
    pub number: u16,
    pub protocol: Option<Protocol>,
    pub name: Option<String>,
    pub target_port: Option<u16>,
}

/// Where a workload is reached.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Address {
    Ip(IpAddr),
    Hostname(String),
    Unix(String),
}

/// A workload: an endpoint of a ServiceEntry or the spec of a WorkloadEntry.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WorkloadEntrySpec {
    pub address: Option<Address>,
    pub ports: BTreeMap<String, u16>,
    pub labels: Labels,
    pub network: Option<String>,
    pub locality: Option<String>,
    pub weight: Option<u32>,
    pub service_account: Option<String>,
}

/// A WorkloadEntry resource.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WorkloadEntry {
    pub meta: Meta,
    pub workload: WorkloadEntrySpec,
}

pub(crate) fn decode(cx: &mut Cx<'_>, spec: &Node, meta: Meta) -> Option<ServiceEntry> {
    let mut f = cx.map(spec, "spec")?;
    let hosts = f.req(cx, "hosts", |cx, n, p| {
        Some(cx.nonempty_list(n, p, "host", |cx, n, p| host(cx, n, p, false)))
    });
    let addresses = f.list(cx, "addresses", |cx, n, p| {
        let s = cx.string(n, p)?;
        let c = parse_cidr(&s);
        if c.is_none() {
            cx.report(
                Code::InvalidAddress,
                n.pos,
                p,
                format!("`{s}` is not an IP address or CIDR block"),
            );
        }
        c
    });
    let ports = f.list(cx, "ports", service_port);
    let location = f
        .enumeration(cx, "location")
        .unwrap_or(Location::MeshExternal);
    let resolution = f.enumeration(cx, "resolution").unwrap_or(Resolution::None);
    let endpoints = f.list(cx, "endpoints", |cx, n, p| workload(cx, n, p, resolution));
    let workload_selector = f.get(cx, "workloadSelector", workload_selector);
    let export_to = export_to(cx, &mut f);
    let subject_alt_names = f.strings(cx, "subjectAltNames");
    let (has_endpoints, has_selector) = (f.has("endpoints"), f.has("workloadSelector"));
    let pos = f.pos;
    f.finish(cx);
    if has_endpoints && has_selector {
        let msg = "`endpoints` and `workloadSelector` cannot be combined; keep one";
        cx.report(
            Code::ConflictingFields,
            cx.pos_of("spec.workloadSelector"),
            "spec.workloadSelector",
            msg,
        );
    }
    if resolution == Resolution::Static && !has_endpoints && !has_selector {
        let msg = "STATIC resolution needs `endpoints` or a `workloadSelector`";
        cx.report(Code::MissingField, pos, "spec.endpoints", msg);
    }
    Some(ServiceEntry {
        meta,
        hosts: hosts?,
        addresses,
        ports,
        location,
        resolution,
        endpoints,
        workload_selector,
        export_to,
        subject_alt_names,
    })
}

fn service_port(cx: &mut Cx<'_>, n: &Node, p: &str) -> Option<ServicePort> {
    let mut f = cx.map(n, p)?;
    let number = f.req(cx, "number", |cx, n, p| cx.port(n, p, false));
    let protocol = f.get(cx, "protocol", protocol);
    let name = f.string(cx, "name");
    let target_port = f.get(cx, "targetPort", |cx, n, p| cx.port(n, p, false));
    f.finish(cx);
    Some(ServicePort {
        number: number?,
        protocol,
        name,
        target_port,
    })
}

/// Reads a workload; with STATIC resolution the address must be an IP.
pub(crate) fn workload(
    cx: &mut Cx<'_>,
    n: &Node,
    p: &str,
    resolution: Resolution,
) -> Option<WorkloadEntrySpec> {
    let mut f = cx.map(n, p)?;
    let w = workload_fields(cx, &mut f, resolution);
    f.finish(cx);
    Some(w)
}

fn workload_fields(cx: &mut Cx<'_>, f: &mut Fields<'_>, resolution: Resolution) -> WorkloadEntrySpec {
    WorkloadEntrySpec {
        address: f.get(cx, "address", |cx, n, p| address(cx, n, p, resolution)),
        ports: f
            .get(cx, "ports", |cx, n, p| {
                let mut m = cx.map(n, p)?;
                let mut out = BTreeMap::new();
                for (name, v, vp) in m.rest(cx) {
                    if let Some(port) = cx.port(v, &vp, false) {
                        out.insert(name, port);
                    }
                }
                Some(out)
            })
            .unwrap_or_default(),
        labels: f.get(cx, "labels", labels).unwrap_or_default(),
        network: f.string(cx, "network"),
        locality: f.string(cx, "locality"),
        weight: f
            .int(cx, "weight", 0, i64::from(u32::MAX))
            .map(|w| w as u32),
        service_account: f.string(cx, "serviceAccount"),
    }
}

fn address(cx: &mut Cx<'_>, n: &Node, p: &str, resolution: Resolution) -> Option<Address> {
    let s = cx.string(n, p)?;
    if let Some(path) = s.strip_prefix("unix://") {
        return Some(Address::Unix(path.to_string()));
    }
    if let Ok(ip) = s.parse::<IpAddr>() {
        return Some(Address::Ip(ip));
    }
    if resolution == Resolution::Static {
        let msg = format!("`{s}` is not an IP address; STATIC resolution needs IP endpoints");
        cx.report(Code::InvalidAddress, n.pos, p, msg);
        return None;
    }
    if let Some(problem) = host_problem(&s).or_else(|| {
        s.contains('*')
            .then(|| format!("`{s}` may not be a wildcard"))
    }) {
        cx.report(Code::InvalidAddress, n.pos, p, problem);
        return None;
    }
    Some(Address::Hostname(s.to_ascii_lowercase()))
}

pub(crate) fn decode_workload_entry(
    cx: &mut Cx<'_>,
    spec: &Node,
    meta: Meta,
) -> Option<WorkloadEntry> {
    let mut f = cx.map(spec, "spec")?;
    let workload = workload_fields(cx, &mut f, Resolution::Dns);
    f.finish(cx);
    Some(WorkloadEntry { meta, workload })
}
