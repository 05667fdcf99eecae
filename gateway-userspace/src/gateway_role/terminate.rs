//! An HTTPS server terminated here: SIMPLE, MUTUAL (client certificate
//! required) or OPTIONAL_MUTUAL, then HTTP routed by Host.

use std::{net::SocketAddr, sync::Arc, time::Duration};

use tokio::net::TcpStream;
use tokio_rustls::TlsAcceptor;

use super::{GatewayContext, gateway_record, http, servers::{PortPlan, TerminateTls}};
use crate::{
    config::{ServerTlsMode, resources::gateway::TlsVersion as IstioVersion},
    tls::{ClientAuth, ServerSettings, TlsVersion, peer_spiffe_id},
};

const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

pub fn server_config(t: &TerminateTls) -> anyhow::Result<Arc<rustls::ServerConfig>> {
    let version = |v: Option<IstioVersion>| match v {
        Some(IstioVersion::V1_3) => Some(TlsVersion::Tls13),
        Some(IstioVersion::V1_2) => Some(TlsVersion::Tls12),
        _ => None,
    };
    let settings = ServerSettings {
        cert: t.cert.clone(),
        key: t.key.clone(),
        client_ca: t.client_ca.clone(),
        client_auth: match t.mode {
            ServerTlsMode::Mutual => ClientAuth::Required,
            ServerTlsMode::OptionalMutual => ClientAuth::Optional,
            _ => ClientAuth::None,
        },
        alpn: vec![b"h2".to_vec(), b"http/1.1".to_vec()],
        min_version: version(t.min),
        max_version: version(t.max),
        by_sni: t.by_sni.clone(),
    };
    Ok(crate::tls::server_config(&settings)?)
}

pub async fn handle(stream: TcpStream, peer: SocketAddr, plan: Arc<PortPlan>, config: Option<Arc<rustls::ServerConfig>>, ctx: Arc<GatewayContext>) {
    let Some(config) = config else { return crate::proxy::deny::reset(stream) };
    match tokio::time::timeout(HANDSHAKE_TIMEOUT, TlsAcceptor::from(config).accept(stream)).await {
        Ok(Ok(tls)) => {
            let identity = peer_spiffe_id(tls.get_ref().1.peer_certificates()).map(|id| id.uri());
            http::serve(tls, peer, plan, ctx, identity, "https").await;
        }
        failed => {
            let why = match failed {
                Ok(Err(e)) => e.to_string(),
                _ => "timed out".to_string(),
            };
            tracing::info!(%peer, error = %why, "TLS handshake refused");
            let mut record = gateway_record(peer, &ctx, "tls", None);
            record.reason = "tls-handshake-failed";
            ctx.outbound.log_connection(&mut record, Duration::ZERO).await;
        }
    }
}
