//! The node agent's view of its pods: watches the pods of this node and the
//! namespaces, rescans the kubelet's cgroup tree, keeps the kernel's
//! exemption map equal to the opted-out pods' cgroups, and answers the proxy's
//! question "which pod is this cgroup?".

use std::{
    collections::BTreeSet,
    path::PathBuf,
    sync::{Arc, RwLock},
    time::{Duration, Instant},
};

use k8s_openapi::api::core::v1::{Namespace, Pod};
use kube::{Api, Client, runtime::watcher};
use tokio::sync::watch;

use super::{
    mirror::{Mirror, Signals},
    pod_cgroups::PodCgroupScan,
    pods::{Enrollment, NodePods, PodIdentity},
};
use crate::{interceptor::ExemptCgroups, policy::WorkloadIdentity};

/// How often the cgroup tree is rescanned when nothing else asks.
const RESCAN_EVERY: Duration = Duration::from_millis(500);
/// A cgroup id the last scan did not know triggers a rescan, at most this often.
const RESCAN_ON_MISS: Duration = Duration::from_millis(20);

/// What the proxy learns about the caller behind a cgroup id.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PodLookup {
    Pod(WorkloadIdentity),
    /// The pod opted out; only a connection that raced its exemption gets here.
    OptedOut(WorkloadIdentity),
    /// A cgroup of a pod the API has not announced (yet).
    UnknownPod,
    /// Not below the pods cgroup.
    NotAPod,
}

pub struct NodeAgent {
    pods: Mirror<Pod>,
    namespaces: Mirror<Namespace>,
    state: RwLock<State>,
    pods_root: PathBuf,
    enrollment: Enrollment,
    exempt: Option<Arc<ExemptCgroups>>,
    generation: watch::Sender<u64>,
}

#[derive(Default)]
struct State {
    pods: Arc<NodePods>,
    scan: PodCgroupScan,
    scanned_at: Option<Instant>,
    synced: bool,
}

impl NodeAgent {
    pub fn start(
        client: Client,
        node: &str,
        pods_root: PathBuf,
        enrollment: Enrollment,
        exempt: Option<Arc<ExemptCgroups>>,
    ) -> Arc<Self> {
        let signals = Signals::default();
        let on_node = watcher::Config::default().fields(&format!("spec.nodeName={node}"));
        let agent = Arc::new(Self {
            pods: Mirror::start("pods", Api::all(client.clone()), on_node, &signals),
            namespaces: Mirror::start("namespaces", Api::all(client), watcher::Config::default(), &signals),
            state: RwLock::default(),
            pods_root,
            enrollment,
            exempt,
            generation: watch::channel(0).0,
        });
        let this = agent.clone();
        tokio::spawn(async move {
            loop {
                this.reconcile();
                let _ = tokio::time::timeout(RESCAN_EVERY, signals.changed.notified()).await;
            }
        });
        agent
    }

    /// Waits until the pods and namespaces are listed and the exemption map
    /// holds every opted-out pod that has a cgroup.
    pub async fn wait_synced(&self) {
        let mut rx = self.generation.subscribe();
        while !self.state.read().expect("agent lock").synced {
            let _ = rx.changed().await;
        }
    }

    pub fn is_synced(&self) -> bool {
        self.state.read().expect("agent lock").synced
    }

    /// Rebuilds the pod index, rescans cgroups and rewrites exemptions.
    fn reconcile(&self) {
        let ready = self.pods.is_ready() && self.namespaces.is_ready();
        let scan = PodCgroupScan::scan(&self.pods_root);
        let mut state = self.state.write().expect("agent lock");
        if ready {
            state.pods = Arc::new(NodePods::build(&self.pods.objects(), &self.namespaces.objects(), &self.enrollment));
        }
        state.scan = scan;
        state.scanned_at = Some(Instant::now());
        if ready && self.write_exemptions(&state) {
            state.synced = true;
        }
        drop(state);
        self.generation.send_modify(|g| *g += 1);
    }

    fn write_exemptions(&self, state: &State) -> bool {
        let Some(exempt) = &self.exempt else { return true };
        let ids: BTreeSet<u64> = state.pods.opted_out().filter_map(|uid| state.scan.pods.get(uid)).map(|(id, _)| *id).collect();
        match exempt.set_exactly(&ids) {
            Ok(()) => true,
            Err(e) => {
                tracing::error!(error = %e, "cannot write the exemption map");
                false
            }
        }
    }

    /// The pod behind a cgroup id, waiting up to `wait` for a pod the API has
    /// not announced yet.
    pub async fn lookup(&self, cgroup_id: u64, wait: Duration) -> PodLookup {
        let deadline = tokio::time::Instant::now() + wait;
        let mut rx = self.generation.subscribe();
        loop {
            let found = self.lookup_now(cgroup_id);
            if matches!(found, PodLookup::Pod(_) | PodLookup::OptedOut(_)) {
                return found;
            }
            if tokio::time::timeout_at(deadline, rx.changed()).await.is_err() {
                return found;
            }
        }
    }

    fn lookup_now(&self, cgroup_id: u64) -> PodLookup {
        let stale = {
            let state = self.state.read().expect("agent lock");
            let known = state.scan.owner.contains_key(&cgroup_id);
            !known && state.scanned_at.is_none_or(|t| t.elapsed() >= RESCAN_ON_MISS)
        };
        if stale {
            let scan = PodCgroupScan::scan(&self.pods_root);
            let mut state = self.state.write().expect("agent lock");
            (state.scan, state.scanned_at) = (scan, Some(Instant::now()));
        }
        let state = self.state.read().expect("agent lock");
        let Some(uid) = state.scan.owner.get(&cgroup_id) else { return PodLookup::NotAPod };
        match state.pods.by_uid.get(uid) {
            Some((pod, false)) => PodLookup::Pod(pod.workload.clone()),
            Some((pod, true)) => PodLookup::OptedOut(pod.workload.clone()),
            None => PodLookup::UnknownPod,
        }
    }

    /// Whether a namespace is labelled `gateway.io/audit=true`.
    pub fn audits(&self, namespace: &str) -> bool {
        self.state.read().expect("agent lock").pods.audited_namespaces.contains(namespace)
    }

    /// The pod using an address, for callers known only by address (DNS).
    pub fn by_ip(&self, ip: std::net::IpAddr) -> Option<PodIdentity> {
        self.state.read().expect("agent lock").pods.by_ip(ip).cloned()
    }

    /// `(namespace, service account)` of every intercepted pod of this node.
    pub fn service_accounts(&self) -> BTreeSet<(String, String)> {
        let state = self.state.read().expect("agent lock");
        state
            .pods
            .by_uid
            .values()
            .filter(|(_, opted_out)| !opted_out)
            .filter_map(|(p, _)| Some((p.workload.namespace.to_string(), p.workload.service_account.as_deref()?.to_string())))
            .collect()
    }

    /// Ticks after every reconciliation.
    pub fn changes(&self) -> watch::Receiver<u64> {
        self.generation.subscribe()
    }

    pub fn pod_count(&self) -> usize {
        self.state.read().expect("agent lock").pods.by_uid.len()
    }
}
