//! What the kernel programs need from the running kernel, and what follows
//! when some of it is missing.
//!
//! At start the agent asks the kernel itself (`probe_kernel.rs`) for every
//! program type, attach type, map type and helper the programs use, before
//! loading anything. This module holds the list and the verdict, both pure:
//! - a missing *required* feature stops the agent with one error naming each
//!   missing feature and the kernel release that brought it;
//! - a missing feature of the *kernel relay* (`--relay sockmap|auto`) only
//!   turns the relay off: decided streams are copied, and the log says so.
//!
//! A feature whose probe could not tell counts as missing: nothing is
//! assumed present.

use std::fmt;

/// Who needs a feature.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Need {
    /// Interception: without it nothing is loaded.
    Required,
    /// The kernel relay only; without it streams are copied.
    Relay,
}

/// One thing the programs use, with the first mainline release that has it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Feature {
    /// Stable key, also accepted by `GATEWAY_KERNEL_PRETEND_MISSING`.
    pub key: &'static str,
    /// What it is, as the error names it.
    pub what: &'static str,
    /// The first mainline Linux release that offers it (major, minor).
    pub since: (u32, u32),
    pub need: Need,
}

/// What the probe of one feature found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    Available,
    Missing,
    /// The probe failed in a way that does not answer (errno text).
    Unknown(String),
}

/// Every feature the kernel programs use, in the order they are probed.
pub const FEATURES: &[Feature] = &[
    f("prog-cgroup-skb", "program type cgroup_skb (gw_egress)", (4, 10), Need::Required),
    f("prog-sock-ops", "program type sock_ops (gw_sockops)", (4, 13), Need::Required),
    f("attach-connect", "cgroup/connect4|6 hooks (gw_connect4|6)", (4, 17), Need::Required),
    f("attach-sendmsg", "cgroup/sendmsg4|6 hooks (gw_sendmsg4|6)", (4, 18), Need::Required),
    f("attach-recvmsg", "cgroup/recvmsg4|6 hooks (gw_recvmsg4|6)", (5, 2), Need::Required),
    f("attach-getpeername", "cgroup/getpeername4|6 hooks (gw_getpeername4|6)", (5, 8), Need::Required),
    f("map-sk-storage", "socket storage maps (BPF_MAP_TYPE_SK_STORAGE)", (5, 2), Need::Required),
    f("map-ringbuf", "ring buffer maps (BPF_MAP_TYPE_RINGBUF, AYA_LOGS)", (5, 8), Need::Required),
    f("cgroup-link", "bpf_link for cgroup programs (BPF_LINK_CREATE, BPF_LINK_UPDATE)", (5, 7), Need::Required),
    f("helper-current-cgroup-id", "helper bpf_get_current_cgroup_id in cgroup/connect", (4, 18), Need::Required),
    f("helper-current-ancestor-cgroup-id", "helper bpf_get_current_ancestor_cgroup_id in cgroup/connect", (5, 6), Need::Required),
    f("helper-current-pid-tgid", "helper bpf_get_current_pid_tgid in cgroup/connect", (4, 1), Need::Required),
    f("helper-sk-storage-sock-addr", "helper bpf_sk_storage_get in cgroup/connect", (5, 2), Need::Required),
    f("helper-sk-storage-sock-ops", "helper bpf_sk_storage_get in sock_ops", (5, 2), Need::Required),
    f("helper-cb-flags-set", "helper bpf_sock_ops_cb_flags_set in sock_ops", (4, 16), Need::Required),
    f("helper-skb-cgroup-id", "helper bpf_skb_cgroup_id in cgroup_skb", (4, 18), Need::Required),
    f("helper-skb-ancestor-cgroup-id", "helper bpf_skb_ancestor_cgroup_id in cgroup_skb", (4, 19), Need::Required),
    f("helper-sk-fullsock", "helper bpf_sk_fullsock in cgroup_skb", (5, 1), Need::Required),
    f("helper-sk-storage-skb", "helper bpf_sk_storage_get in cgroup_skb", (5, 2), Need::Required),
    f("helper-skb-load-bytes", "helper bpf_skb_load_bytes in cgroup_skb", (4, 5), Need::Required),
    f("map-sockhash", "SOCKHASH maps (BPF_MAP_TYPE_SOCKHASH)", (4, 18), Need::Relay),
    f("prog-sk-skb", "program type sk_skb, stream verdict (gw_relay)", (4, 14), Need::Relay),
    f("helper-sk-redirect-hash", "helper bpf_sk_redirect_hash in sk_skb", (4, 18), Need::Relay),
    f("helper-socket-cookie-skb", "helper bpf_get_socket_cookie in sk_skb", (4, 12), Need::Relay),
];

const fn f(key: &'static str, what: &'static str, since: (u32, u32), need: Need) -> Feature {
    Feature { key, what, since, need }
}

/// The oldest kernel that has every required feature.
pub fn minimum_kernel() -> (u32, u32) {
    FEATURES.iter().filter(|f| f.need == Need::Required).map(|f| f.since).max().unwrap_or((0, 0))
}

/// The verdict on a set of probe outcomes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verdict {
    /// Required features the kernel lacks (or that could not be confirmed).
    pub missing: Vec<(Feature, Outcome)>,
    /// Relay features it lacks: the kernel relay is off.
    pub relay_missing: Vec<(Feature, Outcome)>,
}

impl Verdict {
    pub fn judge(outcomes: &[(Feature, Outcome)]) -> Self {
        let absent = |need| {
            outcomes.iter().filter(|(f, o)| f.need == need && *o != Outcome::Available).cloned().collect::<Vec<_>>()
        };
        Self { missing: absent(Need::Required), relay_missing: absent(Need::Relay) }
    }

    pub fn relay_available(&self) -> bool {
        self.relay_missing.is_empty()
    }

    /// The error that stops the agent, if any required feature is absent.
    pub fn error(&self, release: &str) -> Option<KernelTooOld> {
        (!self.missing.is_empty()).then(|| KernelTooOld { release: release.to_owned(), missing: self.missing.clone() })
    }

    /// One line for the log about the kernel relay, when it is off.
    pub fn relay_note(&self) -> Option<String> {
        (!self.relay_missing.is_empty()).then(|| format!("kernel relay unavailable, decided streams are copied: this kernel lacks {}", list(&self.relay_missing)))
    }
}

/// Required features are missing: nothing can be intercepted on this kernel.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub struct KernelTooOld {
    pub release: String,
    pub missing: Vec<(Feature, Outcome)>,
}

impl fmt::Display for KernelTooOld {
    fn fmt(&self, out: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (major, minor) = minimum_kernel();
        write!(
            out,
            "kernel {} lacks what the kernel programs need: {}; the minimum kernel is Linux {major}.{minor}",
            self.release,
            list(&self.missing)
        )
    }
}

fn list(features: &[(Feature, Outcome)]) -> String {
    features
        .iter()
        .map(|(f, o)| match o {
            Outcome::Unknown(why) => format!("{} (Linux {}.{}; probe failed: {why})", f.what, f.since.0, f.since.1),
            _ => format!("{} (Linux {}.{})", f.what, f.since.0, f.since.1),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// Keys named in `GATEWAY_KERNEL_PRETEND_MISSING` (comma-separated): probed
/// as missing whatever the kernel says, to exercise the refusal and the
/// relay's fallback on a kernel that has everything. It can only take
/// features away, never add one.
pub fn pretend_missing(var: Option<&str>) -> Vec<&'static str> {
    let Some(var) = var else { return Vec::new() };
    let wanted: Vec<&str> = var.split(',').map(str::trim).filter(|k| !k.is_empty()).collect();
    FEATURES.iter().map(|f| f.key).filter(|k| wanted.contains(k)).collect()
}
