//! Why a program denied a connect or dropped a packet, as log lines the
//! agent prints (`gateway run --kernel-log`), through aya-log.
//!
//! Off by default, and then free: each line sits behind a test of
//! `AYA_LOG_LEVEL`, a read-only global that the agent fixes when it loads the
//! programs (0 unless `--kernel-log`). The verifier knows its value, so it
//! treats every log branch as dead: it neither checks those instructions nor
//! lets them run, and the processed-instruction count is that of a build
//! without logging.
//!
//! Each reason is its own literal line (no string argument), so a line costs
//! only the few numbers it carries.

use aya_ebpf::EbpfContext;
use aya_log_ebpf::{info, warn};
use gateway_common::{Stat, redirect::IPPROTO_UDP};

/// A connect (or datagram) the address hooks refused with `EPERM`.
#[inline(always)]
pub fn denied<C: EbpfContext>(ctx: &C, stat: Stat, dst: &[u8; 16], port: u16, protocol: u32) {
    match stat {
        Stat::DeniedNoProxy => {
            warn!(ctx, "deny {:i} port {}: no proxy address of this family", *dst, port)
        }
        Stat::UdpDenied => warn!(ctx, "deny {:i} port {}: UDP other than DNS (REGISTRY_ONLY)", *dst, port),
        Stat::DeniedStorage => {
            warn!(ctx, "deny {:i} port {}: no socket storage for the original destination", *dst, port)
        }
        _ => warn!(ctx, "deny {:i} port {} protocol {}", *dst, port, protocol),
    }
}

/// The proxy settings are missing: userspace has not written them.
#[inline(always)]
pub fn denied_unconfigured<C: EbpfContext>(ctx: &C) {
    warn!(ctx, "deny: no proxy settings written yet");
}

/// A packet the egress backstop dropped: not bound for the proxy.
#[inline(always)]
pub fn dropped<C: EbpfContext>(ctx: &C, ethertype: u32, l4: u32, dport: u16) {
    if l4 == IPPROTO_UDP {
        warn!(ctx, "backstop drop: UDP to port {} not bound for the proxy (ethertype {:x})", dport, ethertype);
    } else {
        warn!(ctx, "backstop drop: protocol {} port {} not bound for the proxy (ethertype {:x})", l4, dport, ethertype);
    }
}

/// A packet the backstop could not read: dropped, failing closed.
#[inline(always)]
pub fn dropped_unreadable<C: EbpfContext>(ctx: &C) {
    warn!(ctx, "backstop drop: unreadable packet");
}

/// A redirected connect, for tracing what interception does.
#[inline(always)]
pub fn redirected<C: EbpfContext>(ctx: &C, dst: &[u8; 16], port: u16) {
    info!(ctx, "redirect {:i} port {} to the proxy", *dst, port);
}
