//! `cargo xtask image`: the container image, built from `Containerfile` with
//! podman or docker, whichever is there and working.

use std::process::Command;

use anyhow::{Context, bail};

use crate::{
    build::workspace_root,
    prereqs::{BPF_LINKER_VERSION, run},
};

#[derive(clap::Args)]
pub struct Options {
    /// The container tool; by default podman if it works, else docker.
    #[arg(long, value_enum)]
    pub tool: Option<Tool>,
    /// Name and tag of the image.
    #[arg(long, default_value = "gateway:latest")]
    pub tag: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Tool {
    Podman,
    Docker,
}

impl Tool {
    fn program(self) -> &'static str {
        match self {
            Tool::Podman => "podman",
            Tool::Docker => "docker",
        }
    }
}

pub fn image(o: &Options) -> anyhow::Result<()> {
    let tool = match o.tool {
        Some(tool) => usable(tool).map(|()| tool)?,
        None => choose()?,
    };
    println!("xtask: building the image {} with {}", o.tag, tool.program());
    run(Command::new(tool.program())
        .current_dir(workspace_root())
        .args(["build", "--file", "Containerfile", "--tag", &o.tag])
        .arg("--build-arg")
        .arg(format!("BPF_LINKER_VERSION={BPF_LINKER_VERSION}"))
        .arg("."))
    .with_context(|| format!("building the image with {}", tool.program()))?;
    println!("xtask: built {}; deploy/kustomization.yaml names it in `images:`", o.tag);
    Ok(())
}

/// The first tool that works, podman first: it needs no daemon.
fn choose() -> anyhow::Result<Tool> {
    let mut problems = Vec::new();
    for tool in [Tool::Podman, Tool::Docker] {
        match usable(tool) {
            Ok(()) => return Ok(tool),
            Err(e) => problems.push(format!("  {e:#}")),
        }
    }
    bail!(
        "no container tool can build the image:\n{}\nInstall podman (Debian: apt-get install podman), \
         or start the docker daemon, then run `cargo xtask image` again",
        problems.join("\n")
    )
}

/// Whether `tool` is installed and its engine answers (`docker` needs its
/// daemon; `podman info` checks its storage and runtime).
fn usable(tool: Tool) -> anyhow::Result<()> {
    let program = tool.program();
    let out = match Command::new(program).arg("info").output() {
        Ok(out) => out,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => bail!("{program} is not installed"),
        Err(e) => bail!("{program} cannot be run: {e}"),
    };
    if !out.status.success() {
        let said = String::from_utf8_lossy(&out.stderr);
        let said = said.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or("no message").trim();
        bail!("{program} is installed but `{program} info` fails: {said}");
    }
    Ok(())
}
