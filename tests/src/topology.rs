//! The sealed test topology: `node`, `pod-a`, `pod-b` and `internet` network namespaces.
//!
//! ```text
//!  pod-a eth0 198.18.1.2 ── pa 198.18.1.1 ┐
//!                                         node (lo: 198.18.0.1 proxy) ── inet 203.0.113.1 ── eth0 203.0.113.10.. internet
//!  pod-b eth0 198.18.2.2 ── pb 198.18.2.1 ┘
//! ```
//! The node forwards between pods and internet, so a process that is not intercepted reaches the
//! internet with its own address. Nothing links any of these namespaces to the machine's own.
//! Each veth pair is created inside the node namespace, so interface names never meet the host's.

use std::net::{Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::addresses::*;
use crate::cgroup::TestCgroup;
use crate::cleanup;
use crate::names;
use crate::netns::{self, NetNs};
use crate::pod_command;
use crate::prereq::{self, BPFFS_ROOT};
use crate::temp_dir::TempDir;

/// A pod: a network namespace with one interface, and the cgroup its workloads run in.
pub struct Pod {
    pub netns: NetNs,
    pub cgroup: TestCgroup,
    pub v4: Ipv4Addr,
    pub v6: Ipv6Addr,
}

impl Pod {
    /// `program args…` inside the pod's namespace and cgroup: intercepted once the gateway runs.
    pub fn command(&self, program: impl AsRef<std::ffi::OsStr>, args: &[&str]) -> Command {
        pod_command::in_cgroup_and_netns(
            &self.cgroup.procs_file(),
            &self.netns.path(),
            program,
            args,
        )
    }

    /// `program args…` in the pod's namespace but outside its cgroup: never intercepted.
    pub fn command_outside_cgroup(
        &self,
        program: impl AsRef<std::ffi::OsStr>,
        args: &[&str],
    ) -> Command {
        pod_command::in_netns_only(&self.netns.path(), program, args)
    }
}

/// One test's hosts, cgroups, scratch directory and bpffs directory; all removed on drop.
pub struct Topology {
    pub tag: String,
    pub node: NetNs,
    pub pod_a: Pod,
    pub pod_b: Pod,
    pub internet: NetNs,
    /// With [`Topology::build_with_egress_gateway`]: the only namespace
    /// linked to the internet; the node has no route there.
    pub egress: Option<NetNs>,
    /// bpffs directory for a gateway run in `egress`.
    pub egress_bpffs: PathBuf,
    /// A cgroup for "host network" workloads that run in the node namespace.
    pub node_cgroup: TestCgroup,
    /// The directory the gateway pins into: `/sys/fs/bpf/<tag>` (created by the gateway).
    pub bpffs: PathBuf,
    pub temp: TempDir,
    torn_down: bool,
}

impl Topology {
    /// Builds the whole topology. Checks prerequisites first and removes what crashed runs left.
    pub fn build() -> Topology {
        Self::build_shaped(false)
    }

    /// pod → node → egress-gw → internet: the node reaches the internet
    /// only through the egress gateway's namespace.
    pub fn build_with_egress_gateway() -> Topology {
        Self::build_shaped(true)
    }

    fn build_shaped(via_egress_gateway: bool) -> Topology {
        prereq::require_all();
        cleanup::remove_stale_once();
        let tag = names::unique_tag();
        let temp = TempDir::create(&tag);
        let node = NetNs::create(&format!("{tag}-node"));
        let pod_a = build_pod(
            &tag,
            "pod-a",
            &node,
            "pa",
            (POD_A_V4, POD_A_GW_V4),
            (POD_A_V6, POD_A_GW_V6),
        );
        let pod_b = build_pod(
            &tag,
            "pod-b",
            &node,
            "pb",
            (POD_B_V4, POD_B_GW_V4),
            (POD_B_V6, POD_B_GW_V6),
        );
        let (egress, internet) = if via_egress_gateway {
            let egress = build_egress_gateway(&tag, &node);
            let internet = build_internet(&tag, &egress);
            (Some(egress), internet)
        } else {
            (None, build_internet(&tag, &node))
        };
        node.ip(&["addr", "add", &format!("{PROXY_V4}/32"), "dev", "lo"]);
        node.ip(&[
            "addr",
            "add",
            &format!("{PROXY_V6}/128"),
            "dev",
            "lo",
            "nodad",
        ]);
        node.sysctl("net/ipv4/ip_forward", "1");
        node.sysctl("net/ipv6/conf/all/forwarding", "1");
        let node_cgroup = TestCgroup::create(&format!("{tag}-node-host"));
        let bpffs = Path::new(BPFFS_ROOT).join(&tag);
        let egress_bpffs = Path::new(BPFFS_ROOT).join(format!("{tag}-egw"));
        Topology {
            tag,
            node,
            pod_a,
            pod_b,
            internet,
            egress,
            egress_bpffs,
            node_cgroup,
            bpffs,
            temp,
            torn_down: false,
        }
    }

    /// The pods' cgroups, the ones a test normally asks the gateway to intercept.
    pub fn pod_cgroups(&self) -> Vec<PathBuf> {
        vec![
            self.pod_a.cgroup.path().to_owned(),
            self.pod_b.cgroup.path().to_owned(),
        ]
    }

    /// `program args…` in the node namespace and in the node's workload cgroup.
    pub fn node_workload_command(
        &self,
        program: impl AsRef<std::ffi::OsStr>,
        args: &[&str],
    ) -> Command {
        pod_command::in_cgroup_and_netns(
            &self.node_cgroup.procs_file(),
            &self.node.path(),
            program,
            args,
        )
    }

    fn namespaces(&self) -> Vec<&NetNs> {
        let mut all = vec![&self.node, &self.pod_a.netns, &self.pod_b.netns, &self.internet];
        all.extend(self.egress.as_ref());
        all
    }

    fn cgroups(&self) -> [&TestCgroup; 3] {
        [&self.pod_a.cgroup, &self.pod_b.cgroup, &self.node_cgroup]
    }

    /// Tears everything down and panics listing whatever could not be removed, or is still there.
    pub fn teardown(mut self) {
        let mut problems = self.teardown_inner();
        problems.extend(self.leftovers());
        if !problems.is_empty() {
            panic!(
                "topology {} was not cleaned up:\n  {}",
                self.tag,
                problems.join("\n  ")
            );
        }
    }

    /// What of this topology still exists on the machine.
    pub fn leftovers(&self) -> Vec<String> {
        let mut found = Vec::new();
        let existing = netns::list();
        for ns in self.namespaces() {
            if existing.iter().any(|n| n == ns.name()) {
                found.push(format!("network namespace {}", ns.name()));
            }
        }
        for cg in self.cgroups() {
            if cg.path().exists() {
                found.push(format!("cgroup {}", cg.path().display()));
            }
        }
        for dir in [&self.bpffs, &self.egress_bpffs] {
            if dir.exists() {
                found.push(format!("bpffs directory {}", dir.display()));
            }
        }
        if self.temp.path().exists() {
            found.push(format!("scratch directory {}", self.temp.path().display()));
        }
        found.extend(cleanup::attachments_on_cgroup_root());
        found
    }

    /// Kill all processes, detach and unpin the gateway's programs, remove cgroups, namespaces
    /// and the scratch directory. Returns what failed; never panics (it also runs from `drop`).
    fn teardown_inner(&mut self) -> Vec<String> {
        if self.torn_down {
            return Vec::new();
        }
        self.torn_down = true;
        let mut problems = Vec::new();
        for ns in self.namespaces() {
            problems.extend(netns::kill_netns_processes(ns.name()).err());
        }
        for cg in self.cgroups() {
            problems.extend(cg.remove().err());
        }
        problems.extend(cleanup::remove_bpffs_dir(&self.bpffs).err());
        problems.extend(cleanup::remove_bpffs_dir(&self.egress_bpffs).err());
        for ns in self.namespaces() {
            problems.extend(ns.remove().err());
        }
        problems.extend(self.temp.remove().err());
        problems
    }
}

impl Drop for Topology {
    fn drop(&mut self) {
        for problem in self.teardown_inner() {
            eprintln!("cleanup of {}: {problem}", self.tag);
        }
    }
}

fn build_pod(
    tag: &str,
    role: &str,
    node: &NetNs,
    node_if: &str,
    v4: (Ipv4Addr, Ipv4Addr),
    v6: (Ipv6Addr, Ipv6Addr),
) -> Pod {
    let netns = NetNs::create(&format!("{tag}-{role}"));
    let cgroup = TestCgroup::create(&format!("{tag}-{role}"));
    link(node, node_if, &netns);
    node.ip(&["addr", "add", &format!("{}/24", v4.1), "dev", node_if]);
    node.ip(&[
        "addr",
        "add",
        &format!("{}/64", v6.1),
        "dev",
        node_if,
        "nodad",
    ]);
    node.ip(&["link", "set", node_if, "up"]);
    netns.ip(&["addr", "add", &format!("{}/24", v4.0), "dev", "eth0"]);
    netns.ip(&[
        "addr",
        "add",
        &format!("{}/64", v6.0),
        "dev",
        "eth0",
        "nodad",
    ]);
    netns.ip(&["link", "set", "eth0", "up"]);
    netns.ip(&["route", "add", "default", "via", &v4.1.to_string()]);
    netns.ip(&["-6", "route", "add", "default", "via", &v6.1.to_string()]);
    Pod {
        netns,
        cgroup,
        v4: v4.0,
        v6: v6.0,
    }
}

/// The egress gateway's namespace, linked to the node only.
fn build_egress_gateway(tag: &str, node: &NetNs) -> NetNs {
    let egress = NetNs::create(&format!("{tag}-egw"));
    link(node, "egw", &egress);
    node.ip(&["addr", "add", &format!("{NODE_EGRESS_V4}/24"), "dev", "egw"]);
    node.ip(&["addr", "add", &format!("{NODE_EGRESS_V6}/64"), "dev", "egw", "nodad"]);
    node.ip(&["link", "set", "egw", "up"]);
    egress.ip(&["addr", "add", &format!("{EGRESS_GW_V4}/24"), "dev", "eth0"]);
    egress.ip(&["addr", "add", &format!("{EGRESS_GW_V6}/64"), "dev", "eth0", "nodad"]);
    egress.ip(&["link", "set", "eth0", "up"]);
    egress.ip(&["route", "add", "198.18.0.0/15", "via", &NODE_EGRESS_V4.to_string()]);
    egress
}

/// The internet host, linked to `upstream` (the node, or the egress gateway).
fn build_internet(tag: &str, node: &NetNs) -> NetNs {
    let internet = NetNs::create(&format!("{tag}-internet"));
    link(node, "inet", &internet);
    node.ip(&[
        "addr",
        "add",
        &format!("{NODE_INTERNET_V4}/24"),
        "dev",
        "inet",
    ]);
    node.ip(&[
        "addr",
        "add",
        &format!("{NODE_INTERNET_V6}/64"),
        "dev",
        "inet",
        "nodad",
    ]);
    node.ip(&["link", "set", "inet", "up"]);
    for i in 0..INTERNET_HOST_COUNT {
        internet.ip(&[
            "addr",
            "add",
            &format!("{}/24", internet_v4(i)),
            "dev",
            "eth0",
        ]);
        internet.ip(&[
            "addr",
            "add",
            &format!("{}/64", internet_v6(i)),
            "dev",
            "eth0",
            "nodad",
        ]);
    }
    internet.ip(&["link", "set", "eth0", "up"]);
    // Only the pods' and the node's ranges are reachable from the internet host: no default route.
    internet.ip(&[
        "route",
        "add",
        "198.18.0.0/15",
        "via",
        &NODE_INTERNET_V4.to_string(),
    ]);
    internet.ip(&[
        "-6",
        "route",
        "add",
        "2001:db8::/32",
        "via",
        &NODE_INTERNET_V6.to_string(),
    ]);
    internet
}

/// A veth pair created inside `node`: `node_if` stays there, its peer becomes `eth0` in `other`.
fn link(node: &NetNs, node_if: &str, other: &NetNs) {
    node.ip(&[
        "link",
        "add",
        node_if,
        "type",
        "veth",
        "peer",
        "name",
        "eth0",
        "netns",
        other.name(),
    ]);
}
