//! `cargo xtask test --kernel <version>`: the kernel-facing integration tests
//! (`selection.rs`) on a Debian kernel booted under QEMU, or on this
//! machine's own kernel with `--kernel host`.
//!
//! The VM runs under TCG (software emulation): `/dev/kvm` may be present on
//! these machines, but nested virtualisation hangs. It boots the unpacked
//! kernel (`kernel.rs`) with a small initramfs (`initramfs.rs`) that mounts
//! the host's root read-only over virtio-9p under an in-memory overlay, and
//! hands over to `guest.sh`, which runs the test binaries this machine built
//! and prints their results on the serial console. `report.rs` reads them
//! back: each test's result and the verifier's count per program.

mod initramfs;
mod kernel;
mod report;
mod selection;

#[cfg(test)]
mod tests;

use std::{
    fs,
    io::{BufRead, BufReader},
    path::Path,
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use anyhow::Context;

use crate::{
    build::{gateway_binary, workspace_root},
    prereqs::ensure_packages,
};
use report::Report;

/// What the VM needs on the host: QEMU, a static busybox for the
/// initramfs, kmod to resolve module dependencies.
const VM_PACKAGES: &[&str] = &["qemu-system-x86", "busybox-static", "kmod"];
const GUEST_SCRIPT: &str = include_str!("guest.sh");
/// Modules the initramfs loads: the 9p transport and filesystem, overlayfs.
const BOOT_MODULES: &[&str] = &["virtio_pci", "9pnet_virtio", "9p", "overlay"];

/// Runs the selection on `version` (`host`, or one of `kernel::KNOWN`);
/// `timeout` bounds the VM's whole run. Returns the tests (passed, failed);
/// a run that did not finish counts one failure more.
pub fn run(version: &str, timeout: Duration) -> anyhow::Result<(u64, u64)> {
    let binaries = selection::build_binaries()?;
    let list = selection::tests_list(&binaries);
    let dir = workspace_root().join("target/vm").join(version);
    fs::create_dir_all(&dir)?;
    let started = Instant::now();
    let output = if version == "host" { run_on_host(&list)? } else { run_in_vm(version, &dir, &list, timeout)? };
    fs::write(dir.join("console.log"), &output)?;
    report(version, &dir, &output, started.elapsed())
}

/// The report of the last run on `version`, read again from its console log.
pub fn reread(version: &str) -> anyhow::Result<(u64, u64)> {
    let dir = workspace_root().join("target/vm").join(version);
    let output = fs::read_to_string(dir.join("console.log")).with_context(|| format!("no earlier run on {version}"))?;
    report(version, &dir, &output, Duration::ZERO)
}

fn report(version: &str, dir: &Path, output: &str, took: Duration) -> anyhow::Result<(u64, u64)> {
    let report = Report::read(output);
    let note = report.render(version);
    let note = if took.is_zero() { note } else { format!("{note}  wall time: {} s\n", took.as_secs()) };
    fs::write(dir.join("report.txt"), &note)?;
    println!("\n{note}");
    println!("xtask: console log in {}", dir.join("console.log").display());
    let passed = report.tests.iter().filter(|(_, v)| v == "ok").count() as u64;
    let failed = report.tests.iter().filter(|(_, v)| v == "FAILED").count() as u64;
    Ok((passed, if report.passed() { failed } else { failed.max(1) }))
}

/// The same loop as `guest.sh`, on this machine's kernel.
fn run_on_host(list: &str) -> anyhow::Result<String> {
    let release = fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let mut output = format!("xtask-vm: kernel {}, host\n", release.trim());
    for line in list.lines() {
        let mut parts = line.splitn(3, '|');
        let (Some(binary), Some(vars), Some(args)) = (parts.next(), parts.next(), parts.next()) else { continue };
        let name = Path::new(binary).file_name().and_then(|n| n.to_str()).unwrap_or(binary);
        let name = name.rsplit_once('-').map_or(name, |(n, _)| n).to_owned();
        println!("xtask: running {name} {args}");
        let mut cmd = Command::new(binary);
        cmd.arg("--test-threads=1").args(args.split_whitespace()).env("GATEWAY_BIN", gateway_binary(false));
        for var in vars.split_whitespace() {
            if let Some((k, v)) = var.split_once('=') {
                cmd.env(k, v);
            }
        }
        let out = cmd.output().with_context(|| format!("running {binary}"))?;
        let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        print!("{text}");
        output.push_str(&text);
        output.push_str(&format!("xtask-vm: exit {name} {}\n", out.status.code().unwrap_or(-1)));
    }
    output.push_str("xtask-vm: done\n");
    Ok(output)
}

fn run_in_vm(version: &str, dir: &Path, list: &str, timeout: Duration) -> anyhow::Result<String> {
    ensure_packages(VM_PACKAGES)?;
    let kernel = kernel::fetch(version, &dir.join("kernel"))?;
    let guest = dir.join("guest");
    fs::create_dir_all(&guest)?;
    let script = guest.join("guest.sh");
    fs::write(&script, GUEST_SCRIPT)?;
    fs::write(guest.join("tests.list"), list)?;
    fs::write(
        guest.join("guest.env"),
        format!(
            "KERNEL_RELEASE='{}'\nMODULES='{}'\nGATEWAY_BIN='{}'\n",
            kernel.release,
            kernel.modules.display(),
            gateway_binary(false).display()
        ),
    )?;
    let modules = kernel::module_files(&kernel, BOOT_MODULES)?;
    let initrd = dir.join("initramfs.cpio");
    initramfs::write(&initrd, Path::new("/bin/busybox"), &modules, &script)?;
    println!("xtask: booting {} ({}) under QEMU (TCG); up to {} min", kernel.release, kernel.package, timeout.as_secs() / 60);
    let mut child = Command::new("qemu-system-x86_64")
        .args(["-accel", "tcg", "-cpu", "max", "-smp", "2", "-m", "6144", "-nographic", "-no-reboot", "-monitor", "none", "-nic", "none"])
        .arg("-kernel")
        .arg(&kernel.vmlinuz)
        .arg("-initrd")
        .arg(&initrd)
        .args(["-append", "console=ttyS0 panic=-1 rdinit=/init loglevel=4 net.ifnames=0"])
        .args(["-virtfs", "local,path=/,mount_tag=hostroot,security_model=none,readonly=on,multidevs=remap"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .context("starting qemu-system-x86_64")?;
    let pid = child.id();
    let watchdog = std::thread::spawn(move || {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            std::thread::sleep(Duration::from_secs(1));
            // SAFETY: signal 0 only checks that the process exists.
            if unsafe { libc::kill(pid as i32, 0) } != 0 {
                return false;
            }
        }
        // SAFETY: the QEMU process this run started.
        unsafe { libc::kill(pid as i32, libc::SIGKILL) };
        true
    });
    let mut output = String::new();
    for line in BufReader::new(child.stdout.take().expect("piped")).lines() {
        let line = String::from_utf8_lossy(line?.as_bytes()).into_owned();
        println!("{line}");
        output.push_str(&line);
        output.push('\n');
    }
    let status = child.wait()?;
    if watchdog.join().unwrap_or(false) {
        output.push_str(&format!("xtask: the VM was stopped after {} s\n", timeout.as_secs()));
    }
    println!("xtask: QEMU exited: {status}");
    Ok(output)
}
