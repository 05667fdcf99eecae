//! Plain-old-data shared by the kernel programs and userspace.
//!
//! Every type is `#[repr(C)]` with explicit padding, so both sides agree on
//! its bytes. Addresses are kept as 16 bytes in network order: IPv4 as an
//! IPv4-mapped IPv6 address (`::ffff:a.b.c.d`), so one key shape serves both
//! families. Ports are in host order.
//!
//! Besides the data, two pure pieces of the kernel programs live here so
//! they are tested on the host: `redirect::plan`, the decision every address
//! hook shares, and the `addr` helpers it uses.
#![no_std]

pub mod addr;
pub mod redirect;

#[cfg(test)]
mod tests;

/// `AF_INET`, as the kernel spells it.
pub const AF_INET: u16 = 2;
/// `AF_INET6`, as the kernel spells it.
pub const AF_INET6: u16 = 10;

/// Pin names of the maps under `<bpffs>/maps/`.
pub mod map_names {
    /// Socket-local storage: the original destination of each redirected socket.
    pub const ORIG_SK: &str = "ORIG_SK";
    /// The original destination keyed by the connection's 4-tuple.
    pub const ORIG_TUPLE: &str = "ORIG_TUPLE";
    /// One `u64` at index 0: the build stamp of the programs pinned beside it.
    pub const VERSION: &str = "VERSION";
    /// Pod cgroups (by cgroup id) that are never intercepted.
    pub const EXEMPT_CGROUPS: &str = "EXEMPT_CGROUPS";
    /// One [`ProxyConfig`](super::ProxyConfig) entry at index 0.
    pub const PROXY_CONFIG: &str = "PROXY_CONFIG";
    /// Per-CPU counters indexed by [`Stat`](super::Stat).
    pub const STATS: &str = "STATS";
    /// Socket-local storage marking accepted (inbound) connections, whose
    /// replies the egress backstop lets out.
    pub const INBOUND_SK: &str = "INBOUND_SK";
    /// Sockets relayed in the kernel, keyed by socket cookie.
    pub const RELAY_SOCKS: &str = "RELAY_SOCKS";
    /// Each relayed socket's peer and byte count, keyed by socket cookie.
    pub const RELAY_PEERS: &str = "RELAY_PEERS";
}

/// Capacity of the relay maps: two entries per kernel-relayed connection.
pub const RELAY_CAPACITY: u32 = 65_536;

/// One side of a connection relayed in the kernel (`--relay sockmap`).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct RelayPeer {
    /// Socket cookie of the socket this one's bytes go to.
    pub peer: u64,
    /// Bytes the kernel moved from this socket to the peer.
    pub bytes: u64,
    /// Non-zero once bytes stayed on this socket because the peer was not
    /// in the map yet: their order can no longer be kept.
    pub stranded: u32,
    /// Always zero.
    pub _pad: u32,
}

/// Capacity of the 4-tuple map: the most connections the proxy can have in
/// flight at once. Entries are removed when the client socket closes.
pub const ORIG_TUPLE_CAPACITY: u32 = 65_536;

/// Where the original destination of a redirected connection was.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OrigDst {
    /// Destination address, 16 bytes, network order (IPv4-mapped for IPv4).
    pub addr: [u8; 16],
    /// Destination port, host order.
    pub port: u16,
    /// Address family of the socket that called `connect()`.
    pub family: u16,
    /// Thread-group id of the caller.
    pub pid: u32,
    /// cgroup v2 id of the caller.
    pub cgroup_id: u64,
}

/// A TCP connection as the client socket sees it; the proxy builds the same
/// key from the accepted socket's (peer, local) addresses.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct SockTuple {
    pub src_addr: [u8; 16],
    pub dst_addr: [u8; 16],
    pub src_port: u16,
    pub dst_port: u16,
    /// Always zero: keys are compared byte by byte.
    pub _pad: u32,
}

/// Where the kernel programs send intercepted connections.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct ProxyConfig {
    /// IPv4 proxy address, network order.
    pub addr4: [u8; 4],
    /// IPv6 proxy address, network order.
    pub addr6: [u8; 16],
    /// Proxy port, host order.
    pub port: u16,
    /// [`PROXY_HAS_V4`] | [`PROXY_HAS_V6`]. With neither set, connects are denied.
    pub flags: u16,
    /// Always zero.
    pub _pad0: u32,
    /// Port of the proxy's DNS server; 0 when it runs none. Host order.
    pub dns_port: u16,
    /// Always zero.
    pub _pad: u16,
    /// cgroup v2 id of the cgroup the proxy runs in. Its sockets, and only
    /// they, are left alone: nothing a workload can set on a socket (a mark,
    /// an option) makes it pass for the proxy's.
    pub proxy_cgroup: u64,
    /// The cgroup levels (depth below the cgroup2 root) at which pod cgroups
    /// sit, first and last: an ancestor at one of them listed in
    /// `EXEMPT_CGROUPS` exempts the caller. `0, 0`: no exemptions.
    pub exempt_level_min: u32,
    pub exempt_level_max: u32,
}

/// Capacity of the exemption map: opted-out pods on one node.
pub const EXEMPT_CAPACITY: u32 = 16_384;
/// The most cgroup levels an exemption lookup walks.
pub const EXEMPT_MAX_LEVELS: u32 = 4;

pub const PROXY_HAS_V4: u16 = 1;
pub const PROXY_HAS_V6: u16 = 2;
/// UDP to any port but 53 is denied (`EPERM`).
pub const PROXY_DENY_UDP: u16 = 4;
/// The egress backstop drops every packet not bound for the proxy.
pub const PROXY_BACKSTOP: u16 = 8;

/// The port DNS clients use; captured and sent to the proxy's DNS server.
pub const DNS_PORT: u16 = 53;

/// Counters kept by the kernel programs, one slot each in the `STATS` map.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stat {
    /// connect() rewritten to the proxy.
    Redirected = 0,
    /// connect() denied: no proxy configured for that family.
    DeniedNoProxy = 1,
    /// connect() denied: socket storage could not be allocated.
    DeniedStorage = 2,
    /// Established connection whose 4-tuple record could not be stored; the
    /// proxy closes it.
    TupleInsertFailed = 3,
    /// connect() from the proxy itself (its cgroup), left alone.
    SkippedProxy = 4,
    /// UDP connect()/sendmsg() to a port other than 53, denied.
    UdpDenied = 5,
    /// A DNS query (UDP or TCP port 53) sent to the proxy's DNS server.
    DnsRedirected = 6,
    /// A packet the egress backstop dropped: not bound for the proxy.
    BackstopDropped = 7,
    /// connect() or datagram from an exempted (opted-out) pod, left alone.
    Exempt = 8,
}

impl Stat {
    pub const COUNT: u32 = 9;
    pub const ALL: [Stat; Self::COUNT as usize] = [
        Stat::Redirected,
        Stat::DeniedNoProxy,
        Stat::DeniedStorage,
        Stat::TupleInsertFailed,
        Stat::SkippedProxy,
        Stat::UdpDenied,
        Stat::DnsRedirected,
        Stat::BackstopDropped,
        Stat::Exempt,
    ];

    pub const fn name(self) -> &'static str {
        match self {
            Stat::Redirected => "redirected",
            Stat::DeniedNoProxy => "denied_no_proxy",
            Stat::DeniedStorage => "denied_storage",
            Stat::TupleInsertFailed => "tuple_insert_failed",
            Stat::SkippedProxy => "skipped_proxy",
            Stat::UdpDenied => "udp_denied",
            Stat::DnsRedirected => "dns_redirected",
            Stat::BackstopDropped => "backstop_dropped",
            Stat::Exempt => "exempt",
        }
    }
}

/// Maps an IPv4 address (network order bytes) into the 16-byte form.
pub const fn v4_mapped(a: [u8; 4]) -> [u8; 16] {
    [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, a[0], a[1], a[2], a[3]]
}

#[cfg(feature = "user")]
mod pod {
    // SAFETY: all are repr(C) with no implicit padding and valid for any bytes.
    unsafe impl aya::Pod for super::OrigDst {}
    unsafe impl aya::Pod for super::SockTuple {}
    unsafe impl aya::Pod for super::ProxyConfig {}
    unsafe impl aya::Pod for super::RelayPeer {}
}
