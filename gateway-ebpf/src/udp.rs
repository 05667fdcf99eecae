//! `cgroup/sendmsg4|6` and `cgroup/recvmsg4|6`: unconnected UDP.
//!
//! A datagram to port 53 goes to the proxy's DNS server, and the reply reads
//! as coming from the server the client addressed. Other UDP is denied when
//! the node's policy says so.

use aya_ebpf::{macros::cgroup_sock_addr, programs::SockAddrContext};
use gateway_common::{OrigDst, addr::unmap_v4};

use crate::{
    addr::{ip4_bytes, ip6_bytes, mapped},
    maps::ORIG_SK,
    redirect::{ALLOW, config, redirect, write_ip6},
};

#[cgroup_sock_addr(sendmsg4)]
pub fn gw_sendmsg4(ctx: SockAddrContext) -> i32 {
    crate::variant::mark();
    match redirect(&ctx, false) {
        Ok(v) | Err(v) => v,
    }
}

#[cgroup_sock_addr(sendmsg6)]
pub fn gw_sendmsg6(ctx: SockAddrContext) -> i32 {
    crate::variant::mark();
    match redirect(&ctx, true) {
        Ok(v) | Err(v) => v,
    }
}

#[cgroup_sock_addr(recvmsg4)]
pub fn gw_recvmsg4(ctx: SockAddrContext) -> i32 {
    crate::variant::mark();
    restore_source(&ctx, false);
    ALLOW
}

#[cgroup_sock_addr(recvmsg6)]
pub fn gw_recvmsg6(ctx: SockAddrContext) -> i32 {
    crate::variant::mark();
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
