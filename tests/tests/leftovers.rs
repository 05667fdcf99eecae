//! Runs after the other test binaries (cargo runs them in name order): whatever their processes
//! created must be gone now that they have exited, and no gateway program may be attached to a
//! cgroup that no live test run owns.

use std::process::Command;

use gateway_tests::cleanup::{self, GATEWAY_PROGRAMS};
use gateway_tests::command::{self, SHORT};
use gateway_tests::names;
use gateway_tests::prereq::{self, tool};

/// Harness objects whose owning test process is no longer alive.
fn owner_gone(name: &str) -> bool {
    names::is_stale(name)
}

#[test]
fn earlier_test_runs_left_nothing_behind() {
    prereq::require_all();
    let left = cleanup::find_matching(owner_gone);
    assert!(
        left.is_empty(),
        "left behind by finished test runs:\n  {}",
        left.join("\n  ")
    );
}

#[test]
fn no_gateway_program_is_attached_to_a_cgroup_no_live_test_owns() {
    prereq::require_all();
    let tree = command::run_ok(
        Command::new(tool("bpftool")).args(["-j", "cgroup", "tree"]),
        SHORT,
    );
    let tree: serde_json::Value = serde_json::from_str(tree.trim())
        .unwrap_or_else(|e| panic!("bpftool cgroup tree ({e}): {tree}"));
    let mut wrong = Vec::new();
    for entry in tree.as_array().into_iter().flatten() {
        let cgroup = entry["cgroup"].as_str().unwrap_or_default();
        let last = cgroup.rsplit('/').next().unwrap_or_default();
        let owned_by_live_run = names::owner_pid(last).is_some_and(names::pid_alive);
        for program in entry["programs"].as_array().into_iter().flatten() {
            let name = program["name"].as_str().unwrap_or_default();
            if GATEWAY_PROGRAMS.contains(&name) && !owned_by_live_run {
                wrong.push(format!("{name} (id {}) on {cgroup}", program["id"]));
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "gateway programs attached to cgroups no live test run owns:\n  {}",
        wrong.join("\n  ")
    );
}
