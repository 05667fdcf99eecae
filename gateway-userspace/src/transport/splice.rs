//! The splice relay (`--relay splice`): bytes go socket → pipe → socket
//! inside the kernel, never through a userspace buffer.
//!
//! Each direction owns a pipe. It fills the pipe from one socket only while
//! the pipe is empty, then empties it into the other, so a slow reader
//! applies back-pressure exactly as the copy relay does. An end of stream
//! becomes a half-close on the other side; an error, or a revocation,
//! resets both.

use std::{
    io,
    os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd},
};

use tokio::{io::Interest, net::TcpStream};

use super::{
    relay::{RelayStats, Resettable},
    revoke::Revoke,
};

/// What one `splice()` call moves at most; the pipe holds this much.
const PIPE_BYTES: usize = 256 * 1024;

pub async fn relay(client: &TcpStream, upstream: &TcpStream, revoke: &mut Revoke) -> RelayStats {
    let mut stats = RelayStats::default();
    let result = {
        let both = async {
            tokio::try_join!(
                pump(client, upstream, &mut stats.client_to_upstream),
                pump(upstream, client, &mut stats.upstream_to_client),
            )
        };
        tokio::select! {
            done = both => done.map(|_| None),
            generation = revoke => Ok(Some(generation)),
        }
    };
    match result {
        Ok(None) => {}
        Ok(Some(generation)) => stats.revoke(generation, client, upstream),
        Err(e) => {
            tracing::debug!(error = %e, "splice relay ended with an error; resetting both sides");
            stats.reset = true;
            client.reset();
            upstream.reset();
        }
    }
    stats
}

async fn pump(from: &TcpStream, to: &TcpStream, count: &mut u64) -> io::Result<()> {
    let (pipe_out, pipe_in) = pipe()?;
    loop {
        let n = from
            .async_io(Interest::READABLE, || splice(from.as_raw_fd(), pipe_in.as_raw_fd(), PIPE_BYTES))
            .await?;
        if n == 0 {
            return shutdown_write(to);
        }
        let mut left = n;
        while left > 0 {
            let sent = to
                .async_io(Interest::WRITABLE, || splice(pipe_out.as_raw_fd(), to.as_raw_fd(), left))
                .await?;
            left -= sent;
            *count += sent as u64;
        }
    }
}

/// A non-blocking pipe, `(read end, write end)`, sized to [`PIPE_BYTES`].
fn pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0; 2];
    // SAFETY: `fds` has room for the two descriptors pipe2 writes.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_NONBLOCK | libc::O_CLOEXEC) } < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: both descriptors were just created and are owned by no one else.
    let ends = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    // A larger pipe means fewer calls per megabyte; the default (64 KiB) still works.
    // SAFETY: plain fcntl on a descriptor we own.
    unsafe { libc::fcntl(ends.1.as_raw_fd(), libc::F_SETPIPE_SZ, PIPE_BYTES as libc::c_int) };
    Ok(ends)
}

/// One `splice()`; `WouldBlock` when the socket side is not ready.
fn splice(from: RawFd, to: RawFd, len: usize) -> io::Result<usize> {
    let flags = libc::SPLICE_F_MOVE | libc::SPLICE_F_NONBLOCK;
    // SAFETY: plain descriptors, no offsets (both are streams).
    let n = unsafe { libc::splice(from, std::ptr::null_mut(), to, std::ptr::null_mut(), len, flags) };
    if n < 0 { Err(io::Error::last_os_error()) } else { Ok(n as usize) }
}

fn shutdown_write(s: &TcpStream) -> io::Result<()> {
    // SAFETY: plain shutdown on a socket we hold.
    if unsafe { libc::shutdown(s.as_raw_fd(), libc::SHUT_WR) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}
