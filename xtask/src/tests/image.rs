//! Tests of `image.rs`.

use crate::{
    build::workspace_root,
    prereqs::{BPF_LINKER_VERSION, BUILD_PACKAGES},
};

/// The image must build the way `cargo xtask build` does.
#[test]
fn the_containerfile_installs_the_toolchain_xtask_build_installs() {
    let text = std::fs::read_to_string(workspace_root().join("Containerfile")).expect("Containerfile");
    let words: Vec<&str> = text.split_whitespace().collect();
    for package in BUILD_PACKAGES {
        assert!(words.contains(package), "Containerfile does not install {package}");
    }
    assert!(text.contains(&format!("ARG BPF_LINKER_VERSION={BPF_LINKER_VERSION}\n")), "bpf-linker version");
    let rust = format!("rust:{}-bookworm", env!("CARGO_PKG_RUST_VERSION"));
    assert!(text.contains(&rust), "the build stage's rustup toolchain is the workspace's rust-version ({rust})");
}
