//! `cgroup/connect4` and `cgroup/connect6`: send TCP connects, and UDP
//! connects to port 53, to the proxy; deny other UDP when the node's policy
//! says so.
//!
//! Every error path returns [`DENY`], so the caller's `connect()` fails with
//! `EPERM` rather than going out unproxied.

use aya_ebpf::{macros::cgroup_sock_addr, programs::SockAddrContext};
use gateway_common::{AF_INET, AF_INET6};

use crate::{
    addr::{ip4_bytes, ip6_bytes, ip6_words, mapped},
    maps::count,
    redirect::{ALLOW, DENY, Plan, config, count_redirect, is_marked, plan, record},
};

#[cgroup_sock_addr(connect4)]
pub fn gw_connect4(ctx: SockAddrContext) -> i32 {
    match try_connect4(&ctx) {
        Ok(v) | Err(v) => v,
    }
}

#[cgroup_sock_addr(connect6)]
pub fn gw_connect6(ctx: SockAddrContext) -> i32 {
    match try_connect6(&ctx) {
        Ok(v) | Err(v) => v,
    }
}

fn try_connect4(ctx: &SockAddrContext) -> Result<i32, i32> {
    // SAFETY: the kernel hands us a valid context for the program's run.
    let sa = unsafe { &mut *ctx.sock_addr };
    let cfg = config()?;
    if is_marked(sa, &cfg)? {
        count(gateway_common::Stat::SkippedMarked);
        return Ok(ALLOW);
    }
    let dst = mapped(ip4_bytes(sa.user_ip4));
    let port = u16::from_be(sa.user_port as u16);
    match plan(&cfg, sa.protocol, &dst, port) {
        Plan::Leave => Ok(ALLOW),
        Plan::Deny(stat) => {
            count(stat);
            Err(DENY)
        }
        Plan::Redirect { addr, port: to } => {
            record(ctx, dst, port, AF_INET)?;
            sa.user_ip4 = u32::from_ne_bytes([addr[12], addr[13], addr[14], addr[15]]);
            sa.user_port = u32::from(to.to_be());
            count_redirect(&cfg, to);
            Ok(ALLOW)
        }
    }
}

fn try_connect6(ctx: &SockAddrContext) -> Result<i32, i32> {
    // SAFETY: as above.
    let sa = unsafe { &mut *ctx.sock_addr };
    let cfg = config()?;
    if is_marked(sa, &cfg)? {
        count(gateway_common::Stat::SkippedMarked);
        return Ok(ALLOW);
    }
    let dst = ip6_bytes(sa.user_ip6);
    let port = u16::from_be(sa.user_port as u16);
    match plan(&cfg, sa.protocol, &dst, port) {
        Plan::Leave => Ok(ALLOW),
        Plan::Deny(stat) => {
            count(stat);
            Err(DENY)
        }
        Plan::Redirect { addr, port: to } => {
            record(ctx, dst, port, AF_INET6)?;
            write_ip6(sa, &addr);
            sa.user_port = u32::from(to.to_be());
            count_redirect(&cfg, to);
            Ok(ALLOW)
        }
    }
}

/// Four 32-bit stores: the verifier accepts only word-sized writes here.
#[inline(always)]
pub fn write_ip6(sa: &mut aya_ebpf::bindings::bpf_sock_addr, addr: &[u8; 16]) {
    let words = ip6_words(addr);
    let mut i = 0;
    while i < 4 {
        // SAFETY: in-bounds field of the context.
        unsafe { core::ptr::write_volatile(&mut sa.user_ip6[i], words[i]) };
        i += 1;
    }
}

