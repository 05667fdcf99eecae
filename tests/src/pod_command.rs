//! Starting a process "in a pod": in the pod's network namespace and, for intercepted processes,
//! in the pod's cgroup before it execs anything.
//!
//! The process joins the cgroup first (`echo $$ > cgroup.procs`), then `nsenter --net` changes only
//! its network namespace, so it still sees the real cgroup2 mount and bpffs.

use std::path::Path;
use std::process::Command;

use crate::prereq::tool;

/// `program args…` in the namespace `netns_handle` (`/run/netns/NAME`) and in the cgroup whose
/// `cgroup.procs` is `procs_file`.
pub fn in_cgroup_and_netns(
    procs_file: &Path,
    netns_handle: &Path,
    program: impl AsRef<std::ffi::OsStr>,
    args: &[&str],
) -> Command {
    let mut cmd = Command::new(tool("sh"));
    cmd.arg("-c")
        .arg(r#"procs=$1; shift; echo $$ > "$procs" && exec "$@""#)
        .arg("sh")
        .arg(procs_file)
        .arg(tool("nsenter"))
        .arg(format!("--net={}", netns_handle.display()))
        .arg("--")
        .arg(program)
        .args(args);
    without_proxy_environment(&mut cmd);
    cmd
}

/// `program args…` in the namespace `netns_handle`, left in the test runner's (never intercepted)
/// cgroup.
pub fn in_netns_only(
    netns_handle: &Path,
    program: impl AsRef<std::ffi::OsStr>,
    args: &[&str],
) -> Command {
    let mut cmd = Command::new(tool("nsenter"));
    cmd.arg(format!("--net={}", netns_handle.display()))
        .arg("--")
        .arg(program)
        .args(args);
    without_proxy_environment(&mut cmd);
    cmd
}

/// Clients must never be steered to a proxy outside the topology by the environment.
fn without_proxy_environment(cmd: &mut Command) {
    for var in [
        "http_proxy",
        "https_proxy",
        "all_proxy",
        "HTTP_PROXY",
        "HTTPS_PROXY",
        "ALL_PROXY",
        "no_proxy",
        "NO_PROXY",
    ] {
        cmd.env_remove(var);
    }
}
