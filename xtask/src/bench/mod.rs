//! `cargo xtask bench [--quick]`: what the gateway costs next to no proxy,
//! iptables redirection and HAProxy, all measured in one run.
//!
//! A sealed topology (client, node and server namespaces; see `topology`)
//! carries five modes (see `modes`), measured interleaved in every
//! repetition so that drift on a noisy machine touches them alike. The
//! figures each have a file: `conn_rate`, `latency`, `http`, `bulk`,
//! `memory`, `policy`. `report` and `svg` write `target/bench/`.
//! The clients and the echo server are this program's own hidden
//! subcommands (`tool`), run from its release build.

mod bulk;
mod conn_rate;
mod harness;
mod http;
mod instructions;
mod latency;
mod memory;
mod modes;
mod policy;
mod procs;
mod profile;
mod report;
mod results;
mod servers;
mod svg;
mod tool;
mod topology;

#[cfg(test)]
mod tests;

use std::{
    path::Path,
    process::Command,
    time::{Duration, Instant},
};

use anyhow::Context;

use crate::{
    build::{self, gateway_binary, workspace_root},
    pgo,
    prereqs::{self, BENCH_PACKAGES, PROFILE_PACKAGES},
};
use harness::Harness;
use results::Results;
use servers::Servers;
use topology::Topology;

#[derive(clap::Args)]
pub struct Options {
    /// Shorter runs and fewer repetitions.
    #[arg(long)]
    pub quick: bool,
    /// Use the binaries already built instead of building them first.
    #[arg(long)]
    pub no_build: bool,
    /// Run only these figures: conn-rate, latency, http, bulk, memory,
    /// instructions, policy.
    #[arg(long, value_delimiter = ',')]
    pub only: Vec<String>,
    /// Record the proxy with `perf record -g` while mode C runs the HTTP
    /// fixed-rate and bulk figures, and the load CPU in the bulk figures'
    /// modes A and C; writes target/bench/profiles/.
    #[arg(long)]
    pub profile: bool,
    /// Measure the profile-guided build (`cargo xtask build --pgo`,
    /// target/pgo/gateway) instead of the plain release build.
    #[arg(long)]
    pub pgo: bool,
    #[command(subcommand)]
    pub tool: Option<tool::Tool>,
}

/// How long and how often each figure runs.
pub struct Plan {
    pub quick: bool,
    /// Repetitions of connection rate.
    pub reps: usize,
    /// Repetitions of the request/response latency: many short runs, as
    /// the added p50 moves more between runs than within one.
    pub ping_reps: usize,
    /// Repetitions of the HTTP maximum rate.
    pub reps_short: usize,
    pub bulk_reps: usize,
    pub http_fixed_reps: usize,
    pub conn_seconds: f64,
    pub ping_seconds: f64,
    pub http_fixed_seconds: f64,
    pub http_max_seconds: u64,
    pub bulk_seconds: u64,
    pub idle_levels: Vec<usize>,
}

impl Plan {
    fn new(quick: bool) -> Plan {
        let idle_levels = vec![1_000, 5_000, 9_000];
        if quick {
            Plan {
                quick,
                reps: 3,
                ping_reps: 16,
                reps_short: 2,
                bulk_reps: 1,
                http_fixed_reps: 1,
                conn_seconds: 0.5,
                ping_seconds: 0.2,
                http_fixed_seconds: 3.0,
                http_max_seconds: 1,
                bulk_seconds: 1,
                idle_levels,
            }
        } else {
            Plan {
                quick,
                // Eight modes in the relay figures: sized to finish in under 25 minutes.
                reps: 5,
                ping_reps: 20,
                reps_short: 3,
                // Four streams through a proxy settle in one of two states
                // (the load CPU's bound, or slower): five repetitions keep
                // one slow one from deciding the median.
                bulk_reps: 5,
                // The p99 follows the host: many shorter repetitions, each
                // compared with its neighbours, rather than two long ones.
                http_fixed_reps: 6,
                conn_seconds: 1.5,
                ping_seconds: 0.6,
                http_fixed_seconds: 7.0,
                http_max_seconds: 5,
                bulk_seconds: 3,
                idle_levels,
            }
        }
    }

    fn repetitions(&self) -> String {
        format!(
            "{} (latency {} × {} s, HTTP maximum {}, bulk {}, HTTP at a fixed rate {} × {} s)",
            self.reps, self.ping_reps, self.ping_seconds, self.reps_short, self.bulk_reps, self.http_fixed_reps, self.http_fixed_seconds
        )
    }
}

pub fn bench(o: Options) -> anyhow::Result<()> {
    if let Some(tool) = o.tool {
        return tool::run(tool);
    }
    prepare_machine(o.profile)?;
    let root = workspace_root();
    let gateway = if o.pgo { pgo::gateway_binary() } else { gateway_binary(true) };
    if !o.no_build {
        build_all(&root, &gateway, o.pgo)?;
    }
    let policy_bench = if wanted(&o.only, "policy") {
        println!("bench: building the policy benchmark");
        Some(policy::build(&root))
    } else {
        None
    };
    let tool = prepare_run(&root, &gateway)?;

    let plan = Plan::new(o.quick);
    let load_before = load_average();
    let started = Instant::now();
    let mut results = Results::default();
    if NETWORK_FIGURES.iter().any(|f| wanted(&o.only, f)) {
        let profiler = if o.profile { Some(profile::Profiler::new(&root.join("target/bench/profiles"))?) } else { None };
        results = in_topology(&gateway, &tool, &plan, &o.only, profiler, &root.join("target/bench/logs"))?;
    }
    if let Some(exe) = policy_bench {
        match exe.and_then(|exe| policy::measure(&root, &exe, plan.quick)) {
            Ok(v) => {
                results.sections.insert("policy".into(), v);
            }
            Err(e) => results.note(format!("policy benchmark: {e:#}")),
        }
    }
    let meta = report::Meta {
        date: date(),
        machine: machine(),
        build: if o.pgo { "profile-guided release (`cargo xtask build --pgo`)" } else { "release" }.into(),
        quick: plan.quick,
        repetitions: plan.repetitions(),
        seconds: started.elapsed().as_secs_f64(),
        load_before,
    };
    let dir = root.join("target/bench");
    let md = report::write(&dir, &meta, &results)?;
    println!("\n{md}");
    println!("bench: wrote {0}/results.md, {0}/results.json and {0}/chart.svg", dir.display());
    println!("bench: took {:.0} s", meta.seconds);
    Ok(())
}

const NETWORK_FIGURES: [&str; 6] = ["conn-rate", "latency", "http", "bulk", "memory", "instructions"];

/// The figures whose traffic a profile-guided build is trained on: all but
/// the idle connections of `memory`, which exercise little code for long.
const TRAINING_FIGURES: [&str; 5] = ["conn-rate", "latency", "http", "bulk", "instructions"];

/// Runs the training figures in their quick form through `gateway` (an
/// instrumented build) and keeps none of their numbers (`pgo`).
pub fn train(gateway: &Path) -> anyhow::Result<()> {
    prepare_machine(false)?;
    let root = workspace_root();
    build_tools(&root)?;
    let tool = prepare_run(&root, gateway)?;
    let only = TRAINING_FIGURES.map(String::from);
    let trained = in_topology(gateway, &tool, &Plan::new(true), &only, None, &root.join("target/pgo/logs"))?;
    if trained.series.is_empty() {
        anyhow::bail!("the training ran none of its figures: {}", trained.notes.join("; "));
    }
    Ok(())
}

/// Root, the packages the figures use (and perf, for `--profile`), and bpffs.
fn prepare_machine(profile: bool) -> anyhow::Result<()> {
    prereqs::require_root("build network namespaces and attach kernel programs")?;
    prereqs::ensure_packages(BENCH_PACKAGES)?;
    if profile {
        prereqs::ensure_packages(PROFILE_PACKAGES)?;
    }
    prereqs::ensure_bpffs()
}

/// The clients' and servers' binary, once the open-file limit is raised
/// and what a crashed run of `gateway` left behind is removed.
fn prepare_run(root: &Path, gateway: &Path) -> anyhow::Result<std::path::PathBuf> {
    let tool = servers::tool_binary(root)?;
    procs::raise_nofile_limit();
    topology::remove_stale(gateway);
    Ok(tool)
}

/// Builds the sealed topology around `gateway`, runs the network figures
/// `only` names, keeps the processes' logs in `logs` and takes it down.
fn in_topology(
    gateway: &Path,
    tool: &Path,
    plan: &Plan,
    only: &[String],
    profiler: Option<profile::Profiler>,
    logs: &Path,
) -> anyhow::Result<Results> {
    let topo = Topology::build(gateway)?;
    let measured = network_figures(&topo, gateway, tool, plan, only, profiler);
    topo.save_logs(logs);
    topo.teardown();
    report_leftovers(&topo);
    measured
}

/// Whether `--only` (empty: everything) includes `figure`.
fn wanted(only: &[String], figure: &str) -> bool {
    only.is_empty() || only.iter().any(|f| f == figure)
}

fn network_figures(
    topo: &Topology,
    gateway: &Path,
    tool: &Path,
    plan: &Plan,
    only: &[String],
    profiler: Option<profile::Profiler>,
) -> anyhow::Result<Results> {
    // The echo server outlives any plan; it is stopped at the end anyway.
    let servers = Servers::start(topo, gateway, tool, Duration::from_secs(3600))?;
    servers.check_paths(topo, tool)?;
    println!("bench: every mode reaches the server by its own path");
    let mut h = Harness { topo, servers: &servers, gateway, tool, plan, results: Results::default(), profiler };
    let figures: [fn(&mut Harness<'_>); 6] =
        [conn_rate::measure, latency::measure, http::measure, bulk::measure, memory::measure, instructions::measure];
    for (name, measure) in NETWORK_FIGURES.into_iter().zip(figures) {
        if wanted(only, name) {
            let t = Instant::now();
            measure(&mut h);
            println!("bench: {name} took {:.0} s", t.elapsed().as_secs_f64());
        }
    }
    Ok(h.results)
}

fn report_leftovers(topo: &Topology) {
    let left = topo.leftovers();
    if left.is_empty() {
        println!("bench: nothing left behind");
    }
    for l in left {
        eprintln!("bench: left behind: {l}");
    }
}

/// The gateway (release, or profile-guided) and the release build of this
/// program (its clients and server).
fn build_all(root: &Path, gateway: &Path, pgo: bool) -> anyhow::Result<()> {
    let built = if pgo { pgo::build() } else { build::build(&build::Options { release: true, pgo: false }) };
    if let Err(e) = built {
        if !gateway.is_file() {
            return Err(e);
        }
        eprintln!("bench: building the gateway failed ({e:#}); using the binary already at {}", gateway.display());
    }
    build_tools(root)
}

fn build_tools(root: &Path) -> anyhow::Result<()> {
    prereqs::run(Command::new("cargo").current_dir(root).args(["build", "-j1", "--release", "--package", "xtask"]))
        .context("building the benchmark tools")
}

/// The 1-minute load average.
fn load_average() -> Option<f64> {
    std::fs::read_to_string("/proc/loadavg").ok()?.split_whitespace().next()?.parse().ok()
}

fn date() -> String {
    Command::new("date")
        .args(["-u", "+%Y-%m-%d %H:%M UTC"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default()
}

fn machine() -> String {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name").and_then(|r| r.split_once(':')).map(|(_, m)| m.trim().to_string()))
        .unwrap_or_else(|| "unknown CPU".into());
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let mem_kib: f64 = std::fs::read_to_string("/proc/meminfo")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0.0);
    format!(
        "{model}, {} CPUs, {:.0} GiB, Linux {}",
        procs::cpu_count(),
        mem_kib / 1048576.0,
        kernel.trim()
    )
}
