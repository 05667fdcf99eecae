//! The egress decision: a pure function from the facts of one connection
//! and the compiled policy to a verdict with its reason.
//!
//! A name the client sends (SNI, Host) must match a registered host on the
//! dialled port, and the address it dialled must be one that name may have:
//! the proxy resolves DNS-type entries itself, and for the others the
//! dialled IP must be in the entry's `addresses` or have come from this
//! gateway's own DNS answer to that workload. Without a name, only the
//! address counts.

use std::net::{IpAddr, SocketAddr};

use serde::Serialize;

use super::{
    compiled::EgressPolicy,
    route_match::{HttpFacts, RouteChoice, RouteQuery},
    registry::{MatchedEntry, PortProtocol, RegisteredPort, RegisteredService, canonical},
    workload::WorkloadIdentity,
};
use crate::config::resources::{service_entry::Resolution, sidecar::OutboundMode};

/// What the proxy learnt from the first bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Detected<'a> {
    Tls { sni: Option<&'a str> },
    Http { host: Option<&'a str> },
    Opaque,
}

impl Detected<'_> {
    fn name(&self) -> Option<&str> {
        match *self {
            Detected::Tls { sni } => sni,
            Detected::Http { host } => host,
            Detected::Opaque => None,
        }
    }

    fn fits(&self, port: PortProtocol) -> bool {
        matches!((self, port), (_, PortProtocol::Tcp) | (Detected::Tls { .. }, PortProtocol::Tls) | (Detected::Http { .. }, PortProtocol::Http))
    }
}

pub struct ConnectionFacts<'a> {
    pub workload: &'a WorkloadIdentity,
    pub client: IpAddr,
    pub orig_dst: SocketAddr,
    pub detected: Detected<'a>,
    /// For HTTP requests: what VirtualService HTTP matches look at.
    pub request: Option<HttpFacts<'a>>,
    /// 0..100: chooses among weighted route destinations.
    pub pick: u32,
}

/// What this gateway's DNS server told each workload.
pub trait DnsKnowledge {
    /// Did `client` get `ip` as an answer for `name`, still within its TTL?
    fn answered(&self, client: IpAddr, name: &str, ip: IpAddr) -> bool;
    /// The names `client` was given `ip` for, within their TTLs.
    fn names_for(&self, client: IpAddr, ip: IpAddr) -> Vec<String>;
}

/// For callers with no DNS server: nothing was answered.
pub struct NoDns;

impl DnsKnowledge for NoDns {
    fn answered(&self, _: IpAddr, _: &str, _: IpAddr) -> bool {
        false
    }
    fn names_for(&self, _: IpAddr, _: IpAddr) -> Vec<String> {
        Vec::new()
    }
}

/// Where an allowed connection goes.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Target {
    /// The address the client dialled.
    Original(SocketAddr),
    /// The proxy's own resolution of `host`.
    Resolve { host: String, port: u16 },
    /// A STATIC entry's endpoints.
    Endpoints(Vec<SocketAddr>),
}

impl Target {
    /// The port the target is reached on.
    pub fn port(&self) -> u16 {
        match self {
            Target::Original(a) => a.port(),
            Target::Resolve { port, .. } => *port,
            Target::Endpoints(list) => list.first().map_or(0, |a| a.port()),
        }
    }
}

macro_rules! reasons {
    ($name:ident { $($variant:ident = $text:literal),* $(,)? }) => {
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum $name { $($variant,)* }
        impl $name {
            pub const fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text,)* }
            }
        }
        impl Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }
    };
}

reasons!(AllowReason {
    RegisteredHost = "registered-host",
    RegisteredAddress = "registered-address",
    DnsLearned = "dns-learned",
    AllowAny = "allow-any",
});

reasons!(DenyReason {
    NotRegistered = "not-registered",
    NotInSidecarScope = "not-in-sidecar-scope",
    PortNotRegistered = "port-not-registered",
    ProtocolMismatch = "protocol-mismatch",
    IpNameMismatch = "ip-name-mismatch",
    NoEndpoints = "no-endpoints",
});

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// `subset`: the subset a `mesh` route to the same host chose, whose
    /// DestinationRule settings (TLS origination) apply.
    Allow { target: Target, matched: Option<MatchedEntry>, reason: AllowReason, subset: Option<String> },
    /// Allowed, and a `mesh` route sends it to another destination (an
    /// egress gateway): never to where the client dialled.
    Steer { target: Target, matched: Option<MatchedEntry>, reason: AllowReason, route: RouteChoice },
    Deny { reason: DenyReason, matched: Option<MatchedEntry> },
}

/// The registry decides whether the connection may go out at all; then the
/// VirtualService routes bound to `mesh` decide where it goes.
pub fn decide(facts: &ConnectionFacts<'_>, policy: &EgressPolicy, dns: &dyn DnsKnowledge) -> Verdict {
    decide_with(facts, policy, dns, false)
}

/// [`decide`]; `registry_only`: as if every Sidecar said REGISTRY_ONLY
/// (audit mode, `audit.rs`).
pub(super) fn decide_with(facts: &ConnectionFacts<'_>, policy: &EgressPolicy, dns: &dyn DnsKnowledge, registry_only: bool) -> Verdict {
    let verdict = decide_registry(facts, policy, dns, registry_only);
    let Verdict::Allow { target, matched, reason, .. } = verdict else { return verdict };
    let port = facts.orig_dst.port();
    let default_request = HttpFacts::get;
    let query = match (facts.detected, facts.request) {
        (_, Some(request)) => RouteQuery::Http(request),
        (Detected::Tls { sni: Some(sni) }, _) => RouteQuery::Tls { sni },
        (Detected::Http { host: Some(host) }, _) => RouteQuery::Http(default_request(host)),
        _ => RouteQuery::Tcp { dst: canonical(facts.orig_dst.ip()) },
    };
    let Some(route) = policy.mesh_route(facts.workload, &query, port, facts.pick) else {
        return Verdict::Allow { target, matched, reason, subset: None };
    };
    let asked = facts.detected.name().map(str::to_ascii_lowercase).or_else(|| matched.as_ref().map(|m| m.host.to_string()));
    if asked.as_deref().is_some_and(|a| crate::config::hosts::host_matches(&route.destination, a)) {
        // Routed to the host it asked for: nothing to steer, but the
        // route's subset chooses its DestinationRule settings.
        return Verdict::Allow { target, matched, reason, subset: route.subset.as_deref().map(str::to_string) };
    }
    let target = policy.route_target(facts.workload, &route, port);
    Verdict::Steer { target, matched, reason, route }
}

/// What a gateway sends to a route's destination, for the port-protocol
/// check of [`decide_exit`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exit {
    /// HTTP requests in the clear: an HTTP (or TCP) port.
    Http,
    /// A TLS stream passed through: a TLS (or TCP) port.
    Tls,
    /// TLS originated here around HTTP, or an opaque stream: a port of any
    /// protocol.
    Any,
}

/// At an egress gateway: may a route's destination `host:port` go out? The
/// gateway applies the registry on its own; it has no dialled address, so
/// a host resolves by its entry (DNS or STATIC), never by the client's IP.
pub fn decide_exit(policy: &EgressPolicy, workload: &WorkloadIdentity, host: &str, port: u16, exit: Exit) -> Verdict {
    let unspecified = IpAddr::from([0, 0, 0, 0]);
    let ask = |detected| {
        let facts = ConnectionFacts {
            workload,
            client: unspecified,
            orig_dst: SocketAddr::new(unspecified, port),
            detected,
            request: None,
            pick: 0,
        };
        decide_registry(&facts, policy, &NoDns, false)
    };
    let (http, tls) = (Detected::Http { host: Some(host) }, Detected::Tls { sni: Some(host) });
    match exit {
        Exit::Http => ask(http),
        Exit::Tls => ask(tls),
        Exit::Any => match ask(tls) {
            Verdict::Deny { reason: DenyReason::ProtocolMismatch, .. } => ask(http),
            verdict => verdict,
        },
    }
}

fn decide_registry(facts: &ConnectionFacts<'_>, policy: &EgressPolicy, dns: &dyn DnsKnowledge, registry_only: bool) -> Verdict {
    let registry = policy.registry_for(&facts.workload.namespace);
    let scope = policy.scope_for(facts.workload);
    let port = facts.orig_dst.port();
    let ip = canonical(facts.orig_dst.ip());
    // The most specific reason a near miss gives, if nothing allows.
    let mut refusal: Option<(DenyReason, Option<MatchedEntry>)> = None;

    if let Some(name) = facts.detected.name() {
        for (svc, host) in registry.by_name(name) {
            if !scope.admits(svc, host, port) {
                refusal.get_or_insert((DenyReason::NotInSidecarScope, Some(svc.matched(host))));
                continue;
            }
            let Some(p) = svc.port(port) else {
                refusal = Some((DenyReason::PortNotRegistered, Some(svc.matched(host))));
                continue;
            };
            if !facts.detected.fits(p.protocol) {
                refusal = Some((DenyReason::ProtocolMismatch, Some(svc.matched(host))));
                continue;
            }
            match by_resolution(svc, p, host, name, facts, dns) {
                Ok(target) => {
                    return Verdict::Allow { target, matched: Some(svc.matched(host)), reason: AllowReason::RegisteredHost, subset: None };
                }
                Err(reason) => refusal = Some((reason, Some(svc.matched(host)))),
            }
        }
    }

    // By address: entries listing the dialled IP, on ports decided by address
    // (or on any registered port when the client sent no name).
    for svc in registry.by_address(ip) {
        let host = &svc.hosts.first().cloned().unwrap_or_else(|| "".into());
        let named = facts.detected.name().is_some();
        let Some(p) = svc.port(port) else {
            if !named {
                refusal.get_or_insert((DenyReason::PortNotRegistered, Some(svc.matched(host))));
            }
            continue;
        };
        if named && p.protocol != PortProtocol::Tcp {
            continue; // a name was sent and did not match this entry
        }
        if !svc.hosts.iter().any(|h| scope.admits(svc, h, port)) {
            refusal.get_or_insert((DenyReason::NotInSidecarScope, Some(svc.matched(host))));
            continue;
        }
        let target = match svc.resolution {
            Resolution::Static => match endpoints(svc, p) {
                Ok(t) => t,
                Err(r) => {
                    refusal = Some((r, Some(svc.matched(host))));
                    continue;
                }
            },
            _ => Target::Original(facts.orig_dst),
        };
        return Verdict::Allow { target, matched: Some(svc.matched(host)), reason: AllowReason::RegisteredAddress, subset: None };
    }

    // By what this gateway's DNS told the workload, when it sent no name.
    if facts.detected.name().is_none() {
        for name in dns.names_for(facts.client, ip) {
            for (svc, host) in registry.by_name(&name) {
                if scope.admits(svc, host, port) && svc.port(port).is_some() {
                    return Verdict::Allow {
                        target: Target::Original(facts.orig_dst),
                        matched: Some(svc.matched(host)),
                        reason: AllowReason::DnsLearned,
                        subset: None,
                    };
                }
            }
        }
    }

    if scope.mode == OutboundMode::AllowAny && !registry_only {
        return Verdict::Allow { target: Target::Original(facts.orig_dst), matched: None, reason: AllowReason::AllowAny, subset: None };
    }
    let (reason, matched) = refusal.unwrap_or((DenyReason::NotRegistered, None));
    Verdict::Deny { reason, matched }
}

/// Where a name-matched connection may go, per the entry's resolution.
fn by_resolution(
    svc: &RegisteredService,
    port: &RegisteredPort,
    host: &str,
    name: &str,
    facts: &ConnectionFacts<'_>,
    dns: &dyn DnsKnowledge,
) -> Result<Target, DenyReason> {
    let ip = canonical(facts.orig_dst.ip());
    match svc.resolution {
        Resolution::Dns | Resolution::DnsRoundRobin => {
            let host = if host.starts_with('*') { name } else { host };
            Ok(Target::Resolve { host: host.to_string(), port: port.target_port.unwrap_or(port.number) })
        }
        Resolution::None => {
            if svc.contains_address(ip) || dns.answered(facts.client, name, ip) {
                Ok(Target::Original(facts.orig_dst))
            } else {
                Err(DenyReason::IpNameMismatch)
            }
        }
        Resolution::Static => endpoints(svc, port),
    }
}

fn endpoints(svc: &RegisteredService, port: &RegisteredPort) -> Result<Target, DenyReason> {
    let addrs = svc.endpoint_addrs(port);
    if addrs.is_empty() { Err(DenyReason::NoEndpoints) } else { Ok(Target::Endpoints(addrs)) }
}

