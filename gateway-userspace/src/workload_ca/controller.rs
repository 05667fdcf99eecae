//! The approver and signer loop: watches the CSRs that name this signer and
//! every pod, and brings each pending CSR to an end: Approved and signed
//! (`status.certificate`), or Denied with the reason. A CSR that someone
//! else approved is signed only if it passes the same checks, else marked
//! Failed. CSRs of other signers are never touched.

use std::{
    collections::{HashMap, HashSet},
    sync::Arc,
    time::{Duration, Instant},
};

use k8s_openapi::{
    ByteString,
    api::{certificates::v1::CertificateSigningRequest, core::v1::Pod},
    apimachinery::pkg::apis::meta::v1::Time,
    jiff::Timestamp,
};
use kube::{
    Api, Client,
    api::{Patch, PatchParams},
    runtime::watcher,
};
use serde_json::json;

use super::{
    SIGNER_NAME,
    checks::{self, CsrFacts, PodFacts, Policy, Refusal},
    signer::Signer,
};
use crate::kubernetes::mirror::{Mirror, Signals};

/// How often pending CSRs are looked at again when nothing changes (a CSR
/// waiting for its pod to be announced).
const RECHECK_EVERY: Duration = Duration::from_secs(1);

pub struct Controller {
    api: Api<CertificateSigningRequest>,
    csrs: Mirror<CertificateSigningRequest>,
    pods: Mirror<Pod>,
    signer: Arc<Signer>,
    policy: Policy,
    /// How long a CSR whose pod is not (yet) known stays pending before it is
    /// denied: the CA may hear of the CSR before it hears of the pod.
    pod_wait: Duration,
    first_seen: HashMap<String, Instant>,
    /// UIDs brought to an end here, whose updates the watch may not show yet.
    finished: HashSet<String>,
}

/// Where a CSR stands.
#[derive(Debug, PartialEq, Eq)]
enum Stage {
    Pending,
    Approved,
    /// Signed, denied or failed.
    Done,
}

impl Controller {
    pub fn new(client: Client, signer: Arc<Signer>, policy: Policy, pod_wait: Duration, signals: &Signals) -> Self {
        let ours = watcher::Config::default().fields(&format!("spec.signerName={SIGNER_NAME}"));
        let api = Api::<CertificateSigningRequest>::all(client.clone());
        Self {
            csrs: Mirror::start("certificatesigningrequests", api.clone(), ours, signals),
            pods: Mirror::start("pods", Api::all(client), watcher::Config::default(), signals),
            api,
            signer,
            policy,
            pod_wait,
            first_seen: HashMap::new(),
            finished: HashSet::new(),
        }
    }

    /// Runs until the process ends.
    pub async fn run(mut self, signals: Signals) {
        loop {
            if self.csrs.is_ready() && self.pods.is_ready() {
                self.pass().await;
            }
            let _ = tokio::time::timeout(RECHECK_EVERY, signals.changed.notified()).await;
        }
    }

    /// Looks at every CSR of this signer once.
    async fn pass(&mut self) {
        let csrs = self.csrs.objects();
        let live: HashSet<String> = csrs.iter().filter_map(|c| c.metadata.uid.clone()).collect();
        self.first_seen.retain(|uid, _| live.contains(uid));
        self.finished.retain(|uid| live.contains(uid));
        let open: Vec<_> = csrs
            .into_iter()
            .filter(|c| c.spec.signer_name == SIGNER_NAME && stage(c) != Stage::Done)
            .filter(|c| c.metadata.uid.as_ref().is_some_and(|uid| !self.finished.contains(uid)))
            .collect();
        if open.is_empty() {
            return;
        }
        let pods: Vec<PodFacts> = self.pods.objects().iter().filter_map(|p| pod_facts(p)).collect();
        for csr in open {
            let (Some(name), Some(uid)) = (csr.metadata.name.clone(), csr.metadata.uid.clone()) else { continue };
            let stage = stage(&csr);
            let seen = *self.first_seen.entry(uid.clone()).or_insert_with(Instant::now);
            let decision = checks::decide(&csr_facts(&csr), &self.policy, &pods);
            if let Err(r) = &decision
                && r.reason == "NotEntitled"
                && seen.elapsed() < self.pod_wait
            {
                continue;
            }
            match self.conclude(&name, stage, decision).await {
                Ok(()) => {
                    self.finished.insert(uid);
                }
                Err(e) => tracing::warn!(csr = %name, error = %e, "cannot update the CSR; retrying"),
            }
        }
    }

    async fn conclude(&self, name: &str, stage: Stage, decision: Result<checks::Grant, Refusal>) -> Result<(), kube::Error> {
        let params = PatchParams::default();
        match decision {
            Ok(grant) => {
                let chain = match self.signer.sign(&grant, time::OffsetDateTime::now_utc()) {
                    Ok(chain) => chain,
                    Err(e) => {
                        tracing::error!(csr = %name, error = %e, "cannot sign");
                        let patch = conditions_patch("Failed", "SigningFailed", &e.to_string());
                        self.api.patch_status(name, &params, &Patch::Merge(&patch)).await?;
                        return Ok(());
                    }
                };
                if stage == Stage::Pending {
                    let patch = conditions_patch("Approved", "Entitled", &grant.because);
                    self.api.patch_approval(name, &params, &Patch::Merge(&patch)).await?;
                }
                let patch = json!({ "status": { "certificate": ByteString(chain.into_bytes()) } });
                self.api.patch_status(name, &params, &Patch::Merge(&patch)).await?;
                tracing::info!(csr = %name, identity = %grant.identity, because = %grant.because, lifetime_secs = grant.lifetime.as_secs(), "workload certificate issued");
            }
            Err(refusal) if stage == Stage::Pending => {
                let patch = conditions_patch("Denied", refusal.reason, &refusal.message);
                self.api.patch_approval(name, &params, &Patch::Merge(&patch)).await?;
                tracing::warn!(csr = %name, reason = refusal.reason, message = %refusal.message, "CSR denied");
            }
            Err(refusal) => {
                // Approved by someone else, but not by these checks: never signed.
                let mut patch = conditions_patch("Failed", refusal.reason, &refusal.message);
                if let Some(existing) = self.csrs.objects().iter().find(|c| c.metadata.name.as_deref() == Some(name)) {
                    let mut all: Vec<serde_json::Value> = existing
                        .status
                        .as_ref()
                        .and_then(|s| s.conditions.as_ref())
                        .map(|c| c.iter().filter_map(|c| serde_json::to_value(c).ok()).collect())
                        .unwrap_or_default();
                    all.extend(patch["status"]["conditions"].as_array().cloned().unwrap_or_default());
                    patch["status"]["conditions"] = json!(all);
                }
                self.api.patch_status(name, &params, &Patch::Merge(&patch)).await?;
                tracing::warn!(csr = %name, reason = refusal.reason, message = %refusal.message, "approved CSR not signed");
            }
        }
        Ok(())
    }
}

/// A merge patch setting the conditions to one condition of `type_`.
fn conditions_patch(type_: &str, reason: &str, message: &str) -> serde_json::Value {
    let now = Time(Timestamp::now());
    json!({ "status": { "conditions": [{
        "type": type_, "status": "True", "reason": reason, "message": message,
        "lastUpdateTime": now, "lastTransitionTime": now,
    }]}})
}

fn stage(csr: &CertificateSigningRequest) -> Stage {
    let status = csr.status.as_ref();
    if status.and_then(|s| s.certificate.as_ref()).is_some_and(|c| !c.0.is_empty()) {
        return Stage::Done;
    }
    let conditions = status.and_then(|s| s.conditions.as_deref()).unwrap_or_default();
    let has = |t: &str| conditions.iter().any(|c| c.type_ == t && c.status == "True");
    if has("Denied") || has("Failed") {
        Stage::Done
    } else if has("Approved") {
        Stage::Approved
    } else {
        Stage::Pending
    }
}

fn csr_facts(csr: &CertificateSigningRequest) -> CsrFacts {
    let spec = &csr.spec;
    CsrFacts {
        username: spec.username.clone().unwrap_or_default(),
        node_names: spec.extra.as_ref().and_then(|e| e.get(checks::NODE_NAME_EXTRA).cloned()).unwrap_or_default(),
        usages: spec.usages.clone().unwrap_or_default(),
        request: spec.request.0.clone(),
        expiration_seconds: spec.expiration_seconds,
    }
}

fn pod_facts(pod: &Pod) -> Option<PodFacts> {
    let spec = pod.spec.as_ref()?;
    let phase = pod.status.as_ref().and_then(|s| s.phase.as_deref());
    Some(PodFacts {
        namespace: pod.metadata.namespace.clone()?,
        service_account: spec.service_account_name.clone().unwrap_or_else(|| "default".into()),
        node: spec.node_name.clone()?,
        finished: matches!(phase, Some("Succeeded" | "Failed")),
    })
}
