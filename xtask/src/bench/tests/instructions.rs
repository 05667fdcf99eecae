//! Tests of `bench/instructions.rs`: reading a callgrind dump's totals.

use crate::bench::instructions::{Totals, totals};

/// The head of a dump written with the cache simulation, as callgrind 3.19 writes it.
const DUMP: &str = "# callgrind format\nversion: 1\ncreator: callgrind-3.19.0\npid: 3724\ncmd:  gateway run\npart: 1\n\n\
                    positions: line\nevents: Ir Dr Dw I1mr D1mr D1mw ILmr DLmr DLmw\n\
                    summary: 24055648 6759618 5067636 1548781 165864 181350 460 31 534\n\nfl=(1)\n";

#[test]
fn totals_are_read_by_event_name() {
    assert_eq!(totals(DUMP), Some(Totals { instructions: 24_055_648, l1_data_misses: 165_864 + 181_350 }));
}

#[test]
fn events_in_another_order_are_still_found() {
    let dump = "events: D1mw Ir D1mr\nsummary: 3 100 2\n";
    assert_eq!(totals(dump), Some(Totals { instructions: 100, l1_data_misses: 5 }));
}

#[test]
fn a_dump_without_the_cache_events_or_a_summary_is_refused() {
    assert_eq!(totals("events: Ir\nsummary: 100\n"), None);
    assert_eq!(totals("events: Ir D1mr D1mw\n"), None);
    assert_eq!(totals("events: Ir D1mr D1mw\nsummary: 100 x 2\n"), None);
}
