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

/// A pinned BPF link: its id and the program it runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LinkShown {
    pub id: u64,
    pub prog_id: u64,
}

/// The link pinned at `path`; panics when nothing (or no link) is pinned there.
pub fn pinned_link(path: &Path) -> LinkShown {
    let shown = bpftool_json(&["link", "show", "pinned", &path.to_string_lossy()])
        .unwrap_or_else(|e| panic!("{e}"));
    let prog_id = shown["prog_id"]
        .as_u64()
        .unwrap_or_else(|| panic!("no \"prog_id\" in bpftool's description of {}: {shown}", path.display()));
    LinkShown { id: id_of(&shown, &path.display().to_string()), prog_id }
}

/// The tag (a hash of its instructions) of the program pinned at `path`.
pub fn pinned_prog_tag(path: &Path) -> String {
    let shown = bpftool_json(&["prog", "show", "pinned", &path.to_string_lossy()])
        .unwrap_or_else(|e| panic!("{e}"));
    shown["tag"]
        .as_str()
        .unwrap_or_else(|| panic!("no \"tag\" in bpftool's description of {}: {shown}", path.display()))
        .to_owned()
}

/// Entry 0 of the array map pinned at `path`, read as a little-endian u64 (the gateway's
/// `VERSION` stamp).
pub fn pinned_array_u64(path: &Path) -> u64 {
    let bytes = pinned_map_get(path, &0u32.to_le_bytes())
        .unwrap_or_else(|| panic!("{} has no entry 0", path.display()));
    let bytes: [u8; 8] = bytes
        .try_into()
        .unwrap_or_else(|b| panic!("{} holds {b:?}, not 8 bytes", path.display()));
    u64::from_le_bytes(bytes)
}

/// The `max_entries` of the map pinned at `path`.
pub fn pinned_map_max_entries(path: &Path) -> u64 {
    let shown = bpftool_json(&["map", "show", "pinned", &path.to_string_lossy()])
        .unwrap_or_else(|e| panic!("{e}"));
    shown["max_entries"]
        .as_u64()
        .unwrap_or_else(|| panic!("no \"max_entries\" in bpftool's description of {}: {shown}", path.display()))
}

/// Writes `key` → `value` (raw bytes) into the map pinned at `path`.
pub fn pinned_map_put(path: &Path, key: &[u8], value: &[u8]) {
    let hex = |b: &[u8]| b.iter().map(|x| format!("0x{x:02x}")).collect::<Vec<_>>();
    let mut args = vec!["map".to_owned(), "update".to_owned(), "pinned".to_owned(), path.to_string_lossy().into_owned(), "key".to_owned()];
    args.extend(hex(key));
    args.push("value".to_owned());
    args.extend(hex(value));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    bpftool_json(&args).unwrap_or_else(|e| panic!("{e}"));
}

/// The value (raw bytes) under `key` in the map pinned at `path`, if any.
pub fn pinned_map_get(path: &Path, key: &[u8]) -> Option<Vec<u8>> {
    let mut args = vec!["map".to_owned(), "lookup".to_owned(), "pinned".to_owned(), path.to_string_lossy().into_owned(), "key".to_owned()];
    args.extend(key.iter().map(|x| format!("0x{x:02x}")));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let shown = bpftool_json(&args).ok()?;
    let value = shown["value"]
        .as_array()
        .unwrap_or_else(|| panic!("no byte array in bpftool's lookup in {}: {shown}", path.display()));
    let bytes = value
        .iter()
        .map(|b| {
            let hex = b.as_str().and_then(|s| s.strip_prefix("0x")).unwrap_or_default();
            u8::from_str_radix(hex, 16).unwrap_or_else(|_| panic!("byte {b} in bpftool's lookup in {}", path.display()))
        })
        .collect();
    Some(bytes)
}
