//! Mutual TLS between the node and an egress gateway (Istio's
//! ISTIO_MUTUAL): each workload presents its own SPIFFE identity, so the
//! exit knows which workload every connection came from.

use std::{
    collections::HashMap,
    path::PathBuf,
    sync::{Arc, Mutex},
};

use rustls::{ClientConfig, ServerConfig};

use crate::{
    config::{
        Snapshot,
        resources::destination_rule::{ClientTlsMode, TrafficPolicy},
    },
    policy::{RouteChoice, Workload},
    tls::{mesh_client_config, mesh_server_config},
};

/// `--mesh-ca`, `--cert`/`--key` (this instance's identity) and
/// `--workload-certs` (one `<namespace>-<serviceaccount>.crt|.key` pair per
/// workload, as `gateway certs --workload NS/SA` writes them).
pub struct MeshTls {
    pub ca: PathBuf,
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
    pub workload_certs: Option<PathBuf>,
    clients: Mutex<HashMap<(String, String), Arc<ClientConfig>>>,
}

impl MeshTls {
    pub fn new(ca: PathBuf, cert: Option<PathBuf>, key: Option<PathBuf>, workload_certs: Option<PathBuf>) -> Self {
        Self { ca, cert, key, workload_certs, clients: Mutex::default() }
    }

    /// The gateway side: requires a client certificate from the mesh CA.
    pub fn server_config(&self) -> Result<Arc<ServerConfig>, String> {
        let (Some(cert), Some(key)) = (&self.cert, &self.key) else {
            return Err("an ISTIO_MUTUAL server needs --cert and --key".into());
        };
        mesh_server_config(&self.ca, cert, key).map_err(|e| e.to_string())
    }

    /// The node side: the workload's own certificate. A workload without a
    /// service account, or without a certificate, gets none: the connection
    /// is refused rather than sent under another identity.
    pub fn client_for(&self, w: &Workload) -> Result<Arc<ClientConfig>, String> {
        let sa = w.service_account.as_deref().ok_or("the workload has no service account (WorkloadEntry)")?;
        let key = (w.namespace.clone(), sa.to_string());
        if let Some(c) = self.clients.lock().expect("mesh lock").get(&key) {
            return Ok(c.clone());
        }
        let dir = self.workload_certs.as_ref().ok_or("no --workload-certs directory")?;
        let stem = dir.join(format!("{}-{}", w.namespace, sa));
        let config = mesh_client_config(&self.ca, &stem.with_extension("crt"), &stem.with_extension("key"), None)
            .map_err(|e| e.to_string())?;
        self.clients.lock().expect("mesh lock").insert(key, config.clone());
        Ok(config)
    }
}

/// Whether the DestinationRule for a route's destination (its subset's
/// policy first, then the rule's; the port's settings first) says
/// ISTIO_MUTUAL.
pub fn istio_mutual(snapshot: &Snapshot, namespace: &str, route: &RouteChoice, port: u16) -> bool {
    let Some(dr) = snapshot.destination_rule_for(&route.destination, namespace) else { return false };
    let subset = route.subset.as_ref().and_then(|s| dr.subset(s)).and_then(|s| s.traffic_policy.as_ref());
    [subset, dr.traffic_policy.as_ref()].into_iter().flatten().find_map(|p| tls_mode(p, port)) == Some(ClientTlsMode::IstioMutual)
}

fn tls_mode(p: &TrafficPolicy, port: u16) -> Option<ClientTlsMode> {
    p.port_level_settings
        .iter()
        .find(|s| s.port == Some(port))
        .and_then(|s| s.tls.as_ref())
        .or(p.tls.as_ref())
        .map(|t| t.mode)
}
