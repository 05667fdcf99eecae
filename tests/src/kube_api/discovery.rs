//! Discovery documents built from the resources served now: `/version`, `/api`, `/apis`,
//! `/apis/<group>`, `/api/v1` and `/apis/<group>/<version>`, and the aggregated form
//! (`apidiscovery.k8s.io/v2`) a client asks for in its `Accept` header.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::resources::{ResourceType, SUBRESOURCE_VERBS, VERBS};
use super::status::ApiError;

/// The media type of aggregated discovery, as answered.
pub const AGGREGATED_V2: &str =
    "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList";

/// Does this `Accept` header ask for aggregated discovery (version 2)?
pub fn wants_aggregated(accept: Option<&str>) -> bool {
    accept.is_some_and(|a| {
        a.split(',').any(|t| {
            let params: Vec<&str> = t.split(';').map(str::trim).collect();
            params.contains(&"g=apidiscovery.k8s.io")
                && params.contains(&"v=v2")
                && params.contains(&"as=APIGroupDiscoveryList")
        })
    })
}

pub fn version() -> Value {
    json!({
        "major": "1", "minor": "33", "gitVersion": "v1.33.0", "gitCommit": "0000000000000000000000000000000000000000",
        "gitTreeState": "clean", "buildDate": "2025-04-23T00:00:00Z", "goVersion": "go1.24.2",
        "compiler": "gc", "platform": "linux/amd64"
    })
}

pub fn core_versions(address: &str) -> Value {
    json!({
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [{ "clientCIDR": "0.0.0.0/0", "serverAddress": address }]
    })
}

/// The served groups (core excluded) and their versions.
fn groups(served: &[&'static ResourceType]) -> BTreeMap<&'static str, Vec<&'static str>> {
    let mut groups: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for rt in served.iter().filter(|rt| !rt.group.is_empty()) {
        let versions = groups.entry(rt.group).or_default();
        if !versions.contains(&rt.version) {
            versions.push(rt.version);
        }
    }
    groups
}

fn group_doc(name: &str, versions: &[&str]) -> Value {
    let gv = |v: &&str| json!({ "groupVersion": format!("{name}/{v}"), "version": v });
    json!({
        "name": name,
        "versions": versions.iter().map(gv).collect::<Vec<_>>(),
        "preferredVersion": gv(&versions[0]),
    })
}

pub fn group_list(served: &[&'static ResourceType]) -> Value {
    let groups: Vec<Value> = groups(served)
        .iter()
        .map(|(name, versions)| group_doc(name, versions))
        .collect();
    json!({ "kind": "APIGroupList", "apiVersion": "v1", "groups": groups })
}

pub fn group(served: &[&'static ResourceType], name: &str) -> Result<Value, ApiError> {
    let groups = groups(served);
    let versions = groups.get(name).ok_or_else(ApiError::no_such_resource)?;
    let mut doc = group_doc(name, versions);
    doc["kind"] = json!("APIGroup");
    doc["apiVersion"] = json!("v1");
    Ok(doc)
}

/// The APIResourceList of one group version; 404 when nothing in it is served.
pub fn resource_list(
    served: &[&'static ResourceType],
    group: &str,
    version: &str,
) -> Result<Value, ApiError> {
    let rows: Vec<&&ResourceType> = served
        .iter()
        .filter(|rt| rt.group == group && rt.version == version)
        .collect();
    if rows.is_empty() {
        return Err(ApiError::no_such_resource());
    }
    let mut resources = Vec::new();
    for rt in rows {
        let mut row = json!({
            "name": rt.plural, "singularName": rt.singular, "namespaced": rt.namespaced,
            "kind": rt.kind, "verbs": VERBS,
        });
        if !rt.short_names.is_empty() {
            row["shortNames"] = json!(rt.short_names);
        }
        resources.push(row);
        for sub in rt.subresources {
            resources.push(json!({
                "name": format!("{}/{sub}", rt.plural), "singularName": "", "namespaced": rt.namespaced,
                "kind": rt.kind, "verbs": SUBRESOURCE_VERBS,
            }));
        }
    }
    let group_version = if group.is_empty() {
        version.to_string()
    } else {
        format!("{group}/{version}")
    };
    Ok(
        json!({ "kind": "APIResourceList", "apiVersion": "v1", "groupVersion": group_version, "resources": resources }),
    )
}

/// Aggregated discovery of the core group (`core == true`, for `/api`) or of every other group.
pub fn aggregated(served: &[&'static ResourceType], core: bool) -> Value {
    let mut by_group: BTreeMap<&str, BTreeMap<&str, Vec<Value>>> = BTreeMap::new();
    for rt in served.iter().filter(|rt| rt.group.is_empty() == core) {
        let gvk = json!({ "group": rt.group, "version": rt.version, "kind": rt.kind });
        let subresources: Vec<Value> = rt
            .subresources
            .iter()
            .map(|sub| json!({ "subresource": sub, "responseKind": gvk, "verbs": SUBRESOURCE_VERBS }))
            .collect();
        let resource = json!({
            "resource": rt.plural, "responseKind": gvk,
            "scope": if rt.namespaced { "Namespaced" } else { "Cluster" },
            "singularResource": rt.singular, "verbs": VERBS, "shortNames": rt.short_names,
            "subresources": subresources,
        });
        by_group
            .entry(rt.group)
            .or_default()
            .entry(rt.version)
            .or_default()
            .push(resource);
    }
    let items: Vec<Value> = by_group
        .into_iter()
        .map(|(group, versions)| {
            let metadata = if group.is_empty() { json!({ "creationTimestamp": null }) } else { json!({ "name": group, "creationTimestamp": null }) };
            let versions: Vec<Value> = versions
                .into_iter()
                .map(|(version, resources)| json!({ "version": version, "resources": resources, "freshness": "Current" }))
                .collect();
            json!({ "metadata": metadata, "versions": versions })
        })
        .collect();
    json!({ "kind": "APIGroupDiscoveryList", "apiVersion": "apidiscovery.k8s.io/v2", "metadata": {}, "items": items })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kube_api::resources::ALL;

    #[test]
    fn documents_follow_the_served_table() {
        let all: Vec<&ResourceType> = ALL.iter().collect();
        let list = group_list(&all);
        let names: Vec<&str> = list["groups"]
            .as_array()
            .unwrap()
            .iter()
            .map(|g| g["name"].as_str().unwrap())
            .collect();
        assert!(names.contains(&"networking.istio.io") && !names.contains(&""));
        let core = resource_list(&all, "", "v1").unwrap();
        let pods = core["resources"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["name"] == "pods")
            .unwrap();
        assert_eq!(
            (pods["namespaced"].as_bool(), pods["kind"].as_str()),
            (Some(true), Some("Pod"))
        );
        let csr = resource_list(&all, "certificates.k8s.io", "v1").unwrap();
        assert!(
            csr["resources"]
                .as_array()
                .unwrap()
                .iter()
                .any(|r| r["name"] == "certificatesigningrequests/approval")
        );
        let without_istio: Vec<&ResourceType> = all
            .iter()
            .copied()
            .filter(|rt| rt.group != "networking.istio.io")
            .collect();
        assert_eq!(
            resource_list(&without_istio, "networking.istio.io", "v1")
                .unwrap_err()
                .code,
            404
        );
        let agg = aggregated(&all, true);
        assert_eq!(agg["items"].as_array().unwrap().len(), 1);
        assert!(wants_aggregated(Some(
            "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json"
        )));
        assert!(!wants_aggregated(Some("application/json")));
    }
}
