//! Which `Gateway` servers this instance serves, and how a connection on
//! one of their ports is routed by the VirtualServices bound to them.

use std::{collections::BTreeMap, net::IpAddr, sync::Arc};

use super::bound_routes::BoundRoutes;
use crate::{
    config::{
        GatewayRef, Labels, Protocol, ServerHost, ServerTlsMode, Snapshot, StringMatch, VirtualService,
        hosts::host_matches,
        resources::{
            common::Headers,
            gateway::{Bind, ServerTls, TlsFiles, TlsVersion},
            http_route::{HttpRoute, Redirect, ResponseBody},
            virtual_service::L4Match,
        },
    },
    policy::{
        HttpFacts, RouteChoice, WorkloadIdentity,
        route_match::{choice, http_request_matches, pick_weighted, source_ok},
    },
};

/// How a port's connections are handled.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ServerKind {
    /// TLS left encrypted, routed by SNI through `tls` routes.
    Passthrough,
    /// Plain HTTP, routed by Host through `http` routes.
    Http,
    /// ISTIO_MUTUAL: mutual TLS from a node, then TLS (by SNI) or HTTP (by
    /// Host) inside.
    Mesh,
    /// HTTPS terminated here (SIMPLE, MUTUAL, OPTIONAL_MUTUAL), then HTTP.
    Terminate,
    /// Opaque TCP, routed by port through `tcp` routes; nothing is read first.
    Tcp,
    /// A `TLS` server terminated here (SIMPLE, MUTUAL, OPTIONAL_MUTUAL), then
    /// TCP through `tcp` routes.
    TerminateTcp,
}

impl ServerKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ServerKind::Passthrough => "passthrough",
            ServerKind::Http => "http",
            ServerKind::Mesh => "istio-mutual",
            ServerKind::Terminate => "https",
            ServerKind::Tcp => "tcp",
            ServerKind::TerminateTcp => "tls-terminated",
        }
    }
}

/// The certificate a terminating server presents, and how it treats
/// client certificates. The files carry a digest of their contents, so a
/// rotated certificate makes a different plan.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TerminateTls {
    /// The first server's certificate, key and client CA, as checked.
    pub files: TlsFiles,
    pub mode: ServerTlsMode,
    pub min: Option<TlsVersion>,
    pub max: Option<TlsVersion>,
    /// Other servers on the same port: their hosts and files, chosen by SNI.
    pub by_sni: Vec<(Vec<String>, TlsFiles)>,
}

/// One listening port and the Gateways (namespace, name) that claim it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PortPlan {
    /// The server's `bind` address; all addresses when absent.
    pub bind: Option<IpAddr>,
    pub port: u16,
    pub kind: ServerKind,
    pub gateways: Vec<(String, String)>,
    /// An HTTP server with `tls.httpsRedirect`: every request gets a 301.
    pub https_redirect: bool,
    /// For [`ServerKind::Terminate`] and [`ServerKind::TerminateTcp`].
    pub tls: Option<TerminateTls>,
    /// Each server's hosts on this port, by Gateway: only these are served,
    /// and their `ns/` scope says whose VirtualServices may bind them.
    pub server_hosts: Vec<((String, String), ServerHost)>,
}

impl PortPlan {
    /// Whether a VirtualService of `vs_namespace` may serve `host` through
    /// the Gateway `gateway` on this port.
    fn admits(&self, gateway: &(String, String), vs_namespace: &str, host: &str) -> bool {
        self.server_hosts.iter().any(|(g, h)| g == gateway && h.admits(&gateway.0, vs_namespace, host))
    }
}

/// The ports to listen on, from the Gateways whose selector matches `labels`.
/// Servers this role cannot serve yet are reported, not served. Certificate
/// files are those the configuration checked (`credentialName` resolved in
/// the credential directory then).
pub fn plan(snapshot: &Snapshot, labels: &Labels) -> (Vec<PortPlan>, Vec<String>) {
    let mut ports: BTreeMap<(Option<IpAddr>, u16), PortPlan> = BTreeMap::new();
    let mut skipped = Vec::new();
    for gw in snapshot.gateways_for_instance(labels) {
        for server in &gw.servers {
            let tls = server.tls.as_ref();
            let https_redirect = tls.is_some_and(|t| t.https_redirect);
            let tls_mode = tls.map(|t| t.mode);
            let mut terminate = None;
            let kind = match (server.port.protocol, tls_mode) {
                (Protocol::Http | Protocol::Http2 | Protocol::Grpc | Protocol::GrpcWeb, None) => ServerKind::Http,
                (Protocol::Http | Protocol::Http2 | Protocol::Grpc | Protocol::GrpcWeb, Some(_)) if https_redirect => ServerKind::Http,
                (Protocol::Tls | Protocol::Https, Some(ServerTlsMode::Passthrough)) => ServerKind::Passthrough,
                (Protocol::Tcp | Protocol::Mongo | Protocol::Redis | Protocol::Mysql, None) => ServerKind::Tcp,
                (Protocol::Tls | Protocol::Https | Protocol::Http | Protocol::Http2, Some(ServerTlsMode::IstioMutual)) => ServerKind::Mesh,
                (p @ (Protocol::Https | Protocol::Tls), Some(mode @ (ServerTlsMode::Simple | ServerTlsMode::Mutual | ServerTlsMode::OptionalMutual))) => {
                    match tls.and_then(|t| terminate_tls(t, mode)) {
                        Some(t) => {
                            terminate = Some(t);
                            if p == Protocol::Tls { ServerKind::TerminateTcp } else { ServerKind::Terminate }
                        }
                        None => {
                            skipped.push(format!("{}/{} port {} (no certificate)", gw.meta.namespace, gw.meta.name, server.port.number));
                            continue;
                        }
                    }
                }
                (p, m) => {
                    skipped.push(format!(
                        "{}/{} port {} ({}{})",
                        gw.meta.namespace,
                        gw.meta.name,
                        server.port.number,
                        p.as_str(),
                        m.map(|m| format!(", tls {}", m.as_str())).unwrap_or_default()
                    ));
                    continue;
                }
            };
            let bind = match &server.bind {
                None => None,
                Some(Bind::Ip(ip)) => Some(*ip),
                Some(Bind::Unix(path)) => {
                    skipped.push(format!("{}/{} port {} (bind {path})", gw.meta.namespace, gw.meta.name, server.port.number));
                    continue;
                }
            };
            let plan = ports
                .entry((bind, server.port.number))
                .or_insert(PortPlan {
                    bind,
                    port: server.port.number,
                    kind,
                    gateways: Vec::new(),
                    // Only an HTTP server redirects.
                    https_redirect: https_redirect && kind == ServerKind::Http,
                    tls: terminate.clone(),
                    server_hosts: Vec::new(),
                });
            let id = (gw.meta.namespace.clone(), gw.meta.name.clone());
            if plan.kind == kind && !plan.gateways.contains(&id) {
                plan.gateways.push(id.clone());
            }
            plan.server_hosts.extend(server.hosts.iter().map(|h| (id.clone(), h.clone())));
            // A further terminating server on the port: its certificate by SNI.
            if let (Some(first), Some(this)) = (plan.tls.as_mut(), terminate)
                && first.files.certificate != this.files.certificate {
                    let hosts = server.hosts.iter().map(|h| h.host.clone()).collect();
                    first.by_sni.push((hosts, this.files));
                }
        }
    }
    (ports.into_values().collect(), skipped)
}

/// The files the configuration checked for a terminating server; none when
/// it could not (no credential directory for a `credentialName`).
fn terminate_tls(t: &ServerTls, mode: ServerTlsMode) -> Option<TerminateTls> {
    let files = t.files.clone()?;
    Some(TerminateTls { files, mode, min: t.min_protocol_version, max: t.max_protocol_version, by_sni: Vec::new() })
}

/// The VirtualServices bound to the port's Gateways, each with the Gateway
/// it is bound through.
fn bound<'a>(snapshot: &'a Snapshot, plan: &'a PortPlan) -> impl Iterator<Item = (&'a (String, String), &'a VirtualService)> + 'a {
    plan.gateways.iter().flat_map(move |gw| snapshot.virtual_services_for_gateway(&gw.0, &gw.1).into_iter().map(move |vs| (gw, vs)))
}

/// The same, looked up in those found for the snapshot's generation.
fn bound_in<'a>(routes: &'a BoundRoutes, plan: &'a PortPlan) -> impl Iterator<Item = (&'a (String, String), &'a VirtualService)> + 'a {
    plan.gateways.iter().flat_map(move |gw| routes.bound_to(gw).map(move |vs| (gw, vs)))
}

/// Those of them that serve `host` on this port: listed in their hosts and
/// admitted by a server of their Gateway.
fn serving<'a>(
    bound: impl Iterator<Item = (&'a (String, String), &'a VirtualService)> + 'a,
    plan: &'a PortPlan,
    host: &'a str,
) -> impl Iterator<Item = &'a VirtualService> + 'a {
    bound
        .filter(move |(gw, vs)| vs.hosts.iter().any(|h| host_matches(h, host)) && plan.admits(gw, &vs.meta.namespace, host))
        .map(|(_, vs)| vs)
}

fn bound_here(refs: &[GatewayRef], gateways: &[(String, String)]) -> bool {
    refs.iter().any(|r| match r {
        GatewayRef::Gateway { namespace, name } => gateways.iter().any(|(ns, n)| ns == namespace && n == name),
        _ => false,
    })
}

/// The first `tls` route, of the VirtualServices bound to these Gateways,
/// whose match fits the SNI, port and the `gateway`'s own labels; `pick`
/// (0..100) chooses among weighted destinations.
pub fn tls_route(snapshot: &Snapshot, plan: &PortPlan, sni: &str, gateway: &WorkloadIdentity, pick: u32) -> Option<RouteChoice> {
    for vs in serving(bound(snapshot, plan), plan, sni) {
        for r in &vs.tls {
            let fits = r.matches.iter().any(|m| {
                (m.sni_hosts.is_empty() || m.sni_hosts.iter().any(|h| host_matches(h, sni)))
                    && m.port.is_none_or(|p| p == plan.port)
                    && (m.gateways.is_empty() || bound_here(&m.gateways, &plan.gateways))
                    && source_ok(&m.source_labels, &m.source_namespace, gateway)
            });
            if fits {
                return pick_weighted(r.route.iter().map(|d| (&d.destination, d.weight)), pick).map(|d| choice(vs, d));
            }
        }
    }
    None
}

/// Where a TCP connection arrived, and who the gateway is, for `tcp` matches.
pub struct TcpFacts<'a> {
    /// The listener's local address the client reached.
    pub local: IpAddr,
    /// The gateway itself (`sourceNamespace`, `sourceLabels`).
    pub gateway: &'a WorkloadIdentity,
}

/// The first `tcp` route, of the VirtualServices bound to these Gateways
/// whose hosts a server on the port lists, whose match fits the port,
/// gateway, local address and the gateway's own labels. `pick` (0..100)
/// chooses among weighted destinations.
pub fn tcp_route(snapshot: &Snapshot, plan: &PortPlan, facts: &TcpFacts<'_>, pick: u32) -> Option<RouteChoice> {
    let admitted = bound(snapshot, plan).filter(|(gw, vs)| vs.hosts.iter().any(|h| plan.admits(gw, &vs.meta.namespace, h)));
    for (_, vs) in admitted {
        let fits = |m: &L4Match| {
            m.port.is_none_or(|p| p == plan.port)
                && (m.gateways.is_empty() || bound_here(&m.gateways, &plan.gateways))
                && (m.destination_subnets.is_empty() || m.destination_subnets.iter().any(|c| c.contains(facts.local.to_canonical())))
                && source_ok(&m.source_labels, &m.source_namespace, facts.gateway)
        };
        if let Some(r) = vs.tcp.iter().find(|r| r.matches.is_empty() || r.matches.iter().any(fits)) {
            return pick_weighted(r.route.iter().map(|d| (&d.destination, d.weight)), pick).map(|d| choice(vs, d));
        }
    }
    None
}

/// What a matching HTTP route does.
#[derive(Clone, Debug, PartialEq)]
pub enum HttpAction {
    /// To `choice`, under the route's policies; `matched_uri` is the uri
    /// condition that matched (for prefix rewrites).
    /// `destination_headers` are the chosen destination's own header edits.
    Forward { choice: RouteChoice, route: Arc<HttpRoute>, matched_uri: Option<StringMatch>, destination_headers: Option<Headers> },
    Redirect { route: RouteChoice, redirect: Redirect },
    Respond { route: RouteChoice, status: u16, body: String },
}

/// The first `http` route, of the VirtualServices bound to these Gateways
/// (in `routes`, found for the current generation), whose match fits the
/// request; `sourceLabels` are the `gateway`'s own.
pub fn http_route(routes: &BoundRoutes, plan: &PortPlan, request: &HttpFacts<'_>, gateway: &WorkloadIdentity, pick: u32) -> Option<HttpAction> {
    let host = crate::sniff::host_without_port(request.authority).to_ascii_lowercase();
    for vs in serving(bound_in(routes, plan), plan, &host) {
        for r in vs.http.iter().filter(|r| !r.route.is_empty() || r.redirect.is_some() || r.direct_response.is_some()) {
            let matched = r.matches.iter().find(|m| {
                (m.gateways.is_empty() || bound_here(&m.gateways, &plan.gateways)) && http_request_matches(m, request, plan.port, gateway)
            });
            if !(r.matches.is_empty() || matched.is_some()) {
                continue;
            }
            let matched_uri = matched.and_then(|m| m.uri.clone());
            // A redirect or direct response names the route, no destination.
            let answered_here = || RouteChoice {
                kind: "VirtualService",
                namespace: vs.meta.namespace.as_str().into(),
                name: vs.meta.name.as_str().into(),
                destination: "".into(),
                port: None,
                subset: None,
            };
            if let Some(redirect) = &r.redirect {
                return Some(HttpAction::Redirect { route: answered_here(), redirect: redirect.clone() });
            }
            if let Some(direct) = &r.direct_response {
                let body = match &direct.body {
                    Some(ResponseBody::String(s)) => s.clone(),
                    Some(ResponseBody::Bytes(b)) => b.clone(),
                    None => String::new(),
                };
                return Some(HttpAction::Respond { route: answered_here(), status: direct.status, body });
            }
            return pick_weighted(r.route.iter().map(|d| (&d.destination, d.weight)), pick).map(|d| HttpAction::Forward {
                choice: choice(vs, d),
                route: r.clone(),
                matched_uri,
                destination_headers: r.route.iter().find(|rd| std::ptr::eq(&rd.destination, d)).and_then(|rd| rd.headers.clone()),
            });
        }
    }
    None
}
