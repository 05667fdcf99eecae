//! Test cgroups under the cgroup2 mount: the only cgroups a test ever asks the gateway to intercept.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::wait;

/// The cgroup2 mount point, read from /proc/self/mountinfo (never assumed).
pub fn find_cgroup2_mount() -> Option<PathBuf> {
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    mountinfo.lines().find_map(|line| {
        let (left, right) = line.split_once(" - ")?;
        let mount_point = left.split_whitespace().nth(4)?;
        (right.split_whitespace().next()? == "cgroup2")
            .then(|| PathBuf::from(unescape_mount_path(mount_point)))
    })
}

/// The cgroup2 mount point; panics when there is none.
pub fn cgroup2_mount() -> PathBuf {
    find_cgroup2_mount().expect("no cgroup2 filesystem is mounted (see /proc/self/mountinfo)")
}

fn unescape_mount_path(field: &str) -> String {
    // mountinfo escapes space, tab, newline and backslash as \ooo.
    let mut out = String::new();
    let mut chars = field.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\\' {
            let digits: String = chars.by_ref().take(3).collect();
            match u8::from_str_radix(&digits, 8) {
                Ok(byte) => out.push(byte as char),
                Err(_) => out.push_str(&digits),
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// A cgroup the test created; its processes are killed and it is removed on drop.
pub struct TestCgroup {
    path: PathBuf,
}

impl TestCgroup {
    /// Creates `<cgroup2 mount>/<name>`; panics when it exists already.
    pub fn create(name: &str) -> TestCgroup {
        let path = cgroup2_mount().join(name);
        std::fs::create_dir(&path)
            .unwrap_or_else(|e| panic!("cannot create cgroup {}: {e}", path.display()));
        TestCgroup { path }
    }

    /// Creates `<this cgroup>/<name>`, removed with it (or on its own drop).
    pub fn child(&self, name: &str) -> TestCgroup {
        let path = self.path.join(name);
        std::fs::create_dir(&path)
            .unwrap_or_else(|e| panic!("cannot create cgroup {}: {e}", path.display()));
        TestCgroup { path }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The file a process writes its pid into to join this cgroup.
    pub fn procs_file(&self) -> PathBuf {
        self.path.join("cgroup.procs")
    }

    /// The cgroup id as the kernel reports it (`bpf_get_current_cgroup_id`): the directory's inode.
    pub fn id(&self) -> u64 {
        std::fs::metadata(&self.path)
            .unwrap_or_else(|e| panic!("cannot stat cgroup {}: {e}", self.path.display()))
            .ino()
    }

    /// Pids currently in the cgroup.
    pub fn pids(&self) -> Vec<u32> {
        read_pids(&self.path)
    }

    /// Kills every process in the cgroup and removes it.
    pub fn remove(&self) -> Result<(), String> {
        remove_cgroup_dir(&self.path)
    }
}

impl Drop for TestCgroup {
    fn drop(&mut self) {
        if let Err(e) = self.remove() {
            eprintln!("cleanup: {e}");
        }
    }
}

fn read_pids(dir: &Path) -> Vec<u32> {
    std::fs::read_to_string(dir.join("cgroup.procs"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.trim().parse().ok())
        .collect()
}

/// Kills the processes of a cgroup directory and of every cgroup below it,
/// waits for them to empty and removes them, deepest first.
pub fn remove_cgroup_dir(dir: &Path) -> Result<(), String> {
    if !dir.exists() {
        return Ok(());
    }
    let children: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|d| d.flatten().filter(|e| e.file_type().is_ok_and(|t| t.is_dir())).map(|e| e.path()).collect())
        .unwrap_or_default();
    for child in children {
        remove_cgroup_dir(&child)?;
    }
    let me = std::process::id();
    if read_pids(dir).contains(&me) {
        return Err(format!(
            "refusing to kill {}: the test runner itself is in it",
            dir.display()
        ));
    }
    if std::fs::write(dir.join("cgroup.kill"), "1").is_err() {
        // Kernels before 5.14 have no cgroup.kill: kill the pids one by one.
        for pid in read_pids(dir) {
            // SAFETY: kill has no memory-safety preconditions.
            unsafe { libc::kill(pid as i32, libc::SIGKILL) };
        }
    }
    let emptied = wait::poll(Duration::from_secs(10), Duration::from_millis(20), || {
        (read_pids(dir).is_empty() && std::fs::remove_dir(dir).is_ok()).then_some(())
    });
    match emptied {
        Some(()) => Ok(()),
        None if !dir.exists() => Ok(()),
        None => Err(format!(
            "cgroup {} could not be removed (pids left: {:?})",
            dir.display(),
            read_pids(dir)
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mount_paths_are_unescaped() {
        assert_eq!(
            unescape_mount_path("/sys/fs/cgroup/unified"),
            "/sys/fs/cgroup/unified"
        );
        assert_eq!(unescape_mount_path("/mnt/a\\040b"), "/mnt/a b");
    }
}
