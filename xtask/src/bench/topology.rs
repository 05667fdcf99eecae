//! The sealed topology: `client`, `node` and `server` network namespaces,
//! a cgroup for intercepted clients, a bpffs directory and a scratch
//! directory, all named `gwbench-<pid>-…` so that what a crashed run left
//! behind can be found and removed.
//!
//! Nothing links these namespaces to the machine's own network; the veth
//! pairs are created inside the node namespace, so their names never meet
//! the machine's interfaces.

use std::{
    fs,
    path::{Path, PathBuf},
    process::Command,
    time::Duration,
};

use anyhow::{Context, bail};

use super::{
    modes::{self, Mode, Service},
    procs::{self, Cpu, Place},
};
use crate::cgroup::cgroup2_mount;

pub const PREFIX: &str = "gwbench-";
const BPFFS_ROOT: &str = "/sys/fs/bpf";

pub struct Topology {
    pub client: PathBuf,
    pub client_nat: PathBuf,
    pub node: PathBuf,
    pub server: PathBuf,
    /// The cgroup mode C's clients run in; the kernel programs attach to it.
    pub cgroup: PathBuf,
    cgroup_procs: PathBuf,
    pub bpffs: PathBuf,
    pub scratch: PathBuf,
    gateway: PathBuf,
}

impl Topology {
    pub fn build(gateway: &Path) -> anyhow::Result<Topology> {
        let tag = format!("{PREFIX}{}", std::process::id());
        let scratch = std::env::temp_dir().join(&tag);
        let cgroup = cgroup2_mount()?.join(&tag);
        let t = Topology {
            client: netns_path(&format!("{tag}-client")),
            client_nat: netns_path(&format!("{tag}-clientnat")),
            node: netns_path(&format!("{tag}-node")),
            server: netns_path(&format!("{tag}-server")),
            cgroup_procs: cgroup.join("cgroup.procs"),
            cgroup,
            bpffs: Path::new(BPFFS_ROOT).join(&tag),
            scratch,
            gateway: gateway.to_path_buf(),
        };
        // From here on, a failure still tears down what was made.
        t.create().inspect_err(|_| t.teardown())?;
        Ok(t)
    }

    fn create(&self) -> anyhow::Result<()> {
        fs::create_dir_all(&self.scratch)?;
        fs::create_dir(&self.cgroup).with_context(|| format!("creating cgroup {}", self.cgroup.display()))?;
        for ns in self.namespaces() {
            run("ip", &["netns", "add", name_of(ns)])?;
        }
        let (c, cn, n, s) = (name_of(&self.client), name_of(&self.client_nat), name_of(&self.node), name_of(&self.server));
        let ip = |ns: &str, args: &str| {
            let mut all = vec!["-n", ns];
            all.extend(args.split_whitespace());
            run("ip", &all)
        };
        ip(n, &format!("link add c0 type veth peer name eth0 netns {c}"))?;
        ip(n, &format!("link add c1 type veth peer name eth0 netns {cn}"))?;
        ip(n, &format!("link add s0 type veth peer name eth0 netns {s}"))?;
        ip(n, &format!("addr add {}/24 dev c0", modes::NODE_CLIENT_SIDE))?;
        ip(n, &format!("addr add {}/24 dev c1", modes::NODE_NAT_CLIENT_SIDE))?;
        ip(n, &format!("addr add {}/24 dev s0", modes::NODE_SERVER_SIDE))?;
        ip(n, &format!("addr add {}/32 dev lo", modes::PROXY_IP))?;
        for dev in ["lo", "c0", "c1", "s0"] {
            ip(n, &format!("link set {dev} up"))?;
        }
        for (ns, addr, gw) in [
            (c, modes::CLIENT_IP, modes::NODE_CLIENT_SIDE),
            (cn, modes::NAT_CLIENT_IP, modes::NODE_NAT_CLIENT_SIDE),
            (s, modes::SERVER_IP, modes::NODE_SERVER_SIDE),
        ] {
            ip(ns, &format!("addr add {addr}/24 dev eth0"))?;
            ip(ns, "link set lo up")?;
            ip(ns, "link set eth0 up")?;
            ip(ns, &format!("route add default via {gw}"))?;
        }
        self.sysctl(&self.node, "net.ipv4.ip_forward", "1")?;
        // Many short connections: reuse TIME_WAIT ports where this namespace dials out.
        for ns in [&self.client, &self.client_nat, &self.node] {
            self.sysctl(ns, "net.ipv4.ip_local_port_range", "20000 65000")?;
            self.sysctl(ns, "net.ipv4.tcp_tw_reuse", "1")?;
        }
        self.iptables()?;
        // Connection tracking (loaded by the iptables rules) keeps each closed
        // connection 120 s in TIME_WAIT; at 20,000 connections a second the
        // machine-wide table fills and drops SYNs. These namespaces only.
        for ns in [&self.client, &self.client_nat, &self.node] {
            for (key, value) in [("net.netfilter.nf_conntrack_tcp_timeout_time_wait", "1"), ("net.netfilter.nf_conntrack_tcp_timeout_close_wait", "5")] {
                self.sysctl(ns, key, value)?;
            }
        }
        Ok(())
    }

    /// Modes B, D and Dh: DNAT on the interface facing their client namespace, keyed by
    /// the modes' own server ports. netfilter's conntrack in the node
    /// namespace is what SO_ORIGINAL_DST then reads.
    fn iptables(&self) -> anyhow::Result<()> {
        for mode in Mode::ALL {
            let Some(port) = mode.redirect_port() else { continue };
            let ports: Vec<String> = Service::ALL.iter().filter(|&&s| mode.serves(s)).map(|s| s.port(mode).to_string()).collect();
            let args = format!(
                "-t nat -A PREROUTING -i c1 -p tcp -d {} -m multiport --dports {} -j DNAT --to-destination {}:{port}",
                modes::SERVER_IP,
                ports.join(","),
                modes::PROXY_IP
            );
            let args: Vec<String> = args.split_whitespace().map(String::from).collect();
            let place = Place { netns: &self.node, cpu: Cpu::Load, cgroup_procs: None };
            procs::output(procs::command(&place, "iptables", &args), Duration::from_secs(20))
                .with_context(|| format!("adding the iptables rule of mode {} (is the iptables package installed?)", mode.title()))?;
        }
        Ok(())
    }

    fn sysctl(&self, ns: &Path, key: &str, value: &str) -> anyhow::Result<()> {
        let place = Place { netns: ns, cpu: Cpu::Load, cgroup_procs: None };
        let args = ["-q".to_string(), "-w".to_string(), format!("{key}={value}")];
        procs::output(procs::command(&place, "sysctl", &args), Duration::from_secs(10)).map(drop)
    }

    fn namespaces(&self) -> [&PathBuf; 4] {
        [&self.client, &self.client_nat, &self.node, &self.server]
    }

    /// Where a client of `mode` runs: its client namespace, the load CPU,
    /// and for mode C the intercepted cgroup.
    pub fn client_place(&self, mode: Mode) -> Place<'_> {
        let netns = if mode.behind_iptables() { &self.client_nat } else { &self.client };
        Place { netns, cpu: Cpu::Load, cgroup_procs: mode.in_intercepted_cgroup().then_some(self.cgroup_procs.as_path()) }
    }

    pub fn server_place(&self) -> Place<'_> {
        Place { netns: &self.server, cpu: Cpu::Load, cgroup_procs: None }
    }

    pub fn proxy_place(&self) -> Place<'_> {
        Place { netns: &self.node, cpu: Cpu::Proxy, cgroup_procs: None }
    }

    /// Keeps the servers' and proxies' logs of this run in `dest`.
    pub fn save_logs(&self, dest: &Path) {
        let _ = fs::remove_dir_all(dest);
        let Ok(entries) = fs::read_dir(&self.scratch) else { return };
        let _ = fs::create_dir_all(dest);
        for e in entries.flatten() {
            if e.path().extension().is_some_and(|x| x == "log") {
                let _ = fs::copy(e.path(), dest.join(e.file_name()));
            }
        }
    }

    /// Removes everything; safe to call on a half-built topology.
    pub fn teardown(&self) {
        kill_cgroup(&self.cgroup);
        for ns in self.namespaces() {
            if ns.exists() {
                let _ = run("ip", &["netns", "del", name_of(ns)]);
            }
        }
        if self.bpffs.exists() {
            detach(&self.gateway, &self.bpffs);
        }
        let _ = fs::remove_dir(&self.cgroup);
        let _ = fs::remove_dir_all(&self.scratch);
    }

    /// What of this run is still on the machine.
    pub fn leftovers(&self) -> Vec<String> {
        let mut found: Vec<String> = self
            .namespaces()
            .into_iter()
            .chain([&self.cgroup, &self.bpffs, &self.scratch])
            .filter(|p| p.exists())
            .map(|p| p.display().to_string())
            .collect();
        found.extend(root_cgroup_attachments());
        found
    }
}

fn netns_path(name: &str) -> PathBuf {
    Path::new("/run/netns").join(name)
}

fn name_of(p: &Path) -> &str {
    p.file_name().and_then(|n| n.to_str()).expect("namespace paths end in a name")
}

fn run(program: &str, args: &[&str]) -> anyhow::Result<()> {
    let out = Command::new(program).args(args).output().with_context(|| format!("starting {program}"))?;
    if !out.status.success() {
        bail!("{program} {} failed: {}", args.join(" "), String::from_utf8_lossy(&out.stderr).trim());
    }
    Ok(())
}

fn kill_cgroup(cg: &Path) {
    if cg.join("cgroup.kill").exists() {
        let _ = fs::write(cg.join("cgroup.kill"), "1");
    }
    for _ in 0..100 {
        let procs = fs::read_to_string(cg.join("cgroup.procs")).unwrap_or_default();
        if procs.trim().is_empty() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn detach(gateway: &Path, bpffs: &Path) {
    let _ = Command::new(gateway).arg("detach").arg("--bpffs").arg(bpffs).output();
    let _ = fs::remove_dir_all(bpffs);
}

/// Programs attached to the root cgroup: there must be none of ours.
pub fn root_cgroup_attachments() -> Vec<String> {
    let Ok(root) = cgroup2_mount() else { return Vec::new() };
    let Ok(out) = Command::new("bpftool").arg("cgroup").arg("show").arg(&root).output() else { return Vec::new() };
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .skip(1)
        .filter(|l| !l.trim().is_empty())
        .map(|l| format!("program attached to the root cgroup: {}", l.trim()))
        .collect()
}

/// Removes what earlier runs left: namespaces, cgroups, bpffs and scratch
/// directories named `gwbench-<pid>…` whose process is gone.
pub fn remove_stale(gateway: &Path) {
    let stale = |name: &str| {
        let Some(rest) = name.strip_prefix(PREFIX) else { return false };
        let pid: String = rest.chars().take_while(char::is_ascii_digit).collect();
        !pid.is_empty() && !Path::new("/proc").join(&pid).exists()
    };
    let entries = |dir: &Path| -> Vec<PathBuf> {
        fs::read_dir(dir)
            .map(|d| d.flatten().map(|e| e.path()).filter(|p| p.file_name().and_then(|n| n.to_str()).is_some_and(stale)).collect())
            .unwrap_or_default()
    };
    for ns in entries(Path::new("/run/netns")) {
        println!("bench: removing stale network namespace {}", ns.display());
        let _ = run("ip", &["netns", "del", name_of(&ns)]);
    }
    for dir in entries(Path::new(BPFFS_ROOT)) {
        println!("bench: removing stale bpffs directory {}", dir.display());
        detach(gateway, &dir);
    }
    if let Ok(root) = cgroup2_mount() {
        for cg in entries(&root) {
            println!("bench: removing stale cgroup {}", cg.display());
            kill_cgroup(&cg);
            let _ = fs::remove_dir(&cg);
        }
    }
    for dir in entries(&std::env::temp_dir()) {
        let _ = fs::remove_dir_all(dir);
    }
}
