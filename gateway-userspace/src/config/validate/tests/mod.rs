//! Unit tests of the cross-field checks, one file per source file. The
//! analyzers' tests check that each fixture pair in
//! `tests/fixtures/istio/analyzers` draws exactly the findings
//! `expected.txt` lists, and nothing else.

mod client_tls;
mod gateways;
mod references;
mod service_entries;
mod sidecars;
mod tls_files;
mod virtual_services;

use std::path::PathBuf;

use crate::config::{LoadOptions, load};

/// The findings of one fixture, as `code` strings, with the listing for messages.
pub(super) fn codes_of(file: &str) -> (Vec<&'static str>, String) {
    let path = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/fixtures/istio/analyzers")).join(file);
    let loaded = load(&[path], &LoadOptions::default()).unwrap_or_else(|e| panic!("{file}: {e}"));
    let listing = loaded.findings.iter().map(|f| format!("{f}\n")).collect();
    (loaded.findings.iter().map(|f| f.code.as_str()).collect(), listing)
}

/// Checks the fixture pair of `code` against `expected.txt`.
pub(super) fn check_pair(code: &str) {
    let expected = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/fixtures/istio/analyzers/expected.txt")).unwrap();
    let stem = code.to_ascii_lowercase();
    let mut checked = 0;
    for line in expected.lines().filter(|l| l.starts_with(&stem)) {
        let [file, want, count] = line.split_whitespace().collect::<Vec<_>>()[..] else { panic!("bad line {line}") };
        let count: usize = count.parse().unwrap();
        let (codes, listing) = codes_of(file);
        assert_eq!(codes.len(), count, "{file}: expected {count} finding(s):\n{listing}");
        assert!(codes.iter().all(|c| *c == want), "{file}: expected only {want}:\n{listing}");
        checked += 1;
    }
    assert_eq!(checked, 2, "{code} needs a positive and a negative fixture");
}
