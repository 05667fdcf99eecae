//! What unit tests share: a snapshot or a compiled policy from YAML, and
//! the labels of a gateway instance. A configuration with errors fails the
//! test, listing the findings.

use std::{path::Path, sync::Arc};

use crate::{
    config::{Labels, LoadOptions, Severity, Snapshot, load_str, resources::sidecar::OutboundMode},
    policy::{EgressPolicy, PolicySettings},
    reload::ActiveConfig,
};

/// The snapshot of `yaml`, as a node loads it.
pub fn snapshot(yaml: &str) -> Arc<Snapshot> {
    snapshot_with(yaml, &LoadOptions::default())
}

/// The snapshot of `yaml`, as an instance with these labels loads it.
pub fn gateway_snapshot(yaml: &str, labels: &Labels) -> Arc<Snapshot> {
    snapshot_with(yaml, &LoadOptions { instance_labels: labels.clone(), ..LoadOptions::default() })
}

/// The snapshot of `yaml` under `options`.
pub fn snapshot_with(yaml: &str, options: &LoadOptions) -> Arc<Snapshot> {
    let loaded = load_str(Path::new("/unit-test/config.yaml"), yaml, options);
    let errors: Vec<String> =
        loaded.findings.iter().filter(|f| f.severity == Severity::Error).map(|f| f.to_string()).collect();
    assert!(errors.is_empty(), "the test configuration has errors: {errors:#?}");
    loaded.snapshot.unwrap_or_else(|| panic!("no snapshot: {:#?}", loaded.findings))
}

/// Node settings: namespace `default`, REGISTRY_ONLY, no cgroups named.
pub fn settings() -> PolicySettings {
    PolicySettings {
        default_namespace: "default".into(),
        outbound_mode: OutboundMode::RegistryOnly,
        cgroup_workloads: Default::default(),
        authz: Default::default(),
    }
}

/// The policy of `yaml` under [`settings`].
pub fn policy(yaml: &str) -> EgressPolicy {
    EgressPolicy::build(snapshot(yaml), settings())
}

/// The configuration generation `generation` of `yaml`, under [`settings`].
pub fn active_config(yaml: &str, generation: u64) -> Arc<ActiveConfig> {
    let snapshot = snapshot(yaml);
    let policy = Arc::new(EgressPolicy::build(snapshot.clone(), settings()));
    Arc::new(ActiveConfig { generation, loaded_at: String::new(), sources: Vec::new(), snapshot, policy })
}

/// `key: value` labels.
pub fn labels(pairs: &[(&str, &str)]) -> Labels {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}
