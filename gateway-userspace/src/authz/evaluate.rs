//! One request (or stream) against the policies that apply to it.

use std::{net::IpAddr, sync::Arc};

use serde::Serialize;

use super::compile::{Authorizer, ByName, CompiledPolicy, CompiledRule};
use crate::config::{
    Labels,
    resources::{
        authorization::{AuthorizationAction, Condition, Operation, Pattern, Source, Values},
        common::selector_matches,
    },
    values::Cidr,
};

/// What a request is, for the policies to look at.
pub struct AuthzRequest<'a> {
    /// `<trust-domain>/ns/<ns>/sa/<sa>`; `None`: unauthenticated.
    pub principal: Option<&'a str>,
    pub namespace: Option<&'a str>,
    /// The peer's address (`ipBlocks`, `source.ip`).
    pub source_ip: IpAddr,
    /// The original client's (`remoteIpBlocks`): the peer's unless trusted
    /// proxies say otherwise.
    pub remote_ip: IpAddr,
    /// Host, SNI or the decided host, lower case, without port; `None`
    /// when the stream names none.
    pub host: Option<&'a str>,
    pub sni: Option<&'a str>,
    pub port: u16,
    /// `None` for a TCP or TLS stream.
    pub http: Option<AuthzHttp<'a>>,
}

/// An HTTP request's fields.
#[derive(Clone, Copy)]
pub struct AuthzHttp<'a> {
    pub method: &'a str,
    /// Normalised as the mesh says (`path::normalize`).
    pub path: &'a str,
    /// The strict reading (`path::strict`).
    pub strict_path: &'a str,
    pub header: &'a (dyn Fn(&str) -> Option<String> + Sync),
}

/// What the request is seen by.
#[derive(Clone, Copy, Default)]
pub struct Applies<'a> {
    /// A workload whose policies apply: its namespace and labels (the
    /// gateway's own).
    pub workload: Option<(&'a str, &'a Labels)>,
    /// The ServiceEntry the connection was decided to: (namespace, name).
    pub service_entry: Option<(&'a str, &'a str)>,
    /// The Gateways whose listener took the connection.
    pub gateways: &'a [(String, String)],
}

/// The action of the policy that decided.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum AuthzAction {
    Allow,
    Deny,
    Custom,
}

/// What the policies decided, for the audit line: the policy and rule that
/// matched; a denial by no ALLOW rule matching names none.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct AuthzDecision {
    pub allowed: bool,
    pub action: AuthzAction,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub policy: Option<Arc<str>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rule: Option<usize>,
}

/// The outcome: a decision when an ALLOW, DENY or CUSTOM policy applied,
/// and the AUDIT policy that matched.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Authorized {
    pub decision: Option<AuthzDecision>,
    pub audited: Option<Arc<str>>,
}

impl Authorized {
    pub fn allowed(&self) -> bool {
        self.decision.as_ref().is_none_or(|d| d.allowed)
    }
}

impl Authorizer {
    /// Istio's order: CUSTOM, DENY, then ALLOW; AUDIT beside.
    pub fn authorize(&self, applies: &Applies<'_>, req: &AuthzRequest<'_>) -> Authorized {
        if self.policies.is_empty() {
            return Authorized::default();
        }
        let applicable = self.applicable(applies);
        // `<ns>/<sa>`, once per request, when some rule matches on it.
        let service_account = if self.service_accounts_used { req.principal.and_then(service_account_of) } else { None };
        let facts = Facts { req, service_account: service_account.as_deref() };
        let first_match = |action: AuthorizationAction| {
            applicable.iter().map(|&i| &self.policies[i]).filter(|p| p.action == action).find_map(|p| matching_rule(p, &facts).map(|r| (p, r)))
        };
        let audited = first_match(AuthorizationAction::Audit).map(|(p, _)| p.id.clone());
        let denied = |p: &CompiledPolicy, rule, action| AuthzDecision { allowed: false, action, policy: Some(p.id.clone()), rule: Some(rule) };
        let decision = if let Some((p, r)) = first_match(AuthorizationAction::Custom) {
            Some(denied(p, r, AuthzAction::Custom))
        } else if let Some((p, r)) = first_match(AuthorizationAction::Deny) {
            Some(denied(p, r, AuthzAction::Deny))
        } else if let Some((p, r)) = first_match(AuthorizationAction::Allow) {
            Some(AuthzDecision { allowed: true, action: AuthzAction::Allow, policy: Some(p.id.clone()), rule: Some(r) })
        } else if applicable.iter().any(|&i| self.policies[i].action == AuthorizationAction::Allow) {
            Some(AuthzDecision { allowed: false, action: AuthzAction::Allow, policy: None, rule: None })
        } else {
            None
        };
        Authorized { decision, audited }
    }

    /// Indices of the policies that apply, in policy order.
    fn applicable(&self, applies: &Applies<'_>) -> Vec<usize> {
        let mut out = Vec::new();
        if let Some((ns, labels)) = applies.workload {
            let root = &self.settings.root_namespace;
            let namespaces = [Some(ns), (root != ns).then_some(root.as_str())];
            for ns in namespaces.into_iter().flatten() {
                let selected = self.by_namespace.get(ns).into_iter().flatten().copied();
                out.extend(selected.filter(|&i| self.policies[i].selector.as_ref().is_none_or(|s| selector_matches(s, labels))));
            }
        }
        let mut targeted = |index: &ByName, ns: &str, name: &str| {
            if let Some(list) = index.get(ns).and_then(|names| names.get(name)) {
                out.extend(list.iter().copied());
            }
        };
        if let Some((ns, name)) = applies.service_entry {
            targeted(&self.by_service_entry, ns, name);
        }
        for (ns, name) in applies.gateways {
            targeted(&self.by_gateway, ns, name);
        }
        out.sort_unstable();
        out.dedup();
        out
    }
}

/// A request and what is worked out from it once.
struct Facts<'a> {
    req: &'a AuthzRequest<'a>,
    service_account: Option<&'a str>,
}

/// The index of the policy's first rule the request matches.
fn matching_rule(p: &CompiledPolicy, facts: &Facts<'_>) -> Option<usize> {
    // CUSTOM and DENY read what they cannot evaluate as matching; ALLOW and
    // AUDIT as not.
    let lenient = matches!(p.action, AuthorizationAction::Deny | AuthorizationAction::Custom);
    p.rules.iter().position(|r| rule_matches(r, facts, lenient))
}

fn rule_matches(c: &CompiledRule, facts: &Facts<'_>, lenient: bool) -> bool {
    let req = facts.req;
    let unknowable = c.unsupported || (c.needs_http && req.http.is_none()) || (c.needs_host && req.host.is_none());
    if unknowable && !lenient {
        return false;
    }
    let r = &c.rule;
    (r.from.is_empty() || r.from.iter().any(|s| source_matches(s, facts, lenient)))
        && (r.to.is_empty() || r.to.iter().any(|o| operation_matches(o, req, lenient)))
        && r.when.iter().all(|w| condition_matches(w, req, lenient))
}

/// `is` (one of them) and `not` (none of them) against a value that is
/// there (`Some`) or absent (`None`).
fn field<T, V: ?Sized>(values: &Values<T>, value: Option<&V>, matches: impl Fn(&T, &V) -> bool) -> bool {
    let any = |list: &[T]| value.is_some_and(|v| list.iter().any(|t| matches(t, v)));
    (values.is.is_empty() || any(&values.is)) && (values.not.is_empty() || !any(&values.not))
}

fn text(values: &Values<Pattern>, value: Option<&str>) -> bool {
    field(values, value, |p, v: &str| p.matches(v))
}

fn ips(values: &Values<Cidr>, ip: IpAddr) -> bool {
    let ip = match ip {
        IpAddr::V6(v6) => v6.to_canonical(),
        v4 => v4,
    };
    field(values, Some(&ip), |c, ip| c.contains(*ip))
}

fn ports(values: &Values<u16>, port: u16) -> bool {
    field(values, Some(&port), |p, v| p == v)
}

/// A field the request cannot give: no constraint passes, else `lenient`.
fn unknown<T>(values: &Values<T>, lenient: bool) -> bool {
    values.is_empty() || lenient
}

fn source_matches(s: &Source, facts: &Facts<'_>, lenient: bool) -> bool {
    let req = facts.req;
    text(&s.principals, req.principal)
        && unknown(&s.request_principals, lenient)
        && text(&s.namespaces, req.namespace)
        && text(&s.service_accounts, facts.service_account)
        && ips(&s.ip_blocks, req.source_ip)
        && ips(&s.remote_ip_blocks, req.remote_ip)
}

fn operation_matches(o: &Operation, req: &AuthzRequest<'_>, lenient: bool) -> bool {
    let hosts = match req.host {
        Some(h) => text(&o.hosts, Some(h)),
        None => unknown(&o.hosts, lenient),
    };
    let http = match &req.http {
        Some(h) => text(&o.methods, Some(h.method)) && paths(&o.paths, h, lenient),
        None => unknown(&o.methods, lenient) && unknown(&o.paths, lenient),
    };
    hosts && ports(&o.ports, req.port) && http
}

/// A path holds for a DENY rule if it holds for either reading of the
/// path, for an ALLOW rule only if it holds for both: an ambiguous path is
/// read the way that denies.
fn paths(values: &Values<Pattern>, h: &AuthzHttp<'_>, lenient: bool) -> bool {
    let (normal, strict) = (text(values, Some(h.path)), text(values, Some(h.strict_path)));
    if lenient { normal || strict } else { normal && strict }
}

fn condition_matches(c: &Condition, req: &AuthzRequest<'_>, lenient: bool) -> bool {
    match c {
        Condition::Header { name, values } => match &req.http {
            Some(h) => text(values, (h.header)(name).as_deref()),
            None => lenient,
        },
        Condition::SourceIp(v) => ips(v, req.source_ip),
        Condition::SourceNamespace(v) => text(v, req.namespace),
        Condition::SourcePrincipal(v) => text(v, req.principal),
        Condition::DestinationPort(v) => ports(v, req.port),
        Condition::ConnectionSni(v) => text(v, req.sni),
        Condition::Unsupported(_) => lenient,
    }
}

/// `<ns>/<sa>` of a principal `<td>/ns/<ns>/sa/<sa>`.
fn service_account_of(principal: &str) -> Option<String> {
    let parts: Vec<&str> = principal.split('/').collect();
    match parts.as_slice() {
        [_, "ns", ns, "sa", sa] => Some(format!("{ns}/{sa}")),
        _ => None,
    }
}
