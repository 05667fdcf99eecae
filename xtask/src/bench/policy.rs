//! Figure 6: policy decision time against 10 to 100,000 ServiceEntry hosts
//! (criterion, `gateway-userspace/benches/policy.rs`), and the memory of the
//! compiled snapshot, which that benchmark prints.

use std::{
    fs,
    path::{Path, PathBuf},
    process::Command,
    time::Duration,
};

use anyhow::Context;
use serde_json::{Value, json};

use super::procs;

const KINDS: [&str; 3] = ["exact", "wildcard", "cidr"];
const SIZES: [u64; 4] = [10, 1_000, 10_000, 100_000];
/// The `authz` group's cases: AuthorizationPolicy decisions among 1,000.
const AUTHZ_CASES: [&str; 2] = ["1000-policies-10-apply", "1000-policies-all-apply"];

/// Builds the benchmark if needed and returns its executable.
pub fn build(root: &Path) -> anyhow::Result<PathBuf> {
    let mut cmd = Command::new("cargo");
    cmd.current_dir(root).args(["bench", "-j1", "--package", "gateway-userspace", "--bench", "policy", "--no-run"]);
    cmd.args(["--message-format", "json-render-diagnostics"]);
    let out = procs::output(cmd, Duration::from_secs(1800)).context("building the policy benchmark")?;
    out.lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v["target"]["name"] == "policy")
        .find_map(|v| v["executable"].as_str().map(PathBuf::from))
        .context("cargo named no executable for the policy benchmark")
}

/// Runs the benchmark and collects its medians and memory.
pub fn measure(root: &Path, exe: &Path, quick: bool) -> anyhow::Result<Value> {
    let mut cmd = Command::new(exe);
    cmd.current_dir(root).env("CARGO_TARGET_DIR", root.join("target")).arg("--bench");
    if quick {
        cmd.args(["--warm-up-time", "0.2", "--measurement-time", "0.5", "--sample-size", "20"]);
    } else {
        cmd.args(["--warm-up-time", "1", "--measurement-time", "3"]);
    }
    println!("bench: policy decisions (criterion)…");
    let started = std::time::Instant::now();
    let out = procs::output(cmd, Duration::from_secs(600)).context("running the policy benchmark")?;
    println!("bench: policy took {:.0} s", started.elapsed().as_secs_f64());
    let memory: Vec<Value> =
        out.lines().filter_map(|l| l.strip_prefix("policy-memory ")).filter_map(|j| serde_json::from_str(j).ok()).collect();
    let mut decisions = Vec::new();
    for kind in KINDS {
        for hosts in SIZES {
            let file = root.join(format!("target/criterion/policy-{kind}/{hosts}/new/estimates.json"));
            let Ok(text) = fs::read_to_string(&file) else { continue };
            let v: Value = serde_json::from_str(&text).with_context(|| format!("parsing {}", file.display()))?;
            let ns = |k: &str| v[k]["point_estimate"].as_f64();
            let bytes = memory.iter().find(|m| m["kind"] == kind && m["hosts"] == hosts).map(|m| m["bytes"].clone());
            decisions.push(json!({
                "kind": kind,
                "hosts": hosts,
                "median_ns": ns("median"),
                "mean_ns": ns("mean"),
                "snapshot_bytes": bytes,
            }));
        }
    }
    let mut authz = Vec::new();
    for case in AUTHZ_CASES {
        let file = root.join(format!("target/criterion/authz/{case}/new/estimates.json"));
        let Ok(text) = fs::read_to_string(&file) else { continue };
        let v: Value = serde_json::from_str(&text).with_context(|| format!("parsing {}", file.display()))?;
        authz.push(json!({ "case": case, "median_ns": v["median"]["point_estimate"].as_f64(), "mean_ns": v["mean"]["point_estimate"].as_f64() }));
    }
    Ok(json!({ "decisions": decisions, "authz": authz }))
}
