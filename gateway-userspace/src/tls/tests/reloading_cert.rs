//! A server certificate replaced on disk is presented from then on; a
//! broken replacement keeps the last good one.

use std::sync::Arc;

use super::Pki;
use crate::tls::reloading_cert::ReloadingCert;

#[test]
fn a_replaced_pair_is_presented_and_a_broken_one_is_not() {
    let pki = Pki::new("reloading-cert");
    let (files, _) = pki.workload("shop", "app");
    let resolver = ReloadingCert::load(&files.cert, &files.key).expect("the first pair loads");
    let first = resolver.current();
    assert!(Arc::ptr_eq(&first, &resolver.current()), "unchanged files: the same pair");

    std::thread::sleep(std::time::Duration::from_millis(20));
    let (renewed, _) = pki.workload("shop", "app");
    assert_eq!(renewed.cert, files.cert, "written over the same files");
    let second = resolver.current();
    assert_ne!(first.cert[0], second.cert[0], "the renewed certificate is presented");

    // A certificate whose key is not the one on disk: the last good pair stays.
    std::thread::sleep(std::time::Duration::from_millis(20));
    let other = pki.server("other", &["other.test"]);
    std::fs::copy(&other.cert, &files.cert).unwrap();
    assert_eq!(resolver.current().cert[0], second.cert[0]);
    assert!(ReloadingCert::load(&files.cert, &files.key).is_err(), "a mismatched pair never loads first");
}
