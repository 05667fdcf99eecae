//! The ways a client reaches the server, and the addresses each uses. Mode C
//! is the gateway as it runs by default (`--relay auto`); for the relay
//! figures it also runs once per relay (`--relay-port` picks it by the
//! mode's server port): Cc copies, Cs splices, Ck relays in the kernel.
//!
//! Mode Dh is HAProxy parsing HTTP on both sides (`mode http`); it serves
//! only the HTTP figures, where it is what an HTTP-aware proxy costs next to
//! C, which parses HTTP too.
//!
//! Every service listens on one port per mode, so the iptables rules of
//! modes B, D and Dh (keyed by destination port) never touch the other modes.
//!
//! Clients of modes B, D and Dh run in a namespace of their own: netfilter's
//! conntrack in the node would otherwise see a mode C connection (rewritten
//! to the proxy's address) clash with the reply tuple of an earlier DNAT'd
//! one from the same port, and remap its source port.
//!
//! ```text
//!  client     198.18.1.2 ── c0 198.18.1.1 ┐  (A, C, E)
//!                                         node (lo 198.18.0.1: proxies) ── s0 198.19.0.1 ── 198.19.0.10 server
//!  client-nat 198.18.2.2 ── c1 198.18.2.1 ┘  (B, D, Dh: iptables DNAT on c1)
//! ```

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};

pub const CLIENT_IP: Ipv4Addr = Ipv4Addr::new(198, 18, 1, 2);
pub const NODE_CLIENT_SIDE: Ipv4Addr = Ipv4Addr::new(198, 18, 1, 1);
pub const NAT_CLIENT_IP: Ipv4Addr = Ipv4Addr::new(198, 18, 2, 2);
pub const NODE_NAT_CLIENT_SIDE: Ipv4Addr = Ipv4Addr::new(198, 18, 2, 1);
pub const PROXY_IP: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 1);
pub const NODE_SERVER_SIDE: Ipv4Addr = Ipv4Addr::new(198, 19, 0, 1);
pub const SERVER_IP: Ipv4Addr = Ipv4Addr::new(198, 19, 0, 10);

/// The gateway's transparent proxy port (eBPF and iptables interception).
pub const GATEWAY_PORT: u16 = 15001;
/// HAProxy's transparent listener in TCP mode (D).
pub const HAPROXY_PORT: u16 = 15004;
/// HAProxy's transparent listener in HTTP mode (Dh).
pub const HAPROXY_HTTP_PORT: u16 = 15005;
/// The gateway's admin endpoint, inside the node namespace.
pub const ADMIN: &str = "127.0.0.1:15000";
/// Explicit listeners are at the service's base port plus this.
const EXPLICIT_OFFSET: u16 = 10_000;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Mode {
    /// A: no interception; the physical limit.
    Direct,
    /// B: iptables DNAT to the gateway, which reads SO_ORIGINAL_DST.
    Iptables,
    /// C: the gateway's kernel programs redirect connect(); its default
    /// relay (`auto`).
    Ebpf,
    /// D: iptables DNAT to HAProxy, a transparent TCP forwarder.
    Haproxy,
    /// E: the client addresses the gateway's explicit listener.
    Explicit,
    /// Cs: as C, the stream relayed with splice(2).
    EbpfSplice,
    /// Ck: as C, the stream relayed in the kernel (SOCKHASH verdict).
    EbpfSockmap,
    /// Cc: as C, every stream copied through the proxy.
    EbpfCopy,
    /// Dh: iptables DNAT to HAProxy in `mode http`, parsing requests and
    /// responses and keeping its server connections alive.
    HaproxyHttp,
}

impl Mode {
    /// Every mode, in the order of the report's columns.
    pub const ALL: [Mode; 9] = [
        Mode::Direct,
        Mode::Iptables,
        Mode::Ebpf,
        Mode::EbpfCopy,
        Mode::EbpfSplice,
        Mode::EbpfSockmap,
        Mode::Haproxy,
        Mode::HaproxyHttp,
        Mode::Explicit,
    ];
    /// The HTTP figures: A to E (the relay plays no part, as HTTP is parsed
    /// request by request in every relay mode) and Dh.
    pub const HTTP: [Mode; 6] = [Mode::Direct, Mode::Iptables, Mode::Ebpf, Mode::Haproxy, Mode::HaproxyHttp, Mode::Explicit];
    /// The modes that run through a proxy, for comparisons.
    pub const PROXIED: [Mode; 8] = [
        Mode::Iptables,
        Mode::Ebpf,
        Mode::EbpfCopy,
        Mode::EbpfSplice,
        Mode::EbpfSockmap,
        Mode::Haproxy,
        Mode::HaproxyHttp,
        Mode::Explicit,
    ];

    pub fn letter(self) -> &'static str {
        ["A", "B", "C", "D", "E", "Cs", "Ck", "Cc", "Dh"][self.index()]
    }

    pub fn name(self) -> &'static str {
        ["direct", "iptables", "ebpf", "haproxy", "explicit", "ebpf+splice", "ebpf+sockmap", "ebpf+copy", "haproxy-http"][self.index()]
    }

    /// `A direct`, as table headings show it.
    pub fn title(self) -> String {
        format!("{} {}", self.letter(), self.name())
    }

    pub fn index(self) -> usize {
        self as usize
    }

    /// Whether the client runs in the namespace whose traffic iptables redirects.
    pub fn behind_iptables(self) -> bool {
        matches!(self, Mode::Iptables | Mode::Haproxy | Mode::HaproxyHttp)
    }

    /// Where iptables DNATs this mode's connections in the node, if it does.
    pub fn redirect_port(self) -> Option<u16> {
        match self {
            Mode::Iptables => Some(GATEWAY_PORT),
            Mode::Haproxy => Some(HAPROXY_PORT),
            Mode::HaproxyHttp => Some(HAPROXY_HTTP_PORT),
            _ => None,
        }
    }

    /// Whether this mode has a server port for `service`: Dh speaks HTTP only.
    pub fn serves(self, service: Service) -> bool {
        self != Mode::HaproxyHttp || service == Service::Http
    }

    /// Whether the client runs in the cgroup the kernel programs intercept.
    pub fn in_intercepted_cgroup(self) -> bool {
        matches!(self, Mode::Ebpf | Mode::EbpfSplice | Mode::EbpfSockmap | Mode::EbpfCopy)
    }

    /// The gateway's `--relay-port` for this mode's server port of `service`.
    pub fn relay_arg(self, service: Service) -> Option<String> {
        let relay = match self {
            Mode::EbpfSplice => "splice",
            Mode::EbpfSockmap => "sockmap",
            Mode::EbpfCopy => "copy",
            _ => return None,
        };
        Some(format!("{}={relay}", service.port(self)))
    }

    /// Where the client connects for `service`.
    pub fn target(self, service: Service) -> SocketAddr {
        let addr = match self {
            Mode::Explicit => SocketAddrV4::new(PROXY_IP, service.base_port() + EXPLICIT_OFFSET),
            _ => SocketAddrV4::new(SERVER_IP, service.port(self)),
        };
        SocketAddr::V4(addr)
    }

    /// The source address the server sees: the client's own, or the node's
    /// when a proxy carried the connection.
    pub fn expected_peer(self) -> Ipv4Addr {
        if self == Mode::Direct { CLIENT_IP } else { NODE_SERVER_SIDE }
    }
}

/// What the server namespace offers, each on one port per mode.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Service {
    /// Our echo server (connection rate, ping-pong, idle connections).
    Echo,
    /// nginx serving a 1 KiB file.
    Http,
    /// iperf3.
    Iperf,
}

impl Service {
    pub const ALL: [Service; 3] = [Service::Echo, Service::Http, Service::Iperf];

    pub fn base_port(self) -> u16 {
        match self {
            Service::Echo => 7100,
            Service::Http => 8100,
            Service::Iperf => 9100,
        }
    }

    /// The server port that `mode`'s connections end at.
    pub fn port(self, mode: Mode) -> u16 {
        self.base_port() + mode.index() as u16
    }

    /// The server ports of the modes that use this service.
    pub fn ports(self) -> Vec<u16> {
        self.modes().map(|m| self.port(m)).collect()
    }

    /// The modes that use this service.
    pub fn modes(self) -> impl Iterator<Item = Mode> {
        Mode::ALL.into_iter().filter(move |m| m.serves(self))
    }

    /// `LISTEN=UPSTREAM` for the gateway's explicit listener (mode E).
    pub fn forward_arg(self) -> String {
        format!(
            "{}={}",
            Mode::Explicit.target(self),
            SocketAddrV4::new(SERVER_IP, self.port(Mode::Explicit))
        )
    }
}
