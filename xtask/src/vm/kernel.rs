//! A Debian kernel for the test VM: fetched as a package with apt and
//! unpacked (`dpkg-deb -x`), never installed. `6.1` is bookworm's, through
//! the machine's own apt sources; `6.12` is trixie's, through a private apt
//! configuration under the cache directory that leaves the system's alone.

use std::{
    fs,
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::{Context, bail};

use crate::prereqs::run;

/// The kernels this can fetch: version, Debian suite (`None`: the machine's own).
pub const KNOWN: &[(&str, Option<&str>)] = &[("6.1", None), ("6.12", Some("trixie"))];

/// An unpacked kernel package.
pub struct Kernel {
    /// `uname -r` of the kernel, e.g. `6.1.0-56-amd64`.
    pub release: String,
    pub vmlinuz: PathBuf,
    /// `lib/modules/<release>`, with `modules.dep` made by `depmod`.
    pub modules: PathBuf,
    /// The unpacked package's root, for `modprobe -d`.
    pub root: PathBuf,
    /// The package file it came from.
    pub package: String,
}

/// Fetches and unpacks `version` under `dir`, or reuses what an earlier run
/// unpacked there.
pub fn fetch(version: &str, dir: &Path) -> anyhow::Result<Kernel> {
    let Some((_, suite)) = KNOWN.iter().find(|(v, _)| *v == version) else {
        let known: Vec<&str> = KNOWN.iter().map(|(v, _)| *v).collect();
        bail!("no Debian kernel known for {version:?}; known: {} (or `host`)", known.join(", "));
    };
    fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let root = dir.join("root");
    if let Ok(kernel) = unpacked(&root, true) {
        println!("xtask: reusing kernel {} unpacked in {}", kernel.release, root.display());
        return Ok(kernel);
    }
    let apt = Apt::new(dir, *suite)?;
    let package = apt.image_package()?;
    println!("xtask: fetching {package} ({})", suite.unwrap_or("this machine's apt sources"));
    let mut download = apt.command("apt-get");
    run(download.current_dir(dir).args(["download", &package]))?;
    let deb = fs::read_dir(dir)?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .find(|p| p.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with(&format!("{package}_")) && n.ends_with(".deb")))
        .with_context(|| format!("apt-get download left no {package}_*.deb in {}", dir.display()))?;
    let _ = fs::remove_dir_all(&root);
    run(Command::new("dpkg-deb").arg("-x").arg(&deb).arg(&root))?;
    // Packages of a merged-/usr suite (trixie) ship usr/lib/modules; depmod
    // and modprobe -d look in lib/modules.
    if !root.join("lib").exists() && root.join("usr/lib/modules").exists() {
        std::os::unix::fs::symlink("usr/lib", root.join("lib"))?;
    }
    let mut kernel = unpacked(&root, false)?;
    run(Command::new("depmod").arg("-b").arg(&root).arg(&kernel.release))?;
    kernel.package = deb.file_name().and_then(|n| n.to_str()).unwrap_or_default().to_owned();
    fs::write(dir.join("package"), &kernel.package)?;
    Ok(kernel)
}

/// The kernel unpacked under `root`; with `indexed`, only once `depmod` ran.
fn unpacked(root: &Path, indexed: bool) -> anyhow::Result<Kernel> {
    let modules_dir = root.join("lib/modules");
    let release = fs::read_dir(&modules_dir)
        .with_context(|| format!("reading {}", modules_dir.display()))?
        .filter_map(Result::ok)
        .find_map(|e| e.file_name().to_str().map(str::to_owned))
        .context("no kernel release under lib/modules")?;
    let vmlinuz = root.join("boot").join(format!("vmlinuz-{release}"));
    let modules = modules_dir.join(&release);
    if !vmlinuz.exists() || (indexed && !modules.join("modules.dep").exists()) {
        bail!("{} holds no complete kernel", root.display());
    }
    let package = root.parent().map(|d| fs::read_to_string(d.join("package")).unwrap_or_default()).unwrap_or_default();
    Ok(Kernel { release, vmlinuz, modules, root: root.to_path_buf(), package })
}

/// The modules `names` need, dependencies first, as files of the unpacked kernel.
pub fn module_files(kernel: &Kernel, names: &[&str]) -> anyhow::Result<Vec<PathBuf>> {
    let out = Command::new("modprobe")
        .arg("-d")
        .arg(&kernel.root)
        .args(["-S", &kernel.release, "--show-depends", "-a"])
        .args(names)
        .output()
        .context("running modprobe --show-depends (Debian package kmod)")?;
    if !out.status.success() {
        bail!("modprobe --show-depends {}: {}", names.join(" "), String::from_utf8_lossy(&out.stderr));
    }
    let mut files: Vec<PathBuf> = Vec::new();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        // `insmod /path/x.ko [params]`; `builtin x` needs nothing.
        if let Some(path) = line.strip_prefix("insmod ").and_then(|r| r.split_whitespace().next()) {
            let path = PathBuf::from(path);
            if !files.contains(&path) {
                files.push(path);
            }
        }
    }
    Ok(files)
}

/// apt, either the machine's or a private configuration for another suite.
struct Apt {
    options: Vec<String>,
}

impl Apt {
    fn new(dir: &Path, suite: Option<&str>) -> anyhow::Result<Self> {
        let Some(suite) = suite else { return Ok(Self { options: Vec::new() }) };
        let apt = dir.join("apt");
        for sub in ["lists/partial", "cache/archives/partial", "parts"] {
            fs::create_dir_all(apt.join(sub))?;
        }
        let sources = apt.join("sources.list");
        fs::write(&sources, format!("deb http://deb.debian.org/debian {suite} main\n"))?;
        let path = |p: PathBuf| p.to_string_lossy().into_owned();
        let options = vec![
            format!("Dir::Etc::SourceList={}", path(sources)),
            format!("Dir::Etc::SourceParts={}", path(apt.join("parts"))),
            format!("Dir::State::Lists={}", path(apt.join("lists"))),
            format!("Dir::Cache={}", path(apt.join("cache"))),
        ];
        let this = Self { options };
        run(this.command("apt-get").args(["update", "-q"]))?;
        Ok(this)
    }

    fn command(&self, program: &str) -> Command {
        let mut cmd = Command::new(program);
        for o in &self.options {
            cmd.arg("-o").arg(o);
        }
        cmd
    }

    /// The versioned image package the suite's `linux-image-amd64` points at.
    fn image_package(&self) -> anyhow::Result<String> {
        let out = self.command("apt-cache").args(["depends", "linux-image-amd64"]).output().context("apt-cache depends")?;
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| l.trim().strip_prefix("Depends: "))
            .find(|p| p.starts_with("linux-image-") && p.ends_with("-amd64") && p.chars().nth(12).is_some_and(|c| c.is_ascii_digit()))
            .map(str::to_owned)
            .context("linux-image-amd64 depends on no versioned image package")
    }
}
