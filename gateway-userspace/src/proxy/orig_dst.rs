//! Where an intercepted connection was going: looked up once, at accept,
//! from the kernel programs' record (or netfilter's, or a fixed listener's
//! destination); everything further in uses the typed result.

use std::net::SocketAddr;

use tokio::net::TcpStream;

use super::ProxyInputs;
use crate::{
    access_log::ConnectionRecord,
    transport::addrs::{OrigDstAddr, ProxyAddr},
};

/// Where a listener's connections were going.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OrigDstSource {
    /// Recorded by the kernel programs (and, with `--iptables-original-dst`,
    /// by netfilter).
    Kernel,
    /// An explicit listener (`--forward`): always this destination.
    Fixed(SocketAddr),
}

/// Looks the destination up once, at accept; everything further in uses the
/// typed result. `Err` carries the reason the connection is refused.
pub fn original_destination(
    inputs: &ProxyInputs,
    stream: &TcpStream,
    source: OrigDstSource,
    local: ProxyAddr,
    record: &mut ConnectionRecord,
) -> Result<OrigDstAddr, &'static str> {
    let client = record.src;
    let addr = match source {
        OrigDstSource::Fixed(upstream) => upstream,
        OrigDstSource::Kernel => {
            let found = match &inputs.orig_dst {
                Some(lookup) => lookup.lookup(client.0, local.0).map_err(|e| {
                    tracing::warn!(%client, error = %e, "original destination lookup failed");
                    "orig-dst-lookup-failed"
                })?,
                None => None,
            };
            match found {
                Some(found) => {
                    record.pid = Some(found.pid);
                    record.cgroup_id = Some(found.cgroup_id);
                    found.addr
                }
                None if inputs.settings.iptables_original_dst => netfilter_original_dst(stream).ok_or("no-original-destination")?,
                None => return Err("no-original-destination"),
            }
        }
    };
    record.orig_dst = Some(OrigDstAddr(addr));
    if inputs.settings.listen_addrs.iter().any(|l| l.ip() == addr.ip() && l.port() == addr.port()) {
        return Err("proxy-loop");
    }
    Ok(OrigDstAddr(addr))
}

/// Netfilter's record of a connection an iptables `REDIRECT` sent here.
fn netfilter_original_dst(stream: &TcpStream) -> Option<SocketAddr> {
    use nix::sys::socket::{SockaddrIn, SockaddrIn6, getsockopt, sockopt};
    match stream.local_addr().ok()? {
        SocketAddr::V4(_) => {
            let raw = getsockopt(stream, sockopt::OriginalDst).ok()?;
            Some(SocketAddr::V4(SockaddrIn::from(raw).into()))
        }
        SocketAddr::V6(_) => {
            let raw = getsockopt(stream, sockopt::Ip6tOriginalDst).ok()?;
            Some(SocketAddr::V6(SockaddrIn6::from(raw).into()))
        }
    }
}
