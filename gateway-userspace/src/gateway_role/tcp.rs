//! A TCP server (or the inside of a `TLS` one terminated here): the port
//! and the listener's address pick a `tcp` route; the registry decides;
//! bytes are relayed as they come, nothing is read first, so
//! server-speaks-first protocols work.

use std::{
    net::{IpAddr, SocketAddr},
    sync::Arc,
    time::Instant,
};

use tokio::net::TcpStream;

use super::{
    GatewayContext, authorize::GatewayAuthz, gateway_record,
    servers::{PortPlan, TcpFacts, tcp_route},
};
use crate::{
    access_log::{ConnectionRecord, Decision, Outcome},
    policy::{Exit, ExitDecided, RouteChoice, Verdict, decide_route_exit},
    proxy::deny,
    reload::ActiveConfig,
    transport::{addrs::OrigDstAddr, pick_percent, relay::Resettable},
};

pub async fn handle(client: TcpStream, peer: SocketAddr, plan: Arc<PortPlan>, ctx: Arc<GatewayContext>) {
    let local = client.local_addr().map_or(IpAddr::from([0u16; 8]), |a| a.ip().to_canonical());
    let record = gateway_record(peer, &ctx, "tcp", None);
    route(client, local, record, &plan, &ctx).await;
}

/// Routes a stream that arrived on `local` by the `tcp` routes and relays
/// it, or resets it; logs it when it ends.
pub(super) async fn route<S: Resettable>(client: S, local: IpAddr, mut record: ConnectionRecord, plan: &PortPlan, ctx: &GatewayContext) {
    let started = Instant::now();
    let config = ctx.inputs.config.current();
    let facts = TcpFacts { local, gateway: &ctx.workload };
    match tcp_route(&config.snapshot, plan, &facts, pick_percent()) {
        Some(route) => {
            if let Err(client) = connect_and_relay(client, route, false, &mut record, plan, ctx, &config).await {
                deny::reset(client);
            }
        }
        None => {
            record.reason = "no-route".into();
            deny::reset(client);
        }
    }
    ctx.inputs.log_connection(&mut record, started.elapsed()).await;
}

/// The registry check on the route's destination (`tls`: checked as TLS),
/// the upstream connection and the relay, ended by the idle timeout if
/// neither side speaks, or after a reload that no longer lets the
/// destination out (`proxy/revocation.rs`). A refused client is handed
/// back, for the caller to answer in its protocol; one whose destination is
/// unreachable is reset.
pub(super) async fn connect_and_relay<S: Resettable>(
    client: S,
    route: RouteChoice,
    tls: bool,
    record: &mut ConnectionRecord,
    plan: &PortPlan,
    ctx: &GatewayContext,
    config: &ActiveConfig,
) -> Result<(), S> {
    let out = &ctx.inputs;
    let port = route.port.unwrap_or(plan.port);
    record.route = Some(route.clone());
    // An opaque stream fits a port of any protocol; a TLS one a TLS port.
    let exit = if tls { Exit::Tls } else { Exit::Any };
    // A subset narrows the entry's endpoints by its DestinationRule labels.
    let target = match decide_route_exit(&config.policy, &ctx.workload, &route, port, exit) {
        Verdict::Allow { target, matched, reason, .. } | Verdict::Steer { target, matched, reason, .. } => {
            (record.decision, record.reason, record.matched) = (Decision::Allow, reason.into(), matched);
            target
        }
        Verdict::Deny { reason, matched } => {
            (record.reason, record.matched) = (reason.into(), matched);
            return Err(client);
        }
    };
    // The destination's name: the SNI passed through, else the route's host.
    let host = record.sni.clone().unwrap_or_else(|| route.destination.to_string());
    let authz = GatewayAuthz::new(ctx, &plan.gateways, plan.port, record.peer_identity.as_deref(), record.src.0.ip())
        .to(Some(&host), record.sni.as_deref(), record.matched.as_ref());
    if let Some(authorized) = authz.ask(&config.policy, None)
        && record.authorized(&authorized, true)
    {
        return Err(client);
    }
    match out.dialer().connect(&target).await {
        Ok((mut up, addr)) => {
            record.upstream = Some(addr);
            record.orig_dst = Some(OrigDstAddr(addr.0));
            let kept = ExitDecided { workload: ctx.workload.clone(), route, port, exit, target };
            let mut revoke = out.revoke_when(config.generation, move |c| {
                kept.stands(&c.policy, addr.0) && authz.ask(&c.policy, None).is_none_or(|a| a.allowed())
            });
            // The idle timeout watches the bytes, so it needs them copied;
            // without one, the configured relay carries the stream.
            let (stats, idled) = if ctx.limits.idle_timeout.is_zero() {
                let mut client = client;
                let (stats, mode) = out.settings.relay.relay(&mut client, &mut up, addr.0.port(), &mut revoke).await;
                record.relay = Some(mode.name());
                (stats, false)
            } else {
                record.relay = Some("copy");
                crate::transport::idle::relay_until_idle(client, &mut up, ctx.limits.idle_timeout, &mut revoke).await
            };
            record.relayed(&stats);
            if idled {
                record.outcome = Outcome::IdleTimeout;
            }
        }
        Err(e) => {
            tracing::debug!(?target, error = %e, "gateway upstream connect failed");
            record.outcome = Outcome::UpstreamUnreachable;
            deny::reset(client);
        }
    }
    Ok(())
}
