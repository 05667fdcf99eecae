//! The address helpers on the 16-byte form.

use crate::{
    addr::{is_local_v4, is_local_v6, unmap_v4},
    v4_mapped,
};

#[test]
fn only_the_ipv4_mapped_form_unmaps() {
    assert_eq!(unmap_v4(&v4_mapped([203, 0, 113, 10])), Some([203, 0, 113, 10]));
    assert_eq!(unmap_v4(&v4_mapped([0, 0, 0, 0])), Some([0, 0, 0, 0]));
    // ::203.0.113.10 (IPv4-compatible, deprecated) and 64:ff9b::/96 (NAT64) are IPv6.
    let compatible = [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 203, 0, 113, 10];
    assert_eq!(unmap_v4(&compatible), None);
    let nat64 = [0, 0x64, 0xff, 0x9b, 0, 0, 0, 0, 0, 0, 0, 0, 203, 0, 113, 10];
    assert_eq!(unmap_v4(&nat64), None);
    let mut almost = v4_mapped([203, 0, 113, 10]);
    almost[11] = 0xfe;
    assert_eq!(unmap_v4(&almost), None);
}

#[test]
fn local_means_loopback_or_unspecified() {
    assert!(is_local_v4([127, 0, 0, 1]));
    assert!(is_local_v4([127, 255, 3, 9]));
    assert!(is_local_v4([0, 0, 0, 0]));
    assert!(!is_local_v4([0, 0, 0, 1]));
    assert!(!is_local_v4([128, 0, 0, 1]));
    assert!(!is_local_v4([198, 18, 1, 1]));

    let mut v6 = [0u8; 16];
    assert!(is_local_v6(&v6), "::");
    v6[15] = 1;
    assert!(is_local_v6(&v6), "::1");
    v6[15] = 2;
    assert!(!is_local_v6(&v6), "::2");
    v6[15] = 1;
    v6[0] = 0x20;
    assert!(!is_local_v6(&v6), "2000::1");
}
