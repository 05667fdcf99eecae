//! The bpffs layout: `maps/<MAP>`, `progs/<prog>`, `links/<cgroup inode>/<prog>`,
//! and `staging/` for a replacement about to be renamed into place.

use std::{
    fs,
    path::{Path, PathBuf},
};

use gateway_common::map_names;

use super::InterceptorError;

/// The kernel programs attached to cgroups; `attach.rs` knows how each attaches.
pub const PROGRAMS: [&str; 10] = [
    "gw_connect4",
    "gw_connect6",
    "gw_sockops",
    "gw_getpeername4",
    "gw_getpeername6",
    "gw_sendmsg4",
    "gw_sendmsg6",
    "gw_recvmsg4",
    "gw_recvmsg6",
    "gw_egress",
];
/// The kernel relay's verdict program; attached to its map, not to cgroups.
pub const RELAY_PROGRAM: &str = "gw_relay";
/// aya-log's ring buffer of kernel log lines (`gateway-ebpf/src/log.rs`).
pub const LOG_MAP: &str = "AYA_LOGS";
pub const MAPS: [&str; 10] = [
    map_names::VERSION,
    map_names::EXEMPT_CGROUPS,
    map_names::ORIG_SK,
    map_names::ORIG_TUPLE,
    map_names::PROXY_CONFIG,
    map_names::STATS,
    map_names::INBOUND_SK,
    map_names::RELAY_SOCKS,
    map_names::RELAY_PEERS,
    LOG_MAP,
];

const BPF_FS_MAGIC: i64 = 0xcafe_4a11;

#[derive(Clone, Debug)]
pub struct PinLayout {
    pub root: PathBuf,
}

impl PinLayout {
    pub fn new(root: &Path) -> Self {
        Self { root: root.to_path_buf() }
    }

    pub fn map(&self, name: &str) -> PathBuf {
        self.root.join("maps").join(name)
    }

    pub fn prog(&self, name: &str) -> PathBuf {
        self.root.join("progs").join(name)
    }

    /// Where a replacement is pinned before it is renamed into place.
    pub fn staging_dir(&self) -> PathBuf {
        self.root.join("staging")
    }

    pub fn links_dir(&self) -> PathBuf {
        self.root.join("links")
    }

    pub fn cgroup_links(&self, cgroup_inode: u64) -> PathBuf {
        self.links_dir().join(cgroup_inode.to_string())
    }

    /// Creates the root if needed and checks it lies on a bpf filesystem.
    pub fn ensure_bpffs(&self) -> Result<(), InterceptorError> {
        for dir in [&self.root, &self.root.join("maps"), &self.root.join("progs"), &self.links_dir()] {
            fs::create_dir_all(dir).map_err(|source| io(dir, source))?;
        }
        let st = nix::sys::statfs::statfs(&self.root)
            .map_err(|e| io(&self.root, std::io::Error::from(e)))?;
        if st.filesystem_type().0 as i64 != BPF_FS_MAGIC {
            return Err(InterceptorError::NotBpffs(self.root.clone()));
        }
        Ok(())
    }

    /// All maps and programs are pinned (the relay's only with `relay`, and
    /// then also the relay's: a start that turns it on installs it).
    pub fn is_complete(&self, relay: bool) -> bool {
        let relay_part = [map_names::RELAY_SOCKS, map_names::RELAY_PEERS];
        MAPS.iter().filter(|m| relay || !relay_part.contains(m)).all(|m| self.map(m).exists())
            && PROGRAMS.iter().all(|p| self.prog(p).exists())
            && (!relay || self.prog(RELAY_PROGRAM).exists())
    }

    /// An exclusive lock on the root, held while pins are changed, so two
    /// instances starting at once do not replace each other's work.
    pub fn lock(&self) -> Result<nix::fcntl::Flock<fs::File>, InterceptorError> {
        let dir = fs::File::open(&self.root).map_err(|e| io(&self.root, e))?;
        nix::fcntl::Flock::lock(dir, nix::fcntl::FlockArg::LockExclusive).map_err(|(_, e)| io(&self.root, e.into()))
    }

    pub fn has_links(&self) -> bool {
        fs::read_dir(self.links_dir()).map(|mut d| d.next().is_some()).unwrap_or(false)
    }

    /// Unpins everything; the kernel frees what no one else holds.
    pub fn clear(&self) -> Result<(), InterceptorError> {
        for dir in [self.links_dir(), self.root.join("progs"), self.root.join("maps"), self.staging_dir()] {
            if dir.exists() {
                fs::remove_dir_all(&dir).map_err(|source| io(&dir, source))?;
            }
        }
        Ok(())
    }

    pub fn remove_root(&self) -> Result<(), InterceptorError> {
        match fs::remove_dir(&self.root) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(source) => Err(io(&self.root, source)),
        }
    }
}

pub fn io(path: &Path, source: std::io::Error) -> InterceptorError {
    InterceptorError::Io { path: path.to_path_buf(), source }
}
