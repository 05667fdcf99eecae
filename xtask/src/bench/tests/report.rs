//! Tests of `bench/report.rs`.

use crate::bench::{
    modes::Mode,
    report::{Meta, markdown, num, ratio_pairs},
    results::{Figure, Results},
};

#[test]
fn numbers_keep_three_significant_digits() {
    assert_eq!(num(12345.6), "12,346");
    assert_eq!(num(-1234.0), "-1,234");
    assert_eq!(num(12.34), "12.3");
    assert_eq!(num(0.04567), "0.046");
    assert_eq!(num(f64::NAN), "–");
}

#[test]
fn the_gateway_is_compared_with_both_haproxy_modes() {
    let pairs = ratio_pairs();
    assert!(pairs.contains(&(Mode::Ebpf, Mode::Haproxy)));
    assert!(pairs.contains(&(Mode::Ebpf, Mode::HaproxyHttp)));
    assert!(pairs.contains(&(Mode::HaproxyHttp, Mode::Direct)));
}

fn meta() -> Meta {
    Meta {
        date: "today".into(),
        machine: "test".into(),
        build: "profile-guided release".into(),
        quick: true,
        repetitions: "5".into(),
        seconds: 1.0,
        load_before: Some(0.5),
    }
}

#[test]
fn the_heading_says_which_build_was_measured() {
    let md = markdown(&meta(), &Results::default());
    assert!(md.contains("Machine: test. Gateway build: profile-guided release. Repetitions: 5."), "{md}");
}

#[test]
fn the_added_p50_is_shown_with_its_spread() {
    let mut r = Results::default();
    let fig = Figure { id: "rr_p50", title: "64 B request/response p50", unit: "µs", higher_is_better: false, additive: true };
    for (rep, (a, c)) in [(30.0, 40.0), (31.0, 45.0), (29.0, 37.0), (30.0, 42.0), (30.0, 41.0)].into_iter().enumerate() {
        r.record(&fig, Mode::Direct, rep, Some(a));
        r.record(&fig, Mode::Ebpf, rep, Some(c));
    }
    let md = markdown(&meta(), &r);
    // Added per repetition: 10, 14, 8, 12, 11; A's first quartile is 30,
    // so at that speed: 10, 13.5, 8.28, 12, 11.
    assert!(md.contains("| 64 B request/response p50 | C ebpf | 11 | 10–12 | 8–14 | 11 | 10.00–12.0 | 8.28–13.5 | 5 |"), "{md}");
}

#[test]
fn http_figures_show_dh_beside_c_and_d() {
    let mut r = Results::default();
    let fig = Figure { id: "http_max", title: "HTTP max", unit: "req/s", higher_is_better: true, additive: false };
    for (mode, v) in [(Mode::Direct, 10_000.0), (Mode::Ebpf, 8_000.0), (Mode::Haproxy, 7_000.0), (Mode::HaproxyHttp, 4_000.0)] {
        r.record(&fig, mode, 0, Some(v));
    }
    let md = markdown(&meta(), &r);
    assert!(md.contains("C/D | C/Dh |"), "{md}");
    assert!(md.contains("| 1.14× | 2.00× |"), "{md}");
    assert!(md.contains("Dh haproxy-http"), "{md}");
}

#[test]
fn a_cpus_busy_share_is_shown_but_not_compared_as_a_ratio() {
    let mut r = Results::default();
    let rate = Figure { id: "bulk_1_up", title: "iperf3, 1 stream, client→server", unit: "Gbit/s", higher_is_better: true, additive: false };
    let busy = Figure { id: "bulk_1_up_load_cpu", title: "iperf3, 1 stream, client→server, load CPU busy", unit: "%", higher_is_better: false, additive: false };
    for (mode, gbit, percent) in [(Mode::Direct, 14.0, 99.0), (Mode::Ebpf, 12.0, 88.0)] {
        r.record(&rate, mode, 0, Some(gbit));
        r.record(&busy, mode, 0, Some(percent));
    }
    let md = markdown(&meta(), &r);
    let (values, ratios) = md.split_once("## Ratios").expect("a ratio table");
    assert!(values.contains("| iperf3, 1 stream, client→server, load CPU busy | % |"), "{values}");
    assert!(ratios.contains("| iperf3, 1 stream, client→server |"), "{ratios}");
    assert!(!ratios.contains("load CPU busy"), "{ratios}");
}

#[test]
fn instructions_are_compared_with_both_haproxy_modes() {
    let mut r = Results::default();
    let subject = |n: f64| serde_json::json!({ "per_request": n, "l1_data_misses": 1.0, "requests": 2000 });
    r.sections.insert(
        "instructions".into(),
        serde_json::json!({ "gateway": subject(26_000.0), "haproxy-http": subject(32_500.0), "haproxy-tcp": subject(6_500.0) }),
    );
    let md = markdown(&meta(), &r);
    assert!(md.contains("| / HAProxy `mode http` | / HAProxy `mode tcp` |"), "{md}");
    assert!(md.contains("| gateway | 2,000 | 26,000 | 0.80× | 4.00× | 1 |"), "{md}");
    assert!(md.contains("| haproxy-tcp | 2,000 | 6,500 | 0.20× | 1.00× | 1 |"), "{md}");
}
