//! The kernel-facing integration tests run on each kernel of the matrix:
//! load and attach, redirect over v4, v6 and v4-mapped, fail-closed, restart
//! with pins, the backstop, the DNS capture, the kernel relay, the feature
//! probe and the kernel log.

use std::{collections::BTreeMap, path::PathBuf, process::Command};

use anyhow::{Context, bail};

use crate::build::workspace_root;

/// One test binary of `gateway-tests` and the tests it runs (exact names).
pub struct Selected {
    pub binary: &'static str,
    pub tests: &'static [&'static str],
    /// Extra environment, e.g. to print the gateway's log.
    pub env: &'static str,
    /// Extra test-harness arguments.
    pub args: &'static str,
}

pub const SELECTION: &[Selected] = &[
    Selected {
        // Load and attach on this kernel; the gateway's log, shown, names
        // the probe's verdict and the verifier's counts.
        binary: "kernel_features",
        tests: &["this_kernel_has_every_feature_the_programs_use"],
        env: "GWT_SHOW_GATEWAY_LOGS=1",
        args: "--nocapture",
    },
    Selected {
        binary: "kernel_features",
        tests: &[
            "a_missing_required_feature_stops_the_gateway_naming_it_and_the_minimum_kernel",
            "a_missing_relay_feature_copies_instead_and_says_so",
        ],
        env: "",
        args: "",
    },
    Selected {
        binary: "interceptor",
        tests: &[
            "pod_reaches_the_internet_through_the_proxy_over_ipv4_ipv6_and_mapped_ipv4",
            "a_connection_without_original_destination_is_denied_and_logged",
            "a_process_outside_the_intercepted_cgroup_is_untouched",
            "pins_survive_a_crash_and_detach_removes_everything",
        ],
        env: "",
        args: "",
    },
    Selected {
        binary: "egress_dns_udp",
        tests: &["udp_elsewhere_and_raw_packets_never_leave_the_pod", "unregistered_names_never_reach_the_upstream_resolver"],
        env: "",
        args: "",
    },
    Selected { binary: "relay_modes", tests: &["relay_sockmap_echoes_a_mebibyte_and_a_half_close"], env: "", args: "" },
    Selected {
        binary: "kernel_log",
        tests: &[
            "with_kernel_log_the_agent_prints_why_a_datagram_was_denied_and_a_packet_dropped",
            "without_kernel_log_the_programs_carry_no_logging",
        ],
        env: "",
        args: "",
    },
];

/// Builds the integration test binaries and returns each selected one's path.
pub fn build_binaries() -> anyhow::Result<BTreeMap<&'static str, PathBuf>> {
    let out = Command::new("cargo")
        .current_dir(workspace_root())
        .args(["test", "-p", "gateway-tests", "--no-run", "--message-format=json"])
        .args(SELECTION.iter().flat_map(|s| ["--test", s.binary]))
        .output()
        .context("cargo test --no-run")?;
    if !out.status.success() {
        bail!("building the test binaries failed:\n{}", String::from_utf8_lossy(&out.stderr));
    }
    let mut found = BTreeMap::new();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let Ok(msg) = serde_json::from_str::<serde_json::Value>(line) else { continue };
        let (Some(name), Some(exe)) = (msg["target"]["name"].as_str(), msg["executable"].as_str()) else { continue };
        if let Some(s) = SELECTION.iter().find(|s| s.binary == name) {
            found.insert(s.binary, PathBuf::from(exe));
        }
    }
    for s in SELECTION {
        if !found.contains_key(s.binary) {
            bail!("cargo built no test binary {}", s.binary);
        }
    }
    Ok(found)
}

/// `tests.list` for the guest: `BINARY|ENV|ARGS` a line.
pub fn tests_list(binaries: &BTreeMap<&'static str, PathBuf>) -> String {
    SELECTION
        .iter()
        .map(|s| format!("{}|{}|{} --exact {}\n", binaries[s.binary].display(), s.env, s.args, s.tests.join(" ")))
        .collect()
}
