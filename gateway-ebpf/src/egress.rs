//! `cgroup_skb/egress`: the backstop. When the node's policy is
//! REGISTRY_ONLY, a packet a pod sends must be bound for the proxy (its TCP
//! port or its DNS port), stay on loopback, come from the proxy's own cgroup
//! or an exempted pod, or
//! answer a connection the pod accepted. Anything else (raw sockets, ICMP,
//! whatever the address hooks did not see) is dropped and counted.

use core::ptr::read_volatile;

use aya_ebpf::{
    helpers::generated::{bpf_sk_fullsock, bpf_sk_storage_get, bpf_skb_load_bytes},
    macros::cgroup_skb,
    programs::SkBuffContext,
};
use gateway_common::{
    PROXY_BACKSTOP, PROXY_HAS_V4, PROXY_HAS_V6, ProxyConfig, Stat,
    redirect::{IPPROTO_TCP, IPPROTO_UDP},
};

use crate::{
    caller::{skb_is_exempt, skb_is_proxy},
    maps::{PROXY_CONFIG, count, inbound_sk_ptr},
};

const PASS: i32 = 1;
const DROP: i32 = 0;
const TCP_LISTEN: u32 = 10;
const ETH_P_IP: u32 = 0x0800;
const ETH_P_IPV6: u32 = 0x86dd;

#[cgroup_skb(egress)]
pub fn gw_egress(ctx: SkBuffContext) -> i32 {
    crate::variant::mark();
    match try_egress(&ctx) {
        Ok(v) => v,
        Err(_) => {
            count(Stat::BackstopDropped);
            crate::log::dropped_unreadable(&ctx);
            DROP
        }
    }
}

fn try_egress(ctx: &SkBuffContext) -> Result<i32, i32> {
    let cfg = *PROXY_CONFIG.get(0).ok_or(DROP)?;
    if cfg.flags & PROXY_BACKSTOP == 0 {
        return Ok(PASS);
    }
    let skb = ctx.skb.skb;
    // SAFETY: valid context; plain field loads.
    let protocol = unsafe { read_volatile(&(*skb).protocol) };
    if skb_is_proxy(skb, &cfg) || skb_is_exempt(skb, &cfg) {
        return Ok(PASS);
    }
    if answers_inbound(ctx) {
        return Ok(PASS);
    }
    let ethertype = u16::from_be(protocol as u16) as u32;
    let verdict = match ethertype {
        ETH_P_IP => ipv4_allowed(ctx, &cfg)?,
        ETH_P_IPV6 => ipv6_allowed(ctx, &cfg)?,
        _ => Verdict { allowed: false, l4: 0, dport: 0 },
    };
    if verdict.allowed {
        Ok(PASS)
    } else {
        count(Stat::BackstopDropped);
        crate::log::dropped(ctx, ethertype, verdict.l4, verdict.dport);
        Ok(DROP)
    }
}

/// Whether a packet may leave, and what it was (for the log).
struct Verdict {
    allowed: bool,
    l4: u32,
    dport: u16,
}

/// SYN-ACKs (sent on behalf of a listener) and packets of accepted sockets.
#[inline(always)]
fn answers_inbound(ctx: &SkBuffContext) -> bool {
    // SAFETY: valid context; `sk` may be null and is checked.
    let sk = unsafe { read_volatile(&(*ctx.skb.skb).__bindgen_anon_2.sk) };
    if sk.is_null() {
        return false;
    }
    // SAFETY: helper accepts a socket-common pointer and may return null.
    let full = unsafe { bpf_sk_fullsock(sk) };
    if full.is_null() {
        return false;
    }
    // SAFETY: non-null full socket.
    if unsafe { read_volatile(&(*full).state) } == TCP_LISTEN {
        return true;
    }
    // SAFETY: lookup only, no create.
    let flag = unsafe { bpf_sk_storage_get(inbound_sk_ptr(), full.cast(), core::ptr::null_mut(), 0) };
    !flag.is_null()
}

#[inline(always)]
fn ipv4_allowed(ctx: &SkBuffContext, cfg: &ProxyConfig) -> Result<Verdict, i32> {
    let hdr: [u8; 20] = load(ctx, 0)?;
    let dst = [hdr[16], hdr[17], hdr[18], hdr[19]];
    let l4 = u32::from(hdr[9]);
    if dst[0] == 127 {
        return Ok(Verdict { allowed: true, l4, dport: 0 });
    }
    let ihl = usize::from(hdr[0] & 0x0f) * 4;
    let to_proxy = cfg.flags & PROXY_HAS_V4 != 0 && dst == cfg.addr4;
    port_allowed(ctx, cfg, l4, ihl, to_proxy)
}

#[inline(always)]
fn ipv6_allowed(ctx: &SkBuffContext, cfg: &ProxyConfig) -> Result<Verdict, i32> {
    let hdr: [u8; 40] = load(ctx, 0)?;
    let mut dst = [0u8; 16];
    dst.copy_from_slice(&hdr[24..40]);
    let l4 = u32::from(hdr[6]);
    let loopback = dst[..15].iter().all(|b| *b == 0) && dst[15] == 1;
    if loopback {
        return Ok(Verdict { allowed: true, l4, dport: 0 });
    }
    let to_proxy = cfg.flags & PROXY_HAS_V6 != 0 && dst == cfg.addr6;
    port_allowed(ctx, cfg, l4, 40, to_proxy)
}

/// To the proxy: TCP to its proxy or DNS port, UDP to its DNS port. The
/// port is read for TCP and UDP whatever the address, for the log.
#[inline(always)]
fn port_allowed(ctx: &SkBuffContext, cfg: &ProxyConfig, l4: u32, offset: usize, to_proxy: bool) -> Result<Verdict, i32> {
    if l4 != IPPROTO_TCP && l4 != IPPROTO_UDP {
        return Ok(Verdict { allowed: false, l4, dport: 0 });
    }
    if offset > 60 {
        return Err(DROP);
    }
    let ports: [u8; 4] = load(ctx, offset)?;
    let dport = u16::from_be_bytes([ports[2], ports[3]]);
    let dns = cfg.dns_port != 0 && dport == cfg.dns_port;
    let allowed = to_proxy
        && match l4 {
            IPPROTO_TCP => dport == cfg.port || dns,
            _ => dns,
        };
    Ok(Verdict { allowed, l4, dport })
}

/// `N` packet bytes from `offset`, with a constant length the verifier can
/// check (a computed one may be zero, which it refuses).
#[inline(always)]
fn load<const N: usize>(ctx: &SkBuffContext, offset: usize) -> Result<[u8; N], i32> {
    let mut buf = [0u8; N];
    // SAFETY: `buf` is N writable bytes; the helper checks the packet bounds.
    let ret = unsafe { bpf_skb_load_bytes(ctx.skb.skb.cast(), offset as u32, buf.as_mut_ptr().cast(), N as u32) };
    if ret == 0 { Ok(buf) } else { Err(DROP) }
}
