//! `cgroup/sendmsg4|6` and `cgroup/recvmsg4|6`: unconnected UDP.
//!
//! A datagram to port 53 goes to the proxy's DNS server, and the reply reads
//! as coming from the server the client addressed. Other UDP is denied when
//! the node's policy says so.

use aya_ebpf::{macros::cgroup_sock_addr, programs::SockAddrContext};
use gateway_common::{AF_INET, AF_INET6, OrigDst};

use crate::{
    addr::{ip4_bytes, ip6_bytes, mapped, unmap_v4},
    connect::write_ip6,
    maps::{ORIG_SK, count},
    redirect::{ALLOW, DENY, Plan, config, count_redirect, is_marked, plan, record},
};

#[cgroup_sock_addr(sendmsg4)]
pub fn gw_sendmsg4(ctx: SockAddrContext) -> i32 {
    match try_sendmsg(&ctx, false) {
        Ok(v) | Err(v) => v,
    }
}

#[cgroup_sock_addr(sendmsg6)]
pub fn gw_sendmsg6(ctx: SockAddrContext) -> i32 {
    match try_sendmsg(&ctx, true) {
        Ok(v) | Err(v) => v,
    }
}

#[inline(always)]
fn try_sendmsg(ctx: &SockAddrContext, v6: bool) -> Result<i32, i32> {
    // SAFETY: valid context for the program's run.
    let sa = unsafe { &mut *ctx.sock_addr };
    let cfg = config()?;
    if is_marked(sa, &cfg)? {
        return Ok(ALLOW);
    }
    let dst = if v6 { ip6_bytes(sa.user_ip6) } else { mapped(ip4_bytes(sa.user_ip4)) };
    let port = u16::from_be(sa.user_port as u16);
    match plan(&cfg, sa.protocol, &dst, port) {
        Plan::Leave => Ok(ALLOW),
        Plan::Deny(stat) => {
            count(stat);
            Err(DENY)
        }
        Plan::Redirect { addr, port: to } => {
            record(ctx, dst, port, if v6 { AF_INET6 } else { AF_INET })?;
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

#[cgroup_sock_addr(recvmsg4)]
pub fn gw_recvmsg4(ctx: SockAddrContext) -> i32 {
    restore_source(&ctx, false);
    ALLOW
}

#[cgroup_sock_addr(recvmsg6)]
pub fn gw_recvmsg6(ctx: SockAddrContext) -> i32 {
    restore_source(&ctx, true);
    ALLOW
}

/// A reply from the proxy's DNS server reads as from the server the socket
/// last addressed.
#[inline(always)]
fn restore_source(ctx: &SockAddrContext, v6: bool) {
    let Ok(cfg) = config() else { return };
    if cfg.dns_port == 0 {
        return;
    }
    // SAFETY: valid context.
    let sa = unsafe { &mut *ctx.sock_addr };
    if u16::from_be(sa.user_port as u16) != cfg.dns_port {
        return;
    }
    let src = if v6 { ip6_bytes(sa.user_ip6) } else { mapped(ip4_bytes(sa.user_ip4)) };
    let from_proxy = match unmap_v4(&src) {
        Some(a) => a == cfg.addr4,
        None => src == cfg.addr6,
    };
    if !from_proxy {
        return;
    }
    // SAFETY: lookup without create; null handled.
    let p = unsafe { ORIG_SK.get_ptr_mut(ctx) };
    if p.is_null() {
        return;
    }
    // SAFETY: non-null storage of type OrigDst.
    let orig: OrigDst = unsafe { *p };
    if v6 {
        write_ip6(sa, &orig.addr);
    } else if let Some(a) = unmap_v4(&orig.addr) {
        sa.user_ip4 = u32::from_ne_bytes(a);
    } else {
        return;
    }
    sa.user_port = u32::from(orig.port.to_be());
}
