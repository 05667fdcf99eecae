//! VirtualService route matching, for both roles. On the node, the routes
//! bound to `mesh` choose where intercepted traffic goes: first matching
//! route wins, and a route whose destination is another host than the one
//! the client asked for steers the traffic there (typically an egress
//! gateway). The gateway role matches its own routes (`gateway_role/
//! servers.rs`) with the same request conditions and weighted choice.
//! Regular expressions were compiled when the configuration was read.

use std::{net::IpAddr, sync::Arc};

use serde::Serialize;

use super::workload::WorkloadIdentity;
use crate::config::{
    GatewayRef, VirtualService,
    hosts::host_matches,
    resources::{
        common::{Destination, selector_matches},
        http_route::HttpMatch,
        virtual_service::{L4Match, TlsMatch},
    },
};

/// The request facts HTTP matches look at.
#[derive(Clone, Copy)]
pub struct HttpFacts<'a> {
    pub authority: &'a str,
    pub path: &'a str,
    pub method: &'a str,
    /// The raw query string, empty when there is none.
    pub query: &'a str,
    /// `http` or `https`, as the client spoke to us.
    pub scheme: &'a str,
    pub header: &'a (dyn Fn(&str) -> Option<String> + Sync),
}

impl<'a> HttpFacts<'a> {
    /// A GET of `/` to `authority`, with no headers.
    pub fn get(authority: &'a str) -> Self {
        HttpFacts { authority, path: "/", method: "GET", query: "", scheme: "http", header: &|_| None }
    }
}

/// What a mesh route chose. Its text is shared: a request's choice is
/// cloned into its record and into each attempt.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RouteChoice {
    pub kind: &'static str,
    pub namespace: Arc<str>,
    pub name: Arc<str>,
    pub destination: Arc<str>,
    pub port: Option<u16>,
    pub subset: Option<Arc<str>>,
}

/// The traffic a route is asked about.
pub enum RouteQuery<'a> {
    Tls { sni: &'a str },
    Http(HttpFacts<'a>),
    Tcp { dst: IpAddr },
}

/// The first route, of `mesh_services` (the VirtualServices bound to `mesh`
/// and visible to the workload, in order), that matches. `pick` (0..100)
/// chooses among weighted destinations.
pub fn mesh_route<'a>(
    mesh_services: impl IntoIterator<Item = &'a VirtualService>,
    workload: &WorkloadIdentity,
    query: &RouteQuery<'_>,
    port: u16,
    pick: u32,
) -> Option<RouteChoice> {
    for vs in mesh_services {
        let chosen = match query {
            RouteQuery::Tls { sni } if vs.hosts.iter().any(|h| host_matches(h, sni)) => vs
                .tls
                .iter()
                .find(|r| r.matches.is_empty() || r.matches.iter().any(|m| tls_matches(m, sni, port, workload)))
                .and_then(|r| pick_weighted(r.route.iter().map(|d| (&d.destination, d.weight)), pick)),
            RouteQuery::Http(facts) if vs.hosts.iter().any(|h| host_matches(h, host_of(facts.authority))) => vs
                .http
                .iter()
                .filter(|r| !r.route.is_empty())
                .find(|r| r.matches.is_empty() || r.matches.iter().any(|m| http_matches(m, facts, port, workload)))
                .and_then(|r| pick_weighted(r.route.iter().map(|d| (&d.destination, d.weight)), pick)),
            RouteQuery::Tcp { dst } => vs
                .tcp
                .iter()
                .find(|r| r.matches.is_empty() || r.matches.iter().any(|m| l4_matches(m, *dst, port, workload)))
                .and_then(|r| pick_weighted(r.route.iter().map(|d| (&d.destination, d.weight)), pick)),
            _ => None,
        };
        if let Some(d) = chosen {
            return Some(choice(vs, d));
        }
    }
    None
}

pub(crate) fn choice(vs: &VirtualService, d: &Destination) -> RouteChoice {
    RouteChoice {
        kind: "VirtualService",
        namespace: vs.meta.namespace.as_str().into(),
        name: vs.meta.name.as_str().into(),
        destination: d.host.as_str().into(),
        port: d.port,
        subset: d.subset.as_deref().map(Into::into),
    }
}

/// Weighted choice: `pick` in 0..100 falls in one destination's share.
pub(crate) fn pick_weighted<'a>(route: impl Iterator<Item = (&'a Destination, Option<u32>)>, pick: u32) -> Option<&'a Destination> {
    let route: Vec<_> = route.collect();
    if route.len() <= 1 || route.iter().all(|(_, w)| w.is_none()) {
        return route.first().map(|(d, _)| *d);
    }
    let mut acc = 0;
    for (d, w) in &route {
        acc += w.unwrap_or(0);
        if pick % 100 < acc {
            return Some(d);
        }
    }
    route.last().map(|(d, _)| *d)
}

fn mesh_gateway(gateways: &[GatewayRef]) -> bool {
    gateways.is_empty() || gateways.contains(&GatewayRef::Mesh)
}

pub(crate) fn source_ok(labels: &crate::config::Labels, ns: &Option<String>, w: &WorkloadIdentity) -> bool {
    selector_matches(labels, &w.labels) && ns.as_deref().is_none_or(|n| n == &*w.namespace)
}

fn tls_matches(m: &TlsMatch, sni: &str, port: u16, w: &WorkloadIdentity) -> bool {
    (m.sni_hosts.is_empty() || m.sni_hosts.iter().any(|h| host_matches(h, sni)))
        && m.port.is_none_or(|p| p == port)
        && mesh_gateway(&m.gateways)
        && source_ok(&m.source_labels, &m.source_namespace, w)
}

fn l4_matches(m: &L4Match, dst: IpAddr, port: u16, w: &WorkloadIdentity) -> bool {
    (m.destination_subnets.is_empty() || m.destination_subnets.iter().any(|c| c.contains(dst)))
        && m.port.is_none_or(|p| p == port)
        && mesh_gateway(&m.gateways)
        && source_ok(&m.source_labels, &m.source_namespace, w)
}

fn http_matches(m: &HttpMatch, f: &HttpFacts<'_>, port: u16, w: &WorkloadIdentity) -> bool {
    mesh_gateway(&m.gateways) && http_request_matches(m, f, port, w)
}

/// Every condition of an HTTP match but `gateways`: `w` is the workload the
/// rule applies at (the client's sidecar, or the gateway itself).
pub(crate) fn http_request_matches(m: &HttpMatch, f: &HttpFacts<'_>, port: u16, w: &WorkloadIdentity) -> bool {
    let path = if m.ignore_uri_case { f.path.to_ascii_lowercase() } else { f.path.to_string() };
    m.port.is_none_or(|p| p == port)
        && source_ok(&m.source_labels, &m.source_namespace, w)
        && m.uri.as_ref().is_none_or(|s| s.matches(&path, m.ignore_uri_case))
        && m.scheme.as_ref().is_none_or(|s| s.matches(f.scheme, false))
        && m.authority.as_ref().is_none_or(|s| s.matches(f.authority, false))
        && m.method.as_ref().is_none_or(|s| s.matches(f.method, false))
        && m.headers.iter().all(|(k, s)| (f.header)(k).is_some_and(|v| s.matches(&v, false)))
        && m.without_headers.iter().all(|(k, s)| (f.header)(k).is_none_or(|v| !s.matches(&v, false)))
        && m.query_params.iter().all(|(k, s)| query_param(f.query, k).is_some_and(|v| s.matches(&v, false)))
}

/// The first value of `name` in a query string, percent-decoded.
pub(crate) fn query_param(query: &str, name: &str) -> Option<String> {
    query.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        (k == name).then(|| percent_decode(v))
    })
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        match (bytes[i], bytes.get(i + 1).copied().and_then(hex), bytes.get(i + 2).copied().and_then(hex)) {
            (b'%', Some(h), Some(l)) => {
                out.push((h * 16 + l) as u8);
                i += 3;
            }
            (b'+', _, _) => {
                out.push(b' ');
                i += 1;
            }
            (b, _, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn host_of(authority: &str) -> &str {
    crate::sniff::host_without_port(authority)
}
