//! `X-Forwarded-For` as Envoy reads it with `use_remote_address` and
//! `xff_num_trusted_hops`.

use std::net::IpAddr;

use crate::gateway_role::authorize::remote_ip;

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

#[test]
fn the_client_is_the_trusted_hops_th_entry_from_the_right() {
    let peer = ip("10.0.0.1");
    let xff = Some("203.0.113.128, 203.0.113.10, 203.0.113.1");
    assert_eq!(remote_ip(peer, xff, 0), peer, "no trusted proxy: the peer");
    assert_eq!(remote_ip(peer, xff, 1), ip("203.0.113.1"));
    assert_eq!(remote_ip(peer, xff, 2), ip("203.0.113.10"));
    assert_eq!(remote_ip(peer, xff, 3), ip("203.0.113.128"));
}

#[test]
fn too_few_entries_garbage_or_none_leave_the_peer() {
    let peer = ip("10.0.0.1");
    assert_eq!(remote_ip(peer, Some("203.0.113.1"), 2), peer);
    assert_eq!(remote_ip(peer, Some("not-an-address"), 1), peer);
    assert_eq!(remote_ip(peer, Some(" , "), 1), peer);
    assert_eq!(remote_ip(peer, None, 1), peer);
    assert_eq!(remote_ip(peer, Some("::ffff:192.0.2.7"), 1), ip("192.0.2.7"), "v4-mapped is the v4 address");
}
