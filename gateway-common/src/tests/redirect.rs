//! `redirect::plan`, branch by branch, for IPv4, IPv6 and IPv4-mapped
//! destinations.

use crate::{
    PROXY_DENY_UDP, PROXY_HAS_V4, PROXY_HAS_V6, ProxyConfig, Stat,
    redirect::{IPPROTO_TCP, IPPROTO_UDP, Plan, plan},
    v4_mapped,
};

const PROXY4: [u8; 4] = [198, 18, 1, 1];
const PROXY6: [u8; 16] = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
const PROXY_PORT: u16 = 15001;
const DNS_SERVER_PORT: u16 = 15053;
const IPPROTO_ICMP: u32 = 1;
const IPPROTO_SCTP: u32 = 132;

/// An external IPv4 destination, 203.0.113.10, in the 16-byte form.
fn external4() -> [u8; 16] {
    v4_mapped([203, 0, 113, 10])
}

/// An external IPv6 destination, 2001:db8:113::10.
fn external6() -> [u8; 16] {
    [0x20, 0x01, 0x0d, 0xb8, 0x01, 0x13, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10]
}

/// A proxy on both families with a DNS server, UDP allowed.
fn both() -> ProxyConfig {
    ProxyConfig {
        addr4: PROXY4,
        addr6: PROXY6,
        port: PROXY_PORT,
        flags: PROXY_HAS_V4 | PROXY_HAS_V6,
        dns_port: DNS_SERVER_PORT,
        ..ProxyConfig::default()
    }
}

fn with_flags(flags: u16) -> ProxyConfig {
    ProxyConfig { flags, ..both() }
}

fn without_dns(cfg: ProxyConfig) -> ProxyConfig {
    ProxyConfig { dns_port: 0, ..cfg }
}

fn to_proxy4(port: u16) -> Plan {
    Plan::Redirect { addr: v4_mapped(PROXY4), port }
}

fn to_proxy6(port: u16) -> Plan {
    Plan::Redirect { addr: PROXY6, port }
}

#[test]
fn loopback_and_unspecified_destinations_are_left_alone() {
    let strict = with_flags(PROXY_HAS_V4 | PROXY_HAS_V6 | PROXY_DENY_UDP);
    let mut v6_loopback = [0u8; 16];
    v6_loopback[15] = 1;
    let local = [
        v4_mapped([127, 0, 0, 1]),
        v4_mapped([127, 9, 9, 9]),
        v4_mapped([0, 0, 0, 0]),
        v6_loopback,
        [0u8; 16],
    ];
    for dst in &local {
        for protocol in [IPPROTO_TCP, IPPROTO_UDP] {
            for port in [80, 53, 9999] {
                assert_eq!(plan(&strict, protocol, dst, port), Plan::Leave, "{dst:?} {protocol} {port}");
            }
        }
    }
    // Even with no proxy at all, which denies everything else.
    assert_eq!(plan(&ProxyConfig::default(), IPPROTO_TCP, &v4_mapped([127, 0, 0, 1]), 80), Plan::Leave);
}

#[test]
fn tcp_goes_to_the_proxy_port() {
    let cfg = both();
    assert_eq!(plan(&cfg, IPPROTO_TCP, &external4(), 443), to_proxy4(PROXY_PORT));
    assert_eq!(plan(&cfg, IPPROTO_TCP, &external6(), 443), to_proxy6(PROXY_PORT));
    // A port that happens to be the DNS port, at someone else's address.
    assert_eq!(plan(&cfg, IPPROTO_TCP, &external4(), DNS_SERVER_PORT), to_proxy4(PROXY_PORT));
}

#[test]
fn tcp_to_port_53_goes_to_the_dns_port_when_the_proxy_serves_dns() {
    assert_eq!(plan(&both(), IPPROTO_TCP, &external4(), 53), to_proxy4(DNS_SERVER_PORT));
    assert_eq!(plan(&both(), IPPROTO_TCP, &external6(), 53), to_proxy6(DNS_SERVER_PORT));
    // No DNS server: port 53 is TCP like any other.
    assert_eq!(plan(&without_dns(both()), IPPROTO_TCP, &external4(), 53), to_proxy4(PROXY_PORT));
}

#[test]
fn the_proxys_own_listeners_are_left_alone() {
    let cfg = both();
    let proxy4 = v4_mapped(PROXY4);
    for dst in [&proxy4, &PROXY6] {
        assert_eq!(plan(&cfg, IPPROTO_TCP, dst, PROXY_PORT), Plan::Leave, "{dst:?}");
        assert_eq!(plan(&cfg, IPPROTO_TCP, dst, DNS_SERVER_PORT), Plan::Leave, "{dst:?}");
        assert_eq!(plan(&cfg, IPPROTO_UDP, dst, DNS_SERVER_PORT), Plan::Leave, "{dst:?}");
    }
    // Another port at the proxy's address is intercepted like any destination.
    assert_eq!(plan(&cfg, IPPROTO_TCP, &proxy4, 8080), to_proxy4(PROXY_PORT));
    assert_eq!(plan(&cfg, IPPROTO_TCP, &PROXY6, 8080), to_proxy6(PROXY_PORT));
    assert_eq!(plan(&cfg, IPPROTO_UDP, &proxy4, 53), to_proxy4(DNS_SERVER_PORT));
    // UDP to the proxy port is not one of its listeners.
    let strict = with_flags(PROXY_HAS_V4 | PROXY_HAS_V6 | PROXY_DENY_UDP);
    assert_eq!(plan(&strict, IPPROTO_UDP, &proxy4, PROXY_PORT), Plan::Deny(Stat::UdpDenied));
    // Without a DNS server, the DNS port is no listener of the proxy.
    assert_eq!(plan(&without_dns(cfg), IPPROTO_TCP, &proxy4, DNS_SERVER_PORT), to_proxy4(PROXY_PORT));
}

#[test]
fn an_address_is_the_proxys_only_for_a_family_it_has() {
    // The v6 address is set but not enabled: connecting to it is not the proxy's own traffic,
    // and with no v6 proxy it is denied.
    let v4_only = with_flags(PROXY_HAS_V4);
    assert_eq!(plan(&v4_only, IPPROTO_TCP, &PROXY6, PROXY_PORT), Plan::Deny(Stat::DeniedNoProxy));
    let v6_only = with_flags(PROXY_HAS_V6);
    assert_eq!(plan(&v6_only, IPPROTO_TCP, &v4_mapped(PROXY4), PROXY_PORT), Plan::Deny(Stat::DeniedNoProxy));
}

#[test]
fn udp_to_port_53_goes_to_the_dns_port() {
    for cfg in [both(), with_flags(PROXY_HAS_V4 | PROXY_HAS_V6 | PROXY_DENY_UDP)] {
        assert_eq!(plan(&cfg, IPPROTO_UDP, &external4(), 53), to_proxy4(DNS_SERVER_PORT));
        assert_eq!(plan(&cfg, IPPROTO_UDP, &external6(), 53), to_proxy6(DNS_SERVER_PORT));
    }
}

#[test]
fn other_udp_is_denied_only_under_registry_only() {
    let strict = with_flags(PROXY_HAS_V4 | PROXY_HAS_V6 | PROXY_DENY_UDP);
    for dst in [external4(), external6()] {
        assert_eq!(plan(&strict, IPPROTO_UDP, &dst, 443), Plan::Deny(Stat::UdpDenied), "{dst:?}");
        assert_eq!(plan(&both(), IPPROTO_UDP, &dst, 443), Plan::Leave, "{dst:?}");
    }
    // Without a DNS server, port 53 is UDP like any other.
    assert_eq!(plan(&without_dns(strict), IPPROTO_UDP, &external4(), 53), Plan::Deny(Stat::UdpDenied));
    assert_eq!(plan(&without_dns(both()), IPPROTO_UDP, &external4(), 53), Plan::Leave);
}

#[test]
fn other_protocols_are_left_alone() {
    let strict = with_flags(PROXY_HAS_V4 | PROXY_HAS_V6 | PROXY_DENY_UDP);
    for protocol in [0, IPPROTO_ICMP, IPPROTO_SCTP] {
        assert_eq!(plan(&strict, protocol, &external4(), 443), Plan::Leave, "{protocol}");
        assert_eq!(plan(&strict, protocol, &external6(), 53), Plan::Leave, "{protocol}");
    }
}

#[test]
fn a_family_without_a_proxy_is_denied() {
    let v4_only = with_flags(PROXY_HAS_V4 | PROXY_DENY_UDP);
    assert_eq!(plan(&v4_only, IPPROTO_TCP, &external6(), 443), Plan::Deny(Stat::DeniedNoProxy));
    assert_eq!(plan(&v4_only, IPPROTO_UDP, &external6(), 53), Plan::Deny(Stat::DeniedNoProxy));
    assert_eq!(plan(&v4_only, IPPROTO_TCP, &external4(), 443), to_proxy4(PROXY_PORT));

    let v6_only = with_flags(PROXY_HAS_V6);
    assert_eq!(plan(&v6_only, IPPROTO_TCP, &external4(), 443), Plan::Deny(Stat::DeniedNoProxy));
    assert_eq!(plan(&v6_only, IPPROTO_UDP, &external4(), 53), Plan::Deny(Stat::DeniedNoProxy));
    assert_eq!(plan(&v6_only, IPPROTO_TCP, &external6(), 443), to_proxy6(PROXY_PORT));
}

#[test]
fn settings_never_written_deny_every_redirect() {
    // All zeros: no family, no DNS server. Fail closed for TCP; UDP is
    // left alone only because such settings do not ask to deny it.
    let none = ProxyConfig::default();
    assert_eq!(plan(&none, IPPROTO_TCP, &external4(), 443), Plan::Deny(Stat::DeniedNoProxy));
    assert_eq!(plan(&none, IPPROTO_TCP, &external6(), 53), Plan::Deny(Stat::DeniedNoProxy));
    assert_eq!(plan(&none, IPPROTO_UDP, &external4(), 53), Plan::Leave);
}

#[test]
fn ipv4_mapped_destinations_follow_the_ipv4_rules() {
    // A v6 socket dialling ::ffff:203.0.113.10 is redirected to the v4
    // proxy in mapped form, which the v6 hook writes back as ::ffff:198.18.1.1.
    let v4_only = with_flags(PROXY_HAS_V4);
    assert_eq!(plan(&v4_only, IPPROTO_TCP, &external4(), 443), to_proxy4(PROXY_PORT));
    assert_eq!(plan(&v4_only, IPPROTO_UDP, &external4(), 53), to_proxy4(DNS_SERVER_PORT));
    // The v4 proxy's listener, dialled in mapped form, is left alone.
    assert_eq!(plan(&v4_only, IPPROTO_TCP, &v4_mapped(PROXY4), PROXY_PORT), Plan::Leave);
    // ::ffff:127.0.0.1 is loopback.
    assert_eq!(plan(&with_flags(0), IPPROTO_TCP, &v4_mapped([127, 0, 0, 1]), 443), Plan::Leave);
    // A v6 proxy alone does not take mapped IPv4.
    assert_eq!(plan(&with_flags(PROXY_HAS_V6), IPPROTO_TCP, &external4(), 443), Plan::Deny(Stat::DeniedNoProxy));
}
