//! Tests of `vm/report.rs`.

use crate::vm::report::Report;

#[test]
fn reads_results_counts_and_the_end() {
    let out = "Probing EDD... \u{1b}[2Jxtask-vm: kernel 6.1.0-56-amd64, 2 CPUs\r\n\
        xtask-vm: running interceptor --exact a b\n\
        test a ... \u{1b}[32mok\u{1b}[m\n\
        test b ... FAILED\n\
        2026-11-26T17:38:05Z  INFO gateway_userspace::interceptor: kernel features probed: all present kernel=6.1.0\n\
        2026-11-26T17:38:05Z  INFO gateway_userspace::interceptor: verifier: processed instructions / translated size per program programs=gw_connect4=1171/3416B gw_relay=38/296B\n\
        xtask-vm: exit interceptor 101\n\
        xtask-vm: done\n";
    let r = Report::read(out);
    assert_eq!(r.kernel, "6.1.0-56-amd64, 2 CPUs");
    assert_eq!(r.tests, vec![("a".into(), "ok".into()), ("b".into(), "FAILED".into())]);
    assert_eq!(r.failed_binaries, vec![("interceptor".into(), "101".into())]);
    assert_eq!(r.verifier.as_deref(), Some("gw_connect4=1171/3416B gw_relay=38/296B"));
    assert!(r.finished);
    assert!(!r.passed());
    assert!(r.render("6.1").contains("    gw_relay=38/296B"));
}

#[test]
fn a_verdict_after_the_tests_own_output_is_found() {
    let out = "test shown ... --- gateway stdout ---\nINFO ready\nok\ntest next ... ok\nxtask-vm: done\n";
    let r = Report::read(out);
    assert_eq!(r.tests, vec![("shown".into(), "ok".into()), ("next".into(), "ok".into())]);
    assert!(r.passed());
}

#[test]
fn a_run_that_stopped_early_did_not_pass() {
    let r = Report::read("xtask-vm: kernel 6.1\ntest a ... ok\n");
    assert!(!r.passed());
}
