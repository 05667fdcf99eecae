//! The outbound listener on one proxy address.

use std::{io, net::SocketAddr, sync::Arc, time::Duration};

use tokio::{
    net::{TcpListener, TcpSocket},
    sync::watch,
};

use super::{
    addrs::{ClientAddr, ProxyAddr},
    connection,
};
use super::upstream::{Dialer, NameResolver};
use crate::{
    access_log::AccessLog,
    interceptor::OrigDstLookup,
    metrics::Metrics,
    policy::DnsKnowledge,
    reload::{ActiveConfig, ConfigStore},
};

/// What every connection on every outbound listener shares.
pub struct OutboundContext {
    /// The kernel programs' records; `None` when nothing is intercepted.
    pub orig_dst: Option<Arc<OrigDstLookup>>,
    /// This node's pods, when it runs as the node agent.
    pub pods: Option<Arc<crate::kubernetes::NodeAgent>>,
    /// How long a connection from a pod not yet announced is held.
    pub unknown_workload_wait: Duration,
    pub config: Arc<ConfigStore>,
    pub metrics: Arc<Metrics>,
    pub socket_mark: u32,
    pub connect_timeout: Duration,
    /// Fall back to netfilter's `SO_ORIGINAL_DST` when the kernel programs
    /// hold no record (iptables `REDIRECT` interception).
    pub iptables_original_dst: bool,
    /// How long to wait for a client's first bytes before deciding by address.
    pub sniff_timeout: Duration,
    pub access_log: AccessLog,
    pub listen_addrs: Vec<SocketAddr>,
    /// What this gateway's DNS server answered each workload.
    pub dns: Arc<dyn DnsKnowledge + Send + Sync>,
    pub resolver: Arc<dyn NameResolver>,
    pub rotate: std::sync::atomic::AtomicUsize,
    /// TLS origination configs built from DestinationRules.
    pub originations: super::origination::Originations,
    /// Mutual TLS with the mesh CA, when configured.
    pub mesh: Option<super::mesh_identity::MeshTls>,
    /// How decided streams are relayed (`--relay`).
    pub relay: super::relay_mode::RelayChoice,
    /// How long a relayed stream a newer configuration no longer allows
    /// stays open before both sides are reset (`--revocation-drain-secs`).
    pub revocation_drain: Duration,
}

impl OutboundContext {
    /// Closes a connection's record: its duration, its metrics, its audit line.
    pub async fn log_connection(&self, record: &mut crate::access_log::ConnectionRecord, elapsed: Duration) {
        record.finish(elapsed);
        self.metrics.record_connection(record);
        self.access_log.write(record).await;
    }

    /// Fires once a configuration newer than generation `decided` no longer
    /// lets a relayed stream stand, and the drain has passed.
    pub fn revoke_when(&self, decided: u64, stands: impl Fn(&ActiveConfig) -> bool + Send + 'static) -> super::revocation::Revoke {
        super::revocation::Revoke::when(self.config.subscribe(), decided, self.revocation_drain, stands)
    }

    pub fn dialer(&self) -> Dialer<'_> {
        Dialer { mark: self.socket_mark, timeout: self.connect_timeout, resolver: self.resolver.as_ref(), rotate: &self.rotate }
    }
}

/// Where a listener's connections were going.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OrigDstSource {
    /// Recorded by the kernel programs (and, with `--iptables-original-dst`,
    /// by netfilter).
    Kernel,
    /// An explicit listener (`--forward`): always this destination.
    Fixed(SocketAddr),
}

pub struct OutboundListener {
    listener: TcpListener,
    source: OrigDstSource,
}

impl OutboundListener {
    pub fn bind(addr: SocketAddr, source: OrigDstSource) -> io::Result<Self> {
        let socket = match addr {
            SocketAddr::V4(_) => TcpSocket::new_v4()?,
            SocketAddr::V6(_) => TcpSocket::new_v6()?,
        };
        socket.set_reuseaddr(true)?;
        socket.bind(addr)?;
        Ok(Self { listener: socket.listen(4096)?, source })
    }

    pub fn address(&self) -> io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Accepts until `shutdown` turns true.
    pub async fn run(self, ctx: Arc<OutboundContext>, mut shutdown: watch::Receiver<bool>) {
        loop {
            tokio::select! {
                _ = shutdown.changed() => return,
                accepted = self.listener.accept() => match accepted {
                    Ok((stream, peer)) => {
                        let _ = stream.set_nodelay(true);
                        let local = match stream.local_addr() {
                            Ok(a) => ProxyAddr(a),
                            Err(e) => {
                                tracing::warn!(error = %e, "accepted socket has no local address");
                                continue;
                            }
                        };
                        tokio::spawn(connection::handle(stream, ClientAddr(peer), local, self.source, ctx.clone()));
                    }
                    Err(e) => {
                        // Out of descriptors and the like: back off, keep serving.
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                },
            }
        }
    }
}
