//! Builds the kernel programs (crate `gateway-ebpf`) for `bpfel-unknown-none`
//! and leaves the object in `OUT_DIR`, where `src/interceptor/load.rs` embeds
//! it. The BPF target needs Debian's rustc, whose `core` is prebuilt for it.
//!
//! With the feature `kernel-variant` it builds the programs' variant 1 (see
//! `gateway-ebpf/src/variant.rs`) instead, into a target directory of its own.

use std::{
    env,
    path::{Path, PathBuf},
    process::Command,
};

const BPF_RUSTC: &str = "/usr/bin/rustc";
const BPF_CARGO: &str = "/usr/bin/cargo";

fn main() {
    let manifest = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").unwrap());
    let root = manifest.parent().unwrap();
    let ebpf = root.join("gateway-ebpf");
    for watched in ["src", "Cargo.toml", "Cargo.lock", ".cargo/config.toml"] {
        println!("cargo:rerun-if-changed={}", ebpf.join(watched).display());
    }
    println!("cargo:rerun-if-changed={}", root.join("gateway-common/src").display());

    for tool in [BPF_RUSTC, BPF_CARGO] {
        if !Path::new(tool).exists() {
            panic!(
                "{tool} is missing: the kernel programs need Debian's rustc-web toolchain. \
                 Run `cargo xtask build`, which installs it."
            );
        }
    }
    let variant = env::var_os("CARGO_FEATURE_KERNEL_VARIANT").is_some();
    let target_dir = root.join(if variant { "target/ebpf-variant" } else { "target/ebpf" });
    let mut cmd = Command::new(BPF_CARGO);
    cmd.current_dir(&ebpf)
        .args(["build", "--release", "--locked", "--target-dir"])
        .arg(&target_dir)
        .args(if variant { &["--features", "variant"][..] } else { &[] })
        .env("RUSTC_BOOTSTRAP", "1")
        .env("RUSTC", BPF_RUSTC);
    // The outer cargo's settings are for the host target; keep them out.
    for (key, _) in env::vars_os() {
        let key = key.to_string_lossy();
        let outer = (key.starts_with("CARGO_") && key != "CARGO_HOME")
            || key.starts_with("RUSTC_")
            || key == "RUSTFLAGS"
            || key == "RUSTDOC";
        if outer {
            cmd.env_remove(key.as_ref());
        }
    }
    cmd.env("RUSTC_BOOTSTRAP", "1");
    let status = cmd
        .status()
        .unwrap_or_else(|e| panic!("cannot run {BPF_CARGO}: {e}"));
    if !status.success() {
        panic!("building gateway-ebpf failed ({status}); is bpf-linker installed? `cargo xtask build` installs it");
    }
    let object = target_dir.join("bpfel-unknown-none/release/gateway");
    let out = PathBuf::from(env::var_os("OUT_DIR").unwrap()).join("gateway-ebpf.o");
    std::fs::copy(&object, &out)
        .unwrap_or_else(|e| panic!("copy {} -> {}: {e}", object.display(), out.display()));
}
