//! DnsMemory on a controlled clock: TTLs, isolation between clients, bounds.

use std::{
    net::IpAddr,
    time::{Duration, Instant},
};

use crate::dns::{DnsMemory, memory::MIN_MEMORY};

fn ip(text: &str) -> IpAddr {
    text.parse().unwrap_or_else(|_| panic!("bad ip {text}"))
}

const POD_A: &str = "198.18.0.10";
const POD_B: &str = "198.18.0.11";

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

#[test]
fn remembers_within_the_ttl_only() {
    let memory = DnsMemory::new();
    let t0 = Instant::now();
    memory.record_at(t0, ip(POD_A), "api.example.com", &[ip("203.0.113.5")], secs(30));
    assert!(memory.answered_at(t0 + secs(29), ip(POD_A), "api.example.com", ip("203.0.113.5")));
    assert!(!memory.answered_at(t0 + secs(30), ip(POD_A), "api.example.com", ip("203.0.113.5")));
    assert!(!memory.answered_at(t0 + secs(1), ip(POD_A), "api.example.com", ip("203.0.113.6")));
    assert_eq!(memory.names_for_at(t0 + secs(1), ip(POD_A), ip("203.0.113.5")), vec!["api.example.com"]);
    assert!(memory.names_for_at(t0 + secs(31), ip(POD_A), ip("203.0.113.5")).is_empty());
    assert_eq!(memory.len_at(t0 + secs(1)), 1);
    assert_eq!(memory.len_at(t0 + secs(31)), 0);
}

#[test]
fn short_ttls_last_the_minimum_then_expire() {
    let memory = DnsMemory::new();
    memory.record(ip(POD_A), "short.test", &[ip("203.0.113.1")], Duration::from_millis(50));
    assert!(memory.answered(ip(POD_A), "short.test", ip("203.0.113.1")), "the real clock path");
    let t0 = Instant::now();
    memory.record_at(t0, ip(POD_A), "brief.test", &[ip("203.0.113.2")], Duration::from_millis(50));
    assert!(memory.answered_at(t0 + secs(1), ip(POD_A), "brief.test", ip("203.0.113.2")));
    assert!(!memory.answered_at(t0 + MIN_MEMORY + secs(1), ip(POD_A), "brief.test", ip("203.0.113.2")));
}

#[test]
fn names_compare_without_case_or_final_dot() {
    let memory = DnsMemory::new();
    memory.record(ip(POD_A), "API.Example.com.", &[ip("203.0.113.5")], secs(30));
    assert!(memory.answered(ip(POD_A), "api.example.com", ip("203.0.113.5")));
    assert!(memory.answered(ip(POD_A), "api.EXAMPLE.com.", ip("203.0.113.5")));
    assert_eq!(memory.names_for(ip(POD_A), ip("203.0.113.5")), vec!["api.example.com"]);
}

#[test]
fn clients_are_isolated() {
    let memory = DnsMemory::new();
    memory.record(ip(POD_A), "a.test", &[ip("203.0.113.1")], secs(30));
    memory.record(ip(POD_B), "b.test", &[ip("203.0.113.1")], secs(30));
    assert!(memory.answered(ip(POD_A), "a.test", ip("203.0.113.1")));
    assert!(!memory.answered(ip(POD_B), "a.test", ip("203.0.113.1")));
    assert_eq!(memory.names_for(ip(POD_A), ip("203.0.113.1")), vec!["a.test"]);
    assert_eq!(memory.names_for(ip(POD_B), ip("203.0.113.1")), vec!["b.test"]);
    assert!(memory.names_for(ip("198.18.0.99"), ip("203.0.113.1")).is_empty());
}

#[test]
fn one_ip_may_serve_many_names() {
    let memory = DnsMemory::new();
    for name in ["c.test", "a.test", "b.test"] {
        memory.record(ip(POD_A), name, &[ip("203.0.113.1"), ip("2001:db8::1")], secs(30));
    }
    assert_eq!(memory.names_for(ip(POD_A), ip("2001:db8::1")), vec!["a.test", "b.test", "c.test"]);
    assert_eq!(memory.len(), 3);
}

#[test]
fn each_address_keeps_its_own_ttl() {
    let memory = DnsMemory::new();
    let t0 = Instant::now();
    memory.record_at(t0, ip(POD_A), "rr.test", &[ip("203.0.113.1")], secs(10));
    memory.record_at(t0 + secs(5), ip(POD_A), "rr.test", &[ip("203.0.113.2")], secs(10));
    let at = t0 + secs(12);
    assert!(!memory.answered_at(at, ip(POD_A), "rr.test", ip("203.0.113.1")));
    assert!(memory.answered_at(at, ip(POD_A), "rr.test", ip("203.0.113.2")));
    assert!(memory.names_for_at(at, ip(POD_A), ip("203.0.113.1")).is_empty());
    // Recording an address again extends it, never shortens it.
    memory.record_at(t0 + secs(13), ip(POD_A), "rr.test", &[ip("203.0.113.2")], secs(1));
    assert!(memory.answered_at(t0 + secs(14), ip(POD_A), "rr.test", ip("203.0.113.2")));
}

#[test]
fn empty_answers_record_nothing_and_a_zero_ttl_lasts_the_minimum() {
    let memory = DnsMemory::new();
    memory.record(ip(POD_A), "a.test", &[], secs(30));
    memory.record(ip(POD_A), "", &[ip("203.0.113.1")], secs(30));
    assert_eq!(memory.len(), 0);
    let t0 = Instant::now();
    memory.record_at(t0, ip(POD_A), "zero.test", &[ip("203.0.113.1")], Duration::ZERO);
    assert!(memory.answered_at(t0 + MIN_MEMORY - secs(1), ip(POD_A), "zero.test", ip("203.0.113.1")));
    assert!(!memory.answered_at(t0 + MIN_MEMORY + secs(1), ip(POD_A), "zero.test", ip("203.0.113.1")));
}

#[test]
fn huge_ttls_count_for_a_day() {
    let memory = DnsMemory::new();
    let t0 = Instant::now();
    memory.record_at(t0, ip(POD_A), "a.test", &[ip("203.0.113.1")], Duration::MAX);
    assert!(memory.answered_at(t0 + secs(86_399), ip(POD_A), "a.test", ip("203.0.113.1")));
    assert!(!memory.answered_at(t0 + secs(86_400), ip(POD_A), "a.test", ip("203.0.113.1")));
}

#[test]
fn a_client_past_its_bound_loses_its_oldest_name() {
    let memory = DnsMemory::with_limits(3, 100);
    let t0 = Instant::now();
    for (i, name) in ["n0.test", "n1.test", "n2.test"].iter().enumerate() {
        memory.record_at(t0 + secs(i as u64), ip(POD_A), name, &[ip("203.0.113.1")], secs(300));
    }
    // Recording n0 again makes n1 the oldest.
    memory.record_at(t0 + secs(3), ip(POD_A), "n0.test", &[ip("203.0.113.1")], secs(300));
    memory.record_at(t0 + secs(4), ip(POD_A), "n3.test", &[ip("203.0.113.1")], secs(300));
    memory.record_at(t0 + secs(4), ip(POD_B), "other.test", &[ip("203.0.113.1")], secs(300));
    let at = t0 + secs(5);
    assert_eq!(memory.names_for_at(at, ip(POD_A), ip("203.0.113.1")), vec!["n0.test", "n2.test", "n3.test"]);
    assert_eq!(memory.names_for_at(at, ip(POD_B), ip("203.0.113.1")), vec!["other.test"]);
    assert_eq!(memory.len_at(at), 4);
}

#[test]
fn the_total_bound_evicts_the_oldest_of_anyone() {
    let memory = DnsMemory::with_limits(100, 3);
    let t0 = Instant::now();
    memory.record_at(t0, ip(POD_A), "a1.test", &[ip("203.0.113.1")], secs(300));
    memory.record_at(t0, ip(POD_B), "b1.test", &[ip("203.0.113.1")], secs(300));
    memory.record_at(t0, ip(POD_A), "a2.test", &[ip("203.0.113.1")], secs(300));
    memory.record_at(t0, ip(POD_B), "b2.test", &[ip("203.0.113.1")], secs(300));
    assert_eq!(memory.len_at(t0), 3);
    assert!(!memory.answered_at(t0, ip(POD_A), "a1.test", ip("203.0.113.1")));
    assert!(memory.answered_at(t0, ip(POD_B), "b1.test", ip("203.0.113.1")));
    assert!(memory.answered_at(t0, ip(POD_B), "b2.test", ip("203.0.113.1")));
}

#[test]
fn expired_names_are_swept_before_anything_is_evicted() {
    let memory = DnsMemory::with_limits(2, 100);
    let t0 = Instant::now();
    memory.record_at(t0, ip(POD_A), "old.test", &[ip("203.0.113.1")], secs(300));
    memory.record_at(t0, ip(POD_A), "brief.test", &[ip("203.0.113.2")], secs(1));
    let later = t0 + MIN_MEMORY + secs(1);
    memory.record_at(later, ip(POD_A), "new.test", &[ip("203.0.113.3")], secs(300));
    assert!(memory.answered_at(later, ip(POD_A), "old.test", ip("203.0.113.1")));
    assert!(memory.answered_at(later, ip(POD_A), "new.test", ip("203.0.113.3")));
}

#[test]
fn many_clients_stay_within_the_bounds() {
    let memory = DnsMemory::with_limits(8, 1000);
    let t0 = Instant::now();
    for client in 0..200u8 {
        for name in 0..10u8 {
            let ip = IpAddr::from([203, 0, 113, name]);
            memory.record_at(t0, IpAddr::from([198, 18, 1, client]), &format!("n{name}.test"), &[ip], secs(60));
        }
    }
    assert_eq!(memory.len_at(t0), 1000);
    // The newest names of the newest client are all there.
    let last = IpAddr::from([198, 18, 1, 199]);
    for name in 2..10u8 {
        assert!(memory.answered_at(t0, last, &format!("n{name}.test"), IpAddr::from([203, 0, 113, name])));
    }
}
