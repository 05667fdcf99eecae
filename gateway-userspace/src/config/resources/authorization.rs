//! `AuthorizationPolicy` (security.istio.io): parsed and kept in the
//! snapshot; the gateway does not enforce it.

use super::common::{Labels, Meta, labels};
use crate::config::decode::{Cx, IstioEnum, istio_enum};
use crate::config::yaml::Node;
use serde::Serialize;
use std::collections::BTreeMap;

istio_enum!(
    AuthorizationAction { Allow = "ALLOW", Deny = "DENY", Audit = "AUDIT", Custom = "CUSTOM" }
);

/// An AuthorizationPolicy resource.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AuthorizationPolicy {
    pub meta: Meta,
    /// `selector.matchLabels`; `None` applies to the whole namespace.
    pub selector: Option<Labels>,
    pub action: AuthorizationAction,
    pub provider: Option<String>,
    pub rules: Vec<Rule>,
}

/// One rule. Each `from`/`to` entry maps a field name (`principals`,
/// `notMethods`, ...) to its values.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Rule {
    pub from: Vec<BTreeMap<String, Vec<String>>>,
    pub to: Vec<BTreeMap<String, Vec<String>>>,
    pub when: Vec<Condition>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Condition {
    pub key: String,
    pub values: Vec<String>,
    pub not_values: Vec<String>,
}

const SOURCE_FIELDS: &[&str] = &[
    "principals",
    "notPrincipals",
    "requestPrincipals",
    "notRequestPrincipals",
    "namespaces",
    "notNamespaces",
    "ipBlocks",
    "notIpBlocks",
    "remoteIpBlocks",
    "notRemoteIpBlocks",
    "serviceAccounts",
    "notServiceAccounts",
];

const OPERATION_FIELDS: &[&str] = &[
    "hosts",
    "notHosts",
    "ports",
    "notPorts",
    "methods",
    "notMethods",
    "paths",
    "notPaths",
];

pub(crate) fn decode(cx: &mut Cx<'_>, spec: &Node, meta: Meta) -> Option<AuthorizationPolicy> {
    let mut f = cx.map(spec, "spec")?;
    let selector = f.get(cx, "selector", |cx, n, p| {
        let mut s = cx.map(n, p)?;
        let l = s.get(cx, "matchLabels", labels).unwrap_or_default();
        s.finish(cx);
        Some(l)
    });
    let action = f
        .enumeration(cx, "action")
        .unwrap_or(AuthorizationAction::Allow);
    let provider = f.get(cx, "provider", |cx, n, p| {
        let mut s = cx.map(n, p)?;
        let name = s.string(cx, "name");
        s.finish(cx);
        name
    });
    let rules = f.list(cx, "rules", rule);
    f.ignore(&["targetRef", "targetRefs"]);
    f.finish(cx);
    Some(AuthorizationPolicy {
        meta,
        selector,
        action,
        provider,
        rules,
    })
}

fn rule(cx: &mut Cx<'_>, n: &Node, p: &str) -> Option<Rule> {
    let mut f = cx.map(n, p)?;
    let from = f.list(cx, "from", |cx, n, p| {
        wrapped(cx, n, p, "source", SOURCE_FIELDS)
    });
    let to = f.list(cx, "to", |cx, n, p| {
        wrapped(cx, n, p, "operation", OPERATION_FIELDS)
    });
    let when = f.list(cx, "when", |cx, n, p| {
        let mut c = cx.map(n, p)?;
        let key = c.req(cx, "key", |cx, n, p| cx.string(n, p));
        let values = c.strings(cx, "values");
        let not_values = c.strings(cx, "notValues");
        c.finish(cx);
        Some(Condition {
            key: key?,
            values,
            not_values,
        })
    });
    f.finish(cx);
    Some(Rule { from, to, when })
}

/// Reads `{source: {...}}` or `{operation: {...}}` into a field map.
fn wrapped(
    cx: &mut Cx<'_>,
    n: &Node,
    p: &str,
    key: &'static str,
    allowed: &'static [&'static str],
) -> Option<BTreeMap<String, Vec<String>>> {
    let mut f = cx.map(n, p)?;
    let inner = f.get(cx, key, |cx, n, p| {
        let mut m = cx.map(n, p)?;
        let mut out = BTreeMap::new();
        for field in allowed {
            let v = m.strings(cx, field);
            if !v.is_empty() {
                out.insert((*field).to_string(), v);
            }
        }
        m.finish(cx);
        Some(out)
    });
    f.finish(cx);
    Some(inner.unwrap_or_default())
}
