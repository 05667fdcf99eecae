//! The kubelet's cgroup tree on this node: where the pods cgroup is, which
//! directory belongs to which pod, and which pod a cgroup id belongs to.
//!
//! Layouts handled (`<uid>` is the pod UID; the systemd driver writes its
//! dashes as underscores; Guaranteed pods have no QoS level):
//!
//! | driver | pod cgroup |
//! |---|---|
//! | systemd | `kubepods.slice/kubepods-<qos>.slice/kubepods-<qos>-pod<uid>.slice` |
//! | cgroupfs | `kubepods/<qos>/pod<uid>` |
//! | kind (nested) | the same under `kubelet.slice/kubelet-` or `kubelet/` |
//!
//! Containers (`cri-containerd-<id>.scope`, `crio-<id>.scope`,
//! `docker-<id>.scope`, or a bare id with cgroupfs) sit below their pod's
//! directory, so a pod is found from any of its containers' cgroup ids by
//! walking up to the directory that names the pod.

use std::{
    collections::HashMap,
    os::unix::fs::MetadataExt,
    path::{Path, PathBuf},
};

/// Where the kubelet puts the pods cgroup, relative to the cgroup2 mount.
const POD_ROOTS: [&str; 4] = ["kubepods.slice", "kubepods", "kubelet.slice/kubelet-kubepods.slice", "kubelet/kubepods"];

#[derive(Debug, thiserror::Error)]
pub enum PodCgroupError {
    #[error("no kubelet pods cgroup under {0} (looked for {POD_ROOTS:?}); name it with --cgroup-root")]
    NotFound(PathBuf),
    #[error("more than one kubelet pods cgroup: {0:?}; name the right one with --cgroup-root")]
    Ambiguous(Vec<PathBuf>),
    #[error("{0} is the cgroup2 root; intercepting it would intercept every process on the host")]
    HostRoot(PathBuf),
}

/// The kubelet's pods cgroup under `mount`: exactly one of the known layouts.
pub fn find_pods_root(mount: &Path) -> Result<PathBuf, PodCgroupError> {
    let found: Vec<PathBuf> = POD_ROOTS.iter().map(|r| mount.join(r)).filter(|p| p.is_dir()).collect();
    match found.len() {
        0 => Err(PodCgroupError::NotFound(mount.to_path_buf())),
        1 => Ok(found.into_iter().next().expect("one")),
        _ => Err(PodCgroupError::Ambiguous(found)),
    }
}

/// Refuses the cgroup2 root itself as the pods cgroup.
pub fn check_not_root(mount: &Path, pods_root: &Path) -> Result<(), PodCgroupError> {
    let same = std::fs::canonicalize(mount).ok() == std::fs::canonicalize(pods_root).ok();
    if same { Err(PodCgroupError::HostRoot(pods_root.to_path_buf())) } else { Ok(()) }
}

/// The pod UID a cgroup directory's name carries, if it is a pod's.
pub fn pod_uid(dir_name: &str) -> Option<String> {
    // `kubepods-…-pod<uid>.slice` has "pod" twice: the UID follows the last.
    let start = dir_name.rfind("pod")? + 3;
    let rest = &dir_name[start..];
    let raw = rest.strip_suffix(".slice").unwrap_or(rest);
    let uid = raw.replace('_', "-");
    is_uid(&uid).then_some(uid)
}

fn is_uid(s: &str) -> bool {
    s.len() == 36
        && s.char_indices().all(|(i, c)| if matches!(i, 8 | 13 | 18 | 23) { c == '-' } else { c.is_ascii_hexdigit() })
}

/// One scan of the pods cgroup: every directory's cgroup id mapped to the
/// pod it belongs to, and each pod's own directory.
#[derive(Debug, Default, Clone)]
pub struct PodCgroupScan {
    /// cgroup id of a pod directory or any directory below it → pod UID.
    pub owner: HashMap<u64, String>,
    /// pod UID → (cgroup id, path) of the pod's directory.
    pub pods: HashMap<String, (u64, PathBuf)>,
}

impl PodCgroupScan {
    /// Walks the tree: QoS levels, pod directories, containers (bounded depth).
    pub fn scan(root: &Path) -> Self {
        let mut scan = Self::default();
        walk(root, None, 0, &mut scan);
        scan
    }
}

fn walk(dir: &Path, pod: Option<&str>, depth: u32, scan: &mut PodCgroupScan) {
    const MAX_DEPTH: u32 = 5;
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for entry in entries.flatten() {
        let Ok(meta) = entry.metadata() else { continue };
        if !meta.is_dir() {
            continue;
        }
        let path = entry.path();
        let name = entry.file_name();
        let own = pod.map(str::to_string).or_else(|| name.to_str().and_then(pod_uid));
        if let Some(uid) = &own {
            scan.owner.insert(meta.ino(), uid.clone());
            if pod.is_none() {
                scan.pods.insert(uid.clone(), (meta.ino(), path.clone()));
            }
        }
        if depth + 1 < MAX_DEPTH {
            walk(&path, own.as_deref(), depth + 1, scan);
        }
    }
}
