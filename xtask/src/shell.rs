//! `cargo xtask shell`: a shell whose connections the demo gateway intercepts.

use std::{os::unix::process::CommandExt, process::Command};

use anyhow::{Context, bail};

use crate::cgroup::demo_cgroup;

pub fn shell() -> anyhow::Result<()> {
    let cg = demo_cgroup()?;
    if !cg.exists() {
        bail!("{} does not exist: start `cargo xtask run` first", cg.display());
    }
    let procs = cg.join("cgroup.procs");
    std::fs::write(&procs, std::process::id().to_string())
        .with_context(|| format!("joining {}", procs.display()))?;
    let shell = std::env::var("SHELL").unwrap_or_else(|_| "/bin/sh".into());
    println!("xtask: this shell's outbound TCP now goes through the gateway (exit to leave)");
    Err(Command::new(&shell).exec()).with_context(|| format!("exec {shell}"))
}
