//! The running Gateway listeners, kept in step with the configuration.
//!
//! Each published generation is planned again (`servers::plan`) and the
//! difference applied: a port that appears is bound, one that goes stops
//! accepting, one that changes (server kind, hosts, certificate) is re-keyed
//! in place. A listener that stays keeps its socket, its connection limit
//! and its open connections; those of a closed listener run to their end.
//! A port that cannot be bound, or whose TLS cannot be built, is logged,
//! counted and tried again at the next generation; the others are not
//! touched.
//!
//! In a cluster a server's port is the Service's port, and the listener
//! binds that port's target (`kubernetes/gateway_ports.rs`); a change of
//! the mapping moves the listener like a change of the port.

use std::{
    collections::BTreeMap,
    net::{IpAddr, SocketAddr},
    sync::{Arc, Mutex},
};

use rustls::ServerConfig;
use serde::Serialize;
use tokio::{
    net::{TcpListener, TcpSocket},
    sync::watch,
    task::JoinHandle,
};

use super::{GatewayContext, ServerKind, accept_loop, servers::{self, PortPlan}, terminate};
use crate::{config::Labels, kubernetes::gateway_ports::PortMap, metrics::ListenerFailureLabels, reload::ActiveConfig};

/// What a listener serves its next connections with, swapped whole.
pub struct Setup {
    pub plan: Arc<PortPlan>,
    /// The server config of a terminating or ISTIO_MUTUAL port.
    pub tls: Option<Arc<ServerConfig>>,
}

/// Why a planned port is not served.
#[derive(Debug, thiserror::Error)]
pub enum ListenerError {
    #[error("cannot bind {address}: {source}")]
    Bind { address: SocketAddr, source: std::io::Error },
    #[error("cannot build its TLS: {0}")]
    Tls(#[from] crate::tls::TlsError),
    #[error("cannot set up the ISTIO_MUTUAL server: {0}")]
    Mesh(#[from] crate::proxy::mesh_identity::MeshTlsError),
}

impl ListenerError {
    fn reason(&self) -> &'static str {
        match self {
            ListenerError::Bind { .. } => "bind",
            ListenerError::Tls(_) | ListenerError::Mesh(_) => "tls",
        }
    }
}

/// What the listeners look like, for `/config_dump` and `/stats`.
#[derive(Clone, Debug, Default, Serialize)]
pub struct ListenerView {
    /// The configuration generation last applied to the listeners.
    pub generation: u64,
    pub ports: Vec<PortState>,
}

#[derive(Clone, Debug, Serialize)]
pub struct PortState {
    /// The server's port as the Gateway declares it.
    pub port: u16,
    /// Where it listens: the declared port, or in a cluster its Service's
    /// target port.
    pub address: SocketAddr,
    pub kind: &'static str,
    /// `namespace/name` of the Gateways that claim the port.
    pub gateways: Vec<String>,
    /// `listening`, or `failed` with `error` (tried again at the next
    /// generation). A listener whose re-key failed is `listening` on its
    /// previous setup, with `error` saying why.
    pub state: &'static str,
    pub error: Option<String>,
}

pub type ListenerStatus = Mutex<ListenerView>;

struct Running {
    setup: watch::Sender<Arc<Setup>>,
    accepting: JoinHandle<()>,
}

impl Running {
    /// Stops accepting and waits until the socket is closed; open
    /// connections are not touched.
    async fn close(self) {
        drop(self.setup);
        let _ = self.accepting.await;
    }
}

pub struct Listeners {
    ctx: Arc<GatewayContext>,
    labels: Labels,
    running: BTreeMap<(Option<IpAddr>, u16), Running>,
    /// The ISTIO_MUTUAL server config, built when a port first needs it.
    mesh: Option<Arc<ServerConfig>>,
    skipped: Vec<String>,
    status: Arc<ListenerStatus>,
    /// Service port → target ports, in a cluster.
    port_map: Option<watch::Receiver<PortMap>>,
}

impl Listeners {
    pub fn new(ctx: Arc<GatewayContext>, labels: Labels, port_map: Option<watch::Receiver<PortMap>>) -> Self {
        Self { ctx, labels, running: BTreeMap::new(), mesh: None, skipped: Vec::new(), status: Default::default(), port_map }
    }

    pub fn status(&self) -> Arc<ListenerStatus> {
        self.status.clone()
    }

    /// Applies every generation the store publishes after the one
    /// `configs` last saw.
    /// Applies every generation the store publishes after the one
    /// `configs` last saw, and every change of the port map.
    pub async fn follow(mut self, mut configs: watch::Receiver<Arc<ActiveConfig>>) {
        loop {
            let mapped = async {
                match self.port_map.as_mut() {
                    Some(map) => map.changed().await.is_ok(),
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                changed = configs.changed() => if changed.is_err() { return },
                open = mapped => if !open { self.port_map = None },
            }
            let config = configs.borrow_and_update().clone();
            self.apply(&config).await;
        }
    }

    /// Brings the running listeners to what `config` plans.
    pub async fn apply(&mut self, config: &ActiveConfig) {
        let (ports, skipped) = servers::plan(&config.snapshot, &self.labels);
        if skipped != self.skipped {
            for s in &skipped {
                tracing::warn!(server = %s, "Gateway server not served by this role");
            }
            self.skipped = skipped;
        }
        let map = self.port_map.as_mut().map(|m| m.borrow_and_update().clone()).unwrap_or_default();
        let mut wanted = BTreeMap::new();
        for plan in ports.into_iter().map(Arc::new) {
            for listen in map.listen_ports(plan.port) {
                if let Some(other) = wanted.get(&(plan.bind, listen)).map(|o: &Arc<PortPlan>| o.port) {
                    tracing::warn!(port = plan.port, other, listen, "two Gateway ports map to one target port; the first is served");
                    continue;
                }
                wanted.insert((plan.bind, listen), plan.clone());
            }
        }
        // Close first, so that a port whose bind address changed binds again.
        let gone: Vec<_> = self.running.keys().filter(|k| !wanted.contains_key(k)).copied().collect();
        for key in gone {
            if let Some(listener) = self.running.remove(&key) {
                listener.close().await;
                tracing::info!(address = %address(key.0, key.1), generation = config.generation, "gateway listener closed");
            }
        }
        let mut ports = Vec::new();
        for (key, plan) in wanted {
            let current = self.running.get(&key).map(|r| r.setup.borrow().plan.clone());
            let outcome = match current {
                Some(old) if old == plan => Ok(()),
                Some(old) => self.rekey(key, &old, plan.clone()),
                None => self.open(key, plan.clone()),
            };
            if let Err(e) = &outcome {
                self.ctx.inputs.metrics.listener_failures.get_or_create(&ListenerFailureLabels { port: plan.port, reason: e.reason() }).inc();
            }
            let listening = self.running.contains_key(&key);
            ports.push(PortState {
                port: plan.port,
                address: address(key.0, key.1),
                kind: plan.kind.as_str(),
                gateways: plan.gateways.iter().map(|(ns, n)| format!("{ns}/{n}")).collect(),
                state: if listening { "listening" } else { "failed" },
                error: outcome.err().map(|e| e.to_string()),
            });
        }
        *self.status.lock().expect("listener status lock") = ListenerView { generation: config.generation, ports };
    }

    fn open(&mut self, key: (Option<IpAddr>, u16), plan: Arc<PortPlan>) -> Result<(), ListenerError> {
        let address = address(key.0, key.1);
        let result = self.tls_for(&plan).and_then(|tls| Ok((tls, bind(address).map_err(|source| ListenerError::Bind { address, source })?)));
        let (tls, listener) = match result {
            Ok(ok) => ok,
            Err(e) => {
                tracing::error!(%address, error = %e, "gateway listener not opened; tried again at the next configuration");
                return Err(e);
            }
        };
        tracing::info!(%address, port = plan.port, kind = plan.kind.as_str(), gateways = ?plan.gateways, "gateway listening");
        let (setup, watched) = watch::channel(Arc::new(Setup { plan, tls }));
        let accepting = tokio::spawn(accept_loop(listener, watched, self.ctx.clone()));
        self.running.insert(key, Running { setup, accepting });
        Ok(())
    }

    /// New connections get `plan` (and TLS built from it now); open ones
    /// keep what they were accepted with. On failure the previous setup stays.
    fn rekey(&mut self, key: (Option<IpAddr>, u16), old: &PortPlan, plan: Arc<PortPlan>) -> Result<(), ListenerError> {
        let address = address(key.0, key.1);
        let tls = match self.tls_for(&plan) {
            Ok(tls) => tls,
            Err(e) => {
                tracing::error!(%address, error = %e, "gateway listener keeps its previous setup; tried again at the next configuration");
                return Err(e);
            }
        };
        let certificate = if old.tls != plan.tls { "changed" } else { "same" };
        tracing::info!(%address, kind = plan.kind.as_str(), gateways = ?plan.gateways, certificate, "gateway listener re-keyed");
        if let Some(running) = self.running.get(&key) {
            running.setup.send_replace(Arc::new(Setup { plan, tls }));
        }
        Ok(())
    }

    fn tls_for(&mut self, plan: &PortPlan) -> Result<Option<Arc<ServerConfig>>, ListenerError> {
        match plan.kind {
            ServerKind::Terminate | ServerKind::TerminateTcp => match &plan.tls {
                Some(t) => Ok(Some(terminate::server_config(t, plan.kind == ServerKind::Terminate)?)),
                // `plan` gives every terminating port its files.
                None => Ok(None),
            },
            ServerKind::Mesh => {
                if self.mesh.is_none() {
                    let mesh = self.ctx.inputs.mesh.as_ref().ok_or(ListenerError::Mesh(crate::proxy::mesh_identity::MeshTlsError::NoMeshCa))?;
                    self.mesh = Some(mesh.server_config()?);
                }
                Ok(self.mesh.clone())
            }
            ServerKind::Http | ServerKind::Passthrough | ServerKind::Tcp => Ok(None),
        }
    }
}

/// The server's `bind` address, or `[::]` accepting IPv4 too.
fn address(bind: Option<IpAddr>, port: u16) -> SocketAddr {
    SocketAddr::new(bind.unwrap_or(IpAddr::from([0u16; 8])), port)
}

fn bind(address: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = match address {
        SocketAddr::V4(_) => TcpSocket::new_v4()?,
        SocketAddr::V6(_) => TcpSocket::new_v6()?,
    };
    socket.set_reuseaddr(true)?;
    if address.ip().is_unspecified() && address.is_ipv6() {
        nix::sys::socket::setsockopt(&socket, nix::sys::socket::sockopt::Ipv6V6Only, &false).map_err(std::io::Error::from)?;
    }
    socket.bind(address)?;
    socket.listen(4096)
}
