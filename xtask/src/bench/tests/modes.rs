//! Tests of `bench/modes.rs`.

use crate::bench::modes::*;

#[test]
fn every_mode_has_its_own_server_port() {
    let mut ports: Vec<u16> = Service::ALL.iter().flat_map(|s| s.ports()).collect();
    ports.sort_unstable();
    ports.dedup();
    // Eight modes use every service; Dh only HTTP.
    assert_eq!(ports.len(), 8 * 3 + 1);
    assert_eq!(Mode::Explicit.target(Service::Http).to_string(), "198.18.0.1:18100");
    assert_eq!(Service::Echo.forward_arg(), "198.18.0.1:17100=198.19.0.10:7104");
}

#[test]
fn haproxy_http_serves_only_http_behind_iptables() {
    let dh = Mode::HaproxyHttp;
    assert_eq!((dh.letter(), dh.name()), ("Dh", "haproxy-http"));
    assert!(dh.behind_iptables());
    assert!(!dh.in_intercepted_cgroup());
    assert_eq!(dh.target(Service::Http).to_string(), "198.19.0.10:8108");
    assert!(!Service::Echo.modes().any(|m| m == dh));
    assert!(!Service::Iperf.ports().contains(&9108));
    assert!(Mode::HTTP.contains(&dh) && !Service::Iperf.modes().any(|m| m == dh));
    assert_eq!(dh.relay_arg(Service::Http), None);
    // Each redirected mode has its own proxy port.
    let mut redirects: Vec<u16> = Mode::ALL.iter().filter_map(|m| m.redirect_port()).collect();
    redirects.dedup();
    assert_eq!(redirects.len(), 3);
    // Every mode has a letter of its own.
    let mut letters: Vec<&str> = Mode::ALL.iter().map(|m| m.letter()).collect();
    letters.sort_unstable();
    letters.dedup();
    assert_eq!(letters.len(), Mode::ALL.len());
}
