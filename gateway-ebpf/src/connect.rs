//! `cgroup/connect4` and `cgroup/connect6`: send TCP connects to the proxy.
//!
//! Every error path returns [`DENY`], so the caller's `connect()` fails with
//! `EPERM` rather than going out unproxied.

use aya_ebpf::{
    bindings::bpf_sock_addr,
    helpers::{bpf_get_current_cgroup_id, bpf_get_current_pid_tgid},
    macros::cgroup_sock_addr,
    programs::SockAddrContext,
};
use gateway_common::{AF_INET, AF_INET6, OrigDst, PROXY_HAS_V4, PROXY_HAS_V6, ProxyConfig, Stat};

use crate::{
    addr::{ip4_bytes, ip6_bytes, ip6_words, is_local_v4, is_local_v6, mapped, unmap_v4},
    maps::{ORIG_SK, PROXY_CONFIG, count},
};

pub const ALLOW: i32 = 1;
pub const DENY: i32 = 0;
const IPPROTO_TCP: u32 = 6;

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
    let Some(cfg) = leave_alone(sa)? else {
        return Ok(ALLOW);
    };
    let dst = ip4_bytes(sa.user_ip4);
    let port = u16::from_be(sa.user_port as u16);
    if is_local_v4(dst) || (cfg.flags & PROXY_HAS_V4 != 0 && dst == cfg.addr4 && port == cfg.port) {
        return Ok(ALLOW);
    }
    if cfg.flags & PROXY_HAS_V4 == 0 {
        count(Stat::DeniedNoProxy);
        return Err(DENY);
    }
    record(ctx, mapped(dst), port, AF_INET)?;
    sa.user_ip4 = u32::from_ne_bytes(cfg.addr4);
    sa.user_port = u32::from(cfg.port.to_be());
    count(Stat::Redirected);
    Ok(ALLOW)
}

fn try_connect6(ctx: &SockAddrContext) -> Result<i32, i32> {
    // SAFETY: as above.
    let sa = unsafe { &mut *ctx.sock_addr };
    let Some(cfg) = leave_alone(sa)? else {
        return Ok(ALLOW);
    };
    let dst = ip6_bytes(sa.user_ip6);
    let port = u16::from_be(sa.user_port as u16);
    // An IPv4-mapped destination travels as IPv4: send it to the IPv4 proxy.
    let proxy = match unmap_v4(&dst) {
        Some(v4) => {
            if is_local_v4(v4) || (cfg.flags & PROXY_HAS_V4 != 0 && v4 == cfg.addr4 && port == cfg.port) {
                return Ok(ALLOW);
            }
            if cfg.flags & PROXY_HAS_V4 == 0 {
                count(Stat::DeniedNoProxy);
                return Err(DENY);
            }
            mapped(cfg.addr4)
        }
        None => {
            if is_local_v6(&dst) || (cfg.flags & PROXY_HAS_V6 != 0 && dst == cfg.addr6 && port == cfg.port) {
                return Ok(ALLOW);
            }
            if cfg.flags & PROXY_HAS_V6 == 0 {
                count(Stat::DeniedNoProxy);
                return Err(DENY);
            }
            cfg.addr6
        }
    };
    record(ctx, dst, port, AF_INET6)?;
    let words = ip6_words(&proxy);
    // Four 32-bit stores: the verifier accepts only word-sized writes here.
    let mut i = 0;
    while i < 4 {
        // SAFETY: in-bounds field of the context.
        unsafe { core::ptr::write_volatile(&mut sa.user_ip6[i], words[i]) };
        i += 1;
    }
    sa.user_port = u32::from(cfg.port.to_be());
    count(Stat::Redirected);
    Ok(ALLOW)
}

/// `Ok(None)` for connects this interceptor does not touch: non-TCP sockets
/// and the proxy's own marked sockets. `Ok(Some(cfg))` otherwise.
#[inline(always)]
fn leave_alone(sa: &bpf_sock_addr) -> Result<Option<ProxyConfig>, i32> {
    if sa.protocol != IPPROTO_TCP {
        return Ok(None);
    }
    let cfg = *PROXY_CONFIG.get(0).ok_or(DENY)?;
    // SAFETY: `sk` is always set for sock_addr programs; checked anyway.
    let sk = unsafe { sa.__bindgen_anon_1.sk };
    if sk.is_null() {
        return Err(DENY);
    }
    // SAFETY: non-null kernel socket pointer, readable field.
    let mark = unsafe { (*sk).mark };
    if cfg.mark != 0 && mark == cfg.mark {
        count(Stat::SkippedMarked);
        return Ok(None);
    }
    Ok(Some(cfg))
}

#[inline(always)]
fn record(ctx: &SockAddrContext, addr: [u8; 16], port: u16, family: u16) -> Result<(), i32> {
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
