//! The address plan of the test topology. Only documentation and benchmarking ranges are used:
//! 198.18.0.0/15 for the node and pods, 203.0.113.0/24 for the "internet", 2001:db8::/32 for IPv6.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// The node's proxy address (on its loopback), which pods reach through their default route.
pub const PROXY_V4: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 1);
pub const PROXY_V6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1);

/// pod-a and its gateway (the node's end of the link).
pub const POD_A_V4: Ipv4Addr = Ipv4Addr::new(198, 18, 1, 2);
pub const POD_A_GW_V4: Ipv4Addr = Ipv4Addr::new(198, 18, 1, 1);
pub const POD_A_V6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 1, 0, 0, 0, 0, 2);
pub const POD_A_GW_V6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 1, 0, 0, 0, 0, 1);

/// pod-b and its gateway.
pub const POD_B_V4: Ipv4Addr = Ipv4Addr::new(198, 18, 2, 2);
pub const POD_B_GW_V4: Ipv4Addr = Ipv4Addr::new(198, 18, 2, 1);
pub const POD_B_V6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 2, 0, 0, 0, 0, 2);
pub const POD_B_GW_V6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 2, 0, 0, 0, 0, 1);

/// The node's address on the internet link: the source the servers see for proxied traffic.
pub const NODE_INTERNET_V4: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 1);
pub const NODE_INTERNET_V6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0x113, 0, 0, 0, 0, 1);

/// The node's and the egress gateway's ends of their link.
pub const NODE_EGRESS_V4: Ipv4Addr = Ipv4Addr::new(198, 18, 10, 1);
pub const EGRESS_GW_V4: Ipv4Addr = Ipv4Addr::new(198, 18, 10, 2);
pub const NODE_EGRESS_V6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0x10, 0, 0, 0, 0, 1);
pub const EGRESS_GW_V6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0x10, 0, 0, 0, 0, 2);

/// How many addresses the internet host has in each family (`.10`, `.11`, …).
pub const INTERNET_HOST_COUNT: u8 = 4;

/// The main internet host, 203.0.113.10.
pub const INTERNET_V4: Ipv4Addr = internet_v4(0);
/// The main internet host, 2001:db8:113::10.
pub const INTERNET_V6: Ipv6Addr = internet_v6(0);

/// The `i`-th address of the internet host: 203.0.113.(10 + i).
pub const fn internet_v4(i: u8) -> Ipv4Addr {
    Ipv4Addr::new(203, 0, 113, 10 + i)
}

/// The `i`-th IPv6 address of the internet host: 2001:db8:113::(0x10 + i).
pub const fn internet_v6(i: u8) -> Ipv6Addr {
    Ipv6Addr::new(0x2001, 0xdb8, 0x113, 0, 0, 0, 0, 0x10 + i as u16)
}

/// `addr:port` as a socket address.
pub fn sock(addr: impl Into<IpAddr>, port: u16) -> SocketAddr {
    SocketAddr::new(addr.into(), port)
}

/// The same socket address with an IPv4-mapped IPv6 address turned back into IPv4.
pub fn canonical(addr: SocketAddr) -> SocketAddr {
    SocketAddr::new(addr.ip().to_canonical(), addr.port())
}

/// `[::ffff:a.b.c.d]:port`, the IPv4-mapped form an AF_INET6 socket uses for an IPv4 peer.
pub fn v4_mapped(addr: Ipv4Addr, port: u16) -> SocketAddr {
    SocketAddr::new(IpAddr::V6(addr.to_ipv6_mapped()), port)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plan_stays_in_documentation_ranges() {
        assert_eq!(INTERNET_V4.to_string(), "203.0.113.10");
        assert_eq!(INTERNET_V6.to_string(), "2001:db8:113::10");
        assert_eq!(internet_v4(3).to_string(), "203.0.113.13");
        assert_eq!(internet_v6(1).to_string(), "2001:db8:113::11");
    }

    #[test]
    fn mapped_addresses_canonicalise() {
        let mapped = v4_mapped(INTERNET_V4, 7);
        assert_eq!(mapped.to_string(), "[::ffff:203.0.113.10]:7");
        assert_eq!(canonical(mapped), sock(INTERNET_V4, 7));
    }
}
