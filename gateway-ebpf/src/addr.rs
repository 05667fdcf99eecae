//! Address helpers: kernel fields arrive as network-order words. The tests
//! on the 16-byte form are `gateway_common::addr`.

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

#[inline(always)]
pub fn mapped(a: [u8; 4]) -> [u8; 16] {
    v4_mapped(a)
}
