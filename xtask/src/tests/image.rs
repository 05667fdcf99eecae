//! Tests of `image.rs`.

use crate::{
    build::workspace_root,
    image::{Binary, build_args, debian_base},
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

/// `--target prebuilt` must find a stage that copies the context's `gateway`,
/// and the default (last) stage must still build from the sources.
#[test]
fn the_containerfile_has_a_prebuilt_stage_and_builds_from_sources_by_default() {
    let text = std::fs::read_to_string(workspace_root().join("Containerfile")).expect("Containerfile");
    let stages: Vec<(&str, Vec<&str>)> = text
        .split("\nFROM ")
        .skip(1)
        .map(|stage| {
            let mut lines = stage.lines();
            let head = lines.next().unwrap_or_default();
            (head, lines.filter(|l| l.starts_with("COPY ")).collect())
        })
        .collect();
    let prebuilt = stages.iter().find(|(head, _)| head.ends_with(" AS prebuilt")).expect("a prebuilt stage");
    assert_eq!(prebuilt.1, ["COPY gateway /usr/local/bin/gateway"]);
    let (last_head, last_copies) = stages.last().expect("stages");
    assert!(!last_head.contains(" AS "), "the last stage is the default target: {last_head}");
    assert_eq!(*last_copies, ["COPY --from=build /out/gateway /usr/local/bin/gateway"]);
}

#[test]
fn a_prebuilt_binary_is_built_from_its_own_context_on_the_given_base() {
    let binary = Binary::Prebuilt { context: "/w/target/pgo/image".into(), base: "docker.io/library/debian:bookworm-slim".into() };
    let args = build_args("gateway:pgo", &binary);
    let args: Vec<&str> = args.iter().map(|a| a.to_str().expect("utf-8")).collect();
    let file = workspace_root().join("Containerfile");
    assert_eq!(
        args,
        [
            "build",
            "--file",
            file.to_str().expect("utf-8"),
            "--tag",
            "gateway:pgo",
            "--target",
            "prebuilt",
            "--build-arg",
            "BASE_IMAGE=docker.io/library/debian:bookworm-slim",
            "/w/target/pgo/image",
        ]
    );
    let from_sources = build_args("gateway:latest", &Binary::FromSources);
    assert_eq!(from_sources.last().map(|a| a.to_str()), Some(Some(".")), "the workspace is the context");
    assert!(!from_sources.iter().any(|a| a == "--target"), "the default stage");
}

#[test]
fn the_prebuilt_base_is_the_hosts_debian_release() {
    let bookworm = "PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nNAME=\"Debian GNU/Linux\"\nVERSION_ID=\"12\"\n\
                    VERSION_CODENAME=bookworm\nID=debian\n";
    assert_eq!(debian_base(bookworm).expect("debian"), "docker.io/library/debian:bookworm-slim");
    let trixie = "ID=\"debian\"\nVERSION_CODENAME=\"trixie\"\n";
    assert_eq!(debian_base(trixie).expect("debian"), "docker.io/library/debian:trixie-slim");
    let ubuntu = "ID=ubuntu\nID_LIKE=debian\nVERSION_CODENAME=noble\n";
    assert!(debian_base(ubuntu).is_err(), "another distribution's C library may differ");
    assert!(debian_base("ID=debian\n").is_err(), "no release named");
}
