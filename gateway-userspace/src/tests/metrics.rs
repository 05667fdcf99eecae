//! Metrics: kernel counters exported as the kernel reports them.

use crate::metrics::*;

#[test]
fn kernel_counters_follow_the_kernel_values() {
    let m = Metrics::default();
    m.set_kernel_events(&[("redirected", 5)]);
    m.set_kernel_events(&[("redirected", 7)]);
    m.config_reloads.get_or_create(&ReloadLabels { result: ReloadResult::Rejected }).inc();
    let text = m.encode();
    assert!(text.contains("gateway_kernel_events_total{event=\"redirected\"} 7"), "{text}");
    assert!(text.contains("gateway_config_reloads_total{result=\"Rejected\"} 1"), "{text}");
}

/// An audited TLS connection to `sni`, as the node logs it.
fn would_deny(sni: &str) -> crate::access_log::ConnectionRecord {
    use crate::{access_log::*, policy::*, transport::addrs::*};
    let mut r = ConnectionRecord::new(ClientAddr("198.18.1.2:40000".parse().unwrap()));
    r.orig_dst = Some(OrigDstAddr("203.0.113.10:443".parse().unwrap()));
    r.workload = Some(WorkloadIdentity { name: Some("web".into()), ..WorkloadIdentity::unknown("shop") });
    (r.protocol, r.sni) = (Some("tls"), Some(sni.into()));
    r.would_deny(&WouldDeny { reason: DenyReason::NotRegistered, matched: None });
    r
}

#[test]
fn would_deny_hosts_are_capped_and_made_safe_as_labels() {
    let m = Metrics::default();
    m.record_connection(&would_deny("API.example.test"));
    m.record_connection(&would_deny("bad\"host\nx"));
    for i in 0..MAX_WOULD_DENY_SERIES {
        m.record_connection(&would_deny(&format!("h{i}.example.test")));
    }
    let text = m.encode();
    let sample = |host: &str| format!("gateway_audit_would_deny_total{{workload=\"shop/web\",host=\"{host}\",reason=\"not-registered\"}} ");
    assert!(text.contains(&(sample("api.example.test") + "1")), "{text}");
    assert!(text.contains(&(sample("bad_host_x") + "1")), "a host becomes a safe label value");
    // Two series were taken before the loop: its last two calls count as `other`.
    assert!(text.contains(&(sample("other") + "2")), "past the cap: other");
    assert!(!text.contains(&format!("h{}.example.test", MAX_WOULD_DENY_SERIES - 1)));
    assert!(m.refusals.render(None).unwrap().contains("api.example.test"));
}

/// An allowed request from `shop/web` to the registered `api.example.test`.
fn request(status: u16) -> crate::access_log::RequestRecord {
    use crate::{access_log::*, policy::*, transport::addrs::*};
    let req = hyper::Request::get("/").body(()).unwrap();
    let workload = WorkloadIdentity { name: Some("web".into()), ..WorkloadIdentity::unknown("shop") };
    let mut r = RequestRecord::new(ClientAddr("198.18.1.2:40000".parse().unwrap()), OrigDstAddr("203.0.113.10:80".parse().unwrap()), &workload, &req, None);
    let matched = MatchedEntry { kind: "ServiceEntry", namespace: "shop".into(), name: "api".into(), host: "api.example.test".into() };
    r.allow(AllowReason::RegisteredHost, Some(matched));
    r.status = status;
    r
}

/// A connection keeps its last request's series: requests with the same
/// labels count in it, and one with other labels counts in its own series
/// (and becomes the kept one), as though each were looked up afresh.
#[test]
fn a_connections_requests_count_in_their_own_series() {
    let m = Metrics::default();
    let mut series = RequestSeries::default();
    for status in [200, 200, 503, 200, 200] {
        m.record_request(&request(status), &mut series);
    }
    let mut other_connection = RequestSeries::default();
    m.record_request(&request(503), &mut other_connection);
    let text = m.encode();
    let istio = |code: u16| {
        format!(
            "istio_requests_total{{reporter=\"source\",source_workload=\"web\",destination_service=\"api.example.test\",response_code=\"{code}\",response_flags=\"-\",request_protocol=\"http\",connection_security_policy=\"none\"}} "
        )
    };
    assert!(text.contains(&(istio(200) + "4")), "{text}");
    assert!(text.contains(&(istio(503) + "2")), "{text}");
    let ours = "gateway_requests_total{decision=\"allow\",reason=\"registered-host\",workload=\"shop/web\",host=\"api.example.test\",role=\"node\"} 6";
    assert!(text.contains(ours), "{text}");
    assert!(text.contains("istio_request_duration_milliseconds_count{"), "{text}");
}
