//! `cgroup/getpeername4|6`: a redirected socket's peer reads as the original
//! destination, so applications see the address they dialled.

use aya_ebpf::{macros::cgroup_sock_addr, programs::SockAddrContext};
use gateway_common::{OrigDst, addr::unmap_v4};

use crate::{
    maps::ORIG_SK,
    redirect::{ALLOW, write_ip6},
};

#[cgroup_sock_addr(getpeername4)]
pub fn gw_getpeername4(ctx: SockAddrContext) -> i32 {
    crate::variant::mark();
    if let Some(orig) = stored(&ctx) {
        if let Some(v4) = unmap_v4(&orig.addr) {
            // SAFETY: valid context.
            let sa = unsafe { &mut *ctx.sock_addr };
            sa.user_ip4 = u32::from_ne_bytes(v4);
            sa.user_port = u32::from(orig.port.to_be());
        }
    }
    ALLOW
}

#[cgroup_sock_addr(getpeername6)]
pub fn gw_getpeername6(ctx: SockAddrContext) -> i32 {
    crate::variant::mark();
    if let Some(orig) = stored(&ctx) {
        // SAFETY: valid context.
        let sa = unsafe { &mut *ctx.sock_addr };
        write_ip6(sa, &orig.addr);
        sa.user_port = u32::from(orig.port.to_be());
    }
    ALLOW
}

#[inline(always)]
fn stored(ctx: &SockAddrContext) -> Option<OrigDst> {
    // SAFETY: lookup without create; null handled.
    let p = unsafe { ORIG_SK.get_ptr_mut(ctx) };
    if p.is_null() { None } else { Some(unsafe { *p }) }
}
