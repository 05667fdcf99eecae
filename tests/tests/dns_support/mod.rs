//! What the DNS server and resolver tests share: a private network namespace
//! with dnsmasq as the upstream resolver (`upstream_net`), and a server
//! answering from a fixed registry, queried with hickory's client (`client`).
//!
//! These drive `gateway_userspace::dns` in the test process itself, inside
//! that namespace: the server and the resolver are what is tested, not the
//! interception in front of them (`egress_dns_udp.rs` covers that path).

// Each test binary uses a part of this module.
#![allow(dead_code)]

pub mod client;
pub mod upstream_net;
