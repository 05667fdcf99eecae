//! Installs what a fresh Debian machine lacks, saying what it installs.

use std::{path::Path, process::Command};

use anyhow::{Context, bail};

/// Debian packages that build the kernel programs: a rustc with a prebuilt
/// `core` for the BPF targets, and the LLVM that bpf-linker links against.
pub const BUILD_PACKAGES: &[&str] =
    &["rustc-web", "cargo-web", "libstd-rust-web-dev-bpf", "llvm-22-dev", "libpolly-22-dev"];

/// Tools the integration tests drive: namespaces, kernel inspection, real
/// clients and real servers.
pub const TEST_PACKAGES: &[&str] =
    &["iproute2", "bpftool", "curl", "openssl", "nginx-light", "socat", "procps", "util-linux", "dash", "dnsmasq-base", "bind9-dnsutils", "python3", "python3-websockets", "python3-grpcio", "iptables", "tcpdump"];

/// Peers and tools the benchmark drives: HAProxy, nginx, wrk and iperf3 as
/// servers and clients, iptables for the redirecting modes, valgrind to
/// count instructions.
pub const BENCH_PACKAGES: &[&str] =
    &["iproute2", "bpftool", "curl", "util-linux", "procps", "iptables", "haproxy", "nginx-light", "wrk", "iperf3", "valgrind"];

/// What `cargo xtask bench --profile` adds: perf.
pub const PROFILE_PACKAGES: &[&str] = &["linux-perf"];

pub const BPF_LINKER_VERSION: &str = "0.13.0";

pub fn ensure_build_tools() -> anyhow::Result<()> {
    ensure_packages(BUILD_PACKAGES)?;
    if !bpf_linker_present() {
        println!("xtask: installing bpf-linker {BPF_LINKER_VERSION} (links the kernel programs; about a minute)");
        let path = format!("/usr/lib/llvm-22/bin:{}", std::env::var("PATH").unwrap_or_default());
        run(Command::new("cargo")
            .args(["install", "bpf-linker", "--version", BPF_LINKER_VERSION])
            .args(["--no-default-features", "--features", "llvm-22"])
            .env("PATH", path))?;
    }
    Ok(())
}

/// `kubectl`, which renders deploy/ in the manifest test. Any working one
/// will do (a machine may carry one from another source); without one,
/// Debian's `kubernetes-client`.
pub fn ensure_kubectl() -> anyhow::Result<()> {
    let works = Command::new("kubectl").args(["version", "--client"]).output().is_ok_and(|o| o.status.success());
    if works {
        return Ok(());
    }
    ensure_packages(&["kubernetes-client"])
}

pub fn ensure_packages(packages: &[&str]) -> anyhow::Result<()> {
    let missing: Vec<&str> = packages.iter().copied().filter(|p| !deb_installed(p)).collect();
    if missing.is_empty() {
        return Ok(());
    }
    require_root("install Debian packages")?;
    println!("xtask: installing Debian packages: {}", missing.join(" "));
    run(Command::new("apt-get").arg("update").arg("-q"))?;
    run(Command::new("apt-get")
        .args(["install", "-y", "-q", "--no-install-recommends"])
        .args(&missing)
        .env("DEBIAN_FRONTEND", "noninteractive"))
}

/// The kernel programs are pinned in bpffs; mount it where the system has not.
pub fn ensure_bpffs() -> anyhow::Result<()> {
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let mounted = mounts.lines().any(|l| {
        let mut f = l.split(" - ");
        let left = f.next().unwrap_or("");
        let fstype = f.next().and_then(|r| r.split_whitespace().next());
        fstype == Some("bpf") && left.split_whitespace().nth(4) == Some("/sys/fs/bpf")
    });
    if mounted {
        return Ok(());
    }
    require_root("mount bpffs")?;
    println!("xtask: mounting bpffs at /sys/fs/bpf");
    run(Command::new("mount").args(["-t", "bpf", "bpf", "/sys/fs/bpf"]))
}

pub fn require_root(why: &str) -> anyhow::Result<()> {
    if !is_root() {
        bail!("root is needed to {why}; run as root (for example with sudo -E)");
    }
    Ok(())
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

fn deb_installed(package: &str) -> bool {
    Command::new("dpkg-query")
        .args(["-W", "-f=${Status}", package])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).contains("install ok installed"))
        .unwrap_or(false)
}

fn bpf_linker_present() -> bool {
    Command::new("bpf-linker").arg("--version").output().is_ok_and(|o| o.status.success())
        || std::env::var_os("HOME").is_some_and(|h| Path::new(&h).join(".cargo/bin/bpf-linker").exists())
}

pub fn run(cmd: &mut Command) -> anyhow::Result<()> {
    let status = cmd.status().with_context(|| format!("starting {cmd:?}"))?;
    if !status.success() {
        bail!("{cmd:?} failed: {status}");
    }
    Ok(())
}
