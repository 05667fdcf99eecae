//! `cargo xtask image`: the container image, built from `Containerfile` with
//! podman or docker, whichever is there and working. By default the binary
//! is built in the container from the sources; with `--pgo` it is the
//! profile-guided build made on this host (`pgo.rs`), packaged as it is.

use std::{
    ffi::OsString,
    fs,
    os::unix::fs::PermissionsExt,
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::{Context, bail};

use crate::{
    build::workspace_root,
    pgo,
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
    /// Package the profile-guided binary: build it on this host first
    /// (`cargo xtask build --pgo`, which needs root), on a base of the
    /// host's own Debian release.
    #[arg(long)]
    pub pgo: bool,
}

/// What the image's binary is built from.
#[derive(Debug)]
pub enum Binary {
    /// Built in the container from the workspace (Containerfile's last stage).
    FromSources,
    /// A binary built on the host, in a build context that holds it alone,
    /// on `base`.
    Prebuilt { context: PathBuf, base: String },
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
    let binary = if o.pgo {
        let base = debian_base(&fs::read_to_string("/etc/os-release").context("reading /etc/os-release")?)?;
        pgo::build()?;
        Binary::Prebuilt { context: prebuilt_context(&pgo::gateway_binary())?, base }
    } else {
        Binary::FromSources
    };
    println!("xtask: building the image {} with {}", o.tag, tool.program());
    run(Command::new(tool.program()).current_dir(workspace_root()).args(build_args(&o.tag, &binary)))
        .with_context(|| format!("building the image with {}", tool.program()))?;
    println!("xtask: built {}; deploy/kustomization.yaml names it in `images:`", o.tag);
    Ok(())
}

/// The arguments of `podman build` or `docker build`, run in the workspace.
pub fn build_args(tag: &str, binary: &Binary) -> Vec<OsString> {
    let file = workspace_root().join("Containerfile");
    let mut args: Vec<OsString> = vec!["build".into(), "--file".into(), file.into(), "--tag".into(), tag.into()];
    match binary {
        Binary::FromSources => {
            args.push("--build-arg".into());
            args.push(format!("BPF_LINKER_VERSION={BPF_LINKER_VERSION}").into());
            args.push(".".into());
        }
        Binary::Prebuilt { context, base } => {
            args.extend(["--target".into(), "prebuilt".into(), "--build-arg".into()]);
            args.push(format!("BASE_IMAGE={base}").into());
            args.push(context.into());
        }
    }
    args
}

/// The base image for a binary built on this host: the Debian release the
/// host runs (`/etc/os-release`), so that its C library is the one the
/// binary was linked against.
pub fn debian_base(os_release: &str) -> anyhow::Result<String> {
    let field = |name: &str| {
        os_release.lines().find_map(|l| l.strip_prefix(name)?.strip_prefix('=')).map(|v| v.trim().trim_matches('"'))
    };
    match (field("ID"), field("VERSION_CODENAME")) {
        (Some("debian"), Some(codename)) if !codename.is_empty() => {
            Ok(format!("docker.io/library/debian:{codename}-slim"))
        }
        _ => bail!(
            "--pgo packages a binary built on this host, on a base image of the host's Debian release, \
             and /etc/os-release names no Debian release; build the image without --pgo"
        ),
    }
}

/// `target/pgo/image/`, holding a copy of `binary` as `gateway`, mode 0755.
fn prebuilt_context(binary: &Path) -> anyhow::Result<PathBuf> {
    let context = binary.with_file_name("image");
    if context.exists() {
        fs::remove_dir_all(&context).with_context(|| format!("emptying {}", context.display()))?;
    }
    fs::create_dir_all(&context)?;
    let copy = context.join("gateway");
    fs::copy(binary, &copy).with_context(|| format!("copying {} to {}", binary.display(), copy.display()))?;
    fs::set_permissions(&copy, fs::Permissions::from_mode(0o755))?;
    Ok(context)
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
