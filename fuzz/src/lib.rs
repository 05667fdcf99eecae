//! Helpers shared by the fuzz targets.

use gateway_userspace::sniff::{MAX_SNIFF_BYTES, SniffOutcome, sniff};

pub mod yaml_text;

/// The proxy asks the sniffer again each time more bytes arrive, so an
/// early verdict must be the final one: every prefix of `buf` is either
/// still undecided or decided as `buf` is. A few cut points are taken from
/// the input itself. Also checks that a full peek always gets a verdict.
pub fn check_prefixes(buf: &[u8], full: &SniffOutcome) {
    if buf.len() >= MAX_SNIFF_BYTES {
        assert_ne!(*full, SniffOutcome::NeedMore, "no verdict on a full peek");
    }
    if buf.is_empty() {
        return;
    }
    for seed in buf.iter().skip(1).take(4) {
        let cut = usize::from(*seed) * buf.len() / 256;
        match sniff(&buf[..cut]) {
            SniffOutcome::NeedMore => {}
            early => assert_eq!(&early, full, "verdict on the first {cut} bytes differs from the final one"),
        }
    }
}

/// TLS record content type `handshake`.
const HANDSHAKE: u8 = 0x16;

/// The wire bytes of a TLS target's input: as given if it starts with a
/// handshake record; else `data[0]` picks the record size and `data[1..]`
/// is a handshake message cut into records of that size.
pub fn wire_of(data: &[u8]) -> Vec<u8> {
    let Some((&size, message)) = data.split_first() else { return Vec::new() };
    if size == HANDSHAKE {
        return data.to_vec();
    }
    // Every size from 1 to 128 bytes, then powers of two up to 16 KiB.
    let size = if size < 128 { usize::from(size) + 1 } else { 1 << (size % 15) };
    let mut wire = Vec::with_capacity(message.len() + message.len() / size * 5 + 5);
    for chunk in message.chunks(size) {
        wire.extend_from_slice(&[HANDSHAKE, 3, 1]);
        wire.extend_from_slice(&(chunk.len() as u16).to_be_bytes());
        wire.extend_from_slice(chunk);
    }
    wire
}
