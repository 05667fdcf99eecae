//! Who is connecting: the WorkloadEntry its cgroup is declared to run
//! (`--intercept-cgroup DIR=NS/NAME`), else the one whose address is the
//! client's.

use std::{collections::HashMap, net::IpAddr, sync::Arc};

use serde::Serialize;

use crate::config::{
    Labels, Snapshot, WorkloadEntry,
    resources::service_entry::Address,
};

/// A workload's identity, as policy and the audit log see it. Its text is
/// shared: the identity is cloned into every request's record and decision.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct WorkloadIdentity {
    pub namespace: Arc<str>,
    /// WorkloadEntry name; `None` for a client no entry describes.
    pub name: Option<Arc<str>>,
    /// A pod's labels are many strings.
    #[serde(skip_serializing_if = "Labels::is_empty")]
    pub labels: Arc<Labels>,
    pub service_account: Option<Arc<str>>,
}

impl WorkloadIdentity {
    pub fn unknown(namespace: &str) -> Self {
        Self { namespace: namespace.into(), name: None, labels: Default::default(), service_account: None }
    }
}

/// Caller → workload, built from the snapshot's WorkloadEntries.
#[derive(Debug, Default)]
pub struct WorkloadIndex {
    by_cgroup: HashMap<u64, WorkloadIdentity>,
    by_address: HashMap<IpAddr, WorkloadIdentity>,
    default_namespace: String,
}

impl WorkloadIndex {
    pub fn build(snapshot: &Snapshot, default_namespace: &str, cgroups: &HashMap<u64, (String, String)>) -> Self {
        let entry = |we: &WorkloadEntry| WorkloadIdentity {
            namespace: we.meta.namespace.as_str().into(),
            name: Some(we.meta.name.as_str().into()),
            labels: Arc::new(we.workload.labels.clone()),
            service_account: we.workload.service_account.as_deref().map(Into::into),
        };
        let mut by_address = HashMap::new();
        for we in &snapshot.workload_entries {
            if let Some(Address::Ip(ip)) = &we.workload.address {
                by_address.entry(canonical(*ip)).or_insert_with(|| entry(we));
            }
        }
        // A cgroup naming an entry the configuration lacks still gets that
        // identity (namespace and name), without labels.
        let by_cgroup = cgroups
            .iter()
            .map(|(id, (ns, name))| {
                let found = snapshot.workload_entries.iter().find(|we| &we.meta.namespace == ns && &we.meta.name == name);
                let w = found.map(entry).unwrap_or_else(|| WorkloadIdentity { name: Some(name.as_str().into()), ..WorkloadIdentity::unknown(ns) });
                (*id, w)
            })
            .collect();
        Self { by_cgroup, by_address, default_namespace: default_namespace.to_string() }
    }

    pub fn knows_cgroup(&self, cgroup_id: u64) -> bool {
        self.by_cgroup.contains_key(&cgroup_id)
    }

    /// The workload of a caller: by cgroup, then by address; one nothing
    /// describes gets the node's default namespace and no labels.
    pub fn identify(&self, client: IpAddr, cgroup_id: Option<u64>) -> WorkloadIdentity {
        cgroup_id
            .and_then(|id| self.by_cgroup.get(&id))
            .or_else(|| self.by_address.get(&canonical(client)))
            .cloned()
            .unwrap_or_else(|| WorkloadIdentity::unknown(&self.default_namespace))
    }
}

fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_canonical(),
        v4 => v4,
    }
}
