//! The one decision every address hook of the kernel programs shares
//! (`cgroup/connect4|6`, `cgroup/sendmsg4|6`): leave a destination alone,
//! deny it, or send it to the proxy, and to which port.
//!
//! A pure function of the proxy settings and the destination, so it is
//! tested on the host; the kernel programs only read the context and apply
//! the verdict. Destinations are in the 16-byte form (IPv4 mapped into
//! IPv6), so IPv4, IPv6 and IPv4-mapped sockets follow the same rules.

use crate::{
    DNS_PORT, PROXY_DENY_UDP, PROXY_HAS_V4, PROXY_HAS_V6, ProxyConfig, Stat,
    addr::{is_local_v4, is_local_v6, unmap_v4},
    v4_mapped,
};

/// `IPPROTO_TCP`, as the kernel spells it.
pub const IPPROTO_TCP: u32 = 6;
/// `IPPROTO_UDP`, as the kernel spells it.
pub const IPPROTO_UDP: u32 = 17;

/// What to do with one `connect()` or datagram.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Plan {
    /// Let it through unchanged.
    Leave,
    /// Refuse it (`EPERM`), counting it under this stat.
    Deny(Stat),
    /// Rewrite to this proxy address (16-byte form) and port.
    Redirect { addr: [u8; 16], port: u16 },
}

/// The plan for `protocol` (`IPPROTO_*`) to `dst` (16-byte form) at `port`
/// (host order):
/// - loopback and unspecified destinations are left alone;
/// - the proxy's own address, at its proxy port (TCP) or its DNS port, is
///   left alone;
/// - TCP goes to the proxy port, or to the DNS port when it is for port 53
///   and the proxy serves DNS;
/// - UDP to port 53 goes to the DNS port; other UDP is denied under
///   [`PROXY_DENY_UDP`] and left alone otherwise;
/// - other protocols are left alone;
/// - a redirect with no proxy address for the destination's family is
///   denied: nothing goes out unproxied.
#[inline(always)]
pub fn plan(cfg: &ProxyConfig, protocol: u32, dst: &[u8; 16], port: u16) -> Plan {
    let v4 = unmap_v4(dst);
    let local = match v4 {
        Some(a) => is_local_v4(a),
        None => is_local_v6(dst),
    };
    if local {
        return Plan::Leave;
    }
    let (has, proxy) = match v4 {
        Some(_) => (PROXY_HAS_V4, v4_mapped(cfg.addr4)),
        None => (PROXY_HAS_V6, cfg.addr6),
    };
    let to_proxy = cfg.flags & has != 0 && *dst == proxy;
    let dns = port == DNS_PORT && cfg.dns_port != 0;
    let to_port = match protocol {
        IPPROTO_TCP => {
            if to_proxy && (port == cfg.port || (cfg.dns_port != 0 && port == cfg.dns_port)) {
                return Plan::Leave;
            }
            if dns { cfg.dns_port } else { cfg.port }
        }
        IPPROTO_UDP => {
            if to_proxy && cfg.dns_port != 0 && port == cfg.dns_port {
                return Plan::Leave;
            }
            if dns {
                cfg.dns_port
            } else if cfg.flags & PROXY_DENY_UDP != 0 {
                return Plan::Deny(Stat::UdpDenied);
            } else {
                return Plan::Leave;
            }
        }
        _ => return Plan::Leave,
    };
    if cfg.flags & has == 0 {
        return Plan::Deny(Stat::DeniedNoProxy);
    }
    Plan::Redirect { addr: proxy, port: to_port }
}
