//! Look at the client's first bytes without consuming them, so the upstream
//! later receives them untouched.
//!
//! `peek` returns at once while unread data is queued, so once a first
//! segment is in, waiting for more is done by polling for a longer peek.
//! ClientHellos and request heads nearly always arrive whole.

use std::time::Duration;

use tokio::{net::TcpStream, time::Instant};

use crate::sniff::{MAX_SNIFF_BYTES, SniffOutcome, Sniffed, sniff};

const MORE_DATA_POLL: Duration = Duration::from_millis(2);

#[derive(Debug)]
pub enum Peeked {
    Sniffed(Sniffed),
    /// Nothing arrived in time: a server-speaks-first protocol.
    Silent,
    /// The client closed or failed before a verdict.
    Gone,
    Malformed(&'static str),
}

pub async fn peek_first_bytes(stream: &TcpStream, timeout: Duration) -> Peeked {
    let deadline = Instant::now() + timeout;
    let mut buf = vec![0u8; MAX_SNIFF_BYTES];
    let mut seen = 0usize;
    loop {
        let n = match tokio::time::timeout_at(deadline, stream.peek(&mut buf)).await {
            Err(_) if seen == 0 => return Peeked::Silent,
            Err(_) => return Peeked::Malformed("sniff: incomplete before the timeout"),
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
            return Peeked::Malformed("sniff: incomplete before the timeout");
        }
        tokio::time::sleep(MORE_DATA_POLL).await;
    }
}
