//! What every address hook does around the shared decision
//! (`gateway_common::redirect::plan`, tested on the host): read the
//! destination from the context, apply the plan, record the original
//! destination and rewrite the address.

use aya_ebpf::{
    bindings::bpf_sock_addr,
    helpers::{bpf_get_current_cgroup_id, bpf_get_current_pid_tgid},
    programs::SockAddrContext,
};
use gateway_common::{
    AF_INET, AF_INET6, OrigDst, ProxyConfig, Stat,
    redirect::{Plan, plan},
};

use crate::{
    addr::{ip4_bytes, ip6_bytes, ip6_words, mapped},
    caller::{current_is_exempt, current_is_proxy},
    maps::{ORIG_SK, PROXY_CONFIG, count},
};

pub const ALLOW: i32 = 1;
pub const DENY: i32 = 0;

/// The proxy settings, or `DENY` when userspace has written none.
#[inline(always)]
pub fn config() -> Result<ProxyConfig, i32> {
    PROXY_CONFIG.get(0).copied().ok_or(DENY)
}

/// Remembers where the socket meant to go, for the proxy (TCP, through
/// `sock_ops`), `getpeername()` and `recvmsg()`.
#[inline(always)]
pub fn record(ctx: &SockAddrContext, addr: [u8; 16], port: u16, family: u16) -> Result<(), i32> {
    // SAFETY: helper takes the context's socket; a null return is handled.
    let slot = unsafe { ORIG_SK.get_or_insert_ptr_mut(ctx, None) };
    if slot.is_null() {
        count(Stat::DeniedStorage);
        return Err(DENY);
    }
    let orig = OrigDst {
        addr,
        port,
        family,
        pid: (bpf_get_current_pid_tgid() >> 32) as u32,
        // SAFETY: helper without arguments.
        cgroup_id: unsafe { bpf_get_current_cgroup_id() },
    };
    // SAFETY: non-null storage slot of the right type.
    unsafe { *slot = orig };
    Ok(())
}

/// Counts a redirect by kind.
#[inline(always)]
pub fn count_redirect(cfg: &ProxyConfig, port: u16) {
    count(if cfg.dns_port != 0 && port == cfg.dns_port { Stat::DnsRedirected } else { Stat::Redirected });
}

/// The whole of `connect4|6` and `sendmsg4|6`: leave, deny, or record the
/// destination and rewrite it to the proxy.
#[inline(always)]
pub fn redirect(ctx: &SockAddrContext, v6: bool) -> Result<i32, i32> {
    // SAFETY: the kernel hands us a valid context for the program's run.
    let sa = unsafe { &mut *ctx.sock_addr };
    let Ok(cfg) = config() else {
        crate::log::denied_unconfigured(ctx);
        return Err(DENY);
    };
    if current_is_proxy(&cfg) {
        count(Stat::SkippedProxy);
        return Ok(ALLOW);
    }
    if current_is_exempt(&cfg) {
        count(Stat::Exempt);
        return Ok(ALLOW);
    }
    let dst = if v6 { ip6_bytes(sa.user_ip6) } else { mapped(ip4_bytes(sa.user_ip4)) };
    let port = u16::from_be(sa.user_port as u16);
    match plan(&cfg, sa.protocol, &dst, port) {
        Plan::Leave => Ok(ALLOW),
        Plan::Deny(stat) => {
            count(stat);
            crate::log::denied(ctx, stat, &dst, port, sa.protocol);
            Err(DENY)
        }
        Plan::Redirect { addr, port: to } => {
            if let Err(e) = record(ctx, dst, port, if v6 { AF_INET6 } else { AF_INET }) {
                crate::log::denied(ctx, Stat::DeniedStorage, &dst, port, sa.protocol);
                return Err(e);
            }
            crate::log::redirected(ctx, &dst, port);
            if v6 {
                write_ip6(sa, &addr);
            } else {
                sa.user_ip4 = u32::from_ne_bytes([addr[12], addr[13], addr[14], addr[15]]);
            }
            sa.user_port = u32::from(to.to_be());
            count_redirect(&cfg, to);
            Ok(ALLOW)
        }
    }
}

/// Four 32-bit stores: the verifier accepts only word-sized writes here.
#[inline(always)]
pub fn write_ip6(sa: &mut bpf_sock_addr, addr: &[u8; 16]) {
    let words = ip6_words(addr);
    let mut i = 0;
    while i < 4 {
        // SAFETY: in-bounds field of the context.
        unsafe { core::ptr::write_volatile(&mut sa.user_ip6[i], words[i]) };
        i += 1;
    }
}
