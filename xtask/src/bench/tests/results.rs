//! Tests of `bench/results.rs`.

use crate::bench::{modes::Mode, results::*};

#[test]
fn spread_and_ratios_pair_repetitions() {
    assert_eq!(Spread::of([3.0, 1.0, 2.0]).unwrap(), Spread { min: 1.0, q1: 1.5, median: 2.0, q3: 2.5, max: 3.0, n: 3 });
    assert_eq!(Spread::of([4.0, 1.0]).unwrap().median, 2.5);
    let mut r = Results::default();
    let fig = Figure { id: "x", title: "x", unit: "u", higher_is_better: true, additive: true };
    for (rep, (a, c)) in [(10.0, 5.0), (20.0, 5.0)].into_iter().enumerate() {
        r.record(&fig, Mode::Direct, rep, Some(a));
        r.record(&fig, Mode::Ebpf, rep, Some(c));
    }
    r.record(&fig, Mode::Ebpf, 2, None);
    let s = r.get("x").unwrap();
    let ratio = s.ratio(Mode::Ebpf, Mode::Direct).unwrap();
    assert_eq!((ratio.min, ratio.max), (0.25, 0.5));
    assert_eq!(s.added(Mode::Ebpf, Mode::Direct).unwrap().median, -10.0);
}

#[test]
fn quartiles_interpolate_and_skip_gaps() {
    let s = Spread::of([9.0, 1.0, 5.0, 3.0, 7.0, f64::NAN]).unwrap();
    assert_eq!((s.min, s.q1, s.median, s.q3, s.max, s.n), (1.0, 3.0, 5.0, 7.0, 9.0, 5));
    let one = Spread::of([4.0]).unwrap();
    assert_eq!((one.q1, one.median, one.q3), (4.0, 4.0, 4.0));
    assert!(Spread::of([f64::INFINITY]).is_none());
}

#[test]
fn added_at_quiet_speed_divides_out_a_slow_repetition() {
    let mut r = Results::default();
    let fig = Figure { id: "p50", title: "p50", unit: "µs", higher_is_better: false, additive: true };
    // The third repetition ran 1.5 times slower throughout.
    for (rep, (a, c)) in [(10.0, 20.0), (10.0, 20.0), (15.0, 30.0), (10.0, 20.0)].into_iter().enumerate() {
        r.record(&fig, Mode::Direct, rep, Some(a));
        r.record(&fig, Mode::Ebpf, rep, Some(c));
    }
    let s = r.get("p50").unwrap();
    assert_eq!(s.added(Mode::Ebpf, Mode::Direct).unwrap().max, 15.0);
    let quiet = s.added_at_quiet_speed(Mode::Ebpf, Mode::Direct).unwrap();
    assert_eq!((quiet.min, quiet.max), (10.0, 10.0));
    assert!(s.added_at_quiet_speed(Mode::Haproxy, Mode::Direct).is_none());
}
