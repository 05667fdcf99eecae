//! Who is calling: the proxy itself (by the cgroup it runs in), a pod that
//! opted out (by an exempted ancestor cgroup), or a workload to intercept.
//!
//! Nothing here trusts what a workload can set on its own socket: a process
//! with CAP_NET_ADMIN can copy any mark, but it cannot move into the proxy's
//! cgroup without write access to the host's cgroup tree.

use aya_ebpf::{
    bindings::__sk_buff,
    helpers::generated::{
        bpf_get_current_ancestor_cgroup_id, bpf_get_current_cgroup_id, bpf_skb_ancestor_cgroup_id, bpf_skb_cgroup_id,
    },
};
use gateway_common::{EXEMPT_MAX_LEVELS, ProxyConfig};

use crate::maps::EXEMPT_CGROUPS;

/// The calling task runs in the proxy's cgroup.
#[inline(always)]
pub fn current_is_proxy(cfg: &ProxyConfig) -> bool {
    // SAFETY: helper without arguments.
    cfg.proxy_cgroup != 0 && unsafe { bpf_get_current_cgroup_id() } == cfg.proxy_cgroup
}

/// The packet's socket belongs to the proxy's cgroup.
#[inline(always)]
pub fn skb_is_proxy(skb: *mut __sk_buff, cfg: &ProxyConfig) -> bool {
    // SAFETY: valid skb from the program context.
    cfg.proxy_cgroup != 0 && unsafe { bpf_skb_cgroup_id(skb) } == cfg.proxy_cgroup
}

/// The calling task's pod cgroup is exempted.
#[inline(always)]
pub fn current_is_exempt(cfg: &ProxyConfig) -> bool {
    // SAFETY: helper with a plain level argument; 0 is returned past the leaf.
    exempt_at_levels(cfg, |level| unsafe { bpf_get_current_ancestor_cgroup_id(level as i32) })
}

/// The packet's socket sits in an exempted pod cgroup.
#[inline(always)]
pub fn skb_is_exempt(skb: *mut __sk_buff, cfg: &ProxyConfig) -> bool {
    // SAFETY: valid skb; 0 is returned past the socket's own level.
    exempt_at_levels(cfg, |level| unsafe { bpf_skb_ancestor_cgroup_id(skb, level as i32) })
}

#[inline(always)]
fn exempt_at_levels(cfg: &ProxyConfig, ancestor: impl Fn(u32) -> u64) -> bool {
    if cfg.exempt_level_min == 0 {
        return false;
    }
    let mut i = 0;
    while i < EXEMPT_MAX_LEVELS {
        let level = cfg.exempt_level_min + i;
        if level > cfg.exempt_level_max {
            return false;
        }
        let id = ancestor(level);
        // SAFETY: lookup by value in a hash map; the reference is not kept.
        if id != 0 && unsafe { EXEMPT_CGROUPS.get(&id) }.is_some() {
            return true;
        }
        i += 1;
    }
    false
}
