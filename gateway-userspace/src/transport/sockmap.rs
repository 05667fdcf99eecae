//! The kernel relay (`--relay sockmap`): both sockets go into a SOCKHASH
//! whose verdict program sends what one receives straight to the other's
//! send side. The proxy is not woken while bytes flow; it only watches for
//! ends of stream and errors, and carries them over as the copy relay does.
//!
//! Order of bytes: the client's first bytes (peeked, never read) and anything
//! that came before the sockets joined the map are still in their receive
//! queues; once both are in, `SO_RCVLOWAT` makes the kernel hand those queues
//! to the verdict program, ahead of anything later. A segment that found its
//! peer not yet in the map stays behind ("stranded"): it can no longer be
//! delivered in order, so the connection is reset rather than corrupted. The
//! side that waits for an answer joins first, which leaves that window to
//! the one side that cannot have sent yet.
//!
//! A revocation (`revoke.rs`) takes both sockets out of the map, so the
//! kernel moves nothing more, and resets them.

use std::{
    io,
    os::fd::{AsRawFd, RawFd},
    time::Duration,
};

use tokio::net::TcpStream;

use super::{
    relay::{RelayStats, Resettable},
    revoke::Revoke,
    sockmap_watch::Watch,
};
use crate::interceptor::RelayMaps;

/// `SO_COOKIE`, the kernel's id of a socket (the key of both maps).
const SO_COOKIE: libc::c_int = 57;
/// How often a finished direction checks that its last bytes have left.
const DRAIN_POLL: Duration = Duration::from_millis(1);
/// After a reset, how many polls the bytes that came before it get to leave.
const RESET_DRAIN_POLLS: usize = 200;

/// Why the kernel relay did not take a connection; the copy relay does.
#[derive(Debug, thiserror::Error)]
#[error("kernel relay unavailable: {0}")]
pub struct NotTaken(String);

/// Each socket's `tcpi_bytes_acked` before the proxy wrote to it, taken
/// once at the start: with the bytes the proxy copied itself, it tells how
/// many the kernel relay has queued since.
#[derive(Clone, Copy, Debug)]
pub struct Baseline([u64; 2]);

impl Baseline {
    pub fn take(client: &TcpStream, upstream: &TcpStream) -> Result<Self, NotTaken> {
        let acked = |s: &TcpStream| {
            tcp_info(s.as_raw_fd()).map(|i| i.tcpi_bytes_acked).map_err(|e| NotTaken(format!("TCP_INFO: {e}")))
        };
        Ok(Self([acked(client)?, acked(upstream)?]))
    }
}

/// Relays in the kernel. `copied` is what the proxy already carried each
/// way (client to upstream, back) since `base`, and is not counted again.
/// `answer_from_upstream`: the client spoke last, so the upstream is the
/// side that may send next (see [`join`]). `Err`: nothing was changed,
/// relay another way. Until both directions end, or `revoke` fires.
pub async fn relay(
    maps: &RelayMaps,
    client: &TcpStream,
    upstream: &TcpStream,
    base: Baseline,
    copied: [u64; 2],
    answer_from_upstream: bool,
    revoke: &mut Revoke,
) -> Result<RelayStats, NotTaken> {
    // What one side sent, the other one was written.
    let sides = [Side::new(client, copied[0], base.0[0] + copied[1])?, Side::new(upstream, copied[1], base.0[1] + copied[0])?];
    let watch = Watch::new([client.as_raw_fd(), upstream.as_raw_fd()]).map_err(|e| NotTaken(e.to_string()))?;
    if let Err(e) = join(maps, &sides, answer_from_upstream) {
        // The first side may have joined alone and kept bytes that the map
        // entry's removal discards: then copying would lose them.
        let lost = stranded(maps, &sides);
        sides.iter().for_each(|s| maps.forget(s.cookie));
        if !lost {
            return Err(NotTaken(e.to_string()));
        }
        tracing::warn!(error = %e, "kernel relay failed half-way; resetting the connection");
        client.reset();
        upstream.reset();
        return Ok(RelayStats { reset: true, ..Default::default() });
    }
    let result = tokio::select! {
        ended = run(maps, &sides, &watch) => ended.map(|()| None),
        generation = revoke => Ok(Some(generation)),
    };
    let counted = |s: &Side| maps.peer(s.cookie).map_or(0, |p| p.bytes);
    let mut stats = RelayStats { client_to_upstream: counted(&sides[0]), upstream_to_client: counted(&sides[1]), ..Default::default() };
    sides.iter().for_each(|s| maps.forget(s.cookie));
    match result {
        Ok(None) => {}
        // Out of the map, the kernel moves nothing more; then both are reset.
        Ok(Some(generation)) => stats.revoke(generation, client, upstream),
        Err(e) => {
            tracing::debug!(error = %e, "kernel relay ended with an error; resetting both sides");
            stats.reset = true;
            client.reset();
            upstream.reset();
        }
    }
    Ok(stats)
}

/// One socket of the pair.
struct Side<'a> {
    stream: &'a TcpStream,
    cookie: u64,
    /// Its `tcpi_bytes_acked` had it been written nothing but what the
    /// proxy itself wrote: the start of what the kernel relay queues.
    written_mark: u64,
    /// Bytes the proxy itself read from it before it joined.
    read_before: u64,
}

impl<'a> Side<'a> {
    fn new(stream: &'a TcpStream, read_before: u64, written_mark: u64) -> Result<Self, NotTaken> {
        let fd = stream.as_raw_fd();
        let cookie = get_u64(fd, libc::SOL_SOCKET, SO_COOKIE).map_err(|e| NotTaken(format!("SO_COOKIE: {e}")))?;
        Ok(Self { stream, cookie, written_mark, read_before })
    }

    /// Bytes handed to this socket for sending since it joined.
    fn queued(&self) -> io::Result<u64> {
        let fd = self.stream.as_raw_fd();
        // Acked first, then the queue: an ack in between only undercounts.
        let acked = tcp_info(fd)?.tcpi_bytes_acked;
        Ok((acked + outq(fd)?).saturating_sub(self.written_mark))
    }
}

/// Bytes sent on `fd` and not yet acknowledged, or not yet sent.
fn outq(fd: RawFd) -> io::Result<u64> {
    let mut n: libc::c_int = 0;
    // SAFETY: SIOCOUTQ writes one int.
    if unsafe { libc::ioctl(fd, libc::TIOCOUTQ, &mut n) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(n as u64)
}

/// Files each side's peer, then adds the two sockets. Bytes a socket gets
/// before it is added wait in its queue; bytes it gets after, while its peer
/// is not in yet, are stranded. So the side expected to stay quiet (the one
/// that spoke last waits for an answer) goes first, the one that may speak
/// next second.
fn join(maps: &RelayMaps, [client, upstream]: &[Side<'_>; 2], answer_from_upstream: bool) -> Result<(), aya::maps::MapError> {
    maps.set_peer(client.cookie, upstream.cookie)?;
    maps.set_peer(upstream.cookie, client.cookie)?;
    let (first, second) = if answer_from_upstream { (client, upstream) } else { (upstream, client) };
    maps.add_socket(first.cookie, first.stream)?;
    maps.add_socket(second.cookie, second.stream)?;
    for side in [client, upstream] {
        // Hands what is already queued to the verdict program (tcp_set_rcvlowat
        // signals readers when data is waiting).
        let _ = super::low_water::set(side.stream, 1);
    }
    Ok(())
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Direction {
    Open,
    /// The sender's end of stream arrived; its last bytes may still be in flight.
    Draining,
    Done,
}

/// Until both directions have ended. `Err`: reset both sides.
async fn run(maps: &RelayMaps, sides: &[Side<'_>; 2], watch: &Watch) -> io::Result<()> {
    let mut dirs = [Direction::Open; 2];
    loop {
        if stranded(maps, sides) {
            return Err(io::Error::other("bytes arrived before their peer joined the relay"));
        }
        for i in 0..2 {
            if dirs[i] == Direction::Draining && drained(maps, &sides[i], &sides[1 - i], true)? {
                shutdown_write(sides[1 - i].stream)?;
                dirs[i] = Direction::Done;
            }
        }
        if dirs == [Direction::Done; 2] {
            return Ok(());
        }
        let events = if dirs.contains(&Direction::Draining) {
            tokio::time::timeout(DRAIN_POLL, watch.next()).await.unwrap_or_default()
        } else {
            watch.next().await
        };
        for (i, ev) in events {
            let (err, hup) = (ev & libc::EPOLLERR as u32 != 0, ev & libc::EPOLLHUP as u32 != 0);
            if err || hup {
                let code = get_u64(sides[i].stream.as_raw_fd(), libc::SOL_SOCKET, libc::SO_ERROR).unwrap_or(0) as i32;
                if err || code != 0 {
                    // What arrived before the reset still goes first, as the copy relay would.
                    let fin = dirs[i] != Direction::Open;
                    for _ in 0..RESET_DRAIN_POLLS {
                        if drained(maps, &sides[i], &sides[1 - i], fin).unwrap_or(true) {
                            break;
                        }
                        tokio::time::sleep(DRAIN_POLL).await;
                    }
                    return Err(io::Error::from_raw_os_error(if code == 0 { libc::ECONNRESET } else { code }));
                }
                // Shut both ways without an error: nothing more to hear from it.
                watch.stop(i)?;
            }
            if (hup || ev & libc::EPOLLRDHUP as u32 != 0) && dirs[i] == Direction::Open {
                dirs[i] = Direction::Draining;
                if !hup {
                    watch.errors_only(i)?;
                }
            } else if !hup {
                watch.rearm(i)?;
            }
        }
    }
}

fn stranded(maps: &RelayMaps, sides: &[Side<'_>; 2]) -> bool {
    sides.iter().any(|s| maps.peer(s.cookie).is_some_and(|p| p.stranded != 0))
}

/// Whether all that `from` received has been moved by the kernel and queued
/// on `to`. `fin`: its end of stream arrived (it takes one sequence number,
/// counted as received).
fn drained(maps: &RelayMaps, from: &Side<'_>, to: &Side<'_>, fin: bool) -> io::Result<bool> {
    let moved = maps.peer(from.cookie).map_or(0, |p| p.bytes);
    let received = tcp_info(from.stream.as_raw_fd())?.tcpi_bytes_received.saturating_sub(u64::from(fin) + from.read_before);
    Ok(moved >= received && to.queued()? >= moved)
}

fn tcp_info(fd: RawFd) -> io::Result<libc::tcp_info> {
    // SAFETY: tcp_info is plain data; the kernel fills at most `len` bytes.
    let mut info: libc::tcp_info = unsafe { std::mem::zeroed() };
    let mut len = std::mem::size_of::<libc::tcp_info>() as libc::socklen_t;
    if unsafe { libc::getsockopt(fd, libc::IPPROTO_TCP, libc::TCP_INFO, (&raw mut info).cast(), &mut len) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(info)
}

/// A socket option read as an integer of up to 8 bytes.
fn get_u64(fd: RawFd, level: libc::c_int, name: libc::c_int) -> io::Result<u64> {
    let mut v: u64 = 0;
    let mut len = 8 as libc::socklen_t;
    // SAFETY: the kernel writes at most `len` bytes into `v`.
    if unsafe { libc::getsockopt(fd, level, name, (&raw mut v).cast(), &mut len) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(if len == 4 { v & 0xffff_ffff } else { v })
}

fn shutdown_write(s: &TcpStream) -> io::Result<()> {
    // SAFETY: plain shutdown on a socket we hold.
    if unsafe { libc::shutdown(s.as_raw_fd(), libc::SHUT_WR) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}
