//! Assertions shared by the end-to-end tests: matching what the client did with what the gateway
//! logged and what the server saw. Each panics with the gateway's own words attached.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};

use crate::addresses::{NODE_INTERNET_V4, NODE_INTERNET_V6};
use crate::echo_server::Accepted;
use crate::gateway_log::ConnectionEvent;
use crate::gateway_process::Gateway;

/// The node's address in the family of `dst`: the source servers see for proxied connections.
pub fn node_address_towards(dst: SocketAddr) -> IpAddr {
    match dst.ip() {
        IpAddr::V4(_) => NODE_INTERNET_V4.into(),
        IpAddr::V6(_) => NODE_INTERNET_V6.into(),
    }
}

/// Checks the facts every proxied, allowed connection event must show.
pub fn assert_allowed_event(
    event: &ConnectionEvent,
    dst: SocketAddr,
    pod_ips: &[IpAddr],
    cgroup_id: u64,
    bytes: u64,
    gw: &Gateway,
) {
    let context = || {
        format!(
            "gateway line: {}\ngateway stderr:\n{}",
            event.raw,
            gw.stderr_tail()
        )
    };
    assert_eq!(event.orig_dst, Some(dst), "orig_dst; {}", context());
    assert_eq!(event.upstream, Some(dst), "upstream; {}", context());
    assert!(
        pod_ips.contains(&event.src.ip()),
        "src should be one of {pod_ips:?}; {}",
        context()
    );
    assert_eq!(event.decision, "allow", "decision; {}", context());
    assert_eq!(event.cgroup_id, Some(cgroup_id), "cgroup_id; {}", context());
    assert_eq!(
        (event.bytes_up, event.bytes_down),
        (bytes, bytes),
        "bytes_up/bytes_down; {}",
        context()
    );
}

/// The single event whose source is the client's local address `src`.
pub fn event_from(events: &[ConnectionEvent], src: SocketAddr, gw: &Gateway) -> ConnectionEvent {
    let matching: Vec<&ConnectionEvent> = events.iter().filter(|e| e.src == src).collect();
    match matching.as_slice() {
        [one] => (*one).clone(),
        _ => panic!(
            "expected exactly one gateway line with src {src}, found {}:\n{}\ngateway stderr:\n{}",
            matching.len(),
            gw.stdout(),
            gw.stderr_tail()
        ),
    }
}

/// Server records keyed by the token the client sent first.
pub fn by_token(accepted: &[Accepted]) -> BTreeMap<String, Accepted> {
    accepted
        .iter()
        .map(|a| (a.first_line.clone(), a.clone()))
        .collect()
}
