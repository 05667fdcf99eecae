//! `cargo xtask test`: unit tests and the privileged integration tests, which
//! build network namespaces and cgroups of their own and drive the real binary.

use std::{
    io::{BufRead, BufReader},
    process::{Command, Stdio},
};

use anyhow::{Context, bail};

use crate::{
    build::{self, gateway_binary, workspace_root},
    fuzz,
    prereqs::{TEST_PACKAGES, ensure_packages, require_root},
};

#[derive(clap::Args)]
pub struct Options {
    /// Run only tests whose name contains this.
    pub filter: Option<String>,
    /// Run the kernel-facing integration tests on this kernel instead: a
    /// Debian kernel booted under QEMU (`6.1`, `6.12`), or `host`.
    #[arg(long)]
    pub kernel: Option<String>,
    /// With --kernel: minutes the VM may run before it is stopped.
    #[arg(long, default_value_t = 60)]
    pub vm_minutes: u64,
    /// With --kernel: print the report of the last run again, from its console log.
    #[arg(long, requires = "kernel")]
    pub reread: bool,
    /// Skip the Debian 6.1 leg under QEMU that a full run ends with.
    #[arg(long)]
    pub no_vm: bool,
}

/// The kernel a full `cargo xtask test` also runs the kernel-facing tests on.
const CI_KERNEL: &str = "6.1";
/// Minutes that leg may take under software emulation before it is stopped.
const CI_KERNEL_MINUTES: u64 = 40;

pub fn test(o: &Options) -> anyhow::Result<()> {
    if let (Some(kernel), true) = (&o.kernel, o.reread) {
        crate::vm::reread(kernel)?;
        return Ok(());
    }
    require_root("build network namespaces and attach kernel programs in the tests")?;
    ensure_packages(TEST_PACKAGES)?;
    crate::prereqs::ensure_kubectl()?;
    crate::prereqs::ensure_bpffs()?;
    if let Some(kernel) = &o.kernel {
        build::build(&build::Options { release: false, pgo: false })?;
        let (passed, failed) = crate::vm::run(kernel, std::time::Duration::from_secs(o.vm_minutes * 60))?;
        println!("\nsummary (kernel {kernel}): {passed} passed, {failed} failed");
        if failed > 0 || passed == 0 {
            bail!("tests failed on kernel {kernel}");
        }
        return Ok(());
    }
    let variant = build::build_variant()?;
    build::build(&build::Options { release: false, pgo: false })?;

    let mut cmd = Command::new("cargo");
    cmd.current_dir(workspace_root())
        .args(["test", "--workspace", "--no-fail-fast"])
        .env("GATEWAY_BIN", gateway_binary(false))
        .env("GATEWAY_VARIANT_BIN", variant)
        .stdout(Stdio::piped());
    if let Some(f) = &o.filter {
        cmd.arg("--").arg(f);
    }
    let mut child = cmd.spawn().context("starting cargo test")?;
    let mut tally = Tally::default();
    for line in BufReader::new(child.stdout.take().expect("piped")).lines() {
        let line = line?;
        println!("{line}");
        tally.add(&line);
    }
    let status = child.wait()?;
    // Each fuzz target counts as one test, chosen by the filter like the
    // others; a crash, or failing to build them, fails the run.
    let targets: Vec<&'static str> =
        fuzz::TARGETS.iter().copied().filter(|t| o.filter.as_ref().is_none_or(|f| t.contains(f.as_str()))).collect();
    match fuzz::run_targets(fuzz::DEFAULT_SECS, &targets) {
        Ok(outcomes) => {
            for outcome in outcomes {
                if outcome.passed {
                    tally.passed += 1;
                } else {
                    println!("fuzz target {} FAILED", outcome.target);
                    tally.failed += 1;
                }
            }
        }
        Err(error) => {
            println!("fuzz targets FAILED: {error:#}");
            tally.failed += targets.len() as u64;
        }
    }
    // The kernel-facing tests once more, on Debian's 6.1 under QEMU.
    if o.filter.is_none() && !o.no_vm {
        match crate::vm::run(CI_KERNEL, std::time::Duration::from_secs(CI_KERNEL_MINUTES * 60)) {
            Ok((passed, failed)) => {
                tally.passed += passed;
                tally.failed += failed;
            }
            Err(error) => {
                println!("kernel {CI_KERNEL} leg FAILED: {error:#}");
                tally.failed += 1;
            }
        }
    }
    tally.print_failures();
    println!("\nsummary: {} passed, {} failed, {} skipped", tally.passed, tally.failed, tally.ignored);
    if !status.success() || tally.failed > 0 {
        bail!("tests failed");
    }
    if tally.passed == 0 {
        bail!("no test ran");
    }
    Ok(())
}

/// Sums libtest's `test result: ok. 3 passed; 0 failed; 1 ignored; …` lines,
/// and keeps each binary's `failures:` report (the failed tests' output and
/// names) to print again just above the summary, where a truncated log
/// still shows it.
#[derive(Default)]
struct Tally {
    passed: u64,
    failed: u64,
    ignored: u64,
    in_failures: bool,
    failures: Vec<String>,
}

/// Lines of failure reports kept for the closing recap.
const FAILURE_LINES: usize = 400;

impl Tally {
    fn print_failures(&self) {
        if self.failures.is_empty() {
            return;
        }
        println!("\nfailures (recap):");
        for line in &self.failures {
            println!("{line}");
        }
    }

    fn add(&mut self, line: &str) {
        if line == "failures:" {
            self.in_failures = true;
        }
        if line.starts_with("test result: ") {
            self.in_failures = false;
        }
        if self.in_failures && self.failures.len() < FAILURE_LINES {
            self.failures.push(line.to_string());
        }
        let Some(rest) = line.strip_prefix("test result: ") else { return };
        for part in rest.split(';') {
            let mut words = part.split_whitespace().rev();
            let (Some(label), Some(n)) = (words.next(), words.next()) else { continue };
            let Ok(n) = n.parse::<u64>() else { continue };
            match label {
                "passed" => self.passed += n,
                "failed" => self.failed += n,
                "ignored" => self.ignored += n,
                _ => {}
            }
        }
    }
}
