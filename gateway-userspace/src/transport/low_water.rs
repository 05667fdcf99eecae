//! A bulk direction's receive low-water mark (`SO_RCVLOWAT`).
//!
//! A copying proxy that keeps up with a fast sender is woken for every
//! segment that arrives, and each wake-up costs the sender's CPU (it runs the
//! receive path that wakes the proxy) as much as the proxy's. With a mark,
//! the kernel reports the socket readable only once that many bytes are
//! queued (or at end of stream), so a direction that moved bulk in its last
//! watch is woken once per mark instead. The auto relay sets it to what the
//! direction moved in a millisecond of that watch, and waits at most
//! [`WAIT`] for it: then it carries what came, and when that was less than
//! half the mark (the stream slowed or paused), it lowers the mark for the
//! rest of the watch.

use std::{io, os::fd::AsRawFd, time::Duration};

use nix::{
    getsockopt_impl, setsockopt_impl, sockopt_impl,
    sys::socket::{MsgFlags, getsockopt, recv, setsockopt, sockopt::RcvBuf},
};
use tokio::net::TcpStream;

sockopt_impl!(
    /// `SO_RCVLOWAT`: the bytes a socket queues before it is reported readable.
    RcvLowat,
    Both,
    libc::SOL_SOCKET,
    libc::SO_RCVLOWAT,
    usize
);

/// Below this, a mark saves too few wake-ups to be worth its wait.
pub const SMALLEST: usize = 64 * 1024;
/// The largest mark: the largest read buffer, filled by one wake-up.
pub const LARGEST: usize = super::relay::LARGEST_BUFFER;
/// How long a read waits for a mark before it takes what came (the
/// runtime's timers round up to the next millisecond). The benchmark's four
/// streams, which share the sender's CPU, each wait longer than 1 ms
/// between two bursts: 1 ms gave 0.87–0.93× direct, 3 ms 0.96×.
pub const WAIT: Duration = Duration::from_millis(3);

/// A raised mark on one socket, lowered again when dropped.
pub struct LowWater<'a> {
    stream: &'a TcpStream,
    /// The mark in bytes; 0 when not raised.
    mark: usize,
}

impl<'a> LowWater<'a> {
    /// Raises `stream`'s mark to `bytes` (clamped to [`LARGEST`] and to a
    /// quarter of its receive buffer, so the kernel never narrows the
    /// window for it), or leaves it at one byte when that is below
    /// [`SMALLEST`].
    pub fn raise(stream: &'a TcpStream, bytes: usize) -> LowWater<'a> {
        let mut low = LowWater { stream, mark: 0 };
        if bytes < SMALLEST {
            return low; // most windows: no system call
        }
        let Ok(buffer) = getsockopt(stream, RcvBuf) else { return low };
        let mark = bytes.min(LARGEST).min(buffer / 4);
        if mark >= SMALLEST && set(stream, mark).is_ok() {
            low.mark = mark;
        }
        low
    }

    pub fn is_raised(&self) -> bool {
        self.mark > 0
    }

    /// After a read of `n` bytes that the wait for the mark gave up on:
    /// less than half the mark, and the mark is lowered.
    pub fn after_short_read(&mut self, n: usize) {
        if n < self.mark / 2 {
            self.lower();
        }
    }

    /// Back to one byte; bytes already queued are reported readable at once.
    pub fn lower(&mut self) {
        if std::mem::take(&mut self.mark) > 0 {
            let _ = set(self.stream, 1);
        }
    }
}

impl Drop for LowWater<'_> {
    fn drop(&mut self) {
        self.lower();
    }
}

/// Reads what is queued, below the mark or not, without waiting (the
/// runtime's readiness says "not readable" below a mark, so this asks the
/// socket itself).
pub fn read_below_mark(stream: &TcpStream, buf: &mut [u8]) -> io::Result<usize> {
    Ok(recv(stream.as_raw_fd(), buf, MsgFlags::MSG_DONTWAIT)?)
}

/// Sets `stream`'s mark to `bytes`.
pub fn set(stream: &TcpStream, bytes: usize) -> io::Result<()> {
    Ok(setsockopt(stream, RcvLowat, &bytes)?)
}
