//! `cargo xtask run`: try the gateway on this machine (a VM is best).
//!
//! It intercepts a demo cgroup created for the purpose, never the machine's
//! own processes; `cargo xtask shell` opens a shell inside it.

use std::{fs, process::Command};

use anyhow::Context;

use crate::{
    build::{self, gateway_binary, workspace_root},
    cgroup::{DEMO_BPFFS, demo_cgroup},
    prereqs::require_root,
};

#[derive(clap::Args)]
pub struct Options {
    /// Build and run the optimised binary.
    #[arg(long)]
    pub release: bool,
    /// Extra arguments for `gateway run`, after `--`.
    #[arg(last = true)]
    pub gateway_args: Vec<String>,
}

pub fn run(o: &Options) -> anyhow::Result<()> {
    require_root("attach kernel programs")?;
    build::build(&build::Options { release: o.release, pgo: false })?;
    crate::prereqs::ensure_bpffs()?;
    let cg = demo_cgroup()?;
    fs::create_dir_all(&cg).with_context(|| format!("creating {}", cg.display()))?;
    let examples = workspace_root().join("examples");

    println!();
    println!("xtask: gateway intercepts the demo cgroup {}", cg.display());
    println!("xtask: open a shell whose connections it intercepts with:   sudo cargo xtask shell");
    println!("xtask: in that shell, try:");
    println!("xtask:   curl -sI https://httpbin.org/      # registered: leaves through the egress gateway (:8443, passthrough)");
    println!("xtask:   curl -sI http://httpbin.org/       # registered: through the egress gateway (:8080, by Host)");
    println!("xtask:   curl -sI https://example.com/      # not registered: TLS access_denied alert");
    println!("xtask:   curl -s http://httpbin.org//anything/%61dmin   # an AuthorizationPolicy's DENY: 403 RBAC: access denied");
    println!("xtask: every connection appears here as one JSON line when it closes: \"decision\":\"steer\" on the");
    println!("xtask: node side, \"role\":\"egress-gateway\" for the exit. The config is in examples/.");
    println!("xtask: admin endpoint: curl http://127.0.0.1:15000/config_dump   (Ctrl-C stops)");
    println!();

    let mut child = Command::new(gateway_binary(o.release))
        .arg("run")
        .arg("--config")
        .arg(&examples)
        .arg("--intercept-cgroup")
        .arg(&cg)
        .arg("--bpffs")
        .arg(DEMO_BPFFS)
        // This instance is the egress gateway of examples/ too.
        .args(["--labels", "istio=egressgateway"])
        .args(&o.gateway_args)
        .spawn()
        .context("starting gateway")?;
    // Ctrl-C reaches the gateway too; stay alive to clean up after it.
    // SAFETY: setting a signal disposition has no memory-safety preconditions.
    unsafe { libc::signal(libc::SIGINT, libc::SIG_IGN) };
    let status = child.wait()?;
    println!("xtask: gateway exited ({status})");
    cleanup(&cg, o.release)
}

fn cleanup(cg: &std::path::Path, release: bool) -> anyhow::Result<()> {
    let procs = fs::read_to_string(cg.join("cgroup.procs")).unwrap_or_default();
    if !procs.trim().is_empty() {
        println!(
            "xtask: processes remain in {}; their connections stay redirected (and refused) until \
             `cargo xtask run` again, or exit them and run `gateway detach --bpffs {DEMO_BPFFS}`",
            cg.display()
        );
        return Ok(());
    }
    let status = Command::new(gateway_binary(release))
        .args(["detach", "--bpffs", DEMO_BPFFS])
        .status();
    if !status.is_ok_and(|s| s.success()) {
        eprintln!("xtask: detach failed; run `gateway detach --bpffs {DEMO_BPFFS}`");
    }
    let _ = fs::remove_dir(cg);
    Ok(())
}
