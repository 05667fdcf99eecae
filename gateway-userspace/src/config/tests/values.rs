//! Scalar formats: durations, CIDR blocks, Kubernetes names.

use std::time::Duration;

use crate::config::values::*;

#[test]
fn durations() {
    assert_eq!(parse_duration("10s"), Some(Duration::from_secs(10)));
    assert_eq!(parse_duration("1.5s"), Some(Duration::from_millis(1500)));
    assert_eq!(parse_duration("1m30s"), Some(Duration::from_secs(90)));
    assert_eq!(parse_duration("250ms"), Some(Duration::from_millis(250)));
    assert_eq!(parse_duration("0"), Some(Duration::ZERO));
    for bad in ["", "10", "s", "1x", "1.2.3s", "-1s", "1e400h"] {
        assert_eq!(parse_duration(bad), None, "{bad}");
    }
}

#[test]
fn cidrs() {
    let c = parse_cidr("10.0.0.0/8").unwrap();
    assert!(c.contains("10.1.2.3".parse().unwrap()));
    assert!(!c.contains("11.1.2.3".parse().unwrap()));
    assert_eq!(parse_cidr("1.2.3.4").unwrap().prefix, 32);
    assert_eq!(parse_cidr("::1").unwrap().prefix, 128);
    assert!(
        parse_cidr("0.0.0.0/0")
            .unwrap()
            .contains("8.8.8.8".parse().unwrap())
    );
    for bad in ["10.0.0.0/33", "10.0.0/8", "x", "1.2.3.4/", "1.2.3.4/+1"] {
        assert!(parse_cidr(bad).is_none(), "{bad}");
    }
}

#[test]
fn names() {
    assert!(is_dns_label("istio-system"));
    assert!(!is_dns_label("Istio"));
    assert!(is_dns_subdomain("a.b-c"));
    assert!(is_label_key("app.kubernetes.io/name"));
    assert!(!is_label_key("-x"));
    assert!(is_label_value(""));
    assert_eq!(edit_distance("hots", "hosts"), 1);
}
