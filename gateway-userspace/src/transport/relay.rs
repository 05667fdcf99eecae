//! Copy bytes both ways until both sides are done.
//!
//! An end of stream on one side becomes a half-close (`shutdown(SHUT_WR)`) on
//! the other; an error on either side resets both, so a peer's reset is
//! never turned into a clean close. A revocation (`revoke.rs`) resets
//! both as well.

use std::io;

use tokio::{
    io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt},
    net::TcpStream,
};

use super::revoke::Revoke;

/// Each direction starts with a small buffer, so an idle connection costs
/// little, and grows it when a read fills it: bulk transfers get large reads.
/// A bulk stream's buffers (2 × 256 KiB) are smaller than what the kernel
/// keeps for its sockets; with 64 KiB a single stream moved a quarter less.
pub(super) const FIRST_BUFFER: usize = 4 * 1024;
pub(super) const LARGEST_BUFFER: usize = 256 * 1024;

/// Bytes carried each way, and how the relay ended.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct RelayStats {
    pub client_to_upstream: u64,
    pub upstream_to_client: u64,
    pub reset: bool,
    /// A configuration no longer allowed the stream: the generation that
    /// revoked it (both sides were reset).
    pub revoked: Option<u64>,
}

impl RelayStats {
    /// Marks the stream revoked by `generation` and resets both sides.
    pub fn revoke(&mut self, generation: u64, client: &impl Resettable, upstream: &impl Resettable) {
        tracing::debug!(generation, "relay revoked by a newer configuration; resetting both sides");
        (self.revoked, self.reset) = (Some(generation), true);
        client.reset();
        upstream.reset();
    }
}

/// A stream whose peer can be sent a TCP reset.
pub trait Resettable: AsyncRead + AsyncWrite + Unpin {
    fn reset(&self);

    /// The socket itself when the stream is plain TCP (no TLS in the proxy),
    /// which the kernel relays (`relay_mode.rs`) can carry.
    fn plain_tcp(&self) -> Option<&TcpStream> {
        None
    }
}

impl Resettable for TcpStream {
    fn reset(&self) {
        let _ = self.set_zero_linger();
    }

    fn plain_tcp(&self) -> Option<&TcpStream> {
        Some(self)
    }
}

impl Resettable for tokio_rustls::client::TlsStream<TcpStream> {
    fn reset(&self) {
        let _ = self.get_ref().0.set_zero_linger();
    }
}

impl Resettable for tokio_rustls::server::TlsStream<TcpStream> {
    fn reset(&self) {
        let _ = self.get_ref().0.set_zero_linger();
    }
}

impl<S: Resettable> Resettable for super::rewind::Rewind<S> {
    fn reset(&self) {
        self.inner().reset();
    }
}

pub async fn relay<C: Resettable, U: Resettable>(client: &mut C, upstream: &mut U) -> RelayStats {
    relay_until(client, upstream, &mut Revoke::never()).await
}

/// [`relay`], unless `revoke` fires first: then both sides are reset.
pub async fn relay_until<C: Resettable, U: Resettable>(client: &mut C, upstream: &mut U, revoke: &mut Revoke) -> RelayStats {
    let mut stats = RelayStats::default();
    let result = {
        let (mut cr, mut cw) = tokio::io::split(&mut *client);
        let (mut ur, mut uw) = tokio::io::split(&mut *upstream);
        let both = async {
            tokio::try_join!(
                pump(&mut cr, &mut uw, &mut stats.client_to_upstream),
                pump(&mut ur, &mut cw, &mut stats.upstream_to_client),
            )
        };
        tokio::select! {
            done = both => done.map(|_| None),
            generation = revoke => Ok(Some(generation)),
        }
    };
    match result {
        Ok(None) => {}
        Ok(Some(generation)) => stats.revoke(generation, &*client, &*upstream),
        Err(e) => {
            tracing::debug!(error = %e, "relay ended with an error; resetting both sides");
            stats.reset = true;
            client.reset();
            upstream.reset();
        }
    }
    stats
}

async fn pump<R, W>(from: &mut R, to: &mut W, count: &mut u64) -> io::Result<()>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let mut buf = vec![0u8; FIRST_BUFFER];
    loop {
        let n = from.read(&mut buf).await?;
        if n == 0 {
            return to.shutdown().await;
        }
        to.write_all(&buf[..n]).await?;
        *count += n as u64;
        if n == buf.len() && buf.len() < LARGEST_BUFFER {
            buf.resize(buf.len() * 4, 0);
        }
    }
}
