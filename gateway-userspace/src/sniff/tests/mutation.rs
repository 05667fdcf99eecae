//! Deterministic mutation sweep: flip, cut, splice and overwrite every
//! fixture and synthetic input, and check `sniff` neither panics nor breaks
//! its contract on any of them.

use super::super::{MAX_SNIFF_BYTES, SniffOutcome, Sniffed, parse_http1_head, sniff};
use super::{
    FIXTURES, fixture, get_block, h2_frame, h2_start, hello, hello_message, records, sni_ext,
};

/// xorshift64*: a fixed seed keeps every run identical.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next() % n as u64) as usize
        }
    }

    fn byte(&mut self) -> u8 {
        // Bias towards values that stress length fields.
        match self.below(4) {
            0 => 0,
            1 => 0xff,
            _ => self.next() as u8,
        }
    }
}

fn corpus() -> Vec<Vec<u8>> {
    let mut inputs: Vec<Vec<u8>> = FIXTURES.iter().map(|name| fixture(name)).collect();
    let message = hello_message(&[sni_ext(b"split.example.test")]);
    inputs.push(records(&message, &[20]));
    inputs.push(hello("mut.example.test", &["h2", "http/1.1"]));
    let block = get_block("mut.example.test", true);
    let mut h2 = h2_start();
    h2.extend(h2_frame(1, 0, 1, &block[..5]));
    h2.extend(h2_frame(9, 0x4, 1, &block[5..]));
    inputs.push(h2);
    inputs.push(
        b"GET http://a.test:1/ HTTP/1.1\r\nHost: a.test\r\nContent-Length: 0\r\n\r\n".to_vec(),
    );
    inputs
}

/// Call every entry point and check the outcome is consistent.
fn check(buf: &[u8]) {
    for outcome in [sniff(buf), parse_http1_head(buf)] {
        match outcome {
            SniffOutcome::NeedMore => {
                assert!(
                    buf.len() < MAX_SNIFF_BYTES,
                    "NeedMore at {} bytes",
                    buf.len()
                );
            }
            SniffOutcome::Done(Sniffed::Http1(req)) => {
                assert!(req.head_len <= buf.len());
                assert!(req.head_len >= 4);
            }
            SniffOutcome::Malformed(reason) => assert!(!reason.is_empty()),
            SniffOutcome::Done(_) => {}
        }
    }
}

fn mutate(rng: &mut Rng, input: &[u8]) -> Vec<u8> {
    let mut buf = input.to_vec();
    for _ in 0..=rng.below(3) {
        let at = rng.below(buf.len() + 1);
        match rng.below(6) {
            0 => {
                if let Some(b) = buf.get_mut(at) {
                    *b = rng.byte();
                }
            }
            1 => {
                if let Some(b) = buf.get_mut(at) {
                    *b ^= 1 << rng.below(8);
                }
            }
            2 => buf.truncate(at),
            3 => {
                let end = (at + rng.below(16)).min(buf.len());
                buf.drain(at..end);
            }
            4 => {
                let extra: Vec<u8> = (0..rng.below(8) + 1).map(|_| rng.byte()).collect();
                buf.splice(at..at, extra);
            }
            _ => {
                let end = (at + rng.below(32)).min(buf.len());
                let chunk = buf[at..end].to_vec();
                buf.splice(at..at, chunk);
            }
        }
    }
    buf
}

#[test]
fn every_single_byte_flip_and_cut() {
    for input in corpus() {
        for at in 0..input.len() {
            for mask in [0x01, 0x80, 0xff] {
                let mut buf = input.clone();
                buf[at] ^= mask;
                check(&buf);
            }
            check(&input[..at]);
            check(&input[at..]);
        }
    }
}

#[test]
fn random_mutations() {
    let mut rng = Rng(0x5eed_cafe_f00d_d00d);
    for input in corpus() {
        for _ in 0..3000 {
            check(&mutate(&mut rng, &input));
        }
    }
}

#[test]
fn padded_to_the_limit_always_decides() {
    let mut rng = Rng(42);
    for input in corpus() {
        let mut buf = input.clone();
        while buf.len() < MAX_SNIFF_BYTES + 7 {
            buf.push(rng.byte());
        }
        check(&buf);
        check(&buf[..MAX_SNIFF_BYTES]);
    }
    check(&vec![0u8; MAX_SNIFF_BYTES]);
    check(&vec![b'A'; MAX_SNIFF_BYTES]);
    check(&[&b"GET /"[..], &vec![b'a'; MAX_SNIFF_BYTES]].concat());
}
