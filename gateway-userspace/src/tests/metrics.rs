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
