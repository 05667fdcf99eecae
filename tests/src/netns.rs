//! Named network namespaces (`ip netns`), and running code or commands inside them.
//!
//! Commands enter a namespace with `nsenter --net=/run/netns/NAME`, which changes only the
//! network namespace; `ip netns exec` would remount /sys and hide the cgroup2 mount and bpffs.

use std::fs::File;
use std::os::fd::AsRawFd;
use std::path::PathBuf;
use std::process::Command;
use std::thread;
use std::time::Duration;

use crate::command::{self, SHORT};
use crate::prereq::tool;
use crate::wait;

/// Where `ip netns` keeps its namespace handles.
pub const NETNS_DIR: &str = "/run/netns";

/// A network namespace the test created; deleted (after killing its processes) on drop.
pub struct NetNs {
    name: String,
}

impl NetNs {
    /// `ip netns add NAME` with loopback up and duplicate address detection off.
    pub fn create(name: &str) -> NetNs {
        command::run_ok(Command::new(tool("ip")).args(["netns", "add", name]), SHORT);
        let netns = NetNs {
            name: name.to_owned(),
        };
        netns.ip(&["link", "set", "lo", "up"]);
        netns.sysctl("net/ipv6/conf/all/accept_dad", "0");
        netns.sysctl("net/ipv6/conf/default/accept_dad", "0");
        netns
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// `/run/netns/NAME`, the handle `nsenter --net=` and `setns` take.
    pub fn path(&self) -> PathBuf {
        PathBuf::from(NETNS_DIR).join(&self.name)
    }

    /// Runs `ip -n NAME <args>`; panics with ip's message on failure.
    pub fn ip(&self, args: &[&str]) {
        command::run_ok(
            Command::new(tool("ip"))
                .arg("-n")
                .arg(&self.name)
                .args(args),
            SHORT,
        );
    }

    /// Writes a per-namespace sysctl, e.g. `net/ipv4/ip_forward`.
    pub fn sysctl(&self, key: &str, value: &str) {
        let script = format!("echo {value} > /proc/sys/{key}");
        command::run_ok(&mut self.command("sh", &["-c", &script]), SHORT);
    }

    /// A command that runs `program args…` in this namespace (and in the caller's cgroup).
    pub fn command(&self, program: impl AsRef<std::ffi::OsStr>, args: &[&str]) -> Command {
        crate::pod_command::in_netns_only(&self.path(), program, args)
    }

    /// Runs `f` on a new thread that has joined this namespace; sockets it creates live here.
    /// `setns` affects only that thread, never the test runner.
    pub fn run_in<T: Send + 'static>(&self, f: impl FnOnce() -> T + Send + 'static) -> T {
        let handle = self.open();
        thread::spawn(move || {
            enter_on_this_thread(&handle);
            f()
        })
        .join()
        .unwrap_or_else(|_| panic!("a thread inside netns {} panicked", self.name))
    }

    /// An open handle to the namespace, for [`enter_on_this_thread`].
    pub fn open(&self) -> File {
        File::open(self.path())
            .unwrap_or_else(|e| panic!("cannot open {}: {e}", self.path().display()))
    }

    /// Kills every process in the namespace (never the test runner) and deletes it.
    pub fn remove(&self) -> Result<(), String> {
        remove_netns(&self.name)
    }
}

impl Drop for NetNs {
    fn drop(&mut self) {
        if let Err(e) = self.remove() {
            eprintln!("cleanup: {e}");
        }
    }
}

/// Moves the calling thread into the namespace behind `handle`; panics on failure.
pub fn enter_on_this_thread(handle: &File) {
    // SAFETY: setns on a namespace fd we own; affects only the calling thread.
    let rc = unsafe { libc::setns(handle.as_raw_fd(), libc::CLONE_NEWNET) };
    if rc != 0 {
        panic!(
            "setns(CLONE_NEWNET) failed: {}",
            std::io::Error::last_os_error()
        );
    }
}

/// Names of all network namespaces `ip netns` knows.
pub fn list() -> Vec<String> {
    let out = command::run(Command::new(tool("ip")).args(["netns", "list"]), SHORT);
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().next().map(str::to_owned))
        .collect()
}

/// Kills every process whose network namespace is `name` (never the test runner); bounded.
pub fn kill_netns_processes(name: &str) -> Result<(), String> {
    let ip = tool("ip");
    let me = std::process::id();
    let gone = wait::poll(Duration::from_secs(10), Duration::from_millis(50), || {
        let out = command::run(Command::new(&ip).args(["netns", "pids", name]), SHORT);
        let pids: Vec<u32> = String::from_utf8_lossy(&out.stdout)
            .split_whitespace()
            .filter_map(|p| p.parse().ok())
            .collect();
        for pid in pids.iter().filter(|&&p| p != me) {
            // SAFETY: kill has no memory-safety preconditions.
            unsafe { libc::kill(*pid as i32, libc::SIGKILL) };
        }
        pids.iter().all(|&p| p == me).then_some(())
    });
    gone.ok_or_else(|| format!("processes in netns {name} did not die"))
}

/// Kills the processes of namespace `name` and deletes it.
pub fn remove_netns(name: &str) -> Result<(), String> {
    let handle = PathBuf::from(NETNS_DIR).join(name);
    if !handle.exists() {
        return Ok(());
    }
    kill_netns_processes(name)?;
    let deleted = command::run(Command::new(tool("ip")).args(["netns", "del", name]), SHORT);
    if deleted.status.success() || !handle.exists() {
        Ok(())
    } else {
        Err(format!(
            "ip netns del {name}: {}",
            String::from_utf8_lossy(&deleted.stderr).trim()
        ))
    }
}
