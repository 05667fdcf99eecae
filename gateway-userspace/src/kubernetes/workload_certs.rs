//! `--workload-certs-from-csr`: the node agent keeps a certificate for each
//! service account with an intercepted pod on its node, obtained through a
//! CertificateSigningRequest (`workload_csr.rs`) that `gateway ca` signs,
//! and the trust bundle that `gateway ca` publishes. `--cert-from-csr`: a
//! gateway keeps its own (`--cert`, `--key`) the same way.
//!
//! Files, each replaced whole by rename and readable by the owner only:
//! `<namespace>-<serviceaccount>.crt|.key` under `--workload-certs` (best a
//! memory-backed volume), where the proxy's mesh identities read them, and
//! the CA certificate(s) in `--mesh-ca`. A certificate is renewed at two
//! thirds of the lifetime it was issued with; a failed attempt is retried
//! with backoff while the old certificate stays. When the last pod of a
//! service account leaves the node, its files are removed.

use std::{
    collections::HashMap,
    fs,
    io::Write,
    os::unix::fs::OpenOptionsExt,
    path::{Path, PathBuf},
    sync::Arc,
    time::Duration,
};

use k8s_openapi::api::core::v1::ConfigMap;
use kube::{Api, Client};
use tokio::{sync::oneshot, task::JoinHandle};

use super::{NodeAgent, workload_csr};
use crate::{
    tls::SpiffeId,
    workload_ca::bundle::{BUNDLE_CONFIGMAP, BUNDLE_KEY},
};

/// First wait after a failed attempt; doubled up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_secs(2);
const MAX_BACKOFF: Duration = Duration::from_secs(60);
/// How often the trust bundle is read again once it was found.
const BUNDLE_EVERY: Duration = Duration::from_secs(30);

#[derive(Clone, Debug)]
pub struct WorkloadCertSettings {
    pub dir: PathBuf,
    pub mesh_ca: PathBuf,
    pub trust_domain: String,
    pub lifetime: Duration,
    pub bundle_namespace: String,
}

/// Starts keeping the certificates of `agent`'s pods and the trust bundle.
pub fn start(client: Client, agent: Arc<NodeAgent>, settings: WorkloadCertSettings) {
    tokio::spawn(keep_bundle(client.clone(), settings.bundle_namespace.clone(), settings.mesh_ca.clone(), None));
    tokio::spawn(async move {
        let mut running: HashMap<(String, String), JoinHandle<()>> = HashMap::new();
        let mut changes = agent.changes();
        if let Err(e) = fs::create_dir_all(&settings.dir) {
            tracing::error!(dir = %settings.dir.display(), error = %e, "cannot create the workload certificate directory");
        }
        loop {
            let wanted = agent.service_accounts();
            running.retain(|(ns, sa), task| {
                if wanted.contains(&(ns.clone(), sa.clone())) {
                    return true;
                }
                task.abort();
                remove_files(&settings.dir, ns, sa);
                tracing::info!(namespace = %ns, service_account = %sa, "no pod of this service account left on the node: certificate removed");
                false
            });
            for (ns, sa) in wanted {
                if running.contains_key(&(ns.clone(), sa.clone())) {
                    continue;
                }
                match SpiffeId::new(&settings.trust_domain, &ns, &sa) {
                    Ok(id) => {
                        let files = stem(&settings.dir, &ns, &sa);
                        let task = tokio::spawn(keep_certificate(client.clone(), id, files, settings.lifetime, None));
                        running.insert((ns, sa), task);
                    }
                    Err(e) => tracing::warn!(namespace = %ns, service_account = %sa, error = %e, "no SPIFFE identity for this service account"),
                }
            }
            if changes.changed().await.is_err() {
                return;
            }
        }
    });
}

/// A gateway's own identity and where it goes (`--cert-from-csr`).
#[derive(Clone, Debug)]
pub struct OwnCert {
    pub id: SpiffeId,
    pub cert: PathBuf,
    pub key: PathBuf,
    pub mesh_ca: PathBuf,
    pub lifetime: Duration,
    pub bundle_namespace: String,
}

/// `--cert-from-csr`'s settings from the command line.
pub fn own_settings(args: &crate::cli::RunArgs) -> anyhow::Result<OwnCert> {
    let k = &args.kubernetes;
    let (Some((ns, sa)), Some(cert), Some(key), Some(mesh_ca)) = (&k.service_account, &args.cert, &args.key, &args.mesh_ca) else {
        anyhow::bail!("--cert-from-csr needs --service-account, --cert, --key and --mesh-ca");
    };
    Ok(OwnCert {
        id: SpiffeId::new(&args.authz.trust_domain, ns, sa)?,
        cert: cert.clone(),
        key: key.clone(),
        mesh_ca: mesh_ca.clone(),
        lifetime: Duration::from_secs(k.workload_cert_lifetime_secs),
        bundle_namespace: k.trust_bundle_namespace.clone(),
    })
}

/// Keeps a gateway's own certificate in its `--cert`/`--key` and the trust
/// bundle in `--mesh-ca`, as for the node's workloads. Returns once both
/// are first written.
pub async fn start_own(client: Client, own: OwnCert) {
    let (bundle_tx, bundle_rx) = oneshot::channel();
    let (cert_tx, cert_rx) = oneshot::channel();
    tokio::spawn(keep_bundle(client.clone(), own.bundle_namespace, own.mesh_ca, Some(bundle_tx)));
    tracing::info!(identity = %own.id, "obtaining this gateway's certificate");
    tokio::spawn(keep_certificate(client, own.id, (own.cert, own.key), own.lifetime, Some(cert_tx)));
    let _ = tokio::join!(bundle_rx, cert_rx);
}

/// Obtains, writes (`files`: certificate, key) and renews the certificate
/// of one identity, forever; `written` hears of the first one.
async fn keep_certificate(client: Client, id: SpiffeId, files: (PathBuf, PathBuf), lifetime: Duration, mut written: Option<oneshot::Sender<()>>) {
    let mut backoff = FIRST_BACKOFF;
    loop {
        let asked = std::time::Instant::now();
        match workload_csr::obtain(&client, &id, lifetime).await {
            Ok(issued) => match write_pair(&files, &issued) {
                Ok(()) => {
                    if let Some(tx) = written.take() {
                        let _ = tx.send(());
                    }
                    backoff = FIRST_BACKOFF;
                    let renew_in = issued.remaining * 2 / 3;
                    tracing::info!(identity = %id, csr = %issued.csr_name, valid_secs = issued.remaining.as_secs(), renew_in_secs = renew_in.as_secs(),
                        took_ms = asked.elapsed().as_millis() as u64, "workload certificate written");
                    tokio::time::sleep(renew_in).await;
                    continue;
                }
                Err(e) => tracing::error!(identity = %id, path = %files.0.display(), error = %e, "cannot write the workload certificate"),
            },
            Err(e) => tracing::warn!(identity = %id, error = %e, retry_in_secs = backoff.as_secs(), "no workload certificate"),
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

fn stem(dir: &Path, ns: &str, sa: &str) -> (PathBuf, PathBuf) {
    (dir.join(format!("{ns}-{sa}.crt")), dir.join(format!("{ns}-{sa}.key")))
}

/// The key first, then the certificate: the proxy, which reloads on either
/// changing, may see a new key with the old certificate for an instant and
/// refuse that one connection (a mismatch), but never a wrong pair in use.
fn write_pair((cert, key): &(PathBuf, PathBuf), issued: &workload_csr::Issued) -> std::io::Result<()> {
    write_file(key, issued.key.as_bytes())?;
    write_file(cert, issued.chain.as_bytes())
}

fn remove_files(dir: &Path, ns: &str, sa: &str) {
    let (cert, key) = stem(dir, ns, sa);
    for path in [cert, key] {
        if let Err(e) = fs::remove_file(&path)
            && e.kind() != std::io::ErrorKind::NotFound
        {
            tracing::warn!(path = %path.display(), error = %e, "cannot remove a workload certificate file");
        }
    }
}

/// Replaces `path` whole with `content`, mode 0600 (its directory made if missing).
fn write_file(path: &Path, content: &[u8]) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir)?;
    }
    let mut temp = path.as_os_str().to_owned();
    temp.push(".new");
    let temp = PathBuf::from(temp);
    let _ = fs::remove_file(&temp);
    let mut file = fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(&temp)?;
    file.write_all(content)?;
    file.sync_all()?;
    fs::rename(&temp, path)
}

/// Keeps `mesh_ca` equal to the published trust bundle; `written` hears of the first.
async fn keep_bundle(client: Client, namespace: String, mesh_ca: PathBuf, mut first: Option<oneshot::Sender<()>>) {
    let api: Api<ConfigMap> = Api::namespaced(client, &namespace);
    let mut written: Option<String> = None;
    loop {
        let found = match api.get_opt(BUNDLE_CONFIGMAP).await {
            Ok(cm) => cm.and_then(|cm| cm.data?.get(BUNDLE_KEY).cloned()),
            Err(e) => {
                tracing::warn!(namespace = %namespace, configmap = BUNDLE_CONFIGMAP, error = %e, "cannot read the trust bundle");
                None
            }
        };
        match found {
            Some(pem) if written.as_ref() != Some(&pem) => match write_file(&mesh_ca, pem.as_bytes()) {
                Ok(()) => {
                    tracing::info!(path = %mesh_ca.display(), "trust bundle written");
                    written = Some(pem);
                    if let Some(tx) = first.take() {
                        let _ = tx.send(());
                    }
                }
                Err(e) => tracing::error!(path = %mesh_ca.display(), error = %e, "cannot write the trust bundle"),
            },
            None if written.is_none() => tracing::debug!(namespace = %namespace, configmap = BUNDLE_CONFIGMAP, "no trust bundle yet"),
            _ => {}
        }
        let wait = if written.is_some() { BUNDLE_EVERY } else { FIRST_BACKOFF };
        tokio::time::sleep(wait).await;
    }
}
