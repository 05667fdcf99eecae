//! Tests of `bench/modes.rs`.

use crate::bench::modes::*;

#[test]
fn every_mode_has_its_own_server_port() {
    let mut ports: Vec<u16> = Service::ALL.iter().flat_map(|s| s.ports()).collect();
    ports.sort_unstable();
    ports.dedup();
    assert_eq!(ports.len(), 24);
    assert_eq!(Mode::Explicit.target(Service::Http).to_string(), "198.18.0.1:18100");
    assert_eq!(Service::Echo.forward_arg(), "198.18.0.1:17100=198.19.0.10:7104");
}
