//! The mesh identities for mutual TLS between the node and an egress
//! gateway (Istio's ISTIO_MUTUAL): each workload presents its own SPIFFE
//! identity, so the exit knows which workload every connection came from.

use std::{
    collections::HashMap,
    path::{Path, PathBuf},
    sync::{Arc, Mutex},
    time::SystemTime,
};

use rustls::{ClientConfig, ServerConfig};

use super::origination::Origination;
use crate::{
    policy::{WorkloadIdentity, RouteChoice, UpstreamTls, resolve_traffic_policy},
    reload::ActiveConfig,
    tls::{TlsError, mesh_client_config, mesh_server_config},
};

/// Why no mesh identity can be presented; the connection is refused rather
/// than sent without one, or under another.
#[derive(Debug, thiserror::Error)]
pub enum MeshTlsError {
    #[error("ISTIO_MUTUAL needs --mesh-ca")]
    NoMeshCa,
    #[error("an ISTIO_MUTUAL server needs --cert and --key")]
    NoServerIdentity,
    #[error("the workload has no service account (WorkloadEntry)")]
    NoServiceAccount,
    #[error("no --workload-certs directory")]
    NoWorkloadCerts,
    #[error(transparent)]
    Tls(#[from] TlsError),
}

/// Why a steered stream could not be put inside the workload's mutual TLS.
#[derive(Debug, thiserror::Error)]
pub enum MeshConnectError {
    #[error("cannot connect to the gateway: {0}")]
    Connect(std::io::Error),
    #[error("mutual TLS handshake timed out")]
    HandshakeTimeout,
    #[error(transparent)]
    Handshake(TlsError),
}

/// `--mesh-ca`, `--cert`/`--key` (this instance's identity) and
/// `--workload-certs` (one `<namespace>-<serviceaccount>.crt|.key` pair per
/// workload, as `gateway certs --workload NS/SA` writes them).
pub struct MeshTls {
    pub ca: PathBuf,
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
    pub workload_certs: Option<PathBuf>,
    clients: Mutex<HashMap<(String, String), CachedClient>>,
}

/// A workload's config, and the state of the files it was built from.
type CachedClient = (FileStamps, Arc<ClientConfig>);

/// When the files behind a cached config last changed: a renewed
/// certificate (or trust bundle), replaced by rename, is loaded afresh.
type FileStamps = [Option<SystemTime>; 3];

fn stamps(paths: [&Path; 3]) -> FileStamps {
    paths.map(|p| std::fs::metadata(p).and_then(|m| m.modified()).ok())
}

impl MeshTls {
    pub fn new(ca: PathBuf, cert: Option<PathBuf>, key: Option<PathBuf>, workload_certs: Option<PathBuf>) -> Self {
        Self { ca, cert, key, workload_certs, clients: Mutex::default() }
    }

    /// The gateway side: requires a client certificate from the mesh CA.
    pub fn server_config(&self) -> Result<Arc<ServerConfig>, MeshTlsError> {
        let (Some(cert), Some(key)) = (&self.cert, &self.key) else {
            return Err(MeshTlsError::NoServerIdentity);
        };
        Ok(mesh_server_config(&self.ca, cert, key)?)
    }

    /// The node side: the workload's own certificate. A workload without a
    /// service account, or without a certificate, gets none. The config is
    /// cached until one of its files (CA, certificate, key) changes.
    pub fn client_for(&self, w: &WorkloadIdentity) -> Result<Arc<ClientConfig>, MeshTlsError> {
        let sa = w.service_account.as_deref().ok_or(MeshTlsError::NoServiceAccount)?;
        let key = (w.namespace.to_string(), sa.to_string());
        let dir = self.workload_certs.as_ref().ok_or(MeshTlsError::NoWorkloadCerts)?;
        let stem = dir.join(format!("{}-{}", w.namespace, sa));
        let (cert, key_file) = (stem.with_extension("crt"), stem.with_extension("key"));
        let now = stamps([&self.ca, &cert, &key_file]);
        if let Some((at, c)) = self.clients.lock().expect("mesh lock").get(&key)
            && *at == now
        {
            return Ok(c.clone());
        }
        let config = mesh_client_config(&self.ca, &cert, &key_file, None)?;
        self.clients.lock().expect("mesh lock").insert(key, (now, config.clone()));
        Ok(config)
    }
}

/// For a steered connection: the workload's mutual TLS to the route's
/// destination when its DestinationRule settings (resolved for the route's
/// subset and `port`) say ISTIO_MUTUAL; `Ok(None)` otherwise.
pub fn steered_mesh_tls(
    mesh: Option<&MeshTls>,
    config: &ActiveConfig,
    workload: &WorkloadIdentity,
    route: &RouteChoice,
    port: u16,
) -> Result<Option<Origination>, MeshTlsError> {
    let resolved = resolve_traffic_policy(&config.snapshot, &workload.namespace, &route.destination, route.subset.as_deref(), port);
    if resolved.upstream_tls() != UpstreamTls::IstioMutual {
        return Ok(None);
    }
    let mesh = mesh.ok_or(MeshTlsError::NoMeshCa)?;
    Ok(Some((mesh.client_for(workload)?, route.destination.to_string())))
}
