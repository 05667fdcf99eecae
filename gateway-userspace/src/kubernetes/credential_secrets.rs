//! `credentialName` from the API: the TLS Secrets of the gateway's own
//! namespace, kept as files under `--credential-dir`, where the
//! configuration already finds `<credentialName>/{tls.crt,tls.key,ca.crt}`.
//!
//! As Istio's gateways read them, a Secret holds a certificate and key as
//! `tls.crt`/`tls.key` (type `kubernetes.io/tls`) or `cert`/`key`, and
//! optionally its CA as `ca.crt` or `cacert`; a Secret `<name>-cacert`
//! gives the CA of `<name>` when that one has none. Every change rewrites
//! the files (each replaced whole, by rename) and reloads the configuration,
//! whose validation then judges them like any certificate files. A Secret
//! that is gone has its directory removed; directories the gateway did not
//! write are never touched.

use std::{
    collections::{BTreeMap, BTreeSet},
    fs,
    io::Write,
    os::unix::fs::{OpenOptionsExt, PermissionsExt},
    path::{Path, PathBuf},
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
};

use k8s_openapi::api::core::v1::Secret;
use kube::{Api, Client, runtime::watcher};

use super::mirror::{Mirror, Signals};
use crate::reload::ConfigStore;

/// Marks a directory as written from a Secret, so it may be removed.
const MARKER: &str = ".from-secret";
/// A Secret named `<name>` + this holds the CA of `<name>`.
const CA_SUFFIX: &str = "-cacert";

/// The files of one credential, by the names the configuration reads.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Credential {
    pub cert: Option<Vec<u8>>,
    pub key: Option<Vec<u8>>,
    pub ca: Option<Vec<u8>>,
}

/// The credentials that `secrets` hold, by credentialName.
pub fn credentials(secrets: &[Arc<Secret>]) -> BTreeMap<String, Credential> {
    let mut out = BTreeMap::new();
    for secret in secrets {
        let (Some(name), Some(data)) = (secret.metadata.name.clone(), secret.data.as_ref()) else { continue };
        let field = |keys: [&str; 2]| keys.iter().find_map(|k| data.get(*k)).map(|b| b.0.clone());
        let credential = Credential { cert: field(["tls.crt", "cert"]), key: field(["tls.key", "key"]), ca: field(["ca.crt", "cacert"]) };
        if credential.cert.is_some() != credential.key.is_some() || credential == Credential::default() {
            // Not a TLS credential (or half of one, which validation of the
            // server naming it reports as missing files).
            continue;
        }
        out.insert(name, credential);
    }
    // `<name>-cacert` completes `<name>` when that one has no CA.
    let cas: Vec<(String, Vec<u8>)> = out
        .iter()
        .filter_map(|(n, c)| Some((n.strip_suffix(CA_SUFFIX)?.to_string(), c.ca.clone()?)))
        .collect();
    for (name, ca) in cas {
        if let Some(c) = out.get_mut(&name)
            && c.ca.is_none()
        {
            c.ca = Some(ca);
        }
    }
    out
}

pub struct CredentialSecrets {
    secrets: Mirror<Secret>,
    /// The files reflect a complete list of the Secrets.
    written: AtomicBool,
}

impl CredentialSecrets {
    /// Watches the Secrets of `namespace`; after each change the files
    /// under `dir` are brought in step and `store` reloaded.
    pub fn start(client: Client, namespace: &str, dir: PathBuf, store: Arc<ConfigStore>) -> Arc<Self> {
        let signals = Signals::default();
        let secrets = Mirror::start("secrets", Api::namespaced(client, namespace), watcher::Config::default(), &signals);
        let this = Arc::new(Self { secrets, written: AtomicBool::new(false) });
        let watched = this.clone();
        tokio::spawn(async move {
            let mut written = BTreeMap::new();
            loop {
                signals.changed.notified().await;
                if !watched.secrets.is_ready() {
                    continue;
                }
                let wanted = credentials(&watched.secrets.objects());
                if wanted == written && watched.is_written() {
                    continue;
                }
                match write_all(&dir, &wanted) {
                    Ok(()) => {
                        tracing::info!(credentials = ?wanted.keys().collect::<Vec<_>>(), dir = %dir.display(), "credentials written from Secrets");
                        written = wanted;
                        store.reload("secret-change").await;
                        watched.written.store(true, Ordering::Release);
                    }
                    Err(e) => tracing::error!(dir = %dir.display(), error = %e, "cannot write credentials from Secrets; the previous files stay"),
                }
            }
        });
        this
    }

    /// The files hold what a complete list of the Secrets gave, and the
    /// configuration has been reloaded with them.
    pub fn is_written(&self) -> bool {
        self.written.load(Ordering::Acquire)
    }
}

/// Makes `dir` hold exactly `wanted` among the directories it wrote.
pub(super) fn write_all(dir: &Path, wanted: &BTreeMap<String, Credential>) -> std::io::Result<()> {
    fs::create_dir_all(dir)?;
    for (name, credential) in wanted {
        // A credentialName is a Secret's name: a DNS subdomain, no `/`.
        if name.starts_with('.') || name.contains('/') {
            continue;
        }
        let target = dir.join(name);
        if target.exists() && !target.join(MARKER).exists() {
            tracing::warn!(credential = %name, dir = %dir.display(), "a directory not written from a Secret has this name; left as it is");
            continue;
        }
        fs::create_dir_all(&target)?;
        fs::set_permissions(&target, fs::Permissions::from_mode(0o700))?;
        write_file(&target, MARKER, Some(b""))?;
        write_file(&target, "tls.crt", credential.cert.as_deref())?;
        write_file(&target, "tls.key", credential.key.as_deref())?;
        write_file(&target, "ca.crt", credential.ca.as_deref())?;
    }
    let keep: BTreeSet<&str> = wanted.keys().map(String::as_str).collect();
    for entry in fs::read_dir(dir)?.flatten() {
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        if !keep.contains(name.as_str()) && path.join(MARKER).exists() {
            fs::remove_dir_all(&path)?;
        }
    }
    Ok(())
}

/// Replaces `dir/name` whole with `content`, or removes it for `None`.
fn write_file(dir: &Path, name: &str, content: Option<&[u8]>) -> std::io::Result<()> {
    let path = dir.join(name);
    let Some(content) = content else {
        return match fs::remove_file(&path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        };
    };
    let temp = dir.join(format!(".{name}.new"));
    let mut file = fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(&temp)?;
    file.write_all(content)?;
    file.sync_all()?;
    fs::rename(&temp, &path)
}
