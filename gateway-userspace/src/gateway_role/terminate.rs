//! An HTTPS or TLS server terminated here: SIMPLE, MUTUAL (client
//! certificate required) or OPTIONAL_MUTUAL, then HTTP routed by Host, or
//! (a `TLS` server) TCP routed by `tcp` routes.

use std::{net::SocketAddr, sync::Arc, time::Duration};

use tokio::net::TcpStream;
use tokio_rustls::TlsAcceptor;

use super::{GatewayContext, ServerKind, gateway_record, http, servers::{PortPlan, TerminateTls}, tcp};
use crate::{
    config::{ServerTlsMode, resources::gateway::TlsVersion as IstioVersion},
    tls::{ClientAuth, ServerSettings, TlsVersion, peer_spiffe_id},
};

const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// `http`: offer `h2` and `http/1.1` by ALPN; a TCP server offers none.
/// The files are read now: a new config picks up rotated certificates.
pub fn server_config(t: &TerminateTls, http: bool) -> Result<Arc<rustls::ServerConfig>, crate::tls::TlsError> {
    let version = |v: Option<IstioVersion>| match v {
        Some(IstioVersion::V1_3) => Some(TlsVersion::Tls13),
        Some(IstioVersion::V1_2) => Some(TlsVersion::Tls12),
        _ => None,
    };
    let settings = ServerSettings {
        cert: t.files.certificate.clone(),
        key: t.files.private_key.clone(),
        client_ca: t.files.ca_certificates.clone(),
        client_auth: match t.mode {
            ServerTlsMode::Mutual => ClientAuth::Required,
            ServerTlsMode::OptionalMutual => ClientAuth::Optional,
            _ => ClientAuth::None,
        },
        alpn: if http { vec![b"h2".to_vec(), b"http/1.1".to_vec()] } else { Vec::new() },
        min_version: version(t.min),
        max_version: version(t.max),
        by_sni: t.by_sni.iter().map(|(hosts, f)| (hosts.clone(), f.certificate.clone(), f.private_key.clone())).collect(),
    };
    crate::tls::server_config(&settings)
}

pub async fn handle(stream: TcpStream, peer: SocketAddr, plan: Arc<PortPlan>, config: Option<Arc<rustls::ServerConfig>>, ctx: Arc<GatewayContext>) {
    let Some(config) = config else { return crate::proxy::deny::reset(stream) };
    let local = stream.local_addr().map(|a| a.ip().to_canonical());
    match tokio::time::timeout(HANDSHAKE_TIMEOUT, TlsAcceptor::from(config).accept(stream)).await {
        Ok(Ok(tls)) => {
            let identity = peer_spiffe_id(tls.get_ref().1.peer_certificates()).map(|id| id.uri());
            if plan.kind == ServerKind::TerminateTcp {
                let mut record = gateway_record(peer, &ctx, "tcp", identity);
                record.sni = tls.get_ref().1.server_name().map(str::to_string);
                tcp::route(tls, local.unwrap_or(std::net::IpAddr::from([0u16; 8])), record, &plan, &ctx).await;
            } else {
                http::serve(tls, peer, plan, ctx, identity, "https").await;
            }
        }
        failed => {
            let why = match failed {
                Ok(Err(e)) => e.to_string(),
                _ => "timed out".to_string(),
            };
            tracing::info!(%peer, error = %why, "TLS handshake refused");
            let mut record = gateway_record(peer, &ctx, "tls", None);
            record.reason = "tls-handshake-failed".into();
            ctx.inputs.log_connection(&mut record, Duration::ZERO).await;
        }
    }
}
