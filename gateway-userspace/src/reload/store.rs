//! The active configuration and how a new one replaces it.

use std::{path::PathBuf, sync::Arc};

use serde::Serialize;
use tokio::sync::watch;

use crate::{
    config::{self, ConfigError, Finding, LoadOptions, Snapshot, api_documents::{ApiDocuments, load_with_api}},
    metrics::{Metrics, ReloadLabels, ReloadResult},
    policy::{EgressPolicy, PolicySettings, PolicySource},
};

/// One validated configuration and where it came from. A connection decides
/// with the one current when it starts; open ones are asked again about each
/// newer one (see `proxy/revocation.rs`), and each HTTP request takes the
/// current one.
#[derive(Debug, Serialize)]
pub struct ActiveConfig {
    pub generation: u64,
    pub loaded_at: String,
    pub sources: Vec<PathBuf>,
    pub snapshot: Arc<Snapshot>,
    /// The egress policy compiled from `snapshot`.
    #[serde(skip)]
    pub policy: Arc<EgressPolicy>,
}

#[derive(Debug)]
pub enum ReloadOutcome {
    Applied { generation: u64 },
    Unchanged { generation: u64 },
    Rejected { findings: Vec<Finding> },
    Unreadable { error: String },
}

/// The API's documents as last given, and the versions last accepted.
#[derive(Default)]
struct ApiSources {
    latest: Option<ApiDocuments>,
    accepted: ApiDocuments,
}

/// An API document kept out of the running configuration, with why.
pub type RejectedDocument = (PathBuf, Vec<Finding>);

/// What a reload with the API's documents did.
#[derive(Debug)]
pub struct ApiReload {
    pub outcome: ReloadOutcome,
    /// Documents kept out for their errors.
    pub rejected: Vec<RejectedDocument>,
    /// The warnings of the applied configuration.
    pub findings: Vec<Finding>,
}

pub struct ConfigStore {
    paths: Vec<PathBuf>,
    options: LoadOptions,
    policy_settings: PolicySettings,
    /// The active configuration; every swap is published to the subscribers.
    active: watch::Sender<Arc<ActiveConfig>>,
    /// One reload at a time; triggers that arrive meanwhile wait their turn.
    reloading: tokio::sync::Mutex<()>,
    /// Documents from the Kubernetes API, once the first lists are in.
    api: std::sync::Mutex<ApiSources>,
    metrics: Arc<Metrics>,
}

impl PolicySource for ConfigStore {
    fn current_policy(&self) -> Arc<EgressPolicy> {
        self.current().policy.clone()
    }
}

/// Why the first configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error(transparent)]
    Unreadable(#[from] ConfigError),
    #[error("the configuration has errors")]
    Invalid(Vec<Finding>),
}

impl ConfigStore {
    /// Loads the first configuration; warnings are logged, errors refuse.
    pub fn open(
        paths: Vec<PathBuf>,
        options: LoadOptions,
        policy_settings: PolicySettings,
        metrics: Arc<Metrics>,
    ) -> Result<Self, StartupError> {
        let loaded = config::load(&paths, &options)?;
        log_findings(&loaded.findings);
        let Some(snapshot) = loaded.snapshot else {
            return Err(StartupError::Invalid(loaded.findings));
        };
        metrics.config_generation.set(1);
        let policy = Arc::new(EgressPolicy::build(snapshot.clone(), policy_settings.clone()));
        tracing::info!(summary = %snapshot.summary(), "configuration loaded");
        let active = Arc::new(ActiveConfig { generation: 1, loaded_at: now(), sources: paths.clone(), snapshot, policy });
        let (active, _) = watch::channel(active);
        Ok(Self { paths, options, policy_settings, active, reloading: Default::default(), api: Default::default(), metrics })
    }

    pub fn current(&self) -> Arc<ActiveConfig> {
        self.active.borrow().clone()
    }

    /// Each configuration swapped in from now on, newest first: a receiver
    /// sees the latest one, never a queue of them.
    pub fn subscribe(&self) -> watch::Receiver<Arc<ActiveConfig>> {
        self.active.subscribe()
    }

    /// Builds a new snapshot off to the side and swaps it in if it is valid
    /// and different. On any problem the running configuration stays.
    pub async fn reload(self: &Arc<Self>, trigger: &'static str) -> ReloadOutcome {
        self.reload_reporting(trigger).await.outcome
    }

    /// Replaces the API's documents and reloads. Returns the outcome and the
    /// documents kept out for their errors (each at its last good version,
    /// if it had one).
    pub async fn reload_api(self: &Arc<Self>, documents: ApiDocuments) -> ApiReload {
        self.api.lock().expect("api sources lock").latest = Some(documents);
        self.reload_reporting("kubernetes").await
    }

    async fn reload_reporting(self: &Arc<Self>, trigger: &'static str) -> ApiReload {
        let _turn = self.reloading.lock().await;
        let this = self.clone();
        // Load, validate and compile off to the side; swap only the result.
        let loaded = tokio::task::spawn_blocking(move || this.load()).await;
        let (mut rejected, mut findings) = (Vec::new(), Vec::new());
        let outcome = match loaded {
            Err(join) => {
                tracing::error!(error = %join, "configuration load panicked");
                ReloadOutcome::Unreadable { error: format!("configuration load failed: {join}") }
            }
            Ok(Err(error)) => ReloadOutcome::Unreadable { error: error.to_string() },
            Ok(Ok(attempt)) => {
                rejected = attempt.rejected;
                match (attempt.loaded.snapshot, attempt.policy) {
                    (Some(snapshot), Some(policy)) => {
                        log_findings(&attempt.loaded.findings);
                        findings = attempt.loaded.findings;
                        if let Some(used) = attempt.api_used {
                            self.api.lock().expect("api sources lock").accepted = used;
                        }
                        self.swap(snapshot, policy)
                    }
                    _ => ReloadOutcome::Rejected { findings: attempt.loaded.findings },
                }
            }
        };
        self.record(trigger, &outcome);
        for (path, why) in &rejected {
            log_findings(why);
            tracing::error!(resource = %path.display(), "resource rejected; its last good version, if any, stays");
        }
        self.metrics.config_rejected_resources.set(rejected.len() as i64);
        ApiReload { outcome, rejected, findings }
    }

    /// Reads the files (and the API's documents, each judged on its own),
    /// validates, and compiles the policy.
    fn load(&self) -> Result<Attempt, ConfigError> {
        let (latest, accepted) = {
            let api = self.api.lock().expect("api sources lock");
            (api.latest.clone(), api.accepted.clone())
        };
        let (loaded, api_used, rejected) = match latest {
            None => (config::load(&self.paths, &self.options)?, None, Vec::new()),
            Some(docs) => {
                let out = load_with_api(&self.paths, &docs, &accepted, &self.options)?;
                (out.loaded, Some(out.used), out.rejected)
            }
        };
        let policy = loaded.snapshot.as_ref().map(|s| Arc::new(EgressPolicy::build(s.clone(), self.policy_settings.clone())));
        Ok(Attempt { loaded, policy, api_used, rejected })
    }

    fn swap(&self, snapshot: Arc<Snapshot>, policy: Arc<EgressPolicy>) -> ReloadOutcome {
        let mut outcome = ReloadOutcome::Unchanged { generation: 0 };
        // Reloads take turns (`reloading`), so nothing swaps in between.
        self.active.send_if_modified(|active| {
            if active.snapshot == snapshot {
                outcome = ReloadOutcome::Unchanged { generation: active.generation };
                return false;
            }
            let generation = active.generation + 1;
            *active = Arc::new(ActiveConfig { generation, loaded_at: now(), sources: self.paths.clone(), snapshot, policy });
            outcome = ReloadOutcome::Applied { generation };
            true
        });
        if let ReloadOutcome::Applied { generation } = outcome {
            self.metrics.config_generation.set(generation as i64);
        }
        outcome
    }

    fn record(&self, trigger: &'static str, outcome: &ReloadOutcome) {
        let result = match outcome {
            ReloadOutcome::Applied { generation } => {
                tracing::info!(trigger, generation, "configuration reloaded");
                ReloadResult::Applied
            }
            ReloadOutcome::Unchanged { .. } => return,
            ReloadOutcome::Rejected { findings } => {
                log_findings(findings);
                tracing::error!(trigger, "configuration rejected; the running one stays");
                ReloadResult::Rejected
            }
            ReloadOutcome::Unreadable { error } => {
                tracing::error!(trigger, %error, "configuration unreadable; the running one stays");
                ReloadResult::Rejected
            }
        };
        self.metrics.config_reloads.get_or_create(&ReloadLabels { result }).inc();
    }
}

struct Attempt {
    loaded: config::Loaded,
    policy: Option<Arc<EgressPolicy>>,
    api_used: Option<ApiDocuments>,
    rejected: Vec<RejectedDocument>,
}

fn log_findings(findings: &[Finding]) {
    for f in findings {
        if f.severity == crate::config::Severity::Error {
            tracing::error!("{f}");
        } else {
            tracing::warn!("{f}");
        }
    }
}

fn now() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}
