//! The per-workload connection limit: counted per workload, given back on
//! drop, refusals logged once and then summed up per interval.

use std::{
    net::IpAddr,
    time::{Duration, Instant},
};

use super::super::workload_limit::{LOG_INTERVAL, RefusalLog, WorkloadLimits};
use crate::policy::WorkloadIdentity;

fn named(name: &str) -> WorkloadIdentity {
    WorkloadIdentity { name: Some(name.into()), ..WorkloadIdentity::unknown("default") }
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

#[test]
fn a_workload_over_its_limit_is_refused_and_others_are_not() {
    let limits = WorkloadLimits::new(2);
    let (a, b, now) = (named("pod-a"), named("pod-b"), Instant::now());
    let held: Vec<_> = (0..2).map(|_| limits.try_admit(&a, ip("198.18.1.2"), now).expect("under the limit")).collect();
    assert_eq!(limits.try_admit(&a, ip("198.18.1.2"), now).unwrap_err(), RefusalLog::Now { refused: 1 });
    // The same name from another address is the same workload.
    assert!(limits.try_admit(&a, ip("198.18.1.3"), now).is_err());
    let _b = limits.try_admit(&b, ip("198.18.2.2"), now).expect("another workload has its own count");
    assert_eq!(limits.open(&a, ip("198.18.1.2")), 2);
    drop(held);
    assert_eq!(limits.open(&a, ip("198.18.1.2")), 0, "places are given back");
    let _again = limits.try_admit(&a, ip("198.18.1.2"), now).expect("admitted once places are free");
}

#[test]
fn unnamed_clients_count_by_address() {
    let limits = WorkloadLimits::new(1);
    let (unknown, now) = (WorkloadIdentity::unknown("default"), Instant::now());
    let _one = limits.try_admit(&unknown, ip("198.18.1.2"), now).unwrap();
    assert!(limits.try_admit(&unknown, ip("198.18.1.2"), now).is_err());
    let _other = limits.try_admit(&unknown, ip("198.18.2.2"), now).expect("another address is another client");
}

#[test]
fn refusals_are_logged_once_then_summed_up_per_interval() {
    let limits = WorkloadLimits::new(1);
    let (a, client, start) = (named("pod-a"), ip("198.18.1.2"), Instant::now());
    let _held = limits.try_admit(&a, client, start).unwrap();
    assert_eq!(limits.try_admit(&a, client, start).unwrap_err(), RefusalLog::Now { refused: 1 });
    for n in 1..=500u64 {
        let at = start + Duration::from_millis(n);
        assert_eq!(limits.try_admit(&a, client, at).unwrap_err(), RefusalLog::Later);
    }
    let later = start + LOG_INTERVAL;
    assert_eq!(limits.try_admit(&a, client, later).unwrap_err(), RefusalLog::Now { refused: 501 });
    assert_eq!(limits.try_admit(&a, client, later).unwrap_err(), RefusalLog::Later);
}

#[test]
fn zero_is_unlimited() {
    let limits = WorkloadLimits::new(0);
    let (a, now) = (named("pod-a"), Instant::now());
    let held: Vec<_> = (0..10_000).map(|_| limits.try_admit(&a, ip("198.18.1.2"), now).expect("unlimited")).collect();
    assert_eq!((held.len(), limits.open(&a, ip("198.18.1.2"))), (10_000, 0), "nothing is counted");
}
