//! `--relay auto`: copy first, then move a stream that lasts to the relay
//! that suits what it carries.
//!
//! The benchmark settles it: short connections are cheapest copied (joining
//! the socket map costs more than their few bytes), bulk streams are carried
//! as fast by the copy as by anything else (splice wins one direction and
//! loses the other; the kernel relay does its work on the CPU that receives
//! the packets, next to the sender), and request/response traffic is far
//! faster relayed in the kernel, which never wakes the proxy. So every
//! stream starts copied; each [`WATCH`] a stream that moved less than
//! [`BULK_BYTES`] in it goes to `sockmap`, while a bulk one is copied on and
//! looked at again, woken once per low-water mark (`low_water.rs`) in a
//! direction that moved bulk in its last watch.
//!
//! The copy here reads only when a socket is readable and writes what it
//! read before it reads again, so it can stop between two reads without
//! holding a byte: the next relay starts where it left off. A revocation
//! (`revoke.rs`) ends whichever part is running and resets both sides.

use std::{
    io,
    os::fd::AsRawFd,
    sync::atomic::{AtomicU8, Ordering},
    time::Duration,
};

use tokio::{io::Interest, net::TcpStream, time::Instant};

use super::{
    low_water::{self, LowWater},
    // Buffers start small (idle and short connections are the most) and
    // grow when a read fills them, as in the copy relay.
    relay::{FIRST_BUFFER, LARGEST_BUFFER, RelayStats, Resettable},
    revoke::Revoke,
};
use crate::interceptor::RelayMaps;

/// How long a stream is watched before it is moved.
pub const WATCH: Duration = Duration::from_millis(50);
/// Bytes (both ways together) within one [`WATCH`] that make a stream bulk.
pub const BULK_BYTES: u64 = 1024 * 1024;
const UP: u8 = 0;
const DOWN: u8 = 1;

/// One direction's part in a watch.
struct Watch<'a> {
    until: Instant,
    /// Where this direction (`me`) is noted as the last to carry bytes.
    last: &'a AtomicU8,
    me: u8,
    /// The low-water mark to read with, in bytes (0: none).
    mark: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Pumped {
    /// The deadline came while waiting for bytes; nothing is held.
    Paused,
    /// End of stream, carried over as a half-close.
    Ended,
}

/// Which relay carried the stream to its end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Carried {
    /// The copy, from start to end.
    Copied,
    /// The kernel relay, after the first watch.
    InKernel,
}

pub async fn relay(maps: Option<&RelayMaps>, client: &TcpStream, upstream: &TcpStream, revoke: &mut Revoke) -> (RelayStats, Carried) {
    let mut stats = RelayStats::default();
    let mut bufs = first_buffers();
    // Before the first byte is written; without it the kernel relay is not used.
    let base = super::sockmap::Baseline::take(client, upstream).ok();
    // The direction that carried bytes last; the client spoke first.
    let last = AtomicU8::new(UP);
    // Each direction's mark: what it moved in a millisecond of the last watch.
    let mut marks = [0usize; 2];
    loop {
        let before = [stats.client_to_upstream, stats.upstream_to_client];
        let until = Instant::now() + WATCH;
        // The copy's state is boxed, and so are its ends below: a stream
        // that moves on to the kernel relay keeps none of it.
        let watched = {
            let window = Box::pin(async {
                tokio::try_join!(
                    pump(client, upstream, &mut bufs.0, &mut stats.client_to_upstream, Some(Watch { until, last: &last, me: UP, mark: marks[0] })),
                    pump(upstream, client, &mut bufs.1, &mut stats.upstream_to_client, Some(Watch { until, last: &last, me: DOWN, mark: marks[1] })),
                )
            });
            tokio::select! {
                ends = window => ends.map(Some),
                generation = &mut *revoke => {
                    stats.revoke(generation, client, upstream);
                    return (stats, Carried::Copied);
                }
            }
        };
        match watched {
            Err(e) => return (reset(stats, client, upstream, &e), Carried::Copied),
            Ok(Some((Pumped::Paused, Pumped::Paused))) | Ok(None) => {}
            Ok(Some(ends)) => return (Box::pin(finish_copy(stats, client, upstream, ends, bufs, revoke)).await, Carried::Copied),
        }
        let copied = [stats.client_to_upstream, stats.upstream_to_client];
        let moved = [copied[0] - before[0], copied[1] - before[1]];
        if moved[0] + moved[1] >= BULK_BYTES {
            marks = moved.map(|m| (m / WATCH.as_millis() as u64) as usize);
            continue; // bulk: copying is as fast as anything here
        }
        let (Some(maps), Some(base)) = (maps, base) else {
            return (Box::pin(finish_copy(stats, client, upstream, (Pumped::Paused, Pumped::Paused), bufs, revoke)).await, Carried::Copied);
        };
        // Nothing is held in them between two reads: an idle stream in the
        // kernel relay keeps no buffer.
        drop(bufs);
        match super::sockmap::relay(maps, client, upstream, base, copied, last.load(Ordering::Relaxed) == UP, revoke).await {
            Ok(moved) => {
                stats.client_to_upstream += moved.client_to_upstream;
                stats.upstream_to_client += moved.upstream_to_client;
                (stats.reset, stats.revoked) = (moved.reset, moved.revoked);
                return (stats, Carried::InKernel);
            }
            Err(e) => {
                tracing::debug!(error = %e, "copying on");
                let bufs = first_buffers();
                return (Box::pin(finish_copy(stats, client, upstream, (Pumped::Paused, Pumped::Paused), bufs, revoke)).await, Carried::Copied);
            }
        }
    }
}

/// One buffer per direction, at the size a stream starts with.
fn first_buffers() -> (Vec<u8>, Vec<u8>) {
    (vec![0u8; FIRST_BUFFER], vec![0u8; FIRST_BUFFER])
}

/// Copies the directions still open to their end (or until `revoke`).
async fn finish_copy(
    mut stats: RelayStats,
    client: &TcpStream,
    upstream: &TcpStream,
    ends: (Pumped, Pumped),
    mut bufs: (Vec<u8>, Vec<u8>),
    revoke: &mut Revoke,
) -> RelayStats {
    let (mut up_count, mut down_count) = (stats.client_to_upstream, stats.upstream_to_client);
    let up = async {
        if ends.0 == Pumped::Paused {
            pump(client, upstream, &mut bufs.0, &mut up_count, None).await?;
        }
        Ok::<_, io::Error>(())
    };
    let down = async {
        if ends.1 == Pumped::Paused {
            pump(upstream, client, &mut bufs.1, &mut down_count, None).await?;
        }
        Ok(())
    };
    let result = tokio::select! {
        done = async { tokio::try_join!(up, down) } => done.map(|_| None),
        generation = revoke => Ok(Some(generation)),
    };
    (stats.client_to_upstream, stats.upstream_to_client) = (up_count, down_count);
    match result {
        Ok(None) => stats,
        Ok(Some(generation)) => {
            stats.revoke(generation, client, upstream);
            stats
        }
        Err(e) => reset(stats, client, upstream, &e),
    }
}

fn reset(mut stats: RelayStats, client: &TcpStream, upstream: &TcpStream, e: &io::Error) -> RelayStats {
    tracing::debug!(error = %e, "relay ended with an error; resetting both sides");
    stats.reset = true;
    client.reset();
    upstream.reset();
    stats
}

/// Copies `from` to `to` until end of stream, or until the watch's end
/// finds it waiting for bytes.
async fn pump(from: &TcpStream, to: &TcpStream, buf: &mut Vec<u8>, count: &mut u64, watch: Option<Watch<'_>>) -> io::Result<Pumped> {
    // Lowered again on every way out.
    let mut low = LowWater::raise(from, watch.as_ref().map_or(0, |w| w.mark));
    loop {
        let n = match &watch {
            Some(w) => {
                let raised = low.is_raised();
                let wait = if raised { w.until.min(Instant::now() + low_water::WAIT) } else { w.until };
                match tokio::time::timeout_at(wait, from.async_io(Interest::READABLE, || from.try_read(&mut buf[..]))).await {
                    Ok(r) => r?,
                    // The mark was not reached in time: take what came; if
                    // that was little, the stream slowed: wait per segment.
                    Err(_) if raised && Instant::now() < w.until => {
                        let read = low_water::read_below_mark(from, buf);
                        low.after_short_read(*read.as_ref().unwrap_or(&0));
                        match read {
                            Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                            r => r?,
                        }
                    }
                    Err(_) => return Ok(Pumped::Paused),
                }
            }
            None => from.async_io(Interest::READABLE, || from.try_read(&mut buf[..])).await?,
        };
        if n == 0 {
            // SAFETY: plain shutdown on a socket we hold.
            if unsafe { libc::shutdown(to.as_raw_fd(), libc::SHUT_WR) } < 0 {
                return Err(io::Error::last_os_error());
            }
            return Ok(Pumped::Ended);
        }
        let mut sent = 0;
        while sent < n {
            sent += to.async_io(Interest::WRITABLE, || to.try_write(&buf[sent..n])).await?;
        }
        *count += n as u64;
        if n == buf.len() && buf.len() < LARGEST_BUFFER {
            buf.resize(buf.len() * 4, 0);
        }
        if let Some(w) = &watch {
            w.last.store(w.me, Ordering::Relaxed);
        }
    }
}
