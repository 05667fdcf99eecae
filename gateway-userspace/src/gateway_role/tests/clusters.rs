use std::{
    net::SocketAddr,
    sync::Arc,
    time::{Duration, Instant},
};

use super::super::clusters::*;
use crate::config::resources::destination_rule::OutlierDetection;

fn od(n: u32) -> OutlierDetection {
    OutlierDetection {
        consecutive_5xx_errors: Some(n),
        consecutive_gateway_errors: None,
        consecutive_local_origin_failures: None,
        split_external_local_origin_errors: None,
        interval: None,
        base_ejection_time: Some(Duration::from_secs(2)),
        max_ejection_percent: Some(100),
        min_health_percent: None,
    }
}

#[test]
fn consecutive_errors_eject_an_endpoint_until_its_time_is_up() {
    let c = Cluster::default();
    let (bad, good): (SocketAddr, SocketAddr) = ("198.51.100.1:80".parse().unwrap(), "198.51.100.2:80".parse().unwrap());
    let t0 = Instant::now();
    c.report(bad, Some(500), &od(2), 2, t0);
    assert_eq!(c.healthy(&[bad, good], t0).len(), 2, "one error is not enough");
    c.report(bad, Some(503), &od(2), 2, t0);
    assert_eq!(c.healthy(&[bad, good], t0), vec![good]);
    assert_eq!(c.healthy(&[bad, good], t0 + Duration::from_secs(3)).len(), 2, "back after the ejection time");
    assert_eq!(c.healthy(&[bad], t0), vec![bad], "never none");
}

#[test]
fn the_in_flight_limit_admits_up_to_it() {
    let c = Arc::new(Cluster::default());
    let a = c.admit(Some(2));
    let b = c.admit(Some(2));
    assert!(a.is_some() && b.is_some() && c.admit(Some(2)).is_none());
    drop(a);
    assert!(c.admit(Some(2)).is_some());
}
