//! Tests of `access_log_time.rs`.

use time::{OffsetDateTime, format_description::well_known::Rfc3339};

use crate::access_log::time_stamp::rfc3339;

fn by_the_crate(unix: u64, nanos: u32) -> String {
    let t = OffsetDateTime::from_unix_timestamp_nanos(i128::from(unix) * 1_000_000_000 + i128::from(nanos)).unwrap();
    t.format(&Rfc3339).unwrap()
}

#[test]
fn written_as_the_time_crate_writes_it() {
    let seconds = [0, 1, 59, 951_782_400, 1_700_000_000, 1_795_737_599, 4_102_444_800, 253_402_300_799];
    let nanos = [0, 1, 10, 100_000_000, 123_456_789, 120_000_000, 999_999_999, 500, 7_000_000, 100];
    let mut last = None;
    for s in seconds {
        for n in nanos {
            assert_eq!(rfc3339(s, n, &mut last).as_str(), by_the_crate(s, n), "{s} s {n} ns");
        }
    }
}

#[test]
fn a_kept_second_is_used_only_for_that_second() {
    let mut last = None;
    assert_eq!(rfc3339(1_700_000_000, 5, &mut last).as_str(), "2023-11-14T22:13:20.000000005Z");
    assert_eq!(rfc3339(1_700_000_000, 250_000_000, &mut last).as_str(), "2023-11-14T22:13:20.25Z");
    assert_eq!(rfc3339(1_700_000_001, 0, &mut last).as_str(), "2023-11-14T22:13:21Z");
    assert_eq!(rfc3339(1_699_999_999, 0, &mut last).as_str(), "2023-11-14T22:13:19Z");
}
