//! A PASSTHROUGH server: the SNI picks the route; the registry decides; the
//! ClientHello goes on to the destination untouched.

use std::{net::SocketAddr, sync::Arc, time::Instant};

use tokio::net::TcpStream;

use super::{GatewayContext, servers::{PortPlan, tls_route}};
use crate::{
    access_log::{ConnectionRecord, Decision, Outcome},
    policy::{Verdict, decide_exit},
    proxy::{
        addrs::OrigDstAddr,
        deny,
        peek::{Peeked, peek_first_bytes},
        relay::Resettable,
    },
    sniff::Sniffed,
};

pub async fn handle(client: TcpStream, peer: SocketAddr, plan: Arc<PortPlan>, ctx: Arc<GatewayContext>) {
    let record = super::gateway_record(peer, &ctx, "tls", None);
    let sni = match peek_first_bytes(&client, ctx.outbound.sniff_timeout).await {
        Peeked::Sniffed(Sniffed::Tls(hello)) => hello.sni,
        _ => None,
    };
    route(client, sni, record, &plan, &ctx).await;
}

/// Routes a TLS stream by its SNI and relays it to the destination, or
/// refuses it with an alert; logs it when it ends.
pub async fn route<S: Resettable>(mut client: S, sni: Option<String>, mut record: ConnectionRecord, plan: &PortPlan, ctx: &GatewayContext) {
    let started = Instant::now();
    let out = &ctx.outbound;
    let config = out.config.current();
    record.sni = sni.clone();
    let route = sni.as_deref().and_then(|sni| tls_route(&config.snapshot, plan, sni));
    match (&sni, route) {
        (Some(_), Some(route)) => {
            let route: crate::policy::RouteChoice = route;
            let port = route.port.unwrap_or(plan.port);
            let verdict = decide_exit(&config.policy, &ctx.workload, &route.destination, port, true);
            record.route = Some(route.clone());
            match verdict {
                Verdict::Allow { target, matched, reason } | Verdict::Steer { target, matched, reason, .. } => {
                    (record.decision, record.reason, record.matched) = (Decision::Allow, reason.as_str(), matched);
                    record.orig_dst = None;
                    match out.dialer().connect(&target).await {
                        Ok((mut up, addr)) => {
                            record.upstream = Some(addr);
                            record.orig_dst = Some(OrigDstAddr(addr.0));
                            let (stats, mode) = out.relay.relay(&mut client, &mut up, addr.0.port()).await;
                            record.relay = Some(mode.name());
                            (record.bytes_up, record.bytes_down) = (stats.client_to_upstream, stats.upstream_to_client);
                            record.outcome = if stats.reset { Outcome::Reset } else { Outcome::Closed };
                        }
                        Err(e) => {
                            tracing::debug!(?target, error = %e, "gateway upstream connect failed");
                            record.outcome = Outcome::UpstreamUnreachable;
                            deny::reset(client);
                        }
                    }
                }
                Verdict::Deny { reason, matched } => {
                    (record.reason, record.matched) = (reason.as_str(), matched);
                    deny::tls_alert(client).await;
                }
            }
        }
        _ => {
            record.reason = "no-route";
            deny::tls_alert(client).await;
        }
    }
    out.log_connection(&mut record, started.elapsed()).await;
}
