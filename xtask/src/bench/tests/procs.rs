use crate::bench::procs::{busy_and_total, busy_share};

#[test]
fn a_cpu_line_counts_all_but_idle_and_iowait_as_busy() {
    // cpu user nice system idle iowait irq softirq steal guest guest_nice
    assert_eq!(busy_and_total("cpu1 100 5 40 800 10 3 20 7 0 0"), (175, 985));
}

#[test]
fn the_busy_share_is_of_the_ticks_between_two_samples() {
    assert_eq!(busy_share((175, 985), (225, 1085)), Some(0.5));
    // No tick passed: no share, rather than a division by zero.
    assert_eq!(busy_share((175, 985), (175, 985)), None);
}
