//! A ClusterRole compared with the table of API calls its user makes: it
//! must grant each one and nothing else.

use std::collections::BTreeSet;

use gateway_userspace::kubernetes::rbac::ApiCall;
use k8s_openapi::api::rbac::v1::{ClusterRole, PolicyRule, Role};

/// (API group, resource, verb).
type Grant = (String, String, String);

/// What `role` grants, one triple per group, resource and verb. Wildcards,
/// `resourceNames` and non-resource URLs fail: the tables name none.
fn grants(name: &str, rules: Option<&Vec<PolicyRule>>) -> BTreeSet<Grant> {
    let mut out = BTreeSet::new();
    for (i, rule) in rules.into_iter().flatten().enumerate() {
        let at = format!("{name}, rule {i}");
        assert!(rule.non_resource_urls.as_ref().is_none_or(Vec::is_empty), "{at}: non-resource URLs");
        assert!(rule.resource_names.as_ref().is_none_or(Vec::is_empty), "{at}: resourceNames");
        let groups = rule.api_groups.as_deref().unwrap_or_default();
        let resources = rule.resources.as_deref().unwrap_or_default();
        assert!(!groups.is_empty() && !resources.is_empty() && !rule.verbs.is_empty(), "{at} grants nothing");
        for word in groups.iter().chain(resources).chain(&rule.verbs) {
            assert!(!word.contains('*'), "{at}: the wildcard {word:?} grants more than the agent uses");
        }
        for group in groups {
            for resource in resources {
                for verb in &rule.verbs {
                    out.insert((group.clone(), resource.clone(), verb.clone()));
                }
            }
        }
    }
    out
}

fn wanted(table: &[ApiCall]) -> BTreeSet<Grant> {
    table
        .iter()
        .flat_map(|call| {
            call.verbs.iter().map(|verb| (call.group.to_string(), call.resource.to_string(), verb.to_string()))
        })
        .collect()
}

/// Fails, listing the differences, unless `role` grants exactly `table`.
pub fn assert_grants_exactly(role: &ClusterRole, table: &[ApiCall], table_name: &str) {
    let name = format!("ClusterRole {}", role.metadata.name.as_deref().unwrap_or("(no name)"));
    assert!(role.aggregation_rule.is_none(), "{name}: an aggregation rule grants whatever other roles do");
    assert_rules_grant_exactly(&name, role.rules.as_ref(), table, table_name);
}

/// The same for a namespaced Role.
pub fn assert_role_grants_exactly(role: &Role, table: &[ApiCall], table_name: &str) {
    let name = format!("Role {}", role.metadata.name.as_deref().unwrap_or("(no name)"));
    assert_rules_grant_exactly(&name, role.rules.as_ref(), table, table_name);
}

pub fn assert_rules_grant_exactly(name: &str, rules: Option<&Vec<PolicyRule>>, table: &[ApiCall], table_name: &str) {
    let (granted, wanted) = (grants(name, rules), wanted(table));
    let missing: Vec<_> = wanted.difference(&granted).collect();
    let extra: Vec<_> = granted.difference(&wanted).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "{name} differs from rbac::{table_name}\n  \
         missing (group, resource, verb): {missing:?}\n  more than needed: {extra:?}"
    );
}
