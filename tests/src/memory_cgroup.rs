//! A memory-limited cgroup the test creates for the gateway, so that the kernel's OOM killer
//! (not a signal from the test) ends it.
//!
//! On a cgroup2 tree whose root offers the memory controller, the controller is enabled in the
//! `cgroup.subtree_control` of a cgroup the test made, and a child of it gets `memory.max`; kills
//! are counted by `oom_kill` in `memory.events`. On a hybrid layout the memory controller is bound
//! to the v1 hierarchy and cgroup2 cannot have it; there the child is made in the v1 memory
//! hierarchy, below the test runner's own memory cgroup, with `memory.limit_in_bytes`, and kills
//! are counted by `oom_kill` in `memory.oom_control`. Either way only cgroups the test created are
//! written to, and they are removed on drop.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::cgroup::{TestCgroup, cgroup2_mount};
use crate::wait;

pub enum MemoryCgroup {
    /// A cgroup2 child (the gateway starts in it, through `GatewayConfig::own_cgroup`).
    Unified(TestCgroup),
    /// A v1 memory cgroup (the gateway is moved into it once it runs).
    V1(PathBuf),
}

impl MemoryCgroup {
    /// Creates `<parent>/<name>` with the memory controller, on cgroup2 if it can, else in the v1
    /// memory hierarchy; panics naming what is missing when neither has the memory controller.
    pub fn create(parent: &TestCgroup, name: &str) -> MemoryCgroup {
        let offered = std::fs::read_to_string(parent.path().join("cgroup.controllers")).unwrap_or_default();
        if offered.split_whitespace().any(|c| c == "memory") {
            std::fs::write(parent.path().join("cgroup.subtree_control"), "+memory")
                .unwrap_or_else(|e| panic!("cannot enable the memory controller in {}: {e}", parent.path().display()));
            return MemoryCgroup::Unified(parent.child(name));
        }
        let Some(own) = own_v1_memory_cgroup() else {
            panic!(
                "no memory controller for a test cgroup: cgroup2 at {} offers only [{}] to {} (its root does not delegate \
                 \"memory\"), and no cgroup v1 memory hierarchy is mounted",
                cgroup2_mount().display(),
                offered.trim(),
                parent.path().display()
            );
        };
        let path = own.join(name);
        std::fs::create_dir(&path).unwrap_or_else(|e| panic!("cannot create the v1 memory cgroup {}: {e}", path.display()));
        MemoryCgroup::V1(path)
    }

    pub fn path(&self) -> &Path {
        match self {
            MemoryCgroup::Unified(cg) => cg.path(),
            MemoryCgroup::V1(path) => path,
        }
    }

    /// The cgroup2 directory the gateway must start in, if this is a cgroup2 cgroup.
    pub fn unified_path(&self) -> Option<PathBuf> {
        match self {
            MemoryCgroup::Unified(cg) => Some(cg.path().to_owned()),
            MemoryCgroup::V1(_) => None,
        }
    }

    /// Puts `pid` in the cgroup (a v1 cgroup; in cgroup2 it started there) and checks it is in.
    pub fn adopt(&self, pid: u32) {
        if let MemoryCgroup::V1(path) = self {
            std::fs::write(path.join("cgroup.procs"), pid.to_string())
                .unwrap_or_else(|e| panic!("cannot move {pid} into {}: {e}", path.display()));
        }
        assert!(pids(self.path()).contains(&pid), "{pid} is not in {}", self.path().display());
    }

    /// Memory charged to the cgroup now, in bytes.
    pub fn usage(&self) -> u64 {
        let file = match self {
            MemoryCgroup::Unified(_) => "memory.current",
            MemoryCgroup::V1(_) => "memory.usage_in_bytes",
        };
        read_number(&self.path().join(file))
    }

    /// Sets the hard limit; `None` lifts it.
    pub fn set_limit(&self, bytes: Option<u64>) {
        let (file, value) = match (self, bytes) {
            (MemoryCgroup::Unified(_), Some(b)) => ("memory.max", b.to_string()),
            (MemoryCgroup::Unified(_), None) => ("memory.max", "max".to_owned()),
            (MemoryCgroup::V1(_), Some(b)) => ("memory.limit_in_bytes", b.to_string()),
            (MemoryCgroup::V1(_), None) => ("memory.limit_in_bytes", "-1".to_owned()),
        };
        let path = self.path().join(file);
        std::fs::write(&path, &value).unwrap_or_else(|e| panic!("cannot write {value} to {}: {e}", path.display()));
    }

    /// How many processes the kernel's OOM killer has killed in this cgroup.
    pub fn oom_kills(&self) -> u64 {
        let file = match self {
            MemoryCgroup::Unified(_) => "memory.events",
            MemoryCgroup::V1(_) => "memory.oom_control",
        };
        let path = self.path().join(file);
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
        text.lines()
            .find_map(|l| l.strip_prefix("oom_kill ").and_then(|n| n.trim().parse().ok()))
            .unwrap_or_else(|| panic!("no oom_kill counter in {} (kernel before 4.13?): {text}", path.display()))
    }

    /// Which interface this is, for figures.
    pub fn describe(&self) -> String {
        match self {
            MemoryCgroup::Unified(cg) => format!("cgroup2 {} (memory.max, memory.events)", cg.path().display()),
            MemoryCgroup::V1(path) => format!("cgroup v1 {} (memory.limit_in_bytes, memory.oom_control)", path.display()),
        }
    }
}

impl Drop for MemoryCgroup {
    fn drop(&mut self) {
        // A cgroup2 child is removed by its TestCgroup.
        let MemoryCgroup::V1(path) = self else { return };
        for pid in pids(path) {
            // SAFETY: kill has no memory-safety preconditions.
            unsafe { libc::kill(pid as i32, libc::SIGKILL) };
        }
        let removed = wait::poll(Duration::from_secs(10), Duration::from_millis(20), || std::fs::remove_dir(&*path).ok());
        if removed.is_none() && path.exists() {
            eprintln!("cleanup: cannot remove {} (pids left: {:?})", path.display(), pids(path));
        }
    }
}

fn pids(dir: &Path) -> Vec<u32> {
    std::fs::read_to_string(dir.join("cgroup.procs")).unwrap_or_default().lines().filter_map(|l| l.trim().parse().ok()).collect()
}

fn read_number(path: &Path) -> u64 {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    text.trim().parse().unwrap_or_else(|e| panic!("{} is not a number ({e}): {text}", path.display()))
}

/// The runner's own cgroup in the v1 memory hierarchy, from /proc/self/cgroup and mountinfo.
fn own_v1_memory_cgroup() -> Option<PathBuf> {
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    let (root, mount) = mountinfo.lines().find_map(|line| {
        let (left, right) = line.split_once(" - ")?;
        let mut right = right.split_whitespace();
        let (fstype, options) = (right.next()?, right.nth(1)?);
        let fields: Vec<&str> = left.split_whitespace().collect();
        if fstype != "cgroup" || !options.split(',').any(|o| o == "memory") {
            return None;
        }
        Some((fields.get(3)?.to_string(), PathBuf::from(fields.get(4)?)))
    })?;
    let own = std::fs::read_to_string("/proc/self/cgroup").ok()?;
    let relative = own.lines().find_map(|l| {
        let mut parts = l.splitn(3, ':');
        let (_, controllers, path) = (parts.next()?, parts.next()?, parts.next()?);
        controllers.split(',').any(|c| c == "memory").then(|| path.to_owned())
    })?;
    let below_root = relative.strip_prefix(root.as_str()).unwrap_or(&relative).trim_start_matches('/');
    Some(mount.join(below_root)).filter(|p| p.is_dir())
}
