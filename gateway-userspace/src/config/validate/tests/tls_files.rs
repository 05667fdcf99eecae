//! TLS files of terminating servers: PEM checks and the digest of what was read.

use crate::config::validate::tls_files::{Material, digest, parse_problem};

#[test]
fn pem_checks() {
    assert!(parse_problem(b"hello", Material::Certificates).is_some());
    assert!(parse_problem(b"hello", Material::PrivateKey).is_some());
    let bad = b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
    assert!(parse_problem(bad, Material::Certificates).is_some());
}

#[test]
fn the_digest_changes_with_any_file_and_with_where_bytes_fall() {
    let base = digest(&[b"cert", b"key", b""]);
    assert_eq!(base, digest(&[b"cert", b"key", b""]));
    assert_ne!(base, digest(&[b"cert2", b"key", b""]));
    assert_ne!(base, digest(&[b"cert", b"key", b"ca"]));
    assert_ne!(digest(&[b"ab", b"c", b""]), digest(&[b"a", b"bc", b""]));
}
