//! The proxy's own resolver (`gateway_userspace::dns::Resolver`, for
//! DNS-type ServiceEntries) against dnsmasq inside a private network
//! namespace, and the marks on its upstream sockets. Needs root.

#[path = "dns_support/mod.rs"]
mod dns_support;

use dns_support::{
    client::ip,
    upstream_net::{UpstreamNet, upstream, wait_for_upstream},
};
use gateway_userspace::dns::{DnsError, Resolver};

/// The mark the tests give the resolver's sockets.
const MARK: u32 = 0x539;

#[test]
fn resolves_a_and_aaaa_and_caches_them() {
    let mut net = UpstreamNet::with_dnsmasq();
    let resolver = Resolver::new(vec![upstream()], MARK);
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
        // A stopped upstream refuses at once: an I/O error, not a timeout.
        let uncached = resolver.resolve("upstream.test").await;
        assert!(matches!(uncached, Err(DnsError::UpstreamIo { .. })), "{uncached:?}");
    });
}

/// The namespace drops every packet to the upstream without the mark, so
/// only marked sockets get answers: over UDP (`both.test`) and over TCP
/// (`big.test`, whose UDP answer comes back truncated). An unmarked
/// resolver shows that the rule bites.
#[test]
fn upstream_sockets_carry_the_mark() {
    let net = UpstreamNet::with_dnsmasq();
    net.run(|| async { wait_for_upstream(upstream()).await });
    net.drop_unmarked_to_upstream(MARK);
    let marked = Resolver::new(vec![upstream()], MARK);
    let unmarked = Resolver::new(vec![upstream()], 0);
    net.run(|| async {
        let both = marked.resolve("both.test").await.unwrap_or_else(|error| panic!("both.test over UDP: {error}"));
        assert_eq!(both, vec![ip("198.51.100.8"), ip("2001:db8::8")]);
        let big = marked.resolve("big.test").await.unwrap_or_else(|error| panic!("big.test over TCP: {error}"));
        assert_eq!(big.len(), 100, "{big:?}");
        // The kernel refuses to send what the rule drops.
        let dropped = unmarked.resolve("upstream.test").await;
        let refused = matches!(&dropped, Err(DnsError::UpstreamIo { source, .. }) if source.kind() == std::io::ErrorKind::PermissionDenied);
        assert!(refused, "an unmarked query was not dropped: {dropped:?}");
    });
}
