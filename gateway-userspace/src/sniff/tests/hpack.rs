//! The HPACK decoder: the RFC 7541 request sequence with its dynamic table,
//! table size updates, and the bound on a header list's expansion.

use super::super::hpack::{DEFAULT_TABLE_SIZE, Decoder};
use super::{hpack_int, malformed, with_block};

#[test]
fn rfc7541_request_sequence_with_dynamic_table() {
    // RFC 7541 C.4.1: first request, then an indexed reference to the entry
    // it added (index 62) within one block.
    let mut block = vec![0x82, 0x86, 0x84, 0x41, 0x8c];
    block.extend([
        0xf1, 0xe3, 0xc2, 0xe5, 0xf2, 0x3a, 0x6b, 0xa0, 0xab, 0x90, 0xf4, 0xff,
    ]);
    let fields = Decoder::new(DEFAULT_TABLE_SIZE).decode(&block).unwrap();
    assert_eq!(
        fields[3],
        (b":authority".to_vec(), b"www.example.com".to_vec())
    );
    block.push(0xbe);
    assert_eq!(
        malformed(&with_block(&block)),
        "http2: duplicate pseudo-header"
    );
    // A table size update to 0 evicts the entry again.
    let mut d = Decoder::new(DEFAULT_TABLE_SIZE);
    assert!(d.decode(&[0x40, 0x01, b'a', 0x01, b'b', 0xbe]).is_ok());
    assert!(d.decode(&[0x20, 0xbe]).is_err());
    let long = hpack_int(0x20, 5, 4096);
    assert!(Decoder::new(DEFAULT_TABLE_SIZE).decode(&long).is_ok());
}

#[test]
fn header_list_expansion_is_bounded() {
    // A 4 KiB entry referenced over and over would decode to megabytes.
    let mut block = vec![0x40, 0x01, b'x'];
    block.extend(hpack_int(0, 7, 4000));
    block.extend(vec![b'v'; 4000]);
    block.extend(vec![0xbe; 4000]);
    let got = Decoder::new(DEFAULT_TABLE_SIZE).decode(&block);
    assert_eq!(got.err(), Some("hpack: header list too large"));
}
