//! The pods on this node as the proxy needs them: who each one is, and
//! whether it is intercepted at all.

use std::{
    collections::{BTreeSet, HashMap},
    net::IpAddr,
};

use k8s_openapi::api::core::v1::{Namespace, Pod};

use crate::{config::Labels, policy::WorkloadIdentity};

/// The label by which a pod or namespace opts out, as in Istio ambient.
pub const DATAPLANE_MODE: &str = "istio.io/dataplane-mode";

/// The namespace label (`true`) that puts its pods in audit mode
/// (`policy/audit.rs`).
pub const AUDIT: &str = "gateway.io/audit";

/// Which pods are left alone.
#[derive(Clone, Debug)]
pub struct Enrollment {
    /// Namespaces whose pods are never intercepted (`--exempt-namespace`).
    pub exempt_namespaces: BTreeSet<String>,
}

impl Enrollment {
    /// A pod opts out by namespace, or by `istio.io/dataplane-mode=none` on
    /// itself or its namespace. Every other pod, hostNetwork ones included,
    /// is intercepted.
    pub fn opted_out(&self, pod: &PodIdentity, namespace_labels: Option<&Labels>) -> bool {
        let none = |labels: &Labels| labels.get(DATAPLANE_MODE).is_some_and(|v| v == "none");
        self.exempt_namespaces.contains(&*pod.workload.namespace)
            || none(&pod.workload.labels)
            || namespace_labels.is_some_and(none)
    }
}

/// One pod: its identity for policy and the audit log, and its addresses.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PodIdentity {
    pub uid: String,
    pub workload: WorkloadIdentity,
    pub ips: Vec<IpAddr>,
    pub host_network: bool,
}

impl PodIdentity {
    /// `None` for a pod the API returned without a UID, name or namespace.
    pub fn from_pod(pod: &Pod) -> Option<Self> {
        let meta = &pod.metadata;
        let spec = pod.spec.as_ref();
        let status = pod.status.as_ref();
        let ips = status
            .and_then(|s| s.pod_ips.as_ref())
            .map(|ips| ips.iter().filter_map(|p| p.ip.parse().ok()).collect())
            .unwrap_or_default();
        Some(Self {
            uid: meta.uid.clone()?,
            workload: WorkloadIdentity {
                namespace: meta.namespace.as_deref()?.into(),
                name: Some(meta.name.as_deref()?.into()),
                labels: std::sync::Arc::new(meta.labels.clone().unwrap_or_default().into_iter().collect()),
                service_account: Some(spec.and_then(|s| s.service_account_name.as_deref()).unwrap_or("default").into()),
            },
            ips,
            host_network: spec.and_then(|s| s.host_network).unwrap_or(false),
        })
    }
}

/// Every pod of this node by UID, with its enrollment decided.
#[derive(Debug, Default)]
pub struct NodePods {
    pub by_uid: HashMap<String, (PodIdentity, bool)>,
    /// Namespaces labelled `gateway.io/audit=true`.
    pub audited_namespaces: BTreeSet<String>,
}

impl NodePods {
    pub fn build(pods: &[std::sync::Arc<Pod>], namespaces: &[std::sync::Arc<Namespace>], enrollment: &Enrollment) -> Self {
        let ns_labels: HashMap<&str, Labels> = namespaces
            .iter()
            .filter_map(|ns| {
                let labels = ns.metadata.labels.clone().unwrap_or_default().into_iter().collect();
                Some((ns.metadata.name.as_deref()?, labels))
            })
            .collect();
        let by_uid = pods
            .iter()
            .filter_map(|p| PodIdentity::from_pod(p))
            .map(|id| {
                let out = enrollment.opted_out(&id, ns_labels.get(&*id.workload.namespace));
                (id.uid.clone(), (id, out))
            })
            .collect();
        let audited_namespaces =
            ns_labels.iter().filter(|(_, labels)| labels.get(AUDIT).is_some_and(|v| v == "true")).map(|(ns, _)| ns.to_string()).collect();
        Self { by_uid, audited_namespaces }
    }

    /// UIDs of the pods that opted out.
    pub fn opted_out(&self) -> impl Iterator<Item = &str> {
        self.by_uid.iter().filter(|(_, (_, out))| *out).map(|(uid, _)| uid.as_str())
    }

    /// The pod holding an address (pod IPs; hostNetwork pods share the node's
    /// and are not found this way).
    pub fn by_ip(&self, ip: IpAddr) -> Option<&PodIdentity> {
        self.by_uid.values().map(|(p, _)| p).find(|p| !p.host_network && p.ips.contains(&ip))
    }
}
