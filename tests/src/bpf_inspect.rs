//! Looking at the kernel side with `bpftool -j`: pinned maps and programs, cgroup attachments.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use crate::command::{self, SHORT};
use crate::prereq::tool;

/// A program attached to a cgroup, as `bpftool cgroup show` lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attachment {
    pub id: u64,
    pub attach_type: String,
    pub name: String,
}

fn bpftool_json(args: &[&str]) -> Result<Value, String> {
    let mut cmd = Command::new(tool("bpftool"));
    cmd.arg("-j").args(args);
    let out = command::run(&mut cmd, SHORT);
    let stdout = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        return Err(format!(
            "bpftool {} failed: {}{}",
            args.join(" "),
            stdout.trim(),
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    if stdout.trim().is_empty() {
        return Ok(Value::Array(Vec::new()));
    }
    serde_json::from_str(&stdout).map_err(|e| {
        format!(
            "bpftool {} printed invalid JSON ({e}): {stdout}",
            args.join(" ")
        )
    })
}

fn id_of(value: &Value, what: &str) -> u64 {
    value["id"]
        .as_u64()
        .unwrap_or_else(|| panic!("no \"id\" in bpftool's description of {what}: {value}"))
}

/// The id of the map pinned at `path`; panics when nothing (or no map) is pinned there.
pub fn pinned_map_id(path: &Path) -> u64 {
    let shown = bpftool_json(&["map", "show", "pinned", &path.to_string_lossy()])
        .unwrap_or_else(|e| panic!("{e}"));
    id_of(&shown, &path.display().to_string())
}

/// The id of the program pinned at `path`; panics when nothing (or no program) is pinned there.
pub fn pinned_prog_id(path: &Path) -> u64 {
    let shown = bpftool_json(&["prog", "show", "pinned", &path.to_string_lossy()])
        .unwrap_or_else(|e| panic!("{e}"));
    id_of(&shown, &path.display().to_string())
}

/// Whether a program with this id still exists in the kernel.
pub fn prog_exists(id: u64) -> bool {
    bpftool_json(&["prog", "show", "id", &id.to_string()]).is_ok()
}

/// Whether a map with this id still exists in the kernel.
pub fn map_exists(id: u64) -> bool {
    bpftool_json(&["map", "show", "id", &id.to_string()]).is_ok()
}

/// Programs attached directly to the cgroup at `cgroup_dir` (not inherited ones).
pub fn cgroup_attachments(cgroup_dir: &Path) -> Vec<Attachment> {
    let shown = match bpftool_json(&["cgroup", "show", &cgroup_dir.to_string_lossy()]) {
        Ok(v) => v,
        Err(_) if !cgroup_dir.exists() => return Vec::new(),
        Err(e) => panic!("{e}"),
    };
    shown
        .as_array()
        .map(|entries| {
            entries
                .iter()
                .map(|e| Attachment {
                    id: id_of(e, &cgroup_dir.display().to_string()),
                    attach_type: e["attach_type"].as_str().unwrap_or_default().to_owned(),
                    name: e["name"].as_str().unwrap_or_default().to_owned(),
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Every file pinned under `dir` (recursively), sorted.
pub fn pins_under(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut pending = vec![dir.to_owned()];
    // Bounded: the gateway pins a handful of objects in two levels of directories.
    for _ in 0..10_000 {
        let Some(next) = pending.pop() else { break };
        let Ok(entries) = std::fs::read_dir(&next) else {
            continue;
        };
        for entry in entries.filter_map(Result::ok) {
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                pending.push(entry.path());
            } else {
                found.push(entry.path());
            }
        }
    }
    found.sort();
    found
}
