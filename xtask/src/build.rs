//! `cargo xtask build`: the kernel programs are built by
//! `gateway-userspace/build.rs` (Debian's rustc, target bpfel-unknown-none)
//! and embedded in the `gateway` binary, which cargo builds next.

use std::{path::PathBuf, process::Command};

use crate::prereqs::{ensure_build_tools, run};

#[derive(clap::Args)]
pub struct Options {
    /// Build with optimisations.
    #[arg(long)]
    pub release: bool,
}

pub fn build(o: &Options) -> anyhow::Result<()> {
    ensure_build_tools()?;
    let mut cmd = Command::new("cargo");
    cmd.current_dir(workspace_root()).args(["build", "--package", "gateway-userspace", "--bin", "gateway"]);
    if o.release {
        cmd.arg("--release");
    }
    run(&mut cmd)?;
    println!("xtask: built {}", gateway_binary(o.release).display());
    Ok(())
}

pub fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).parent().expect("xtask lives in the workspace").to_path_buf()
}

pub fn gateway_binary(release: bool) -> PathBuf {
    workspace_root().join("target").join(if release { "release" } else { "debug" }).join("gateway")
}
