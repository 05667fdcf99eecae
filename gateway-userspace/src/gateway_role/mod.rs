//! The gateway role (`--labels istio=egressgateway`, `istio=ingressgateway`,
//! …): serve the listeners of every `Gateway` whose selector matches this
//! instance, route by the VirtualServices bound to them, apply the registry
//! again, and make the real connection to the destination.
//!
//! - `servers.rs`: which ports, and the routes (pure).
//! - `authorize.rs`: the AuthorizationPolicies of this gateway, its
//!   Gateways and the destination's ServiceEntry, asked with the peer.
//! - `bound_routes.rs`: the VirtualServices bound to each Gateway, found
//!   once per configuration generation for HTTP requests.
//! - `listeners.rs`: the running listeners, following each configuration
//!   generation (ports opened, closed, re-keyed); this file accepts.
//! - `clusters.rs`: per-destination limits and endpoint health.
//! - `passthrough.rs`: TLS by SNI, left encrypted.
//! - `tcp.rs`: opaque TCP by port; the relay both it and passthrough use.
//! - `http.rs`: the HTTP server, and the gateway's phases of the HTTP
//!   pipeline (`http_pipeline`): route by Host, answer or edit, forward.
//! - `forward.rs`: the upstream phase: timeouts and retries around admit,
//!   pick endpoints, and the exchange over pooled upstream connections.
//! - `edge_headers.rs`: `x-forwarded-*`, `x-request-id`, HTTP/2 to HTTP/1.1.
//! - `http2_limits.rs`: the HTTP/2 server's limits against request floods.
//! - `balance.rs`: which endpoint a request goes to (the DestinationRule
//!   settings come from `policy::resolve_traffic_policy`).
//! - `route_policy.rs`, `cors.rs`, `mirror.rs`: redirects, faults,
//!   rewrites, header edits, retry conditions, CORS, mirrors.
//! - `mesh_terminate.rs`: ISTIO_MUTUAL: mutual TLS from nodes terminated,
//!   then TLS or HTTP inside.
//! - `terminate.rs`: HTTPS and TLS terminated here (SIMPLE, MUTUAL,
//!   OPTIONAL_MUTUAL), then HTTP or TCP.

mod authorize;
mod balance;
mod bound_routes;
mod clusters;
mod cors;
mod edge_headers;
mod forward;
mod http;
mod http2_limits;
mod listeners;
mod mesh_terminate;
mod mirror;
mod passthrough;
mod route_policy;
mod servers;
mod tcp;
mod terminate;

#[cfg(test)]
mod tests;

use std::{net::SocketAddr, sync::Arc};

use tokio::{net::TcpListener, sync::watch};
use tracing::Instrument;

pub use listeners::{ListenerStatus, ListenerView};
pub use servers::{PortPlan, ServerKind};

use crate::{config::Labels, policy::WorkloadIdentity, proxy::ProxyInputs};

/// What a gateway listener allows a client.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    pub header_read_timeout: std::time::Duration,
    /// Larger request heads get 431.
    pub max_header_bytes: usize,
    /// Open connections per listener; further ones are closed at accept
    /// (Envoy's listener `max_connections`).
    pub max_connections_per_listener: usize,
    /// A downstream connection with no bytes either way (and no HTTP
    /// request in flight) this long is closed; zero: never.
    pub idle_timeout: std::time::Duration,
}

/// Shared by every connection of the role.
pub struct GatewayContext {
    pub limits: Limits,
    /// `ingress-gateway`, `egress-gateway` or `gateway`, by the instance's
    /// `istio` label, for the audit log and metrics.
    pub role: &'static str,
    pub clusters: clusters::Clusters,
    /// The VirtualServices bound to each Gateway, for the current snapshot.
    pub bound_routes: bound_routes::BoundRoutesCache,
    /// Upstream connections, shared by every downstream connection.
    pub pool: Arc<crate::transport::http_pool::UpstreamPool>,
    /// The settings and services shared with the node's outbound proxy.
    pub inputs: Arc<ProxyInputs>,
    /// The gateway's own identity, for the registry it applies.
    pub workload: WorkloadIdentity,
}

/// A connection line of this role.
pub fn gateway_record(peer: SocketAddr, ctx: &GatewayContext, protocol: &'static str, identity: Option<String>) -> crate::access_log::ConnectionRecord {
    let mut record = crate::access_log::ConnectionRecord::new(crate::transport::addrs::ClientAddr(peer));
    record.role = ctx.role;
    record.protocol = Some(protocol);
    record.workload = Some(ctx.workload.clone());
    record.peer_identity = identity;
    record
}

/// Serves the listeners of the Gateways whose selector matches `labels`,
/// as the current configuration plans them and every later generation
/// changes them. Returns what the listeners look like, kept current.
/// In a cluster, `port_map` says which port each server's port binds.
pub async fn serve(
    labels: &Labels,
    namespace: &str,
    limits: Limits,
    inputs: Arc<ProxyInputs>,
    port_map: Option<watch::Receiver<crate::kubernetes::gateway_ports::PortMap>>,
) -> Arc<ListenerStatus> {
    let role = match labels.get("istio").map(String::as_str) {
        Some("ingressgateway") => "ingress-gateway",
        Some("egressgateway") => "egress-gateway",
        _ => "gateway",
    };
    let ctx = Arc::new(GatewayContext {
        limits,
        role,
        clusters: Default::default(),
        bound_routes: Default::default(),
        pool: Default::default(),
        inputs,
        workload: WorkloadIdentity { namespace: namespace.into(), name: None, labels: Arc::new(labels.clone()), service_account: None },
    });
    // Each reload closes the pooled upstream connections it no longer allows.
    let (pool, mut configs) = (ctx.pool.clone(), ctx.inputs.config.subscribe());
    tokio::spawn(async move {
        while configs.changed().await.is_ok() {
            let config = configs.borrow_and_update().clone();
            pool.revoke(config);
        }
    });
    // The first plan is in place before this returns; then every generation.
    let mut configs = ctx.inputs.config.subscribe();
    let mut listeners = listeners::Listeners::new(ctx.clone(), labels.clone(), port_map);
    let first = configs.borrow_and_update().clone();
    listeners.apply(&first).await;
    let status = listeners.status();
    tokio::spawn(listeners.follow(configs));
    status
}

/// A connection being served.
type Serving = std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>;

/// One of a listener's open connections: its slot under the limit, and
/// its count in the gauge, both given back when it ends, however it ends.
struct OpenConnection {
    _slot: tokio::sync::OwnedSemaphorePermit,
    gauge: prometheus_client::metrics::gauge::Gauge,
}

impl OpenConnection {
    fn new(slot: tokio::sync::OwnedSemaphorePermit, gauge: prometheus_client::metrics::gauge::Gauge) -> Self {
        gauge.inc();
        OpenConnection { _slot: slot, gauge }
    }
}

impl Drop for OpenConnection {
    fn drop(&mut self) {
        self.gauge.dec();
    }
}

/// Accepts until the listener's setup channel closes (the port left the
/// configuration). Each connection is served with the setup current when
/// it is accepted; the slot limit and gauge outlive re-keys.
async fn accept_loop(listener: TcpListener, mut setup: watch::Receiver<Arc<listeners::Setup>>, ctx: Arc<GatewayContext>) {
    let open = Arc::new(tokio::sync::Semaphore::new(ctx.limits.max_connections_per_listener));
    let port = crate::metrics::ListenerLabels { port: setup.borrow().plan.port };
    let metrics = ctx.inputs.metrics.clone();
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            changed = setup.changed() => match changed {
                Ok(()) => continue,
                Err(_) => return,
            },
        };
        match accepted {
            Ok((stream, peer)) => {
                let Ok(slot) = open.clone().try_acquire_owned() else {
                    // Over the limit: closed at once, as Envoy does.
                    metrics.listener_overflow.get_or_create(&port).inc();
                    tracing::debug!(%peer, port = port.port, "listener connection limit reached; closed");
                    drop(stream);
                    continue;
                };
                let _ = stream.set_nodelay(true);
                let peer = SocketAddr::new(peer.ip().to_canonical(), peer.port());
                let current = setup.borrow().clone();
                let (plan, tls, ctx) = (current.plan.clone(), current.tls.clone(), ctx.clone());
                let open = OpenConnection::new(slot, metrics.listener_connections.get_or_create(&port).clone());
                let serve: Serving = match plan.kind {
                    ServerKind::Passthrough => Box::pin(passthrough::handle(stream, peer, plan, ctx)),
                    ServerKind::Http => Box::pin(http::handle(stream, peer, plan, ctx)),
                    ServerKind::Mesh => Box::pin(mesh_terminate::handle(stream, peer, plan, tls, ctx)),
                    ServerKind::Terminate | ServerKind::TerminateTcp => Box::pin(terminate::handle(stream, peer, plan, tls, ctx)),
                    ServerKind::Tcp => Box::pin(tcp::handle(stream, peer, plan, ctx)),
                };
                // Every log line of the connection names it.
                let span = tracing::info_span!("gateway_conn", id = crate::proxy::next_connection_id(), client = %peer, port = port.port);
                tokio::spawn(
                    async move {
                        serve.await;
                        drop(open);
                    }
                    .instrument(span),
                );
            }
            Err(e) => {
                tracing::warn!(error = %e, "gateway accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
        }
    }
}
