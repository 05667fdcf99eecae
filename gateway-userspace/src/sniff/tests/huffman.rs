//! HPACK Huffman coding: the RFC 7541 vectors, every symbol both ways, and
//! the codes it refuses.

use super::super::huffman;

#[test]
fn rfc7541_huffman_vectors() {
    // RFC 7541 C.4.1 and C.4.2.
    let www = [
        0xf1, 0xe3, 0xc2, 0xe5, 0xf2, 0x3a, 0x6b, 0xa0, 0xab, 0x90, 0xf4, 0xff,
    ];
    assert_eq!(
        huffman::decode(&www).as_deref(),
        Ok(&b"www.example.com"[..])
    );
    assert_eq!(
        huffman::decode(&[0xa8, 0xeb, 0x10, 0x64, 0x9c, 0xbf]).as_deref(),
        Ok(&b"no-cache"[..])
    );
    assert_eq!(huffman::encode(b"www.example.com"), www);
    let all: Vec<u8> = (0..=255).collect();
    assert_eq!(huffman::decode(&huffman::encode(&all)), Ok(all));
    // EOS (30 ones) and over-long padding are refused.
    assert!(huffman::decode(&[0xff, 0xff, 0xff, 0xff]).is_err());
    assert!(huffman::decode(&[0xf1, 0xff]).is_err());
}
