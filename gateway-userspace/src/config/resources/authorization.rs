//! `AuthorizationPolicy` (security.istio.io v1, v1beta1), read into typed
//! matchers: Istio's value grammar (exact, `prefix*`, `*suffix`, `*`), IP
//! blocks, ports and `when` keys. What the gateway cannot enforce (CUSTOM,
//! `requestPrincipals`, other `when` keys, other target kinds) is reported
//! (GW2102) and enforced fail-closed: `authz/` explains how.

use super::common::{Labels, Meta, labels};
use crate::config::decode::{Cx, Fields, IstioEnum, child, index, istio_enum};
use crate::config::findings::{Code, Pos};
use crate::config::values::{Cidr, parse_cidr};
use crate::config::yaml::Node;
use serde::Serialize;

istio_enum!(
    AuthorizationAction { Allow = "ALLOW", Deny = "DENY", Audit = "AUDIT", Custom = "CUSTOM" }
);

/// An AuthorizationPolicy resource.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AuthorizationPolicy {
    pub meta: Meta,
    /// `selector.matchLabels`; `None` applies to the whole namespace.
    pub selector: Option<Labels>,
    /// `targetRef` and `targetRefs`: where it applies instead of a selector.
    pub targets: Vec<PolicyTarget>,
    pub action: AuthorizationAction,
    pub provider: Option<String>,
    pub rules: Vec<Rule>,
}

/// A `targetRef`: the resource a policy attaches to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PolicyTarget {
    pub kind: String,
    pub namespace: String,
    pub name: String,
}

/// One rule: any `from` (or none) and any `to` (or none) and every `when`.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct Rule {
    pub from: Vec<Source>,
    pub to: Vec<Operation>,
    pub when: Vec<Condition>,
}

/// Values a field must match one of (`is`) and must match none of (`not`);
/// both empty: no constraint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Values<T> {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub is: Vec<T>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub not: Vec<T>,
}

impl<T> Default for Values<T> {
    fn default() -> Self {
        Self { is: Vec::new(), not: Vec::new() }
    }
}

impl<T> Values<T> {
    pub fn is_empty(&self) -> bool {
        self.is.is_empty() && self.not.is_empty()
    }
}

/// `rules.from.source`.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct Source {
    pub principals: Values<Pattern>,
    /// Needs RequestAuthentication (JWT), which the gateway does not read.
    pub request_principals: Values<Pattern>,
    pub namespaces: Values<Pattern>,
    pub service_accounts: Values<Pattern>,
    pub ip_blocks: Values<Cidr>,
    pub remote_ip_blocks: Values<Cidr>,
}

/// `rules.to.operation`.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct Operation {
    /// Lower case.
    pub hosts: Values<Pattern>,
    pub ports: Values<u16>,
    pub methods: Values<Pattern>,
    pub paths: Values<Pattern>,
}

/// One `when` condition, by its key.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub enum Condition {
    /// `request.headers[name]`; the name in lower case.
    Header { name: String, values: Values<Pattern> },
    SourceIp(Values<Cidr>),
    SourceNamespace(Values<Pattern>),
    SourcePrincipal(Values<Pattern>),
    DestinationPort(Values<u16>),
    ConnectionSni(Values<Pattern>),
    /// A key the gateway does not know how to read.
    Unsupported(String),
}

/// Istio's string value: `*` (any non-empty value), `prefix*`, `*suffix`,
/// or exact.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum Pattern {
    Any,
    Prefix(String),
    Suffix(String),
    Exact(String),
}

impl Pattern {
    /// `None` for a value with `*` anywhere but its first or last byte, or
    /// both, or an empty value.
    pub fn parse(v: &str) -> Option<Pattern> {
        if v == "*" {
            return Some(Pattern::Any);
        }
        let (prefix, suffix) = (v.strip_suffix('*'), v.strip_prefix('*'));
        let p = match (prefix, suffix) {
            (Some(p), None) => Pattern::Prefix(p.to_string()),
            (None, Some(s)) => Pattern::Suffix(s.to_string()),
            (None, None) => Pattern::Exact(v.to_string()),
            (Some(_), Some(_)) => return None,
        };
        let inner = match &p {
            Pattern::Prefix(s) | Pattern::Suffix(s) | Pattern::Exact(s) => s,
            Pattern::Any => unreachable!(),
        };
        (!inner.is_empty() && !inner.contains('*')).then_some(p)
    }

    /// Whether `value` (absent: no value) matches.
    pub fn matches(&self, value: &str) -> bool {
        match self {
            Pattern::Any => !value.is_empty(),
            Pattern::Prefix(p) => value.starts_with(p.as_str()),
            Pattern::Suffix(s) => value.ends_with(s.as_str()),
            Pattern::Exact(e) => value == e,
        }
    }
}

const SOURCE_FIELDS: &[&str] = &[
    "principals",
    "notPrincipals",
    "requestPrincipals",
    "notRequestPrincipals",
    "namespaces",
    "notNamespaces",
    "serviceAccounts",
    "notServiceAccounts",
    "ipBlocks",
    "notIpBlocks",
    "remoteIpBlocks",
    "notRemoteIpBlocks",
];

const OPERATION_FIELDS: &[&str] = &["hosts", "notHosts", "ports", "notPorts", "methods", "notMethods", "paths", "notPaths"];

pub(crate) fn decode(cx: &mut Cx<'_>, spec: &Node, meta: Meta) -> Option<AuthorizationPolicy> {
    let mut f = cx.map(spec, "spec")?;
    let selector = f.get(cx, "selector", |cx, n, p| {
        let mut s = cx.map(n, p)?;
        let l = s.get(cx, "matchLabels", labels).unwrap_or_default();
        s.finish(cx);
        Some(l)
    });
    let action = f.enumeration(cx, "action").unwrap_or(AuthorizationAction::Allow);
    let provider = f.get(cx, "provider", |cx, n, p| {
        let mut s = cx.map(n, p)?;
        let name = s.string(cx, "name");
        s.finish(cx);
        name
    });
    let namespace = meta.namespace.clone();
    let mut targets: Vec<PolicyTarget> = f.get(cx, "targetRef", |cx, n, p| target(cx, n, p, &namespace)).into_iter().collect();
    targets.extend(f.list(cx, "targetRefs", |cx, n, p| target(cx, n, p, &namespace)));
    let has_rules = f.has("rules");
    let rules = f.list(cx, "rules", rule);
    f.finish(cx);
    let policy = AuthorizationPolicy { meta, selector, targets, action, provider, rules };
    check(cx, &policy, has_rules);
    Some(policy)
}

/// What the policy means that a reader may not expect, and what the
/// gateway enforces fail-closed only.
fn check(cx: &mut Cx<'_>, policy: &AuthorizationPolicy, has_rules: bool) {
    fn report(cx: &mut Cx<'_>, code: Code, field: &str, msg: String) {
        let pos = cx.pos_of(field);
        cx.report(code, pos, field, msg);
    }
    if policy.selector.is_some() && !policy.targets.is_empty() {
        report(cx, Code::ConflictingFields, "spec.selector", "`selector` and `targetRef(s)` exclude each other; keep one".into());
    }
    for (i, t) in policy.targets.iter().enumerate() {
        let field = if policy.targets.len() == 1 { "spec.targetRef".to_string() } else { format!("spec.targetRefs[{i}]") };
        if !matches!(t.kind.as_str(), "ServiceEntry" | "Gateway") || t.namespace != policy.meta.namespace {
            let msg = format!("a target of kind `{}` in namespace `{}` is not one the gateway attaches policies to (a ServiceEntry or a Gateway of the policy's own namespace): this target gets no policy", t.kind, t.namespace);
            report(cx, Code::AuthzUnsupported, &field, msg);
        }
    }
    if policy.action == AuthorizationAction::Custom {
        let msg = "CUSTOM policies need an external authorizer the gateway does not call: every request their rules match is denied".to_string();
        report(cx, Code::AuthzUnsupported, "spec.action", msg);
    }
    let empty_effect = match policy.action {
        AuthorizationAction::Allow => Some("an ALLOW policy without rules denies every request to what it applies to (allow-nothing)"),
        AuthorizationAction::Deny | AuthorizationAction::Audit => Some("a policy of this action without rules never matches"),
        AuthorizationAction::Custom => None,
    };
    if let (true, Some(effect)) = (policy.rules.is_empty(), empty_effect) {
        let field = if has_rules { "spec.rules" } else { "spec" };
        report(cx, Code::AuthzEmptyRules, field, effect.to_string());
    }
    for (i, rule) in policy.rules.iter().enumerate() {
        let at = format!("spec.rules[{i}]");
        if rule.from.is_empty() && rule.to.is_empty() && rule.when.is_empty() {
            let effect = match policy.action {
                AuthorizationAction::Allow => "allows every request",
                AuthorizationAction::Deny | AuthorizationAction::Custom => "denies every request",
                AuthorizationAction::Audit => "audits every request",
            };
            report(cx, Code::AuthzEmptyRules, &at, format!("an empty rule matches everything: this policy {effect} to what it applies to"));
        }
        for (j, s) in rule.from.iter().enumerate() {
            if !s.request_principals.is_empty() {
                let msg = "requestPrincipals needs RequestAuthentication (JWT), which the gateway does not read: an ALLOW or AUDIT rule with it never matches, a DENY rule ignores it".to_string();
                report(cx, Code::AuthzUnsupported, &format!("{at}.from[{j}].source.requestPrincipals"), msg);
            }
        }
        for (j, c) in rule.when.iter().enumerate() {
            if let Condition::Unsupported(key) = c {
                let msg = format!("`{key}` is not a key the gateway reads (request.headers[...], source.ip, source.namespace, source.principal, destination.port, connection.sni): an ALLOW or AUDIT rule with it never matches, a DENY rule ignores it");
                report(cx, Code::AuthzUnsupported, &format!("{at}.when[{j}].key"), msg);
            }
        }
    }
}

fn target(cx: &mut Cx<'_>, n: &Node, p: &str, own_namespace: &str) -> Option<PolicyTarget> {
    let mut f = cx.map(n, p)?;
    f.ignore(&["group"]);
    let kind = f.req(cx, "kind", |cx, n, p| cx.string(n, p));
    let name = f.req(cx, "name", |cx, n, p| cx.string(n, p));
    let namespace = f.string(cx, "namespace").unwrap_or_else(|| own_namespace.to_string());
    f.finish(cx);
    Some(PolicyTarget { kind: kind?, namespace, name: name? })
}

fn rule(cx: &mut Cx<'_>, n: &Node, p: &str) -> Option<Rule> {
    let mut f = cx.map(n, p)?;
    let from = f.list(cx, "from", |cx, n, p| wrapped(cx, n, p, "source", SOURCE_FIELDS, source));
    let to = f.list(cx, "to", |cx, n, p| wrapped(cx, n, p, "operation", OPERATION_FIELDS, operation));
    let when = f.list(cx, "when", condition);
    f.finish(cx);
    Some(Rule { from, to, when })
}

/// One value read as text, with its field path and position.
type RawValue = (String, String, Pos);
/// A field's values.
type Raw = Vec<RawValue>;
/// Types a `source` or `operation` from its fields' values.
type Build<T> = fn(&mut Cx<'_>, &mut dyn FnMut(&str) -> Raw) -> T;

/// The values of `field` in `f`, each with its path and position.
fn raw_values(cx: &mut Cx<'_>, f: &mut Fields<'_>, path: &str, field: &'static str) -> Raw {
    let field_path = child(path, field);
    let values = f.strings(cx, field);
    values
        .into_iter()
        .enumerate()
        .map(|(i, v)| {
            let vp = index(&field_path, i);
            let pos = cx.pos_of(&vp);
            (v, vp, pos)
        })
        .collect()
}

/// The typed values of an `x` / `notX` pair.
fn pair<T>(cx: &mut Cx<'_>, take: &mut dyn FnMut(&str) -> Raw, is: &str, not: &str, read: fn(&mut Cx<'_>, &RawValue) -> Option<T>) -> Values<T> {
    let (is, not) = (take(is), take(not));
    Values { is: is.iter().filter_map(|v| read(cx, v)).collect(), not: not.iter().filter_map(|v| read(cx, v)).collect() }
}

/// The typed `values` / `notValues` of a condition.
fn typed<T>(cx: &mut Cx<'_>, (is, not): &(Raw, Raw), read: fn(&mut Cx<'_>, &RawValue) -> Option<T>) -> Values<T> {
    Values { is: is.iter().filter_map(|v| read(cx, v)).collect(), not: not.iter().filter_map(|v| read(cx, v)).collect() }
}

/// Reads `{source: {...}}` or `{operation: {...}}`, then types its fields.
fn wrapped<T>(
    cx: &mut Cx<'_>,
    n: &Node,
    p: &str,
    key: &'static str,
    allowed: &'static [&'static str],
    build: Build<T>,
) -> Option<T> {
    let mut f = cx.map(n, p)?;
    let inner = f.get(cx, key, |cx, n, p| {
        let mut m = cx.map(n, p)?;
        let mut raw: std::collections::BTreeMap<&str, Raw> = std::collections::BTreeMap::new();
        for &field in allowed {
            let values = raw_values(cx, &mut m, p, field);
            raw.insert(field, values);
        }
        m.finish(cx);
        let mut take = |field: &str| raw.remove(field).unwrap_or_default();
        Some(build(cx, &mut take))
    });
    f.finish(cx);
    inner
}

fn source(cx: &mut Cx<'_>, take: &mut dyn FnMut(&str) -> Raw) -> Source {
    Source {
        principals: pair(cx, take, "principals", "notPrincipals", principal),
        request_principals: pair(cx, take, "requestPrincipals", "notRequestPrincipals", pattern),
        namespaces: pair(cx, take, "namespaces", "notNamespaces", pattern),
        service_accounts: pair(cx, take, "serviceAccounts", "notServiceAccounts", pattern),
        ip_blocks: pair(cx, take, "ipBlocks", "notIpBlocks", ip_block),
        remote_ip_blocks: pair(cx, take, "remoteIpBlocks", "notRemoteIpBlocks", ip_block),
    }
}

fn operation(cx: &mut Cx<'_>, take: &mut dyn FnMut(&str) -> Raw) -> Operation {
    Operation {
        hosts: pair(cx, take, "hosts", "notHosts", host),
        ports: pair(cx, take, "ports", "notPorts", port),
        methods: pair(cx, take, "methods", "notMethods", pattern),
        paths: pair(cx, take, "paths", "notPaths", pattern),
    }
}

fn condition(cx: &mut Cx<'_>, n: &Node, p: &str) -> Option<Condition> {
    let mut c = cx.map(n, p)?;
    let key = c.req(cx, "key", |cx, n, p| cx.string(n, p));
    let values = (raw_values(cx, &mut c, p, "values"), raw_values(cx, &mut c, p, "notValues"));
    c.finish(cx);
    let key = key?;
    let condition = match key.as_str() {
        "source.ip" => Condition::SourceIp(typed(cx, &values, ip_block)),
        "source.namespace" => Condition::SourceNamespace(typed(cx, &values, pattern)),
        "source.principal" => Condition::SourcePrincipal(typed(cx, &values, principal)),
        "destination.port" => Condition::DestinationPort(typed(cx, &values, port)),
        "connection.sni" => Condition::ConnectionSni(typed(cx, &values, host)),
        k => match k.strip_prefix("request.headers[").and_then(|r| r.strip_suffix(']')) {
            Some(name) if !name.is_empty() => Condition::Header { name: name.to_ascii_lowercase(), values: typed(cx, &values, pattern) },
            _ => Condition::Unsupported(k.to_string()),
        },
    };
    Some(condition)
}

fn pattern(cx: &mut Cx<'_>, (v, path, pos): &RawValue) -> Option<Pattern> {
    let p = Pattern::parse(v);
    if p.is_none() {
        let msg = format!("`{v}` is not a value Istio matches: use `*`, `prefix*`, `*suffix` or an exact value, never empty and with no `*` inside");
        cx.report(Code::AuthzInvalidValue, *pos, path, msg);
    }
    p
}

fn host(cx: &mut Cx<'_>, (v, path, pos): &RawValue) -> Option<Pattern> {
    pattern(cx, &(v.to_ascii_lowercase(), path.clone(), *pos))
}

/// A principal: `<trust-domain>/ns/<namespace>/sa/<service-account>`,
/// without `spiffe://`, which would never match.
fn principal(cx: &mut Cx<'_>, raw: &RawValue) -> Option<Pattern> {
    let (v, path, pos) = raw;
    if let Some(rest) = v.strip_prefix("spiffe://") {
        let msg = format!("`{v}` never matches: principals are written without `spiffe://`; use `{rest}`");
        cx.report(Code::AuthzInvalidValue, *pos, path, msg);
        return None;
    }
    pattern(cx, raw)
}

fn ip_block(cx: &mut Cx<'_>, (v, path, pos): &RawValue) -> Option<Cidr> {
    let c = parse_cidr(v);
    if c.is_none() {
        cx.report(Code::InvalidAddress, *pos, path, format!("`{v}` is not an IP address or CIDR block"));
    }
    c
}

fn port(cx: &mut Cx<'_>, (v, path, pos): &RawValue) -> Option<u16> {
    let p = v.parse::<u16>().ok().filter(|p| *p != 0);
    if p.is_none() {
        cx.report(Code::PortOutOfRange, *pos, path, format!("`{v}` is not a port number from 1 to 65535"));
    }
    p
}
