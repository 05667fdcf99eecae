//! `cargo xtask fuzz`: builds the cargo-fuzz targets in `fuzz/` with the
//! nightly toolchain and runs each for a while on its committed corpus.

use std::{
    path::{Path, PathBuf},
    process::Command,
    time::Instant,
};

use anyhow::{Context, bail};

use crate::{build::workspace_root, prereqs::run};

/// The fuzz targets, in `fuzz/fuzz_targets/<name>.rs`.
pub const TARGETS: &[&str] = &["config_roundtrip", "tls_sni", "http1_head", "hpack", "http2_preface", "dns_request", "http1_response"];

/// Seconds each target runs unless told otherwise.
pub const DEFAULT_SECS: u64 = 30;

const CARGO_FUZZ_VERSION: &str = "0.13.2";

#[derive(clap::Args)]
pub struct Options {
    /// Seconds to run each target.
    #[arg(long, default_value_t = DEFAULT_SECS)]
    pub secs: u64,
    /// Run only this target.
    pub target: Option<String>,
}

/// How one target's run ended.
pub struct Outcome {
    pub target: &'static str,
    pub passed: bool,
}

pub fn fuzz(o: &Options) -> anyhow::Result<()> {
    let targets: Vec<&'static str> = match o.target.as_deref() {
        Some(name) => vec![*TARGETS.iter().find(|t| **t == name).with_context(|| {
            format!("no fuzz target {name:?}; the targets are {}", TARGETS.join(", "))
        })?],
        None => TARGETS.to_vec(),
    };
    let outcomes = run_targets(o.secs, &targets)?;
    let failed: Vec<&str> = outcomes.iter().filter(|r| !r.passed).map(|r| r.target).collect();
    if !failed.is_empty() {
        bail!("fuzz targets failed: {}", failed.join(", "));
    }
    Ok(())
}

/// Installs what is missing, builds the targets, then runs each of
/// `targets` for `secs` seconds. A crash, a leak or a timeout fails that
/// target; a failure to build or install fails the whole call.
pub fn run_targets(secs: u64, targets: &[&'static str]) -> anyhow::Result<Vec<Outcome>> {
    if targets.is_empty() {
        return Ok(Vec::new());
    }
    ensure_fuzz_tools()?;
    let dir = fuzz_dir();
    let started = Instant::now();
    run(cargo_fuzz(&dir).arg("build").args(SANITIZER))?;
    println!("xtask: fuzz targets built in {:.0?}", started.elapsed());
    let mut outcomes = Vec::new();
    for &target in targets {
        println!("xtask: fuzzing {target} for {secs} s");
        let corpus = dir.join("corpus").join(target);
        std::fs::create_dir_all(&corpus).with_context(|| format!("creating {}", corpus.display()))?;
        // New inputs go to a scratch directory, so the committed corpus
        // stays small; `cargo fuzz cmin` folds finds back in deliberately.
        let scratch = dir.join("target").join("new-corpus").join(target);
        std::fs::create_dir_all(&scratch).with_context(|| format!("creating {}", scratch.display()))?;
        let log_path = dir.join("target").join(format!("{target}.log"));
        let log = std::fs::File::create(&log_path).with_context(|| format!("creating {}", log_path.display()))?;
        let status = cargo_fuzz(&dir)
            .args(["run", target])
            .args(SANITIZER)
            .arg(&scratch)
            .arg(&corpus)
            .arg("--")
            .arg(format!("-max_total_time={secs}"))
            .arg("-timeout=10")
            .arg("-rss_limit_mb=2048")
            .arg("-print_final_stats=1")
            .stdout(log.try_clone()?)
            .stderr(log)
            .status()
            .with_context(|| format!("starting cargo fuzz run {target}"))?;
        let passed = status.success();
        // libFuzzer's progress lines would bury the test report; they go
        // to a log, and only its tail is shown, on failure.
        if !passed {
            let text = std::fs::read_to_string(&log_path).unwrap_or_default();
            let lines: Vec<&str> = text.lines().collect();
            for line in &lines[lines.len().saturating_sub(60)..] {
                println!("{line}");
            }
        }
        println!("xtask: fuzz target {target}: {} (log: {})", if passed { "ok" } else { "FAILED" }, log_path.display());
        outcomes.push(Outcome { target, passed });
    }
    Ok(outcomes)
}

/// The targets are safe Rust; without AddressSanitizer they build faster
/// and run about twice as many inputs. Panics and aborts are still caught.
const SANITIZER: &[&str] = &["--sanitizer", "none"];

fn fuzz_dir() -> PathBuf {
    workspace_root().join("fuzz")
}

fn cargo_fuzz(dir: &Path) -> Command {
    let mut cmd = Command::new("cargo");
    cmd.current_dir(dir).args(["+nightly", "fuzz"]);
    // `cargo xtask` runs under the stable cargo, which leaves its settings
    // in the environment; the nightly build must not see them, or it
    // rebuilds everything whenever it alternates with a build from a shell.
    for (key, _) in std::env::vars_os() {
        let key = key.to_string_lossy();
        let outer = (key.starts_with("CARGO") && key != "CARGO_HOME")
            || key.starts_with("RUSTC")
            || key.starts_with("RUSTUP_TOOLCHAIN")
            || key == "RUSTFLAGS"
            || key == "RUSTDOC"
            || key == "LD_LIBRARY_PATH";
        if outer {
            cmd.env_remove(key.as_ref());
        }
    }
    cmd
}

/// The nightly toolchain (which cannot be downloaded here) and cargo-fuzz
/// (installed from crates.io when missing).
fn ensure_fuzz_tools() -> anyhow::Result<()> {
    let toolchains = Command::new("rustup")
        .args(["toolchain", "list"])
        .output()
        .context("running `rustup toolchain list`: fuzzing needs rustup's nightly toolchain")?;
    let listed = String::from_utf8_lossy(&toolchains.stdout);
    if !listed.lines().any(|l| l.starts_with("nightly")) {
        bail!(
            "fuzzing needs the nightly toolchain (cargo-fuzz uses -Z flags), and `rustup toolchain list` has none; \
             install it with `rustup toolchain install nightly` where the Rust distribution server is reachable"
        );
    }
    let present = Command::new("cargo").args(["+nightly", "fuzz", "--version"]).output().is_ok_and(|o| o.status.success());
    if !present {
        println!("xtask: installing cargo-fuzz {CARGO_FUZZ_VERSION}");
        run(Command::new("cargo").args(["install", "cargo-fuzz", "--locked", "--version", CARGO_FUZZ_VERSION]))?;
    }
    Ok(())
}
