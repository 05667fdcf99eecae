//! Tests of `bench/report.rs`.

use crate::bench::report::num;

#[test]
fn numbers_keep_three_significant_digits() {
    assert_eq!(num(12345.6), "12,346");
    assert_eq!(num(-1234.0), "-1,234");
    assert_eq!(num(12.34), "12.3");
    assert_eq!(num(0.04567), "0.046");
    assert_eq!(num(f64::NAN), "–");
}
