//! HPACK decoding against loona-hpack, a maintained RFC 7541 decoder (the
//! one loona uses to pass h2spec).
//!
//! The input is one or two header blocks (the first byte says where to cut)
//! decoded in turn by one decoder each, so entries the first block adds to
//! the dynamic table are looked up by the second.
//! - No panic; the decoded list stays within `MAX_HEADER_LIST_SIZE`.
//! - When both decoders accept a block, they decode the same fields.
//! - A block ours accepts, loona-hpack accepts too.
//! - A block loona-hpack accepts, ours refuses only past our limits or
//!   for a size update after a field (see `OURS_ONLY`).

#![no_main]

use gateway_userspace::sniff::hpack::{DEFAULT_TABLE_SIZE, Decoder, Field, MAX_HEADER_LIST_SIZE};
use libfuzzer_sys::fuzz_target;

/// Per-field overhead in the list size (RFC 7541 §4.1).
const ENTRY_OVERHEAD: usize = 32;

/// Refusals of ours that loona-hpack does not share: our limits, and RFC
/// 7541 §4.2's rule that size updates come first in a block, which
/// loona-hpack does not enforce.
const OURS_ONLY: &[&str] = &[
    "hpack: header list too large",
    "hpack: integer too large",
    "hpack: table size update after a header field",
];

fn list_size(fields: &[Field]) -> usize {
    fields.iter().map(|(n, v)| n.len() + v.len() + ENTRY_OVERHEAD).sum()
}

fuzz_target!(|data: &[u8]| {
    let Some((&cut, rest)) = data.split_first() else { return };
    let cut = (usize::from(cut) * rest.len() / 255).min(rest.len());
    let (a, b) = rest.split_at(cut);
    let blocks: &[&[u8]] = if cut == 0 { &[rest] } else { &[a, b] };

    let mut ours = Decoder::new(DEFAULT_TABLE_SIZE);
    let mut theirs = loona_hpack::Decoder::new();
    theirs.set_max_allowed_table_size(DEFAULT_TABLE_SIZE);
    for block in blocks {
        let mine = ours.decode(block);
        if let Ok(fields) = &mine {
            assert!(list_size(fields) <= MAX_HEADER_LIST_SIZE, "decoded list exceeds the limit");
        }
        match (mine, theirs.decode(block)) {
            (Ok(mine), Ok(other)) => assert_eq!(mine, other, "decoded fields differ"),
            // loona-hpack refuses a block that ends in a size update (the
            // RFC allows it); the decoded fields are what matter, so stop.
            (Ok(_), Err(loona_hpack::decoder::DecoderError::SizeUpdateAtEnd)) => return,
            (Ok(mine), Err(e)) => panic!("ours decoded {mine:?}; loona-hpack says {e:?}"),
            (Err(reason), Ok(other)) => {
                assert!(OURS_ONLY.contains(&reason), "ours refused ({reason}) what loona-hpack decodes as {other:?}");
                return;
            }
            // Both refuse: the tables may now differ; stop here.
            (Err(_), Err(_)) => return,
        }
    }
});
