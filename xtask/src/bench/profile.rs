//! `--profile`: while mode C runs the HTTP fixed-rate figure and the bulk
//! figures, `perf record -g` samples the proxy process; HAProxy parsing
//! HTTP (Dh) is sampled in the HTTP figure too, for a side-by-side reading.
//! In the bulk figures the load CPU (clients and server, and the kernel's
//! work for them) is sampled as well, in A and C: it is what bounds bulk,
//! and the two side by side show what a proxy adds to its work per byte.
//! Each recording leaves `target/bench/profiles/<figure>-<mode>.data` (the
//! load CPU's `<figure>-load-<mode>.data`) and, beside it, the top entries
//! of `perf report --stdio --no-children` as `.txt`.
//!
//! Only the first repetition of each profiled mode is recorded, and the
//! report notes that its figures ran under perf: sampling costs the proxy a little.
//! The instructions figure's callgrind dumps are kept here too.

use std::{
    fs,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    thread,
    time::{Duration, Instant},
};

use anyhow::{Context, bail};

use super::modes::Mode;

/// The modes whose proxies are profiled.
pub const PROFILED: [Mode; 2] = [Mode::Ebpf, Mode::HaproxyHttp];
/// The modes whose load CPU is profiled, where a figure asks for it.
pub const LOAD_PROFILED: [Mode; 2] = [Mode::Direct, Mode::Ebpf];
/// Entries below this share of the samples are left out of the text report.
const PERCENT_LIMIT: &str = "0.5";
/// Call graphs are printed for entries above this share.
const GRAPH_LIMIT: &str = "3";

/// Where the recordings go.
pub struct Profiler {
    dir: PathBuf,
}

/// What one recording samples.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sampled {
    /// Every thread of one process.
    Process(u32),
    /// Everything that runs on one CPU, the kernel's work included.
    Cpu(usize),
}

impl Sampled {
    /// `perf record`'s arguments for it.
    pub fn perf_args(self) -> [String; 2] {
        match self {
            Sampled::Process(pid) => ["-p".into(), pid.to_string()],
            Sampled::Cpu(cpu) => ["-C".into(), cpu.to_string()],
        }
    }
}

/// One `perf record` running.
pub struct Recording {
    perf: Child,
    data: PathBuf,
    text: PathBuf,
    /// SIGINT was sent.
    interrupted: bool,
}

impl Profiler {
    /// Empties `dir` of an earlier run's profiles and checks that perf runs.
    pub fn new(dir: &Path) -> anyhow::Result<Profiler> {
        let out = Command::new("perf").arg("--version").output().context("running perf (Debian package linux-perf)")?;
        if !out.status.success() {
            bail!("perf --version failed: {}", String::from_utf8_lossy(&out.stderr).trim());
        }
        let _ = fs::remove_dir_all(dir);
        fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        Ok(Profiler { dir: dir.to_path_buf() })
    }

    /// Copies a profile another tool wrote (a callgrind dump) in as `name`.
    pub fn keep(&self, file: &Path, name: &str) -> anyhow::Result<PathBuf> {
        let kept = self.dir.join(name);
        fs::copy(file, &kept).with_context(|| format!("copying {} to {}", file.display(), kept.display()))?;
        Ok(kept)
    }

    /// Starts one recording (with call graphs) per `(stem, what)`, into
    /// `<stem>.data`, all together, so that each covers the same time.
    pub fn start(&self, wanted: &[(&str, Sampled)]) -> Vec<anyhow::Result<Recording>> {
        let mut started: Vec<_> = wanted.iter().map(|&(stem, what)| self.spawn(stem, what)).collect();
        // perf opens one event per thread or CPU before it samples; give it that time.
        thread::sleep(Duration::from_millis(300));
        for r in &mut started {
            if let Ok(rec) = r {
                match rec.perf.try_wait() {
                    Ok(None) => {}
                    Ok(Some(status)) => *r = Err(anyhow::anyhow!("perf record exited at once ({status}); see {}", rec.data.with_extension("record.log").display())),
                    Err(e) => *r = Err(e.into()),
                }
            }
        }
        started
    }

    fn spawn(&self, stem: &str, what: Sampled) -> anyhow::Result<Recording> {
        let data = self.dir.join(format!("{stem}.data"));
        let log = fs::File::create(self.dir.join(format!("{stem}.record.log")))?;
        let perf = Command::new("perf")
            .args(["record", "-g"])
            .args(what.perf_args())
            .arg("-o")
            .arg(&data)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .context("starting perf record")?;
        Ok(Recording { perf, data, text: self.dir.join(format!("{stem}.txt")), interrupted: false })
    }
}

impl Recording {
    /// Asks perf to stop as Ctrl-C would (so it writes its data). Recordings
    /// that ran together are all interrupted before any is finished, so
    /// that none goes on sampling while another's report is written.
    pub fn interrupt(&mut self) {
        if !self.interrupted {
            // SAFETY: signalling our own child by its pid.
            unsafe { libc::kill(self.perf.id() as i32, libc::SIGINT) };
            self.interrupted = true;
        }
    }

    /// Waits for perf to stop (interrupting it if that was not done yet),
    /// then writes the text report. Returns the text report's path.
    pub fn finish(mut self) -> anyhow::Result<PathBuf> {
        self.interrupt();
        let deadline = Instant::now() + Duration::from_secs(60);
        let status = loop {
            if let Some(status) = self.perf.try_wait()? {
                break status;
            }
            if Instant::now() > deadline {
                let _ = self.perf.kill();
                let _ = self.perf.wait();
                bail!("perf record did not stop within 60 s of SIGINT");
            }
            thread::sleep(Duration::from_millis(50));
        };
        // perf exits with the signal's status after a clean Ctrl-C.
        if !self.data.is_file() {
            bail!("perf record ({status}) wrote no {}", self.data.display());
        }
        let flat = report(&self.data, &["-g", "none", "--percent-limit", PERCENT_LIMIT])?;
        let graphs = report(&self.data, &["-g", "graph,0.5,caller,function,percent", "--percent-limit", GRAPH_LIMIT])?;
        let text = format!(
            "# perf report --stdio --no-children -i {0} (entries above {PERCENT_LIMIT} %)\n{flat}\n\
             # Call graphs of the entries above {GRAPH_LIMIT} %\n{graphs}",
            self.data.display()
        );
        fs::write(&self.text, text)?;
        Ok(self.text.clone())
    }
}

impl Drop for Recording {
    fn drop(&mut self) {
        if self.perf.try_wait().ok().flatten().is_none() {
            let _ = self.perf.kill();
            let _ = self.perf.wait();
        }
    }
}

/// `perf report --stdio --no-children` of `data` with `extra` arguments.
fn report(data: &Path, extra: &[&str]) -> anyhow::Result<String> {
    let out = Command::new("perf")
        .args(["report", "--stdio", "--no-children", "-i"])
        .arg(data)
        .args(extra)
        .stdin(Stdio::null())
        .output()
        .context("running perf report")?;
    if !out.status.success() {
        bail!("perf report failed: {}", String::from_utf8_lossy(&out.stderr).trim());
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// `http_fixed-C`: the figure's id and the mode's letter, safe as a file name.
pub fn file_stem(figure: &str, mode: Mode) -> String {
    let clean: String = figure.chars().map(|c| if c.is_ascii_alphanumeric() || c == '_' || c == '-' { c } else { '_' }).collect();
    format!("{clean}-{}", mode.letter())
}

/// `bulk_1_up-load-A`: the load CPU's recording during a figure.
pub fn load_stem(figure: &str, mode: Mode) -> String {
    file_stem(&format!("{figure}-load"), mode)
}
