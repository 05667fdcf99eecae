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
