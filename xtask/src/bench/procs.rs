//! Starting processes inside the benchmark's namespaces, pinned to a CPU,
//! optionally inside the intercepted cgroup; stopping them; reading their
//! CPU time and memory.

use std::{
    ffi::OsStr,
    fs,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    thread,
    time::{Duration, Instant},
};

use anyhow::{Context, bail};

/// Which CPU a process is pinned to, where the machine has two.
#[derive(Clone, Copy, Debug)]
pub enum Cpu {
    /// Clients and servers.
    Load,
    /// The proxy under test.
    Proxy,
}

impl Cpu {
    /// Its number, or `None` on a machine with one CPU (nothing is pinned).
    pub fn number(self) -> Option<usize> {
        if cpu_count() < 2 {
            return None;
        }
        Some(match self {
            Cpu::Load => 0,
            Cpu::Proxy => 1,
        })
    }
}

/// Moves every thread of `pid` to `cpu` (where the machine has two).
pub fn pin_threads(pid: u32, cpu: Cpu) -> anyhow::Result<()> {
    let Some(n) = cpu.number() else { return Ok(()) };
    for task in fs::read_dir(format!("/proc/{pid}/task"))?.flatten() {
        let Some(tid) = task.file_name().to_str().and_then(|t| t.parse::<i32>().ok()) else { continue };
        // SAFETY: a zeroed cpu_set_t is a valid empty set; CPU_SET and
        // sched_setaffinity only read and write that set.
        unsafe {
            let mut set: libc::cpu_set_t = std::mem::zeroed();
            libc::CPU_SET(n, &mut set);
            if libc::sched_setaffinity(tid, std::mem::size_of::<libc::cpu_set_t>(), &set) != 0 {
                bail!("pinning thread {tid} of {pid}: {}", std::io::Error::last_os_error());
            }
        }
    }
    Ok(())
}

pub fn cpu_count() -> usize {
    thread::available_parallelism().map_or(1, |n| n.get())
}

/// Where and how a process runs.
pub struct Place<'a> {
    /// `/run/netns/NAME`.
    pub netns: &'a Path,
    pub cpu: Cpu,
    /// `cgroup.procs` of a cgroup to join before anything execs.
    pub cgroup_procs: Option<&'a Path>,
}

/// `program args…` placed as `place` says: the cgroup is joined first
/// (`echo $$ > cgroup.procs`), then `nsenter --net` changes only the network
/// namespace (so bpffs and the cgroup2 mount stay visible), then `taskset`.
/// Each step execs the next, so the child's pid is the program's.
pub fn command(place: &Place<'_>, program: impl AsRef<OsStr>, args: &[String]) -> Command {
    let mut rest: Vec<std::ffi::OsString> = vec![format!("--net={}", place.netns.display()).into(), "--".into()];
    if let Some(cpu) = place.cpu.number() {
        rest.extend(["taskset".into(), "-c".into(), cpu.to_string().into()]);
    }
    rest.push(program.as_ref().to_owned());
    rest.extend(args.iter().map(Into::into));
    let mut cmd = match place.cgroup_procs {
        Some(procs) => {
            let mut c = Command::new("sh");
            c.arg("-c").arg(r#"procs=$1; shift; echo $$ > "$procs" && exec "$@""#).arg("sh").arg(procs).arg("nsenter");
            c
        }
        None => Command::new("nsenter"),
    };
    cmd.args(rest);
    for var in ["http_proxy", "https_proxy", "all_proxy", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"] {
        cmd.env_remove(var);
    }
    cmd
}

/// Runs `cmd` to completion within `limit`, returning its stdout.
pub fn output(mut cmd: Command, limit: Duration) -> anyhow::Result<String> {
    let what = format!("{cmd:?}");
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("starting {what}"))?;
    let (stdout, stderr) = (child.stdout.take().expect("piped"), child.stderr.take().expect("piped"));
    let out = thread::spawn(move || std::io::read_to_string(stdout).unwrap_or_default());
    let err = thread::spawn(move || std::io::read_to_string(stderr).unwrap_or_default());
    let deadline = Instant::now() + limit;
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            bail!("{what} took longer than {limit:?}; stopped");
        }
        thread::sleep(Duration::from_millis(5));
    };
    let (out, err) = (out.join().unwrap_or_default(), err.join().unwrap_or_default());
    if !status.success() {
        bail!("{what} failed ({status}): {}", err.trim());
    }
    Ok(out)
}

/// A long-running process, stopped (TERM, then KILL) when dropped.
pub struct Proc {
    pub name: String,
    child: Child,
    log: PathBuf,
}

impl Proc {
    /// Starts `cmd` with stdout and stderr appended to `log`.
    pub fn spawn(name: &str, mut cmd: Command, log: &Path) -> anyhow::Result<Proc> {
        let file = fs::OpenOptions::new().create(true).append(true).open(log)?;
        let child = cmd
            .stdin(Stdio::null())
            .stdout(file.try_clone()?)
            .stderr(file)
            .spawn()
            .with_context(|| format!("starting {name}: {cmd:?}"))?;
        Ok(Proc { name: name.to_string(), child, log: log.to_path_buf() })
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Fails if the process has exited.
    pub fn check_alive(&mut self) -> anyhow::Result<()> {
        if let Some(status) = self.child.try_wait()? {
            bail!("{} exited early ({status}); the end of its log:\n{}", self.name, self.log_tail());
        }
        Ok(())
    }

    /// The last lines of the process's output.
    pub fn log_tail(&self) -> String {
        let log = fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(10)..].join("\n")
    }

    pub fn stop(&mut self) {
        if self.child.try_wait().ok().flatten().is_some() {
            return;
        }
        // SAFETY: signalling our own child by its pid.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if self.child.try_wait().ok().flatten().is_some() {
                return;
            }
            thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Raises this process's soft open-file limit to the hard one; children
/// inherit it (the proxy holds two descriptors per connection).
pub fn raise_nofile_limit() -> u64 {
    let mut lim = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit/setrlimit write to and read from a valid struct.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) != 0 {
            return 0;
        }
        lim.rlim_cur = lim.rlim_max;
        libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
    }
    lim.rlim_cur
}

/// Busy and total CPU ticks of the whole machine, of the load and proxy
/// CPUs, and of one process.
#[derive(Clone, Copy, Debug, Default)]
pub struct CpuSample {
    at: Option<Instant>,
    machine_busy: u64,
    /// (busy, total) ticks of [`Cpu::Load`] and [`Cpu::Proxy`].
    pinned: Option<[(u64, u64); 2]>,
    process: Option<u64>,
}

/// CPU used over an interval, in cores (1.0 = one CPU fully busy).
#[derive(Clone, Copy, Debug, Default)]
pub struct CpuUse {
    pub machine: f64,
    pub process: Option<f64>,
    /// How busy [`Cpu::Load`] and [`Cpu::Proxy`] were, 0.0 to 1.0 (where
    /// the machine has two CPUs).
    pub load_busy: Option<f64>,
    pub proxy_busy: Option<f64>,
    pub seconds: f64,
}

pub fn cpu_sample(pid: Option<u32>) -> CpuSample {
    let stat = fs::read_to_string("/proc/stat").unwrap_or_default();
    let line = |name: &str| stat.lines().find(|l| l.split_whitespace().next() == Some(name)).map(busy_and_total);
    let machine_busy = line("cpu").map_or(0, |(busy, _)| busy);
    let pinned = Cpu::Load.number().zip(Cpu::Proxy.number()).and_then(|(load, proxy)| {
        line(&format!("cpu{load}")).zip(line(&format!("cpu{proxy}"))).map(|(l, p)| [l, p])
    });
    CpuSample { at: Some(Instant::now()), machine_busy, pinned, process: pid.and_then(process_ticks) }
}

/// Busy and total ticks of one `/proc/stat` CPU line.
pub(super) fn busy_and_total(line: &str) -> (u64, u64) {
    // cpu user nice system idle iowait irq softirq steal …
    let f: Vec<u64> = line.split_whitespace().skip(1).filter_map(|x| x.parse().ok()).collect();
    let get = |i: usize| f.get(i).copied().unwrap_or(0);
    let busy = get(0) + get(1) + get(2) + get(5) + get(6) + get(7);
    (busy, busy + get(3) + get(4))
}

impl CpuSample {
    pub fn until(&self, later: &CpuSample) -> CpuUse {
        let hz = clock_ticks();
        let seconds = match (self.at, later.at) {
            (Some(a), Some(b)) => b.duration_since(a).as_secs_f64().max(1e-3),
            _ => return CpuUse::default(),
        };
        let cores = |ticks: u64| ticks as f64 / hz / seconds;
        CpuUse {
            machine: cores(later.machine_busy.saturating_sub(self.machine_busy)),
            process: self.process.zip(later.process).map(|(a, b)| cores(b.saturating_sub(a))),
            load_busy: self.pinned.zip(later.pinned).and_then(|(a, b)| busy_share(a[0], b[0])),
            proxy_busy: self.pinned.zip(later.pinned).and_then(|(a, b)| busy_share(a[1], b[1])),
            seconds,
        }
    }
}

/// The busy share of one CPU's ticks between two samples of it.
pub(super) fn busy_share((busy0, total0): (u64, u64), (busy1, total1): (u64, u64)) -> Option<f64> {
    let total = total1.checked_sub(total0).filter(|&t| t > 0)?;
    Some(busy1.saturating_sub(busy0) as f64 / total as f64)
}

/// utime + stime of all threads of `pid`, in clock ticks.
fn process_ticks(pid: u32) -> Option<u64> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces; fields restart after its ')'.
    let rest = &stat[stat.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    Some(f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?)
}

fn clock_ticks() -> f64 {
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if hz > 0 { hz as f64 } else { 100.0 }
}

/// Resident memory of `pid`, in KiB.
pub fn rss_kib(pid: u32) -> Option<u64> {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// The release build of this xtask, which runs the benchmark's own clients
/// and servers.
pub fn tool_binary(root: &Path) -> PathBuf {
    root.join("target/release/xtask")
}
