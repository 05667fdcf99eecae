//! `cargo xtask build --pgo`: the release build optimised with a profile of
//! the gateway at work (profile-guided optimisation). Everything lives in
//! `target/pgo/`:
//!
//! 1. `instrumented/`: a release build that counts the branches it takes
//!    (`-Cprofile-generate`); each of its processes adds its counts to
//!    `raw/` as it exits.
//! 2. Training: that build carries the benchmark's traffic in its quick form
//!    (`bench::train`): HTTP, bulk both ways, new connections and small
//!    request/response exchanges in every relay, and the ingress and
//!    registry requests of the instructions figure.
//! 3. `llvm-profdata` (LLVM 22, as the toolchain's) merges the counts into
//!    `gateway-<hash>.profdata`, and `optimised/` is the release build made
//!    with them (`-Cprofile-use`). Its binary is copied to `target/pgo/gateway`.
//!
//! The profile's name carries a hash of its content, so a new profile
//! changes the compiler flags and cargo builds everything again with it.
//! The flags reach only the gateway's own target (`--target` is given), not
//! build scripts or procedural macros.

use std::{
    fs,
    hash::{DefaultHasher, Hasher},
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::{Context, bail};

use crate::{
    bench,
    build::workspace_root,
    prereqs::{ensure_build_tools, run},
};

/// LLVM's profile tool, of the LLVM the Rust toolchain is built on.
const PROFDATA: &str = "llvm-profdata-22";

/// Where the profile-guided binary is left.
pub fn gateway_binary() -> PathBuf {
    dir().join("gateway")
}

fn dir() -> PathBuf {
    workspace_root().join("target/pgo")
}

/// Builds, trains and builds again, leaving the binary at [`gateway_binary`].
pub fn build() -> anyhow::Result<()> {
    ensure_build_tools()?;
    let host = host_triple()?;
    let raw = dir().join("raw");
    let instrumented = cargo_build(&host, "instrumented", &format!("-Cprofile-generate={}", raw.display()))?;
    // Counts from an earlier training would be added to this one's.
    if raw.exists() {
        fs::remove_dir_all(&raw).with_context(|| format!("emptying {}", raw.display()))?;
    }
    fs::create_dir_all(&raw)?;
    println!("xtask: training the instrumented gateway on the benchmark's traffic");
    bench::train(&instrumented)?;
    let profile = merge(&raw)?;
    let optimised = cargo_build(&host, "optimised", &format!("-Cprofile-use={}", profile.display()))?;
    let out = gateway_binary();
    fs::copy(&optimised, &out).with_context(|| format!("copying {} to {}", optimised.display(), out.display()))?;
    println!("xtask: built {} (profile {})", out.display(), profile.display());
    Ok(())
}

/// `cargo build --release` of the gateway into `target/pgo/<name>/`, its
/// own crates compiled with `flag`.
fn cargo_build(host: &str, name: &str, flag: &str) -> anyhow::Result<PathBuf> {
    let target_dir = dir().join(name);
    println!("xtask: building the {name} gateway ({flag})");
    run(Command::new("cargo")
        .current_dir(workspace_root())
        .args(["build", "--release", "--package", "gateway-userspace", "--bin", "gateway", "--target", host, "--target-dir"])
        .arg(&target_dir)
        .env("RUSTFLAGS", flag))?;
    Ok(target_dir.join(host).join("release/gateway"))
}

/// Merges the training's counts into one profile named by its content.
fn merge(raw: &Path) -> anyhow::Result<PathBuf> {
    let counted = fs::read_dir(raw).map(|d| d.flatten().count()).unwrap_or(0);
    if counted == 0 {
        bail!("the training left no counts in {}: did the gateway exit on its own?", raw.display());
    }
    let merged = dir().join("merged.profdata");
    run(Command::new(PROFDATA).arg("merge").arg("--output").arg(&merged).arg(raw))
        .with_context(|| format!("merging the counts with {PROFDATA} (Debian package llvm-22)"))?;
    let bytes = fs::read(&merged)?;
    let named = dir().join(format!("gateway-{:016x}.profdata", content_hash(&bytes)));
    fs::rename(&merged, &named)?;
    Ok(named)
}

fn content_hash(bytes: &[u8]) -> u64 {
    let mut h = DefaultHasher::new();
    h.write(bytes);
    h.finish()
}

/// The triple `rustc` builds for by default.
fn host_triple() -> anyhow::Result<String> {
    let out = Command::new("rustc").arg("-vV").output().context("running rustc -vV")?;
    let text = String::from_utf8_lossy(&out.stdout);
    match text.lines().find_map(|l| l.strip_prefix("host: ")) {
        Some(host) => Ok(host.trim().to_string()),
        None => bail!("rustc -vV names no host triple"),
    }
}
