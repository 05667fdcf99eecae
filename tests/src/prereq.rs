//! What the tests need from the machine. A missing piece fails the test with a message naming it;
//! nothing is ever skipped silently.

use std::ffi::CString;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// The Debian packages providing the tools the tests run, by tool name.
const TOOLS: &[(&str, &str)] = &[
    ("ip", "iproute2"),
    ("nsenter", "util-linux"),
    ("bpftool", "bpftool"),
    ("curl", "curl"),
    ("openssl", "openssl"),
    ("nginx", "nginx-light (or nginx)"),
    ("sh", "dash"),
    ("socat", "socat"),
    ("dnsmasq", "dnsmasq-base"),
    ("dig", "bind9-dnsutils"),
    ("python3", "python3"),
    ("iptables", "iptables"),
    ("tcpdump", "tcpdump"),
];

const BPF_FS_MAGIC: i64 = 0xcafe_4a11;

/// The bpffs mount under which each test pins into its own directory.
pub const BPFFS_ROOT: &str = "/sys/fs/bpf";

/// Checks root, tools, cgroup v2 and bpffs once per process; panics naming what is missing.
pub fn require_all() {
    static CHECKED: OnceLock<Result<(), String>> = OnceLock::new();
    if let Err(missing) = CHECKED.get_or_init(check_all) {
        panic!("the privileged tests cannot run here: {missing}");
    }
}

fn check_all() -> Result<(), String> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return Err("they need root (network namespaces, cgroups, bpffs); run them as root".into());
    }
    for (tool, package) in TOOLS {
        if find_tool(tool).is_none() {
            return Err(format!(
                "tool `{tool}` not found in PATH, /usr/sbin or /sbin (Debian package {package})"
            ));
        }
    }
    crate::cgroup::find_cgroup2_mount().ok_or("no cgroup2 filesystem in /proc/self/mountinfo")?;
    if !is_bpffs(Path::new(BPFFS_ROOT)) {
        return Err(format!(
            "{BPFFS_ROOT} is not a bpf filesystem (mount it: mount -t bpf bpf {BPFFS_ROOT})"
        ));
    }
    if !Path::new("/proc/self/ns/net").exists() {
        return Err("the kernel has no network namespaces (CONFIG_NET_NS)".into());
    }
    Ok(())
}

/// Full path of a tool, looked up in PATH and then in the sbin directories root normally has.
pub fn find_tool(name: &str) -> Option<PathBuf> {
    let path_var = std::env::var("PATH").unwrap_or_default();
    path_var
        .split(':')
        .chain(["/usr/sbin", "/sbin", "/usr/bin", "/bin"])
        .map(|dir| Path::new(dir).join(name))
        .find(|candidate| candidate.is_file())
}

/// Full path of a tool the tests need; panics naming the tool when it is missing.
pub fn tool(name: &str) -> PathBuf {
    find_tool(name).unwrap_or_else(|| panic!("required tool `{name}` is not installed"))
}

/// Whether `path` is the root of a mounted bpf filesystem.
pub fn is_bpffs(path: &Path) -> bool {
    let Ok(c_path) = CString::new(path.as_os_str().as_encoded_bytes()) else {
        return false;
    };
    // SAFETY: statfs only writes into the zeroed struct we pass.
    let mut stat: libc::statfs = unsafe { std::mem::zeroed() };
    let rc = unsafe { libc::statfs(c_path.as_ptr(), &mut stat) };
    rc == 0 && stat.f_type as i64 == BPF_FS_MAGIC
}
