//! The cgroup v2 tree as the interceptor needs it: where it is mounted, the
//! id of a directory (the kernel's cgroup id is its inode number), its depth,
//! and the cgroup this process runs in.

use std::{
    fs,
    os::unix::fs::MetadataExt,
    path::{Path, PathBuf},
};

use super::{InterceptorError, pins::io};

const CGROUP2_SUPER_MAGIC: i64 = 0x6367_7270;

/// The cgroup2 mount point, from /proc/self/mountinfo.
pub fn cgroup2_mount() -> Result<PathBuf, InterceptorError> {
    let info = fs::read_to_string("/proc/self/mountinfo").map_err(|e| io(Path::new("/proc/self/mountinfo"), e))?;
    info.lines()
        .find_map(|line| {
            let (left, right) = line.split_once(" - ")?;
            (right.split_whitespace().next() == Some("cgroup2")).then(|| left.split_whitespace().nth(4).map(PathBuf::from))?
        })
        .ok_or_else(|| InterceptorError::NotCgroup2(PathBuf::from("(no cgroup2 mount in /proc/self/mountinfo)")))
}

/// The cgroup id of a cgroup v2 directory.
pub fn cgroup_id(dir: &Path) -> Result<u64, InterceptorError> {
    let st = nix::sys::statfs::statfs(dir).map_err(|e| io(dir, e.into()))?;
    if st.filesystem_type().0 as i64 != CGROUP2_SUPER_MAGIC {
        return Err(InterceptorError::NotCgroup2(dir.to_path_buf()));
    }
    Ok(fs::metadata(dir).map_err(|e| io(dir, e))?.ino())
}

/// How deep `dir` lies below the cgroup2 root (the root is level 0), as
/// `bpf_get_current_ancestor_cgroup_id` counts.
pub fn level(mount: &Path, dir: &Path) -> Option<u32> {
    let rel = dir.strip_prefix(mount).ok()?;
    Some(rel.components().count() as u32)
}

/// The directory of the cgroup this process runs in.
pub fn own_cgroup(mount: &Path) -> Result<PathBuf, InterceptorError> {
    let text = fs::read_to_string("/proc/self/cgroup").map_err(|e| io(Path::new("/proc/self/cgroup"), e))?;
    let rel = text
        .lines()
        .find_map(|l| l.strip_prefix("0::"))
        .ok_or_else(|| InterceptorError::NotCgroup2(PathBuf::from("(no cgroup v2 entry in /proc/self/cgroup)")))?;
    Ok(mount.join(rel.trim().trim_start_matches('/')))
}
