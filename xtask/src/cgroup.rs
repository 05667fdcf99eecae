//! The demo cgroup that `cargo xtask run` intercepts and `cargo xtask shell` joins.

use std::{fs, path::PathBuf};

use anyhow::{Context, bail};

pub const DEMO_NAME: &str = "gateway-demo";
pub const DEMO_BPFFS: &str = "/sys/fs/bpf/gateway-demo";

/// The cgroup v2 mount point, read from /proc/self/mountinfo.
pub fn cgroup2_mount() -> anyhow::Result<PathBuf> {
    let info = fs::read_to_string("/proc/self/mountinfo").context("reading /proc/self/mountinfo")?;
    for line in info.lines() {
        // Fields: id parent major:minor root mount-point options ... - fstype source options
        let Some((left, right)) = line.split_once(" - ") else { continue };
        if right.split_whitespace().next() == Some("cgroup2")
            && let Some(mount) = left.split_whitespace().nth(4) {
                return Ok(PathBuf::from(mount));
            }
    }
    bail!("no cgroup2 filesystem is mounted")
}

pub fn demo_cgroup() -> anyhow::Result<PathBuf> {
    Ok(cgroup2_mount()?.join(DEMO_NAME))
}
