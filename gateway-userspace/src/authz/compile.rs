//! The snapshot's AuthorizationPolicies, compiled once per configuration:
//! each rule knows what it needs (HTTP, a host name) and whether it holds
//! something the gateway cannot evaluate, and the policies are indexed by
//! namespace and by target, so a request looks at its own only.

use std::{collections::HashMap, sync::Arc};

use crate::config::{
    Labels, Snapshot,
    resources::authorization::{AuthorizationAction, Condition, Rule},
};

/// Where AuthorizationPolicies are read from.
#[derive(Clone, Debug)]
pub struct AuthzSettings {
    /// Policies here without a target apply mesh-wide (Istio's root
    /// namespace).
    pub root_namespace: String,
    /// The trust domain of the principals the node gives its pods.
    pub trust_domain: String,
    /// How request paths are normalised before they are matched and sent on.
    pub path_normalization: super::PathNormalization,
    /// Proxies in front of the gateway whose `X-Forwarded-For` entries are
    /// trusted for `remoteIpBlocks` (Istio's `numTrustedProxies`).
    pub num_trusted_proxies: u32,
}

impl Default for AuthzSettings {
    fn default() -> Self {
        Self { root_namespace: "istio-system".into(), trust_domain: "cluster.local".into(), path_normalization: Default::default(), num_trusted_proxies: 0 }
    }
}

/// Policy indices by the namespace and name of what they attach to, so a
/// lookup takes `&str`s.
pub(super) type ByName = HashMap<String, HashMap<String, Vec<usize>>>;

/// Every policy of one configuration, ready to ask.
#[derive(Debug, Default)]
pub struct Authorizer {
    pub(super) settings: AuthzSettings,
    pub(super) policies: Vec<CompiledPolicy>,
    /// Policies without a target, by namespace (selector still to check).
    pub(super) by_namespace: HashMap<String, Vec<usize>>,
    /// Policies attached to a ServiceEntry, by its namespace and name.
    pub(super) by_service_entry: ByName,
    /// Policies attached to a Gateway, by its namespace and name.
    pub(super) by_gateway: ByName,
    /// Whether any rule matches `serviceAccounts`.
    pub(super) service_accounts_used: bool,
}

#[derive(Debug)]
pub(super) struct CompiledPolicy {
    /// `namespace/name`, as the audit line names it.
    pub id: Arc<str>,
    pub action: AuthorizationAction,
    pub selector: Option<Labels>,
    pub rules: Vec<CompiledRule>,
}

#[derive(Debug)]
pub(super) struct CompiledRule {
    pub rule: Rule,
    /// Methods, paths or request headers: HTTP-only fields.
    pub needs_http: bool,
    /// Hosts: needs a name (Host, SNI, or the decided host).
    pub needs_host: bool,
    /// `requestPrincipals` or an unknown `when` key.
    pub unsupported: bool,
}

impl Authorizer {
    pub fn build(snapshot: &Snapshot, settings: AuthzSettings) -> Self {
        let mut sorted: Vec<_> = snapshot.authorization_policies.iter().collect();
        sorted.sort_by(|a, b| (&a.meta.namespace, &a.meta.name).cmp(&(&b.meta.namespace, &b.meta.name)));
        let mut out = Authorizer { settings, ..Default::default() };
        for p in sorted {
            let idx = out.policies.len();
            out.policies.push(CompiledPolicy {
                id: format!("{}/{}", p.meta.namespace, p.meta.name).into(),
                action: p.action,
                selector: p.selector.clone(),
                rules: p.rules.iter().map(compile_rule).collect(),
            });
            if p.targets.is_empty() {
                out.by_namespace.entry(p.meta.namespace.clone()).or_default().push(idx);
            }
            for t in &p.targets {
                // Another kind, or another namespace, attaches nothing (GW2102).
                let index = match t.kind.as_str() {
                    "ServiceEntry" => &mut out.by_service_entry,
                    "Gateway" => &mut out.by_gateway,
                    _ => continue,
                };
                if t.namespace == p.meta.namespace {
                    index.entry(t.namespace.clone()).or_default().entry(t.name.clone()).or_default().push(idx);
                }
            }
        }
        out.service_accounts_used = out.policies.iter().flat_map(|p| &p.rules).flat_map(|r| &r.rule.from).any(|s| !s.service_accounts.is_empty());
        out
    }

    pub fn settings(&self) -> &AuthzSettings {
        &self.settings
    }

    pub fn is_empty(&self) -> bool {
        self.policies.is_empty()
    }
}

fn compile_rule(rule: &Rule) -> CompiledRule {
    let needs_http = rule.to.iter().any(|o| !o.methods.is_empty() || !o.paths.is_empty())
        || rule.when.iter().any(|c| matches!(c, Condition::Header { .. }));
    let needs_host = rule.to.iter().any(|o| !o.hosts.is_empty());
    let unsupported = rule.from.iter().any(|s| !s.request_principals.is_empty()) || rule.when.iter().any(|c| matches!(c, Condition::Unsupported(_)));
    CompiledRule { rule: rule.clone(), needs_http, needs_host, unsupported }
}
