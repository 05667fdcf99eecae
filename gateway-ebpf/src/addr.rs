//! Address helpers: kernel fields arrive as network-order words.

use gateway_common::v4_mapped;

/// `user_ip4`-style word (network order in memory) to bytes.
#[inline(always)]
pub fn ip4_bytes(word: u32) -> [u8; 4] {
    word.to_ne_bytes()
}

/// `user_ip6`-style words (network order in memory) to bytes.
#[inline(always)]
pub fn ip6_bytes(words: [u32; 4]) -> [u8; 16] {
    let mut out = [0u8; 16];
    let mut i = 0;
    while i < 4 {
        let b = words[i].to_ne_bytes();
        out[i * 4] = b[0];
        out[i * 4 + 1] = b[1];
        out[i * 4 + 2] = b[2];
        out[i * 4 + 3] = b[3];
        i += 1;
    }
    out
}

/// Bytes to `user_ip6`-style words.
#[inline(always)]
pub fn ip6_words(bytes: &[u8; 16]) -> [u32; 4] {
    let mut out = [0u32; 4];
    let mut i = 0;
    while i < 4 {
        out[i] = u32::from_ne_bytes([
            bytes[i * 4],
            bytes[i * 4 + 1],
            bytes[i * 4 + 2],
            bytes[i * 4 + 3],
        ]);
        i += 1;
    }
    out
}

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

/// Destinations that never leave the caller's network namespace.
#[inline(always)]
pub fn is_local_v4(a: [u8; 4]) -> bool {
    a[0] == 127 || a == [0, 0, 0, 0]
}

#[inline(always)]
pub fn is_local_v6(a: &[u8; 16]) -> bool {
    let mut i = 0;
    while i < 15 {
        if a[i] != 0 {
            return false;
        }
        i += 1;
    }
    a[15] <= 1 // :: or ::1
}

#[inline(always)]
pub fn mapped(a: [u8; 4]) -> [u8; 16] {
    v4_mapped(a)
}
