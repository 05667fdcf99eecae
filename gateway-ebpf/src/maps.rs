//! The maps shared by the programs; userspace pins them under `<bpffs>/maps/`.

use aya_ebpf::{
    btf_maps::SkStorage,
    macros::{btf_map, map},
    maps::{Array, HashMap, PerCpuArray},
};
use gateway_common::{ORIG_TUPLE_CAPACITY, OrigDst, ProxyConfig, SockTuple, Stat};

/// The original destination of each redirected socket. Freed with the socket.
#[btf_map]
pub static ORIG_SK: SkStorage<OrigDst> = SkStorage::new();

/// Set on accepted (inbound) sockets: their replies may leave the pod.
#[btf_map]
pub static INBOUND_SK: SkStorage<u32> = SkStorage::new();

/// The original destination by 4-tuple, for the proxy to look up at accept.
#[map]
pub static ORIG_TUPLE: HashMap<SockTuple, OrigDst> =
    HashMap::with_max_entries(ORIG_TUPLE_CAPACITY, 0);

/// The build stamp of these programs, written by userspace when it pins
/// them; a restart with another build sees the difference.
#[map]
pub static VERSION: Array<u64> = Array::with_max_entries(1, 0);

/// Opted-out pod cgroups (cgroup id → 1); written by userspace.
#[map]
pub static EXEMPT_CGROUPS: HashMap<u64, u32> = HashMap::with_max_entries(crate::variant::EXEMPT_ENTRIES, 0);

/// Where to send intercepted connections; written by userspace.
#[map]
pub static PROXY_CONFIG: Array<ProxyConfig> = Array::with_max_entries(1, 0);

#[map]
pub static STATS: PerCpuArray<u64> = PerCpuArray::with_max_entries(Stat::COUNT, 0);

#[inline(always)]
pub fn count(stat: Stat) {
    if let Some(slot) = STATS.get_ptr_mut(stat as u32) {
        // SAFETY: per-CPU slot, valid while the program runs.
        unsafe { *slot += 1 };
    }
}

/// The raw map pointers, for helpers that take the socket from a context
/// other than `SockAddrContext`.
#[inline(always)]
pub fn orig_sk_ptr() -> *mut core::ffi::c_void {
    core::ptr::from_ref(&ORIG_SK).cast_mut().cast()
}

#[inline(always)]
pub fn inbound_sk_ptr() -> *mut core::ffi::c_void {
    core::ptr::from_ref(&INBOUND_SK).cast_mut().cast()
}
