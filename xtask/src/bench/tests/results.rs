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
