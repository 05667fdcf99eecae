//! Tests of `bench/profile.rs`.

use crate::bench::{modes::Mode, profile::file_stem};

#[test]
fn profiles_are_named_by_figure_and_mode() {
    assert_eq!(file_stem("http_fixed", Mode::Ebpf), "http_fixed-C");
    assert_eq!(file_stem("bulk_4_down", Mode::Ebpf), "bulk_4_down-C");
    assert_eq!(file_stem("../x y", Mode::HaproxyHttp), "___x_y-Dh");
}
