//! Address tests on the 16-byte form, shared by the kernel programs and
//! their host tests. Written with plain loops the BPF verifier accepts.

/// `::ffff:a.b.c.d` → `Some(a.b.c.d)`.
#[inline(always)]
pub fn unmap_v4(bytes: &[u8; 16]) -> Option<[u8; 4]> {
    let mut i = 0;
    while i < 10 {
        if bytes[i] != 0 {
            return None;
        }
        i += 1;
    }
    if bytes[10] == 0xff && bytes[11] == 0xff {
        Some([bytes[12], bytes[13], bytes[14], bytes[15]])
    } else {
        None
    }
}

/// IPv4 destinations that never leave the caller's network namespace:
/// 127.0.0.0/8 and 0.0.0.0.
#[inline(always)]
pub fn is_local_v4(a: [u8; 4]) -> bool {
    a[0] == 127 || a == [0, 0, 0, 0]
}

/// IPv6 destinations that never leave the caller's network namespace:
/// `::` and `::1`.
#[inline(always)]
pub fn is_local_v6(a: &[u8; 16]) -> bool {
    let mut i = 0;
    while i < 15 {
        if a[i] != 0 {
            return false;
        }
        i += 1;
    }
    a[15] <= 1
}
