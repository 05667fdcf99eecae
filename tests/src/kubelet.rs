//! A kubelet-shaped cgroup tree inside a cgroup the test owns: the pods
//! cgroup, QoS levels, one directory per pod named after its UID, and a
//! container below it, in the systemd or the cgroupfs driver's layout. The
//! node agent is pointed at the pods cgroup with `--cgroup-root`.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::cgroup::TestCgroup;
use crate::pod_command;

/// The kubelet's cgroup driver, which decides the directory names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Driver {
    Systemd,
    Cgroupfs,
}

/// The pods cgroup (`kubepods.slice` or `kubepods`) under a test cgroup.
pub struct KubeletTree {
    pub driver: Driver,
    root: TestCgroup,
}

/// One pod's cgroups: the pod directory and its container.
pub struct PodCgroup {
    pub uid: String,
    pub pod_dir: PathBuf,
    pub container_dir: PathBuf,
}

impl KubeletTree {
    /// Creates `<tag>-kubelet/<pods cgroup>` with its QoS levels.
    pub fn create(tag: &str, driver: Driver) -> KubeletTree {
        let root = TestCgroup::create(&format!("{tag}-kubelet"));
        let tree = KubeletTree { driver, root };
        for qos in ["burstable", "besteffort"] {
            std::fs::create_dir_all(tree.qos_dir(qos)).unwrap_or_else(|e| panic!("cannot create the {qos} level: {e}"));
        }
        tree
    }

    /// What `--cgroup-root` names.
    pub fn pods_root(&self) -> PathBuf {
        self.root.path().join(match self.driver {
            Driver::Systemd => "kubepods.slice",
            Driver::Cgroupfs => "kubepods",
        })
    }

    fn qos_dir(&self, qos: &str) -> PathBuf {
        match self.driver {
            Driver::Systemd => self.pods_root().join(format!("kubepods-{qos}.slice")),
            Driver::Cgroupfs => self.pods_root().join(qos),
        }
    }

    /// Creates a pod's directory and one container, as the kubelet and the
    /// runtime (containerd) would, in the `besteffort` class.
    pub fn add_pod(&self, uid: &str) -> PodCgroup {
        let (pod_dir, container) = match self.driver {
            Driver::Systemd => (
                self.qos_dir("besteffort").join(format!("kubepods-besteffort-pod{}.slice", uid.replace('-', "_"))),
                "cri-containerd-4f2a9c1e.scope".to_string(),
            ),
            Driver::Cgroupfs => (self.qos_dir("besteffort").join(format!("pod{uid}")), "4f2a9c1e".to_string()),
        };
        let container_dir = pod_dir.join(container);
        std::fs::create_dir_all(&container_dir).unwrap_or_else(|e| panic!("cannot create {}: {e}", container_dir.display()));
        PodCgroup { uid: uid.to_string(), pod_dir, container_dir }
    }

    pub fn path(&self) -> &Path {
        self.root.path()
    }
}

impl PodCgroup {
    /// `program args…` in the container's cgroup and the given network namespace.
    pub fn command(&self, netns_handle: &Path, program: impl AsRef<std::ffi::OsStr>, args: &[&str]) -> Command {
        pod_command::in_cgroup_and_netns(&self.container_dir.join("cgroup.procs"), netns_handle, program, args)
    }
}
