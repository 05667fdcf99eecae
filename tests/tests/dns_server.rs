//! The node's DNS server (`gateway_userspace::dns::DnsServer`) against a
//! real upstream (dnsmasq), queried with hickory's client over UDP and TCP,
//! all inside a private network namespace. Needs root.
//!
//! No assertion here rests on how long something took: the client waits far
//! longer than the server's own upstream timeout.

#[path = "dns_support/mod.rs"]
mod dns_support;

use hickory_proto::{
    op::{Message, ResponseCode},
    rr::{RData, RecordType},
};
use tokio::net::UdpSocket;

use dns_support::{
    client::{FixedRegistry, QUERY_BOUND, Via, ask, ip, ips, start},
    upstream_net::{UPSTREAM, UpstreamNet, upstream, wait_for_upstream},
};
use gateway_userspace::dns::UnknownNames;

const POD_A: &str = "127.0.0.2";
const POD_B: &str = "127.0.0.3";

#[test]
fn registered_addresses_are_answered_locally() {
    let net = UpstreamNet::with_dnsmasq();
    net.run(|| async {
        wait_for_upstream(upstream()).await;
        let registry = FixedRegistry::default().with("api.example.com", &["203.0.113.5", "2001:db8::5"], false);
        let server = start(registry, &[UPSTREAM], UnknownNames::Refuse { forward_domains: Vec::new() }).await;
        for via in [Via::Udp, Via::Tcp] {
            let v4 = ask(via, server.addr, POD_A, "API.Example.COM.", RecordType::A).await;
            assert_eq!(v4.metadata.response_code, ResponseCode::NoError, "{via:?}");
            assert_eq!(ips(&v4), vec![ip("203.0.113.5")], "{via:?}");
            assert!(v4.answers.iter().all(|r| r.ttl == 30));
            assert_eq!(v4.queries.first().map(|q| q.name.to_ascii()), Some("API.Example.COM.".to_string()));
            let v6 = ask(via, server.addr, POD_A, "api.example.com.", RecordType::AAAA).await;
            assert_eq!(ips(&v6), vec![ip("2001:db8::5")], "{via:?}");
            let txt = ask(via, server.addr, POD_A, "api.example.com.", RecordType::TXT).await;
            assert_eq!(txt.metadata.response_code, ResponseCode::NoError, "{via:?}");
            assert!(txt.answers.is_empty(), "{via:?}: NODATA expected, got {:?}", txt.answers);
        }
        let lookups = server.registry.lookups.lock().map(|l| l.clone()).unwrap_or_default();
        assert!(lookups.iter().all(|(client, name)| *client == ip(POD_A) && name == "api.example.com"), "{lookups:?}");
        assert!(server.memory.answered(ip(POD_A), "api.example.com", ip("203.0.113.5")));
        assert!(server.memory.answered(ip(POD_A), "api.example.com", ip("2001:db8::5")));
        assert_eq!(server.stat("answered_registered"), 6);
        assert_eq!(server.stat("forwarded"), 0);
    });
}

#[test]
fn registered_names_that_resolve_are_forwarded_with_their_ttl() {
    let net = UpstreamNet::with_dnsmasq();
    net.run(|| async {
        wait_for_upstream(upstream()).await;
        let registry = FixedRegistry::default().with("upstream.test", &[], true).with("alias.test", &[], true);
        let server = start(registry, &[UPSTREAM], UnknownNames::Refuse { forward_domains: Vec::new() }).await;
        for via in [Via::Udp, Via::Tcp] {
            let answer = ask(via, server.addr, POD_A, "upstream.test.", RecordType::A).await;
            assert_eq!(answer.metadata.response_code, ResponseCode::NoError, "{via:?}");
            assert_eq!(ips(&answer), vec![ip("198.51.100.7")], "{via:?}");
            assert!(answer.answers.iter().all(|r| r.ttl > 0 && r.ttl <= 60), "{:?}", answer.answers);
        }
        let chain = ask(Via::Udp, server.addr, POD_A, "alias.test.", RecordType::A).await;
        assert!(chain.answers.iter().any(|r| matches!(r.data, RData::CNAME(_))), "{:?}", chain.answers);
        assert_eq!(ips(&chain), vec![ip("198.51.100.8")]);
        assert!(server.memory.answered(ip(POD_A), "upstream.test", ip("198.51.100.7")));
        assert_eq!(server.memory.names_for(ip(POD_A), ip("198.51.100.8")), vec!["alias.test"]);
        assert_eq!(server.stat("forwarded"), 3);
    });
}

#[test]
fn unregistered_names_are_forwarded_or_refused() {
    let net = UpstreamNet::with_dnsmasq();
    net.run(|| async {
        wait_for_upstream(upstream()).await;
        let forwarding = start(FixedRegistry::default(), &[UPSTREAM], UnknownNames::Forward).await;
        let refusing = start(FixedRegistry::default(), &[UPSTREAM], UnknownNames::Refuse { forward_domains: Vec::new() }).await;
        for via in [Via::Udp, Via::Tcp] {
            let v6 = ask(via, forwarding.addr, POD_A, "both.test.", RecordType::AAAA).await;
            assert_eq!(ips(&v6), vec![ip("2001:db8::8")], "{via:?}");
            let missing = ask(via, forwarding.addr, POD_A, "nowhere.test.", RecordType::A).await;
            assert_eq!(missing.metadata.response_code, ResponseCode::NXDomain, "{via:?}");
            // dnsmasq refuses names it does not know: no resolver answered.
            let unknown = ask(via, forwarding.addr, POD_A, "elsewhere.test.", RecordType::A).await;
            assert_eq!(unknown.metadata.response_code, ResponseCode::ServFail, "{via:?}");

            let refused = ask(via, refusing.addr, POD_A, "both.test.", RecordType::A).await;
            assert_eq!(refused.metadata.response_code, ResponseCode::NXDomain, "{via:?}");
            assert!(refused.answers.is_empty());
            assert_eq!(refused.queries.first().map(|q| q.name.to_ascii()), Some("both.test.".to_string()));
        }
        assert!(forwarding.memory.answered(ip(POD_A), "both.test", ip("2001:db8::8")));
        assert_eq!(forwarding.stat("forwarded"), 4);
        assert_eq!(forwarding.stat("servfail"), 2);
        assert_eq!(refusing.stat("refused"), 2);
        assert_eq!(refusing.memory.len(), 0);
    });
}

#[test]
fn memory_is_kept_per_client() {
    let net = UpstreamNet::with_dnsmasq();
    net.run(|| async {
        wait_for_upstream(upstream()).await;
        let registry = FixedRegistry::default().with("api.example.com", &["203.0.113.5"], false);
        let server = start(registry, &[UPSTREAM], UnknownNames::Forward).await;
        ask(Via::Udp, server.addr, POD_A, "api.example.com.", RecordType::A).await;
        ask(Via::Tcp, server.addr, POD_B, "both.test.", RecordType::A).await;
        assert!(server.memory.answered(ip(POD_A), "api.example.com", ip("203.0.113.5")));
        assert!(!server.memory.answered(ip(POD_B), "api.example.com", ip("203.0.113.5")));
        assert!(server.memory.answered(ip(POD_B), "both.test", ip("198.51.100.8")));
        assert!(server.memory.names_for(ip(POD_A), ip("198.51.100.8")).is_empty());
        assert_eq!(server.memory.len(), 2);
    });
}

#[test]
fn large_answers_come_over_tcp_and_are_truncated_over_udp() {
    let net = UpstreamNet::with_dnsmasq();
    net.run(|| async {
        wait_for_upstream(upstream()).await;
        let server = start(FixedRegistry::default(), &[UPSTREAM], UnknownNames::Forward).await;
        let full = ask(Via::Tcp, server.addr, POD_A, "big.test.", RecordType::A).await;
        assert_eq!(ips(&full).len(), 100);
        assert_eq!(server.memory.names_for(ip(POD_A), ip("198.18.0.77")), vec!["big.test"]);

        // Without EDNS a UDP reply holds 512 bytes: the client is told to retry over TCP.
        let socket = UdpSocket::bind((ip(POD_A), 0)).await.unwrap_or_else(|error| panic!("bind: {error}"));
        let mut query = Message::query();
        query.add_query(hickory_proto::op::Query::query(
            hickory_proto::rr::Name::from_ascii("big.test.").unwrap_or_default(),
            RecordType::A,
        ));
        let bytes = query.to_vec().unwrap_or_else(|error| panic!("encode: {error}"));
        socket.send_to(&bytes, server.addr).await.unwrap_or_else(|error| panic!("send: {error}"));
        let mut buffer = vec![0u8; 4096];
        let (len, _) = tokio::time::timeout(QUERY_BOUND, socket.recv_from(&mut buffer))
            .await
            .unwrap_or_else(|_| panic!("no UDP reply"))
            .unwrap_or_else(|error| panic!("recv: {error}"));
        assert!(len <= 512);
        let reply = Message::from_vec(&buffer[..len]).unwrap_or_else(|error| panic!("decode: {error}"));
        assert!(reply.metadata.truncation);
        assert_eq!(reply.metadata.id, query.metadata.id);
    });
}

#[test]
fn malformed_queries_get_formerr_and_the_server_survives() {
    let net = UpstreamNet::with_dnsmasq();
    net.run(|| async {
        wait_for_upstream(upstream()).await;
        let registry = FixedRegistry::default().with("api.example.com", &["203.0.113.5"], false);
        let server = start(registry, &[UPSTREAM], UnknownNames::Refuse { forward_domains: Vec::new() }).await;
        let socket = UdpSocket::bind((ip(POD_A), 0)).await.unwrap_or_else(|error| panic!("bind: {error}"));
        let garbage: [&[u8]; 4] = [
            &[0xbe, 0xef, 0x01, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x3f, b'x'],
            &[0x01],
            &[],
            &[0xff; 300],
        ];
        for bytes in garbage {
            socket.send_to(bytes, server.addr).await.unwrap_or_else(|error| panic!("send: {error}"));
        }
        let mut buffer = vec![0u8; 4096];
        let (len, _) = tokio::time::timeout(QUERY_BOUND, socket.recv_from(&mut buffer))
            .await
            .unwrap_or_else(|_| panic!("no FORMERR reply"))
            .unwrap_or_else(|error| panic!("recv: {error}"));
        let reply = Message::from_vec(&buffer[..len]).unwrap_or_else(|error| panic!("decode: {error}"));
        assert_eq!(reply.metadata.id, 0xbeef);
        assert_eq!(reply.metadata.response_code, ResponseCode::FormErr);
        // Still serving, over both transports.
        for via in [Via::Udp, Via::Tcp] {
            let answer = ask(via, server.addr, POD_A, "api.example.com.", RecordType::A).await;
            assert_eq!(ips(&answer), vec![ip("203.0.113.5")]);
        }
        assert!(server.stat("formerr") >= 3, "{:?}", server.stats.snapshot());
    });
}

/// That the refusal comes at once (an I/O error, not a timeout) is checked
/// on the resolver, which reports why (`dns_resolver.rs`).
#[test]
fn a_stopped_upstream_gives_servfail() {
    let mut net = UpstreamNet::with_dnsmasq();
    net.stop_dnsmasq();
    net.run(|| async {
        let registry = FixedRegistry::default().with("upstream.test", &[], true);
        let server = start(registry, &[UPSTREAM], UnknownNames::Forward).await;
        for (via, name) in [(Via::Udp, "upstream.test."), (Via::Tcp, "both.test.")] {
            let answer = ask(via, server.addr, POD_A, name, RecordType::A).await;
            assert_eq!(answer.metadata.response_code, ResponseCode::ServFail, "{via:?}");
        }
        assert_eq!(server.stat("servfail"), 2);
        assert_eq!(server.memory.len(), 0);
    });
}

#[test]
fn a_silent_upstream_gives_servfail_and_the_next_one_is_asked() {
    let net = UpstreamNet::with_dnsmasq();
    net.run(|| async {
        wait_for_upstream(upstream()).await;
        // Takes queries and never answers them.
        let silent = UdpSocket::bind("127.0.0.1:0").await.unwrap_or_else(|error| panic!("bind: {error}"));
        let silent_addr = silent.local_addr().unwrap_or_else(|error| panic!("addr: {error}")).to_string();
        let server = start(FixedRegistry::default(), &[&silent_addr], UnknownNames::Forward).await;
        let answer = ask(Via::Udp, server.addr, POD_A, "both.test.", RecordType::A).await;
        assert_eq!(answer.metadata.response_code, ResponseCode::ServFail);
        // The silent resolver was asked, and the server gave up on it.
        let mut buffer = vec![0u8; 4096];
        let (len, _) = silent.try_recv_from(&mut buffer).unwrap_or_else(|error| panic!("the silent upstream got no query: {error}"));
        let asked = Message::from_vec(&buffer[..len]).unwrap_or_else(|error| panic!("decode: {error}"));
        assert_eq!(asked.queries.first().map(|q| q.name.to_ascii()), Some("both.test.".to_string()));
        assert_eq!(server.stat("servfail"), 1);

        // The next resolver in the list is tried after the silent one.
        let server = start(FixedRegistry::default(), &[&silent_addr, UPSTREAM], UnknownNames::Forward).await;
        let answer = ask(Via::Tcp, server.addr, POD_A, "both.test.", RecordType::A).await;
        assert_eq!(ips(&answer), vec![ip("198.51.100.8")]);
        drop(silent);
    });
}
