//! Reload triggers: file changes and SIGHUP.
//!
//! Files are watched by polling their metadata through symlinks, which sees
//! a Kubernetes ConfigMap or Secret update (an atomic swap of the `..data`
//! symlink) as well as an edit in place, on any filesystem. Watched: the
//! YAML under the configuration paths, every file under the credential
//! directory, and the certificate files the running configuration names.

use std::{
    collections::BTreeMap,
    fs,
    os::unix::fs::MetadataExt,
    path::{Path, PathBuf},
    sync::Arc,
    time::Duration,
};

use tokio::signal::unix::{SignalKind, signal};

use super::ConfigStore;

const POLL: Duration = Duration::from_millis(500);

/// (canonical path) → (inode, size, mtime ns) of every watched file.
type Fingerprint = BTreeMap<PathBuf, (u64, u64, i64)>;

pub async fn watch_files(store: Arc<ConfigStore>, paths: Vec<PathBuf>, credential_dir: Option<PathBuf>) {
    let watched = Arc::new(Watched { paths, credential_dir });
    // Each walk runs on the blocking pool: a mounted ConfigMap of many
    // files costs many `stat`s and `realpath`s, which must not hold up the
    // connections on the runtime's threads.
    let walk_all = || {
        let (watched, store) = (watched.clone(), store.clone());
        async move {
            let walked = tokio::task::spawn_blocking(move || watched.fingerprint(&store)).await;
            walked.inspect_err(|e| tracing::error!(error = %e, "walking the configuration files failed; file changes are no longer seen (SIGHUP still reloads)")).ok()
        }
    };
    let Some(mut last) = walk_all().await else { return };
    loop {
        tokio::time::sleep(POLL).await;
        let Some(now) = walk_all().await else { return };
        if now != last {
            // Files the new configuration names count from the next poll
            // on: at worst one more reload, which finds nothing changed.
            last = now;
            store.reload("file-change").await;
        }
    }
}

/// What `watch_files` watches besides the certificate files.
struct Watched {
    paths: Vec<PathBuf>,
    credential_dir: Option<PathBuf>,
}

impl Watched {
    fn fingerprint(&self, store: &ConfigStore) -> Fingerprint {
        let mut fp = fingerprint(&self.paths);
        if let Some(dir) = &self.credential_dir {
            walk(dir, 0, Files::All, &mut fp);
        }
        for file in certificate_files(&store.current().snapshot) {
            walk(&file, 0, Files::All, &mut fp);
        }
        fp
    }
}

/// The certificate, key and CA files of the Gateways' TLS servers.
fn certificate_files(snapshot: &crate::config::Snapshot) -> Vec<PathBuf> {
    let files = snapshot.gateways.iter().flat_map(|g| &g.servers).filter_map(|s| s.tls.as_ref()?.files.as_ref());
    files.flat_map(|f| [Some(f.certificate.clone()), Some(f.private_key.clone()), f.ca_certificates.clone()]).flatten().collect()
}

pub async fn watch_sighup(store: Arc<ConfigStore>) {
    let Ok(mut hup) = signal(SignalKind::hangup()) else {
        tracing::warn!("cannot listen for SIGHUP");
        return;
    };
    while hup.recv().await.is_some() {
        store.reload("sighup").await;
    }
}

/// Which files of a directory count.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Files {
    Yaml,
    All,
}

pub(super) fn fingerprint(paths: &[PathBuf]) -> Fingerprint {
    let mut out = Fingerprint::new();
    for p in paths {
        walk(p, 0, Files::Yaml, &mut out);
    }
    out
}

fn walk(path: &Path, depth: usize, files: Files, out: &mut Fingerprint) {
    if depth > 16 {
        return;
    }
    let Ok(meta) = fs::metadata(path) else { return };
    if meta.is_dir() {
        let Ok(entries) = fs::read_dir(path) else { return };
        for e in entries.flatten() {
            walk(&e.path(), depth + 1, files, out);
        }
    } else if depth == 0 || files == Files::All || is_yaml(path) {
        let key = fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
        out.insert(key, (meta.ino(), meta.size(), meta.mtime() * 1_000_000_000 + meta.mtime_nsec()));
    }
}

fn is_yaml(path: &Path) -> bool {
    matches!(path.extension().and_then(|e| e.to_str()), Some("yaml" | "yml"))
}
