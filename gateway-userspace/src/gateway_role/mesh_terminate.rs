//! An ISTIO_MUTUAL server: a node's mutual TLS is terminated and its SPIFFE
//! identity recorded; inside, the workload's own TLS is routed by SNI, or its
//! HTTP by Host.

use std::{net::SocketAddr, sync::Arc, time::Duration};

use tokio::{io::AsyncReadExt, net::TcpStream};
use tokio_rustls::TlsAcceptor;

use super::{GatewayContext, gateway_record, http, passthrough, servers::PortPlan};
use crate::{
    access_log::Outcome,
    proxy::deny,
    transport::rewind::Rewind,
    sniff::{MAX_SNIFF_BYTES, SniffOutcome, Sniffed, sniff},
    tls::peer_spiffe_id,
};

const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// `config` requires a client certificate from the mesh CA.
pub async fn handle(stream: TcpStream, peer: SocketAddr, plan: Arc<PortPlan>, config: Option<Arc<rustls::ServerConfig>>, ctx: Arc<GatewayContext>) {
    let Some(config) = config else { return deny::reset(stream) };
    let accepted = tokio::time::timeout(HANDSHAKE_TIMEOUT, TlsAcceptor::from(config).accept(stream)).await;
    let mut tls = match accepted {
        Ok(Ok(tls)) => tls,
        failed => {
            let why = match failed {
                Ok(Err(e)) => e.to_string(),
                _ => "timed out".to_string(),
            };
            tracing::info!(%peer, error = %why, "mutual TLS refused");
            let mut record = gateway_record(peer, &ctx, "mtls", None);
            record.reason = "mesh-handshake-failed".into();
            ctx.inputs.log_connection(&mut record, Duration::ZERO).await;
            return;
        }
    };
    let identity = peer_spiffe_id(tls.get_ref().1.peer_certificates()).map(|id| id.uri());
    // The inside can only be read, not peeked: read until it is recognised,
    // then put those bytes back in front.
    let mut seen = Vec::new();
    let inner = loop {
        let mut chunk = [0u8; 4096];
        let read = tokio::time::timeout(ctx.inputs.settings.sniff_timeout, tls.read(&mut chunk)).await;
        match read {
            Ok(Ok(n)) if n > 0 => seen.extend_from_slice(&chunk[..n]),
            _ => break None,
        }
        match sniff(&seen) {
            SniffOutcome::Done(s) => break Some(s),
            SniffOutcome::NeedMore if seen.len() < MAX_SNIFF_BYTES => {}
            _ => break None,
        }
    };
    let client = Rewind::new(seen, tls);
    match inner {
        Some(Sniffed::Tls(hello)) => {
            let record = gateway_record(peer, &ctx, "tls", identity);
            passthrough::route(client, hello.sni, record, &plan, &ctx).await;
        }
        Some(Sniffed::Http1(_)) => http::serve(client, peer, plan, ctx, identity, "http").await,
        _ => {
            let mut record = gateway_record(peer, &ctx, "mtls", identity);
            (record.reason, record.outcome) = ("unrecognised-inner-protocol".into(), Outcome::Denied);
            deny::reset(client);
            ctx.inputs.log_connection(&mut record, Duration::ZERO).await;
        }
    }
}
