//! Look at the client's first bytes without consuming them, so the upstream
//! later receives them untouched.
//!
//! `peek` returns at once while unread data is queued, so once a first
//! segment is in, waiting for more is done by polling for a longer peek.
//! ClientHellos and request heads nearly always arrive whole.
//!
//! Bytes that are still a consistent prefix when the timeout comes (one
//! byte, `HE`) are not malformed: they began nothing yet, and the stream is
//! opaque. Only bytes that begin a protocol and then break its grammar are.

use std::time::Duration;

use tokio::{net::TcpStream, time::Instant};

use crate::sniff::{MAX_SNIFF_BYTES, SniffOutcome, Sniffed, sniff};

const MORE_DATA_POLL: Duration = Duration::from_millis(2);

#[derive(Debug)]
pub enum Peeked {
    Sniffed(Sniffed),
    /// Nothing arrived in time: a server-speaks-first protocol.
    Silent,
    /// Bytes arrived that could still have become a ClientHello or a
    /// request head, but did not within the timeout: an opaque stream.
    Incomplete,
    /// The client closed or failed before a verdict.
    Gone,
    /// Not read at all: the registry declares the destination opaque TCP,
    /// so it is decided at accept (`policy::declared_opaque`).
    Declared,
    Malformed(&'static str),
}

pub async fn peek_first_bytes(stream: &TcpStream, timeout: Duration) -> Peeked {
    let deadline = Instant::now() + timeout;
    let mut buf = vec![0u8; MAX_SNIFF_BYTES];
    let mut seen = 0usize;
    loop {
        let n = match tokio::time::timeout_at(deadline, stream.peek(&mut buf)).await {
            Err(_) if seen == 0 => return Peeked::Silent,
            Err(_) => return Peeked::Incomplete,
            Ok(Err(_)) | Ok(Ok(0)) => return Peeked::Gone,
            Ok(Ok(n)) => n,
        };
        if n > seen {
            seen = n;
            match sniff(&buf[..n]) {
                SniffOutcome::Done(s) => return Peeked::Sniffed(s),
                SniffOutcome::Malformed(why) => return Peeked::Malformed(why),
                SniffOutcome::NeedMore => {}
            }
        }
        if Instant::now() >= deadline {
            return Peeked::Incomplete;
        }
        tokio::time::sleep(MORE_DATA_POLL).await;
    }
}
