//! Removing what tests leave behind, and finding it.
//!
//! Everything the harness creates is named `gwt-<pid>-<n>…`: network namespaces, cgroups under
//! the cgroup2 mount, directories in bpffs and in /tmp. A name whose pid is no longer alive belongs
//! to a crashed run and is removed before a new topology is built.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Once;
use std::time::Duration;

use crate::bpf_inspect;
use crate::cgroup;
use crate::command;
use crate::gateway_process;
use crate::names;
use crate::netns;
use crate::prereq::BPFFS_ROOT;
use crate::temp_dir::TEMP_ROOT;

/// Program names the gateway loads; none may stay attached to the cgroup2 root.
pub const GATEWAY_PROGRAMS: &[&str] = &[
    "gw_connect4",
    "gw_connect6",
    "gw_sockops",
    "gw_getpeername4",
    "gw_getpeername6",
    "gw_sendmsg4",
    "gw_sendmsg6",
    "gw_recvmsg4",
    "gw_recvmsg6",
    "gw_egress",
];

/// Removes, once per process, everything a dead earlier run left behind.
pub fn remove_stale_once() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        for problem in remove_matching(names::is_stale) {
            eprintln!("stale cleanup: {problem}");
        }
    });
}

/// Removes every harness object whose name satisfies `select`; returns what could not be removed.
pub fn remove_matching(select: impl Fn(&str) -> bool) -> Vec<String> {
    let mut problems = Vec::new();
    let namespaces: Vec<String> = netns::list().into_iter().filter(|n| select(n)).collect();
    for ns in &namespaces {
        problems.extend(netns::kill_netns_processes(ns).err());
    }
    for dir in harness_dirs(&cgroup::cgroup2_mount(), &select) {
        problems.extend(cgroup::remove_cgroup_dir(&dir).err());
    }
    for dir in harness_dirs(Path::new(BPFFS_ROOT), &select) {
        problems.extend(remove_bpffs_dir(&dir).err());
    }
    for ns in &namespaces {
        problems.extend(netns::remove_netns(ns).err());
    }
    for dir in harness_dirs(Path::new(TEMP_ROOT), &select) {
        if let Err(e) = std::fs::remove_dir_all(&dir) {
            problems.push(format!("cannot remove {}: {e}", dir.display()));
        }
    }
    problems
}

/// Everything named like the harness whose owner satisfies `select`, for a final check.
pub fn find_matching(select: impl Fn(&str) -> bool) -> Vec<String> {
    let mut found: Vec<String> = netns::list()
        .into_iter()
        .filter(|n| select(n))
        .map(|n| format!("network namespace {n}"))
        .collect();
    let roots = [
        (cgroup::cgroup2_mount(), "cgroup"),
        (PathBuf::from(BPFFS_ROOT), "bpffs directory"),
        (PathBuf::from(TEMP_ROOT), "scratch directory"),
    ];
    for (root, kind) in roots {
        found.extend(
            harness_dirs(&root, &select)
                .into_iter()
                .map(|d| format!("{kind} {}", d.display())),
        );
    }
    found.extend(attachments_on_cgroup_root());
    found
}

/// Gateway programs attached to the cgroup2 root, which would intercept the whole machine.
pub fn attachments_on_cgroup_root() -> Vec<String> {
    let root = cgroup::cgroup2_mount();
    bpf_inspect::cgroup_attachments(&root)
        .into_iter()
        .filter(|a| GATEWAY_PROGRAMS.contains(&a.name.as_str()))
        .map(|a| {
            format!(
                "program {} (id {}) attached to the cgroup2 root {}",
                a.name,
                a.id,
                root.display()
            )
        })
        .collect()
}

/// Detaches and unpins what the gateway pinned in `dir` (`gateway detach --bpffs dir`), and
/// removes the directory by hand if the binary is missing or leaves it behind.
pub fn remove_bpffs_dir(dir: &Path) -> Result<(), String> {
    if !dir.exists() {
        return Ok(());
    }
    if !dir.starts_with(BPFFS_ROOT)
        || !dir
            .file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with(names::PREFIX))
    {
        return Err(format!(
            "refusing to remove {}: not a harness directory in bpffs",
            dir.display()
        ));
    }
    if let Some(bin) = gateway_process::find_gateway_bin() {
        let mut detach = Command::new(bin);
        detach.arg("detach").arg("--bpffs").arg(dir);
        command::run_quiet(&mut detach, Duration::from_secs(30));
    }
    if dir.exists() {
        eprintln!(
            "cleanup: `gateway detach` left {} behind; removing its pins by hand",
            dir.display()
        );
        std::fs::remove_dir_all(dir)
            .map_err(|e| format!("cannot remove pins in {}: {e}", dir.display()))?;
    }
    Ok(())
}

/// Direct children of `root` whose names are harness names selected by `select`.
fn harness_dirs(root: &Path, select: &impl Fn(&str) -> bool) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(root) else {
        return Vec::new();
    };
    entries
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .filter(|e| select(&e.file_name().to_string_lossy()))
        .map(|e| e.path())
        .collect()
}
