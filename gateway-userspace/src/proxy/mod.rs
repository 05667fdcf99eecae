//! The node's outbound path: accepts what the interceptor redirected, finds
//! the original destination once, decides, and carries the bytes there with
//! the toolkit in `transport/`.
//!
//! - `listener.rs`: accept loop on each proxy address.
//! - `connection.rs`: one connection from accept to its log line.
//! - `orig_dst.rs`: where it was going, looked up once, at accept.
//! - `peek.rs`: the first bytes, read without consuming them, through `sniff`.
//! - `http_egress.rs`: plain HTTP, decided and forwarded request by request.
//! - `origination.rs`: TLS to the destination when its DestinationRule
//!   settings (resolved by `policy::resolve_traffic_policy`) ask.
//! - `mesh_identity.rs`: the workloads' mesh identities, for mutual TLS to an egress
//!   gateway (ISTIO_MUTUAL).
//! - `deny.rs`: what a denied client sees.
//! - `revocation.rs`: closes a relayed stream that a newer configuration no
//!   longer allows, after a drain.
//! - `workload_limit.rs`: open connections per workload, against
//!   `--max-connections-per-workload`.
//!
//! [`ProxyInputs`] is what every connection shares, here and in the gateway
//! role: the plain [`Settings`] and the shared services. Each connection
//! runs in a `conn` tracing span (id, client, then original destination and
//! workload once known), so every log line names its connection.

mod authorize;
mod connection;
pub mod deny;
mod http_egress;
mod listener;
pub mod mesh_identity;
mod orig_dst;
pub mod origination;
pub mod peek;
pub mod revocation;
pub mod workload_limit;

#[cfg(test)]
mod tests;

use std::{
    net::SocketAddr,
    sync::{
        Arc,
        atomic::{AtomicU64, AtomicUsize, Ordering},
    },
    time::Duration,
};

pub use listener::OutboundListener;
pub use orig_dst::OrigDstSource;

use crate::{
    access_log::{AccessLog, ConnectionRecord},
    interceptor::OrigDstLookup,
    kubernetes::NodeAgent,
    metrics::Metrics,
    policy::{DnsKnowledge, RouteChoice, Target, WorkloadIdentity},
    reload::{ActiveConfig, ConfigStore},
    transport::{Dialer, NameResolver, relay_mode::RelayChoice, revoke::Revoke},
};

/// The plain knobs of the proxy and the gateway role, fixed at start.
pub struct Settings {
    /// `SO_MARK` on the proxy's own upstream sockets.
    pub socket_mark: u32,
    pub connect_timeout: Duration,
    /// How long to wait for a client's first bytes before deciding by address.
    pub sniff_timeout: Duration,
    /// How long a connection from a pod not yet announced is held.
    pub unknown_workload_wait: Duration,
    /// How long a relayed stream a newer configuration no longer allows
    /// stays open before both sides are reset (`--revocation-drain-secs`).
    pub revocation_drain: Duration,
    /// How decided streams are relayed (`--relay`).
    pub relay: RelayChoice,
    /// Fall back to netfilter's `SO_ORIGINAL_DST` when the kernel programs
    /// hold no record (iptables `REDIRECT` interception).
    pub iptables_original_dst: bool,
    /// The proxy's own listening addresses: a connection meant for one of
    /// them is a loop.
    pub listen_addrs: Vec<SocketAddr>,
    /// Audit mode for every workload (`--audit`).
    pub audit: bool,
    /// Plain HTTP/1 from pods: how long a request head may take from its
    /// first byte (`--header-read-timeout-ms`), and how long a connection
    /// may carry nothing with no request in flight (`--idle-timeout-secs`).
    pub header_read_timeout: Duration,
    pub http_idle_timeout: Duration,
}

/// What every connection on every listener shares: the settings and the
/// services.
pub struct ProxyInputs {
    pub settings: Arc<Settings>,
    pub config: Arc<ConfigStore>,
    pub metrics: Arc<Metrics>,
    pub access_log: AccessLog,
    /// The kernel programs' records; `None` when nothing is intercepted.
    pub orig_dst: Option<Arc<OrigDstLookup>>,
    /// This node's pods, when it runs as the node agent.
    pub pods: Option<Arc<NodeAgent>>,
    /// What this gateway's DNS server answered each workload.
    pub dns: Arc<dyn DnsKnowledge + Send + Sync>,
    pub resolver: Arc<dyn NameResolver>,
    /// TLS origination configs built from DestinationRules.
    pub originations: origination::Originations,
    /// Mutual TLS with the mesh CA, when configured.
    pub mesh: Option<mesh_identity::MeshTls>,
    /// Rotates the starting endpoint of multi-address targets.
    pub rotate: AtomicUsize,
    /// Open intercepted connections per workload, against their limit.
    pub workload_limits: workload_limit::WorkloadLimits,
    /// The upstream pools of the plain HTTP/1 connections, revoked at each reload.
    pub pools: Arc<crate::transport::pools::Pools>,
}

impl ProxyInputs {
    /// How the registry's refusals are carried out for `workload`: audited
    /// node-wide (`--audit`) or by its namespace's label.
    pub fn enforcement(&self, workload: &WorkloadIdentity) -> crate::policy::Enforcement {
        let audited = self.settings.audit || self.pods.as_ref().is_some_and(|p| p.audits(&workload.namespace));
        if audited { crate::policy::Enforcement::Audit } else { crate::policy::Enforcement::Enforce }
    }

    /// Closes a connection's record: its duration, its metrics, its audit line.
    pub async fn log_connection(&self, record: &mut ConnectionRecord, elapsed: Duration) {
        record.finish(elapsed);
        self.metrics.record_connection(record);
        self.access_log.write(record).await;
    }

    /// Fires once a configuration newer than generation `decided` no longer
    /// lets a relayed stream stand, and the drain has passed.
    pub fn revoke_when(&self, decided: u64, stands: impl Fn(&ActiveConfig) -> bool + Send + Sync + 'static) -> Revoke {
        Revoke::when(self.config.subscribe(), decided, self.settings.revocation_drain, stands)
    }

    /// For a steered connection or request: the workload's mutual TLS to
    /// the gateway when the route's DestinationRule says ISTIO_MUTUAL.
    /// `Err`: it says so, but no identity can be presented; it must not go.
    pub fn mesh_tls(
        &self,
        config: &ActiveConfig,
        workload: &WorkloadIdentity,
        route: &RouteChoice,
        target: &Target,
    ) -> Result<Option<origination::Origination>, mesh_identity::MeshTlsError> {
        mesh_identity::steered_mesh_tls(self.mesh.as_ref(), config, workload, route, target.port())
    }

    /// Connects to policy targets from the proxy's marked sockets.
    pub fn dialer(&self) -> Dialer<'_> {
        Dialer {
            mark: self.settings.socket_mark,
            timeout: self.settings.connect_timeout,
            resolver: self.resolver.as_ref(),
            rotate: &self.rotate,
        }
    }
}

/// Numbers this process's connections (outbound and gateway role alike)
/// for their tracing spans, so each log line says which one it is about.
pub fn next_connection_id() -> u64 {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    NEXT.fetch_add(1, Ordering::Relaxed)
}
