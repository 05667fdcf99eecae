//! TLS origination: where the DestinationRule settings resolved for a
//! destination (`policy::resolve_traffic_policy`: subset over rule, port
//! entry over its level) say SIMPLE or MUTUAL, the proxy speaks TLS to the
//! destination, whatever the client sent.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
};

use rustls::ClientConfig;

use crate::{
    config::resources::destination_rule::{ClientTls, ClientTlsMode},
    policy::{ResolvedTrafficPolicy, UpstreamTls, resolve_traffic_policy},
    reload::ActiveConfig,
    tls::{OriginationSettings, TlsError, origination_config},
};

/// The client config and the server name to present.
pub type Origination = (Arc<ClientConfig>, String);

/// Why a destination that asks for TLS cannot get it: the request fails
/// rather than going out in the clear.
#[derive(Clone, Debug, thiserror::Error)]
pub enum OriginationError {
    #[error("the TLS origination settings for {host} do not load: {source}")]
    Settings {
        host: String,
        #[source]
        source: Arc<TlsError>,
    },
}

/// Why a request's upstream TLS (originated, or the mesh's) cannot be set
/// up.
#[derive(Debug, thiserror::Error)]
pub enum UpstreamTlsError {
    #[error(transparent)]
    Origination(#[from] OriginationError),
    #[error(transparent)]
    Mesh(#[from] super::mesh_identity::MeshTlsError),
}

/// A client config built for one destination of a host under one
/// configuration generation.
#[derive(Debug)]
pub(super) struct Built {
    pub(super) generation: u64,
    namespace: String,
    subset: Option<String>,
    port: u16,
    tls: Result<Option<Origination>, OriginationError>,
}

/// Client configs built once per (configuration generation, destination);
/// those of older generations are dropped when a newer one is asked for.
/// Filed by host, so that a request's lookup borrows its host instead of
/// building a key (every allowed HTTP request asks).
#[derive(Default)]
pub struct Originations {
    pub(super) built: Mutex<HashMap<String, Vec<Built>, foldhash::fast::RandomState>>,
}

impl Originations {
    /// The TLS for `host:port` (and `subset`, when a route chose one) seen
    /// from `namespace`. `Ok(None)`: plain (ISTIO_MUTUAL is the mesh's, not
    /// an origination).
    pub fn for_destination(
        &self,
        active: &ActiveConfig,
        namespace: &str,
        host: &str,
        subset: Option<&str>,
        port: u16,
    ) -> Result<Option<Origination>, OriginationError> {
        let same = |b: &&Built| b.generation == active.generation && b.namespace == namespace && b.subset.as_deref() == subset && b.port == port;
        if let Some(found) = self.built.lock().expect("originations lock").get(host).and_then(|list| list.iter().find(same)) {
            return found.tls.clone();
        }
        let resolved = resolve_traffic_policy(&active.snapshot, namespace, host, subset, port);
        let tls = Self::build(&resolved, host);
        let mut cache = self.built.lock().expect("originations lock");
        // Configs of older generations are asked for no more.
        cache.retain(|_, list| {
            list.retain(|b| b.generation >= active.generation);
            !list.is_empty()
        });
        let built = Built { generation: active.generation, namespace: namespace.to_string(), subset: subset.map(str::to_string), port, tls: tls.clone() };
        cache.entry(host.to_string()).or_default().push(built);
        tls
    }

    /// The client config the resolved settings ask for.
    fn build(resolved: &ResolvedTrafficPolicy, host: &str) -> Result<Option<Origination>, OriginationError> {
        let UpstreamTls::Originate(tls) = resolved.upstream_tls() else { return Ok(None) };
        let settings = settings(tls);
        let name = settings.server_name(host).to_string();
        origination_config(&settings)
            .map(|cfg| Some((cfg, name)))
            .map_err(|e| OriginationError::Settings { host: host.to_string(), source: Arc::new(e) })
    }
}

fn settings(tls: &ClientTls) -> OriginationSettings {
    OriginationSettings {
        mutual: tls.mode == ClientTlsMode::Mutual,
        sni: tls.sni.clone(),
        ca_certificates: tls.ca_certificates.clone(),
        subject_alt_names: tls.subject_alt_names.clone(),
        client_certificate: tls.client_certificate.clone(),
        private_key: tls.private_key.clone(),
        insecure_skip_verify: tls.insecure_skip_verify.unwrap_or(false),
        alpn: vec![b"http/1.1".to_vec()],
    }
}
