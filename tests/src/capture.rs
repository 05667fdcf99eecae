//! The oracle on the far side of a routing node: a packet capture (`tcpdump -l`) in the internet
//! namespace of what arrives from the pods' own addresses. The proxy's upstream traffic leaves
//! from the node's address, so a packet from a pod's address there is a bypass.
//!
//! A test shows that the oracle can fail by sending one probe from outside the pod's cgroup (not
//! intercepted; the node forwards it) to a port of its own, and seeing it counted.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Stdio};
use std::time::Duration;

use crate::addresses::{POD_A_V4, POD_A_V6, POD_B_V4, POD_B_V6};
use crate::command;
use crate::netns::NetNs;
use crate::prereq::tool;
use crate::topology::Pod;
use crate::wait;

/// How long tcpdump may take to start listening, and a probe to show up.
const START_TIMEOUT: Duration = Duration::from_secs(10);

/// A running capture; stopped (killed) on drop.
pub struct Capture {
    child: Option<Child>,
    out: PathBuf,
    err: PathBuf,
}

impl Capture {
    /// Captures, on every interface of `netns`, TCP packets whose source is a pod's address.
    /// Waits until tcpdump listens. Its output goes to files in `dir`.
    pub fn from_pods(netns: &NetNs, dir: &std::path::Path) -> Capture {
        Self::start(netns, dir, "tcp and ")
    }

    /// As `from_pods`, for packets of any protocol (UDP, ICMP: what only the backstop stops).
    pub fn anything_from_pods(netns: &NetNs, dir: &std::path::Path) -> Capture {
        Self::start(netns, dir, "")
    }

    fn start(netns: &NetNs, dir: &std::path::Path, protocol: &str) -> Capture {
        let (out, err) = (dir.join("capture.txt"), dir.join("capture.err"));
        let filter = format!("{protocol}(src host {POD_A_V4} or src host {POD_B_V4} or src host {POD_A_V6} or src host {POD_B_V6})");
        let file = |p: &PathBuf| std::fs::File::create(p).unwrap_or_else(|e| panic!("cannot create {}: {e}", p.display()));
        let child = netns
            .command(tool("tcpdump"), &["-l", "-n", "-i", "any", &filter])
            .stdin(Stdio::null())
            .stdout(file(&out))
            .stderr(file(&err))
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start tcpdump (Debian package tcpdump): {e}"));
        let capture = Capture { child: Some(child), out, err };
        let listening = wait::poll(START_TIMEOUT, Duration::from_millis(50), || {
            std::fs::read_to_string(&capture.err).ok().filter(|e| e.contains("listening on")).map(|_| ())
        });
        assert!(listening.is_some(), "tcpdump did not start listening: {}", std::fs::read_to_string(&capture.err).unwrap_or_default());
        capture
    }

    /// The packets captured so far, one tcpdump line each.
    pub fn lines(&self) -> Vec<String> {
        std::fs::read_to_string(&self.out).unwrap_or_default().lines().map(str::to_owned).collect()
    }

    /// The captured packets bound for destination port `port`.
    pub fn to_port(&self, port: u16) -> Vec<String> {
        let tail = format!(".{port}:");
        self.lines().into_iter().filter(|l| l.split(" > ").nth(1).is_some_and(|dst| dst.split_whitespace().next().is_some_and(|a| a.ends_with(&tail)))).collect()
    }

    /// Proves the oracle can fail: a connection attempt from `pod` outside its cgroup (never
    /// intercepted; the routing node forwards it) to `target`, a port nothing else uses, must be
    /// captured.
    pub fn assert_sees_a_bypass(&self, pod: &Pod, target: SocketAddr) {
        let probe = format!("import socket\ns = socket.socket(socket.AF_INET6 if ':' in '{ip}' else socket.AF_INET)\ns.settimeout(3)\ns.connect_ex(('{ip}', {port}))\n", ip = target.ip(), port = target.port());
        command::run(&mut pod.command_outside_cgroup(tool("python3"), &["-c", &probe]), Duration::from_secs(15));
        let seen = wait::poll(START_TIMEOUT, Duration::from_millis(50), || (!self.to_port(target.port()).is_empty()).then_some(()));
        assert!(seen.is_some(), "the capture never saw the uninterceptable probe to {target}: the oracle is blind\n{}", self.lines().join("\n"));
    }

    /// Panics listing them if any captured packet went to one of `ports` (the test's traffic,
    /// which only the proxy may carry).
    pub fn assert_no_bypass_to(&self, ports: &[u16]) {
        let leaked: Vec<String> = ports.iter().flat_map(|p| self.to_port(*p)).collect();
        assert!(leaked.is_empty(), "packets from a pod's own address reached the internet (a bypass):\n{}", leaked.join("\n"));
    }
}

impl Drop for Capture {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
