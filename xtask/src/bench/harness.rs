//! What every figure needs: the topology, the running servers, the plan,
//! the results, and a way to run one client of one mode while the CPU it
//! costs is counted, machine-wide and in the proxy's process; and, with
//! `--profile`, a way to sample the proxy while mode C runs (and the load
//! CPU, in A and C, where a figure asks).

use std::{path::Path, time::Duration};

use anyhow::Context;
use serde_json::Value;

use super::{
    Plan,
    modes::Mode,
    procs::{self, Cpu, CpuUse},
    profile::{self, Profiler, Recording, Sampled},
    results::{Figure, Results},
    servers::Servers,
    topology::Topology,
};

pub struct Harness<'a> {
    pub topo: &'a Topology,
    pub servers: &'a Servers,
    /// The gateway binary, for figures that start their own.
    pub gateway: &'a Path,
    pub tool: &'a Path,
    pub plan: &'a Plan,
    pub results: Results,
    /// Set by `--profile`.
    pub profiler: Option<Profiler>,
}

/// What one client run produced.
pub struct Run {
    pub stdout: String,
    pub cpu: CpuUse,
}

impl Run {
    /// The last JSON line of stdout.
    pub fn json(&self) -> anyhow::Result<Value> {
        let line = self.stdout.lines().rev().find(|l| l.trim_start().starts_with('{')).context("no JSON output")?;
        serde_json::from_str(line).context("parsing the tool's JSON output")
    }
}

impl Harness<'_> {
    /// `program args…` as a client of `mode`, bounded by `limit`.
    pub fn client(&self, mode: Mode, program: &Path, args: &[String], limit: Duration) -> anyhow::Result<Run> {
        let cmd = procs::command(&self.topo.client_place(mode), program, args);
        let pid = self.servers.proxy_pid(mode);
        let before = procs::cpu_sample(pid);
        let stdout = procs::output(cmd, limit)?;
        let cpu = before.until(&procs::cpu_sample(pid));
        Ok(Run { stdout, cpu })
    }

    /// One of our own tools (`cargo xtask bench <tool> …`) as a client of `mode`.
    pub fn tool(&self, mode: Mode, tool_args: &[String], limit: Duration) -> anyhow::Result<Run> {
        let mut args = vec!["bench".to_string()];
        args.extend(tool_args.iter().cloned());
        self.client(mode, self.tool, &args, limit)
    }

    /// Runs `measure` for every repetition and each of `modes`, interleaved
    /// (A B C D E A B C D E …) so that drift touches all modes alike.
    /// A failed run is noted and leaves a gap.
    pub fn interleaved(
        &mut self,
        what: &str,
        modes: &[Mode],
        reps: usize,
        mut measure: impl FnMut(&mut Self, Mode, usize) -> anyhow::Result<()>,
    ) {
        for rep in 0..reps {
            print!("bench: {what}, repetition {}/{reps}:", rep + 1);
            for &mode in modes {
                print!(" {}", mode.letter());
                use std::io::Write;
                let _ = std::io::stdout().flush();
                if let Err(e) = measure(self, mode, rep) {
                    print!("(failed)");
                    self.results.note(format!("{what}, mode {}, repetition {}: {e:#}", mode.title(), rep + 1));
                }
            }
            println!();
        }
    }

    /// Runs `run`; with `--profile`, the first repetition of mode C is
    /// recorded with perf as `figure`, and with `load_cpu` so is the load
    /// CPU in modes A and C (a failed recording is noted, the measurement
    /// kept).
    pub fn profiled<T>(
        &mut self,
        figure: &str,
        mode: Mode,
        rep: usize,
        load_cpu: bool,
        run: impl FnOnce(&mut Self) -> anyhow::Result<T>,
    ) -> anyhow::Result<T> {
        let (Some(profiler), 0) = (&self.profiler, rep) else { return run(self) };
        let mut wanted = Vec::new();
        if let (Some(pid), true) = (self.servers.proxy_pid(mode), profile::PROFILED.contains(&mode)) {
            wanted.push((format!("{figure}, mode {}", mode.title()), profile::file_stem(figure, mode), Sampled::Process(pid)));
        }
        if let (true, true, Some(cpu)) = (load_cpu, profile::LOAD_PROFILED.contains(&mode), Cpu::Load.number()) {
            wanted.push((format!("the load CPU during {figure}, mode {}", mode.title()), profile::load_stem(figure, mode), Sampled::Cpu(cpu)));
        }
        let started = profiler.start(&wanted.iter().map(|(_, stem, sampled)| (stem.as_str(), *sampled)).collect::<Vec<_>>());
        let mut recordings: Vec<(String, Recording)> = Vec::new();
        for ((what, _, _), started) in wanted.into_iter().zip(started) {
            match started {
                Ok(r) => recordings.push((what, r)),
                Err(e) => self.results.note(format!("profile of {what}: {e:#}")),
            }
        }
        let result = run(self);
        recordings.iter_mut().for_each(|(_, r)| r.interrupt());
        for (what, recording) in recordings {
            self.results.note(match recording.finish() {
                Ok(text) => format!("{what}, repetition 1 ran under perf record (--profile); profile in {}", text.display()),
                Err(e) => format!("profile of {what}: {e:#}"),
            });
        }
        result
    }

    /// Moves both proxies (all their threads) to `cpu`.
    pub fn pin_proxies(&mut self, cpu: procs::Cpu) {
        for pid in [self.servers.gateway.pid(), self.servers.haproxy.pid()] {
            if let Err(e) = procs::pin_threads(pid, cpu) {
                self.results.note(format!("{e:#}"));
            }
        }
    }

    pub fn record(&mut self, fig: &Figure<'_>, mode: Mode, rep: usize, value: f64) {
        self.results.record(fig, mode, rep, Some(value));
    }
}

/// Arguments from words, for building command lines.
pub fn args(words: &[&dyn ToString]) -> Vec<String> {
    words.iter().map(|w| w.to_string()).collect()
}
