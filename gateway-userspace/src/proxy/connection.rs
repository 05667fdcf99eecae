//! One intercepted connection, from accept to its log line.

use std::{net::SocketAddr, sync::Arc, time::Instant};

use tokio::net::TcpStream;

use super::{
    addrs::{ClientAddr, OrigDstAddr, ProxyAddr, UpstreamAddr},
    listener::OutboundContext,
    relay::relay,
    upstream::connect_marked,
};
use crate::{
    access_log::{ConnectionRecord, Decision, Outcome},
    metrics::ConnectionLabels,
};

pub async fn handle(mut client: TcpStream, client_addr: ClientAddr, local: ProxyAddr, ctx: Arc<OutboundContext>) {
    let started = Instant::now();
    // The configuration this connection started with, kept to its end.
    let _config = ctx.config.current();
    let mut record = ConnectionRecord::new(client_addr);
    match original_destination(&ctx, client_addr, local, &mut record) {
        Err(reason) => {
            record.reason = reason;
            let _ = client.set_zero_linger();
        }
        Ok(orig) => {
            record.decision = Decision::Allow;
            record.reason = "passthrough";
            let upstream = UpstreamAddr(orig.0);
            match connect_marked(upstream, ctx.socket_mark, ctx.connect_timeout).await {
                Err(e) => {
                    tracing::debug!(%upstream, error = %e, "upstream connect failed");
                    record.outcome = Outcome::UpstreamUnreachable;
                    let _ = client.set_zero_linger();
                }
                Ok(mut up) => {
                    record.upstream = Some(upstream);
                    let stats = relay(&mut client, &mut up).await;
                    record.bytes_up = stats.client_to_upstream;
                    record.bytes_down = stats.upstream_to_client;
                    record.outcome = if stats.reset { Outcome::Reset } else { Outcome::Closed };
                }
            }
        }
    }
    drop(client);
    record.finish(started.elapsed());
    ctx.metrics.connections.get_or_create(&ConnectionLabels { decision: record.decision.as_str(), reason: record.reason }).inc();
    ctx.metrics.bytes_up.inc_by(record.bytes_up);
    ctx.metrics.bytes_down.inc_by(record.bytes_down);
    ctx.access_log.write(&record).await;
}

/// Looks the destination up once, at accept; everything further in uses the
/// typed result. `Err` carries the reason the connection is refused.
fn original_destination(
    ctx: &OutboundContext,
    client: ClientAddr,
    local: ProxyAddr,
    record: &mut ConnectionRecord,
) -> Result<OrigDstAddr, &'static str> {
    let found = ctx.orig_dst.lookup(client.0, local.0).map_err(|e| {
        tracing::warn!(%client, error = %e, "original destination lookup failed");
        "orig-dst-lookup-failed"
    })?;
    let found = found.ok_or("no-original-destination")?;
    record.orig_dst = Some(OrigDstAddr(found.addr));
    record.pid = Some(found.pid);
    record.cgroup_id = Some(found.cgroup_id);
    if ctx.is_proxy(found.addr) {
        return Err("proxy-loop");
    }
    Ok(OrigDstAddr(found.addr))
}

impl OutboundContext {
    fn is_proxy(&self, addr: SocketAddr) -> bool {
        self.listen_addrs.iter().any(|l| l.ip() == addr.ip() && l.port() == addr.port())
    }
}
