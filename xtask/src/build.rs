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
    /// The release build, optimised with a profile of the gateway carrying
    /// the benchmark's traffic (needs root, as the benchmark does); left at
    /// target/pgo/gateway.
    #[arg(long)]
    pub pgo: bool,
}

pub fn build(o: &Options) -> anyhow::Result<()> {
    if o.pgo {
        return crate::pgo::build();
    }
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

/// Builds the `kernel-variant` gateway (the same sources, kernel programs with
/// other instructions: `gateway-ebpf/src/variant.rs`) and keeps it beside the
/// default one as `gateway-variant`; the upgrade tests replace one build's
/// programs with the other's. Build this first: the default build run after
/// it puts the default binary back at `gateway`.
pub fn build_variant() -> anyhow::Result<PathBuf> {
    ensure_build_tools()?;
    let mut cmd = Command::new("cargo");
    cmd.current_dir(workspace_root())
        .args(["build", "--package", "gateway-userspace", "--bin", "gateway", "--features", "kernel-variant"]);
    run(&mut cmd)?;
    let variant = gateway_binary(false).with_file_name("gateway-variant");
    std::fs::copy(gateway_binary(false), &variant)
        .map_err(|e| anyhow::anyhow!("copying the variant build to {}: {e}", variant.display()))?;
    println!("xtask: built {}", variant.display());
    Ok(variant)
}

pub fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).parent().expect("xtask lives in the workspace").to_path_buf()
}

pub fn gateway_binary(release: bool) -> PathBuf {
    workspace_root().join("target").join(if release { "release" } else { "debug" }).join("gateway")
}
