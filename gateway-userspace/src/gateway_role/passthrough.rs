//! A PASSTHROUGH server: the SNI picks the route; the registry decides; the
//! ClientHello goes on to the destination untouched (see `tcp.rs` for the
//! relay).

use std::{net::SocketAddr, sync::Arc, time::Instant};

use tokio::net::TcpStream;

use super::{GatewayContext, servers::{PortPlan, tls_route}};
use crate::{
    access_log::ConnectionRecord,
    proxy::{
        deny,
        peek::{Peeked, peek_first_bytes},
    },
    sniff::Sniffed,
    transport::relay::Resettable,
};

pub async fn handle(client: TcpStream, peer: SocketAddr, plan: Arc<PortPlan>, ctx: Arc<GatewayContext>) {
    let record = super::gateway_record(peer, &ctx, "tls", None);
    let sni = match peek_first_bytes(&client, ctx.inputs.settings.sniff_timeout).await {
        Peeked::Sniffed(Sniffed::Tls(hello)) => hello.sni,
        _ => None,
    };
    route(client, sni, record, &plan, &ctx).await;
}

/// Routes a TLS stream by its SNI and relays it to the destination, or
/// refuses it with an alert; logs it when it ends.
pub async fn route<S: Resettable>(client: S, sni: Option<String>, mut record: ConnectionRecord, plan: &PortPlan, ctx: &GatewayContext) {
    let started = Instant::now();
    let out = &ctx.inputs;
    let config = out.config.current();
    record.sni = sni.clone();
    let route = sni.as_deref().and_then(|sni| tls_route(&config.snapshot, plan, sni, &ctx.workload, crate::transport::pick_percent()));
    let refused = match route {
        Some(route) => super::tcp::connect_and_relay(client, route, true, &mut record, plan, ctx, &config).await.err(),
        None => {
            record.reason = "no-route".into();
            Some(client)
        }
    };
    if let Some(client) = refused {
        deny::tls_alert(client).await;
    }
    out.log_connection(&mut record, started.elapsed()).await;
}
