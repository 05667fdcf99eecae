//! Which relay carries a decided stream whose bytes need no more
//! inspection (TLS passthrough, opaque TCP, a steered stream).
//!
//! - `copy`: read into a buffer, write it out (`relay.rs`).
//! - `splice`: socket → pipe → socket in the kernel (`splice.rs`).
//! - `sockmap`: the kernel moves each segment to the peer socket itself,
//!   without waking the proxy (`sockmap.rs`).
//! - `auto`: copy first; a lasting stream that is not bulk goes to `sockmap`
//!   (`relay_auto.rs`).
//!
//! Only plain TCP on both sides qualifies; a stream the proxy encrypts or
//! decrypts is always copied. If the kernel relay cannot take a connection,
//! it is copied instead. Every mode ends early, resetting both sides, when
//! the connection's [`Revoke`] fires.

use std::sync::Arc;

use tokio::net::TcpStream;

use super::{
    relay_auto::Carried,
    relay::{RelayStats, Resettable, relay_until},
    revoke::Revoke,
};
use crate::interceptor::RelayMaps;

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum RelayMode {
    /// Read into a buffer and write it out, in the proxy.
    Copy,
    /// Socket to pipe to socket with splice(2).
    Splice,
    /// The kernel moves each segment to the other socket (SOCKHASH).
    Sockmap,
    /// Copy first; a lasting stream that is not moving bulk goes to `sockmap`.
    Auto,
}

impl RelayMode {
    /// Whether this mode moves bytes with the kernel relay's maps.
    pub fn uses_kernel(self) -> bool {
        matches!(self, Self::Sockmap | Self::Auto)
    }

    pub fn name(self) -> &'static str {
        match self {
            RelayMode::Copy => "copy",
            RelayMode::Splice => "splice",
            RelayMode::Sockmap => "sockmap",
            RelayMode::Auto => "auto",
        }
    }
}

/// The configured relay: one mode, optionally another per destination port.
pub struct RelayChoice {
    pub default: RelayMode,
    pub by_port: Vec<(u16, RelayMode)>,
    /// The kernel relay's maps, when the kernel programs are installed.
    pub maps: Option<Arc<RelayMaps>>,
}

impl RelayChoice {
    pub fn copy_only() -> Self {
        Self { default: RelayMode::Copy, by_port: Vec::new(), maps: None }
    }

    pub fn mode_for(&self, port: u16) -> RelayMode {
        self.by_port.iter().rev().find(|(p, _)| *p == port).map_or(self.default, |(_, m)| *m)
    }

    /// Relays `client` and `upstream` (connected to `port`) both ways until
    /// both are done, or until `revoke` fires (then both are reset);
    /// returns the counts and the mode that carried them.
    pub async fn relay<C: Resettable>(&self, client: &mut C, upstream: &mut TcpStream, port: u16, revoke: &mut Revoke) -> (RelayStats, RelayMode) {
        let plain = client.plain_tcp();
        match (self.mode_for(port), plain) {
            (RelayMode::Splice, Some(c)) => return (super::splice::relay(c, upstream, revoke).await, RelayMode::Splice),
            (RelayMode::Sockmap, Some(c)) => match &self.maps {
                Some(maps) => {
                    let joined = match super::sockmap::Baseline::take(c, upstream) {
                        Ok(base) => super::sockmap::relay(maps, c, upstream, base, [0, 0], true, revoke).await,
                        Err(e) => Err(e),
                    };
                    match joined {
                        Ok(stats) => return (stats, RelayMode::Sockmap),
                        Err(e) => tracing::debug!(error = %e, "copying instead"),
                    }
                }
                None => tracing::debug!("no kernel relay maps; copying instead"),
            },
            (RelayMode::Auto, Some(c)) => {
                let (stats, carried) = super::relay_auto::relay(self.maps.as_deref(), c, upstream, revoke).await;
                let mode = match carried {
                    Carried::Copied => RelayMode::Copy,
                    Carried::InKernel => RelayMode::Sockmap,
                };
                return (stats, mode);
            }
            _ => {}
        }
        (relay_until(client, upstream, revoke).await, RelayMode::Copy)
    }
}
