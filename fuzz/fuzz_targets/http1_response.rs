//! The upstream response reader (`transport/h1_client`): a response head
//! parsed, then its body decoded, from any bytes.
//!
//! - Nothing panics, and the body never yields more bytes than it was given.
//! - Fed in pieces of any size (the control byte picks it), the decoder
//!   gives the same body, trailers, end and leftover as fed everything at
//!   once, and fails where that fails: where a read happens to stop never
//!   changes what is read.
//! - A length-delimited body that ends gives exactly its length.

#![no_main]

use bytes::BytesMut;
use gateway_userspace::transport::h1_client::{Asked, Decoded, Decoder, Framing, parse_response};
use libfuzzer_sys::fuzz_target;

/// What decoding a body came to.
#[derive(Debug, Default, PartialEq)]
struct Read {
    data: Vec<u8>,
    trailers: Option<String>,
    ended: bool,
    failed: bool,
    /// Bytes after the body's end, once it ended.
    left: usize,
}

fn decode(framing: Framing, pieces: &[&[u8]]) -> Read {
    let mut decoder = Decoder::new(framing);
    let mut buf = BytesMut::new();
    let mut fed = 0;
    let mut read = Read::default();
    loop {
        let closed = fed == pieces.len();
        match decoder.decode(&mut buf, closed) {
            Ok(Decoded::Frame(frame)) => match frame.into_data() {
                Ok(data) => read.data.extend_from_slice(&data),
                Err(frame) => {
                    assert!(read.trailers.is_none(), "a second trailer section");
                    read.trailers = frame.into_trailers().ok().map(|t| format!("{t:?}"));
                }
            },
            Ok(Decoded::End) => {
                assert!(decoder.is_end());
                read.ended = true;
                read.left = buf.len() + pieces[fed..].iter().map(|p| p.len()).sum::<usize>();
                return read;
            }
            Ok(Decoded::NeedMore) => {
                assert!(!closed, "asked for more after the end of input");
                buf.extend_from_slice(pieces[fed]);
                fed += 1;
            }
            Err(_) => {
                read.failed = true;
                read.data.clear();
                read.trailers = None;
                return read;
            }
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&control, data)) = data.split_first() else { return };
    let asked = Asked { head: control & 1 == 1, close: false };
    let mut buf = BytesMut::from(data);
    let Ok(Some(head)) = parse_response(&mut buf, asked) else { return };
    let body = &buf[..];
    let whole = decode(head.framing, &[body]);
    let piece = usize::from(control >> 1) + 1;
    let pieces: Vec<&[u8]> = body.chunks(piece).collect();
    let split = decode(head.framing, &pieces);
    assert_eq!(whole, split, "fed whole and in pieces of {piece}");
    assert!(whole.data.len() <= body.len(), "more body than bytes");
    if let (Framing::Length(n), true) = (head.framing, whole.ended) {
        assert_eq!(whole.data.len() as u64, n, "a length-delimited body");
    }
});
