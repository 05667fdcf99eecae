//! Unique names for everything a test creates on the machine.
//!
//! A name is `gwt-<runner pid>-<counter>`, optionally followed by `-<role>`. The pid tells a later
//! run whether the owner is still alive; if it is not, what it left behind is stale.

use std::path::Path;
use std::sync::atomic::{AtomicU32, Ordering};

/// The prefix shared by all network namespaces, cgroups, bpffs directories and temp dirs.
pub const PREFIX: &str = "gwt-";

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// A fresh tag `gwt-<pid>-<n>`, unique within this machine while this process lives.
pub fn unique_tag() -> String {
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("{PREFIX}{}-{n}", std::process::id())
}

/// The pid embedded in a harness name, or `None` when `name` is not one of ours.
pub fn owner_pid(name: &str) -> Option<u32> {
    let rest = name.strip_prefix(PREFIX)?;
    let (pid, _) = rest.split_once('-')?;
    pid.parse().ok()
}

/// Whether a process with this pid exists on the machine.
pub fn pid_alive(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

/// True for a harness name whose owner process is gone.
pub fn is_stale(name: &str) -> bool {
    owner_pid(name).is_some_and(|pid| !pid_alive(pid))
}

/// True for a harness name created by this very process.
pub fn is_ours(name: &str) -> bool {
    owner_pid(name) == Some(std::process::id())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_are_unique_and_carry_the_pid() {
        let a = unique_tag();
        let b = unique_tag();
        assert_ne!(a, b);
        assert_eq!(owner_pid(&a), Some(std::process::id()));
        assert!(is_ours(&format!("{b}-pod-a")));
    }

    #[test]
    fn foreign_names_are_ignored() {
        assert_eq!(owner_pid("cni-1234"), None);
        assert_eq!(owner_pid("gwt-x-1"), None);
        assert!(!is_stale("gateway"));
    }

    #[test]
    fn a_name_whose_owner_is_gone_is_stale() {
        // Above any pid_max the kernel allows (2^22), so never alive.
        assert!(is_stale("gwt-4194305-0-node"));
    }
}
