//! Tests of `bench/profile.rs`.

use crate::bench::{
    modes::Mode,
    profile::{Sampled, file_stem, load_stem},
};

#[test]
fn profiles_are_named_by_figure_and_mode() {
    assert_eq!(file_stem("http_fixed", Mode::Ebpf), "http_fixed-C");
    assert_eq!(file_stem("bulk_4_down", Mode::Ebpf), "bulk_4_down-C");
    assert_eq!(file_stem("../x y", Mode::HaproxyHttp), "___x_y-Dh");
}

#[test]
fn load_cpu_profiles_are_told_apart_from_the_proxys() {
    assert_eq!(load_stem("bulk_1_up", Mode::Direct), "bulk_1_up-load-A");
    assert_eq!(load_stem("bulk_1_up", Mode::Ebpf), "bulk_1_up-load-C");
    assert_ne!(load_stem("bulk_1_up", Mode::Ebpf), file_stem("bulk_1_up", Mode::Ebpf));
}

#[test]
fn a_process_is_sampled_by_pid_and_a_cpu_by_number() {
    assert_eq!(Sampled::Process(4242).perf_args(), ["-p".to_string(), "4242".to_string()]);
    assert_eq!(Sampled::Cpu(0).perf_args(), ["-C".to_string(), "0".to_string()]);
}
