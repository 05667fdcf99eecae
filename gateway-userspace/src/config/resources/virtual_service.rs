//! `VirtualService` (networking.istio.io): hosts, gateway bindings and the
//! TLS and TCP routes. HTTP routes are in `http_route.rs`.

use super::common::{Destination, Labels, Meta, destination, export_to, host, labels};
use super::http_route::{HttpRoute, http_route};
use crate::config::decode::Cx;
use crate::config::findings::Code;
use crate::config::hosts::GatewayRef;
use crate::config::values::{Cidr, parse_cidr};
use crate::config::yaml::Node;
use serde::Serialize;
use std::sync::Arc;

/// A VirtualService resource.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct VirtualService {
    pub meta: Meta,
    /// Hosts, short names expanded.
    pub hosts: Vec<String>,
    /// Gateways the routes apply to; `[Mesh]` when none are given.
    pub gateways: Vec<GatewayRef>,
    /// Shared: a request's plan holds the route that matched it.
    pub http: Vec<Arc<HttpRoute>>,
    pub tls: Vec<TlsRoute>,
    pub tcp: Vec<TcpRoute>,
    pub export_to: Vec<String>,
}

impl VirtualService {
    /// Whether the routes apply to sidecars (the `mesh` gateway).
    pub fn binds_mesh(&self) -> bool {
        self.gateways.contains(&GatewayRef::Mesh)
    }

    /// Whether the routes apply to the Gateway `namespace/name`.
    pub fn binds_gateway(&self, namespace: &str, name: &str) -> bool {
        self.gateways.iter().any(|g| {
            matches!(g, GatewayRef::Gateway { namespace: n, name: m } if n == namespace && m == name)
        })
    }
}

/// A destination with an optional weight (TLS and TCP routes).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RouteDestination {
    pub destination: Destination,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub weight: Option<u32>,
}

/// Routing for TLS traffic that is passed through, by SNI.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TlsRoute {
    pub matches: Vec<TlsMatch>,
    pub route: Vec<RouteDestination>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TlsMatch {
    pub sni_hosts: Vec<String>,
    pub destination_subnets: Vec<Cidr>,
    pub port: Option<u16>,
    pub source_labels: Labels,
    pub gateways: Vec<GatewayRef>,
    pub source_namespace: Option<String>,
}

/// Routing for opaque TCP traffic.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TcpRoute {
    pub matches: Vec<L4Match>,
    pub route: Vec<RouteDestination>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct L4Match {
    pub destination_subnets: Vec<Cidr>,
    pub port: Option<u16>,
    pub source_labels: Labels,
    pub gateways: Vec<GatewayRef>,
    pub source_namespace: Option<String>,
}

pub(crate) fn decode(cx: &mut Cx<'_>, spec: &Node, meta: Meta) -> Option<VirtualService> {
    let mut f = cx.map(spec, "spec")?;
    let hosts = f.req(cx, "hosts", |cx, n, p| {
        Some(cx.nonempty_list(n, p, "host", |cx, n, p| host(cx, n, p, true)))
    });
    let mut gateways = f.list(cx, "gateways", gateway_ref);
    let http = f.list(cx, "http", |cx, n, p| http_route(cx, n, p).map(Arc::new));
    let tls = f.list(cx, "tls", tls_route);
    let tcp = f.list(cx, "tcp", tcp_route);
    let export_to = export_to(cx, &mut f);
    let pos = f.pos;
    let has_routes = f.has("http") || f.has("tls") || f.has("tcp");
    f.finish(cx);
    if !has_routes {
        cx.report(
            Code::MissingField,
            pos,
            "spec",
            "a VirtualService needs at least one of `http`, `tls` or `tcp`",
        );
    }
    if gateways.is_empty() {
        gateways.push(GatewayRef::Mesh);
    }
    Some(VirtualService {
        meta,
        hosts: hosts?,
        gateways,
        http,
        tls,
        tcp,
        export_to,
    })
}

/// Reads a gateway reference: `mesh`, `name` or `namespace/name`.
pub(crate) fn gateway_ref(cx: &mut Cx<'_>, n: &Node, p: &str) -> Option<GatewayRef> {
    let s = cx.string(n, p)?;
    let bad = s.is_empty() || s.matches('/').count() > 1 || s.starts_with('/') || s.ends_with('/');
    if bad {
        let msg =
            format!("`{s}` is not a gateway reference; use `mesh`, `name` or `namespace/name`");
        cx.report(Code::InvalidName, n.pos, p, msg);
        return None;
    }
    Some(GatewayRef::parse(&s, &cx.namespace))
}

/// Reads a list of CIDR blocks.
pub(crate) fn subnets(cx: &mut Cx<'_>, n: &Node, p: &str) -> Option<Vec<Cidr>> {
    Some(cx.list(n, p, |cx, n, p| {
        let s = cx.string(n, p)?;
        let c = parse_cidr(&s);
        if c.is_none() {
            let msg = format!("`{s}` is not an IP address or CIDR block like `10.0.0.0/8`");
            cx.report(Code::InvalidAddress, n.pos, p, msg);
        }
        c
    }))
}

/// Checks that, when any weight is given, the weights sum to 100.
pub(crate) fn check_weights(cx: &mut Cx<'_>, route_path: &str, weights: &[Option<u32>]) {
    if weights.iter().all(Option::is_none) {
        return;
    }
    let sum: u64 = weights.iter().flatten().map(|w| u64::from(*w)).sum();
    if sum == 100 {
        return;
    }
    let last = weights.iter().rposition(Option::is_some).unwrap_or(0);
    let field = format!("{route_path}[{last}].weight");
    let msg = format!("route weights sum to {sum}; adjust them so they sum to 100");
    cx.report(Code::WeightSum, cx.pos_of(&field), &field, msg);
}

pub(crate) fn weight(cx: &mut Cx<'_>, n: &Node, p: &str) -> Option<u32> {
    cx.int(n, p, 0, 100).and_then(|w| u32::try_from(w).ok())
}

fn route_destination(cx: &mut Cx<'_>, n: &Node, p: &str) -> Option<RouteDestination> {
    let mut f = cx.map(n, p)?;
    let destination = f.req(cx, "destination", destination);
    let weight = f.get(cx, "weight", weight);
    f.finish(cx);
    Some(RouteDestination {
        destination: destination?,
        weight,
    })
}

fn routes(cx: &mut Cx<'_>, n: &Node, p: &str) -> Option<Vec<RouteDestination>> {
    let mut weights = Vec::new();
    let out = cx.list(n, p, |cx, n, p| {
        let r = route_destination(cx, n, p);
        weights.push(r.as_ref().and_then(|r| r.weight));
        r
    });
    check_weights(cx, p, &weights);
    Some(out)
}

fn tls_route(cx: &mut Cx<'_>, n: &Node, p: &str) -> Option<TlsRoute> {
    let mut f = cx.map(n, p)?;
    let matches = f.req(cx, "match", |cx, n, p| Some(cx.list(n, p, tls_match)));
    let route = f.req(cx, "route", routes);
    f.finish(cx);
    Some(TlsRoute {
        matches: matches?,
        route: route?,
    })
}

fn tls_match(cx: &mut Cx<'_>, n: &Node, p: &str) -> Option<TlsMatch> {
    let mut f = cx.map(n, p)?;
    let m = TlsMatch {
        sni_hosts: f
            .req(cx, "sniHosts", |cx, n, p| {
                Some(cx.nonempty_list(n, p, "SNI host", |cx, n, p| host(cx, n, p, true)))
            })
            .unwrap_or_default(),
        destination_subnets: f.get(cx, "destinationSubnets", subnets).unwrap_or_default(),
        port: f.get(cx, "port", |cx, n, p| cx.port(n, p, false)),
        source_labels: f.get(cx, "sourceLabels", labels).unwrap_or_default(),
        gateways: f.list(cx, "gateways", gateway_ref),
        source_namespace: f.string(cx, "sourceNamespace"),
    };
    f.finish(cx);
    Some(m)
}

fn tcp_route(cx: &mut Cx<'_>, n: &Node, p: &str) -> Option<TcpRoute> {
    let mut f = cx.map(n, p)?;
    let matches = f.list(cx, "match", l4_match);
    let route = f.req(cx, "route", routes);
    f.finish(cx);
    Some(TcpRoute {
        matches,
        route: route?,
    })
}

fn l4_match(cx: &mut Cx<'_>, n: &Node, p: &str) -> Option<L4Match> {
    let mut f = cx.map(n, p)?;
    let m = L4Match {
        destination_subnets: f.get(cx, "destinationSubnets", subnets).unwrap_or_default(),
        port: f.get(cx, "port", |cx, n, p| cx.port(n, p, false)),
        source_labels: f.get(cx, "sourceLabels", labels).unwrap_or_default(),
        gateways: f.list(cx, "gateways", gateway_ref),
        source_namespace: f.string(cx, "sourceNamespace"),
    };
    f.ignore(&["sourceSubnet"]);
    f.finish(cx);
    Some(m)
}
