//! The proxy's own resolver against dnsmasq, and the marks on its sockets.

use nix::sys::socket::{getsockopt, sockopt};

use super::{
    client::ip,
    netns::{TestNet, UPSTREAM, wait_for_upstream},
};
use crate::dns::{
    DnsError, Resolver,
    upstream::{marked_tcp, marked_udp},
};

fn upstream() -> std::net::SocketAddr {
    UPSTREAM.parse().unwrap_or_else(|_| unreachable!())
}

#[test]
fn resolves_a_and_aaaa_and_caches_them() {
    let mut net = TestNet::with_dnsmasq();
    let resolver = Resolver::new(vec![upstream()], 0x539);
    net.run(|| async {
        wait_for_upstream(upstream()).await;
        let both = resolver.resolve("Both.Test.").await.unwrap_or_else(|error| panic!("both.test: {error}"));
        assert_eq!(both, vec![ip("198.51.100.8"), ip("2001:db8::8")]);
        let alias = resolver.resolve("alias.test").await.unwrap_or_else(|error| panic!("alias.test: {error}"));
        assert_eq!(alias, vec![ip("198.51.100.8"), ip("2001:db8::8")]);
        let missing = resolver.resolve("nowhere.test").await;
        assert!(matches!(missing, Err(DnsError::NoAddresses { .. })), "{missing:?}");
        let literal = resolver.resolve("203.0.113.9").await.unwrap_or_else(|error| panic!("literal: {error}"));
        assert_eq!(literal, vec![ip("203.0.113.9")]);
        let invalid = resolver.resolve("bad..name").await;
        assert!(matches!(invalid, Err(DnsError::InvalidName { .. })), "{invalid:?}");
    });
    net.stop_dnsmasq();
    net.run(|| async {
        // Cached within the TTL, though the upstream is gone.
        let both = resolver.resolve("both.test").await.unwrap_or_else(|error| panic!("cached both.test: {error}"));
        assert_eq!(both, vec![ip("198.51.100.8"), ip("2001:db8::8")]);
        let uncached = resolver.resolve("upstream.test").await;
        assert!(matches!(uncached, Err(DnsError::UpstreamIo { .. })), "{uncached:?}");
    });
}

#[test]
fn upstream_sockets_carry_the_mark() {
    let net = TestNet::with_dnsmasq();
    net.run(|| async {
        wait_for_upstream(upstream()).await;
        let udp = marked_udp(upstream(), 0x539).await.unwrap_or_else(|error| panic!("udp: {error}"));
        assert_eq!(getsockopt(&udp, sockopt::Mark).ok(), Some(0x539));
        let tcp = marked_tcp(upstream(), 0x539).await.unwrap_or_else(|error| panic!("tcp: {error}"));
        assert_eq!(getsockopt(&tcp, sockopt::Mark).ok(), Some(0x539));
    });
}
