//! The `deploy/` base as `kubectl kustomize` renders it, each document read
//! as its Kubernetes type. A typed object must serialise back to the very
//! document it was read from, so a misspelt or misplaced field fails here
//! instead of being dropped without a word.

use std::{
    path::{Path, PathBuf},
    process::Command,
};

use k8s_openapi::{
    Resource,
    api::{
        apps::v1::{DaemonSet, Deployment},
        core::v1::{Namespace, Service, ServiceAccount},
        policy::v1::PodDisruptionBudget,
        rbac::v1::{ClusterRole, ClusterRoleBinding, Role, RoleBinding},
    },
};
use serde::{Deserialize, Serialize, de::DeserializeOwned};
use serde_json::Value;

/// Everything a base renders, by type.
#[derive(Default)]
pub struct Rendered {
    pub namespaces: Vec<Namespace>,
    pub service_accounts: Vec<ServiceAccount>,
    pub cluster_roles: Vec<ClusterRole>,
    pub cluster_role_bindings: Vec<ClusterRoleBinding>,
    pub roles: Vec<Role>,
    pub role_bindings: Vec<RoleBinding>,
    pub daemon_sets: Vec<DaemonSet>,
    pub deployments: Vec<Deployment>,
    pub services: Vec<Service>,
    pub disruption_budgets: Vec<PodDisruptionBudget>,
}

/// The repository's `deploy/` directory.
pub fn deploy_dir() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../deploy"))
}

/// Renders the kustomization in `dir` and reads every document.
pub fn render(dir: &Path) -> Rendered {
    let yaml = kustomize(dir);
    let mut out = Rendered::default();
    for (i, document) in serde_yaml::Deserializer::from_str(&yaml).enumerate() {
        let doc = Value::deserialize(document)
            .unwrap_or_else(|e| panic!("document {i} of `kubectl kustomize {}` is not YAML: {e}", dir.display()));
        if doc.is_null() {
            continue;
        }
        match doc["kind"].as_str().unwrap_or_else(|| panic!("document {i} has no kind: {doc}")) {
            "Namespace" => out.namespaces.push(typed(&doc)),
            "ServiceAccount" => out.service_accounts.push(typed(&doc)),
            "ClusterRole" => out.cluster_roles.push(typed(&doc)),
            "ClusterRoleBinding" => out.cluster_role_bindings.push(typed(&doc)),
            "Role" => out.roles.push(typed(&doc)),
            "RoleBinding" => out.role_bindings.push(typed(&doc)),
            "DaemonSet" => out.daemon_sets.push(typed(&doc)),
            "Deployment" => out.deployments.push(typed(&doc)),
            "Service" => out.services.push(typed(&doc)),
            "PodDisruptionBudget" => out.disruption_budgets.push(typed(&doc)),
            other => panic!("document {i} is a {other}, which this test cannot read yet: add its type to rendered.rs"),
        }
    }
    out
}

fn kustomize(dir: &Path) -> String {
    let out = Command::new("kubectl").arg("kustomize").arg(dir).output().unwrap_or_else(|e| {
        panic!(
            "cannot run kubectl ({e}): the deploy/ manifests are rendered with `kubectl kustomize`. \
             Install kubectl (`cargo xtask test` installs Debian's kubernetes-client when none is on PATH)"
        )
    });
    assert!(
        out.status.success(),
        "kubectl kustomize {} failed ({}): {}",
        dir.display(),
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("kubectl prints UTF-8")
}

/// `doc` read as `K`, which must serialise back to `doc` unchanged.
fn typed<K: Resource + DeserializeOwned + Serialize>(doc: &Value) -> K {
    let name = doc["metadata"]["name"].as_str().unwrap_or("(no name)");
    let what = format!("{} {name}", K::KIND);
    assert_eq!(doc["apiVersion"], K::API_VERSION, "{what}: apiVersion");
    let object: K =
        serde_json::from_value(doc.clone()).unwrap_or_else(|e| panic!("{what} is not a valid {}: {e}", K::KIND));
    let back = serde_json::to_value(&object).expect("a typed object serialises");
    if let Some(difference) = first_difference("", doc, &back) {
        panic!("{what}: a field is unknown to Kubernetes {} or misplaced: {difference}", K::API_VERSION);
    }
    object
}

/// Where `written` and `typed` first differ, as a field path.
fn first_difference(path: &str, written: &Value, typed: &Value) -> Option<String> {
    match (written, typed) {
        (Value::Object(w), Value::Object(t)) => {
            for (key, value) in w {
                let here = if path.is_empty() { key.clone() } else { format!("{path}.{key}") };
                match t.get(key) {
                    None => return Some(format!("{here} is dropped when read")),
                    Some(other) => {
                        if let Some(d) = first_difference(&here, value, other) {
                            return Some(d);
                        }
                    }
                }
            }
            t.keys().find(|k| !w.contains_key(*k)).map(|k| format!("{path}.{k} appears when read"))
        }
        (Value::Array(w), Value::Array(t)) if w.len() == t.len() => {
            w.iter().zip(t).enumerate().find_map(|(i, (a, b))| first_difference(&format!("{path}[{i}]"), a, b))
        }
        _ if written == typed => None,
        _ => Some(format!("{path} is {written} in the manifest but {typed} when read")),
    }
}
