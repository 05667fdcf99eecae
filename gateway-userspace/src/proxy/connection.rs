//! One intercepted connection, from accept to its log line:
//! original destination → workload → first bytes → verdict → upstream.

use std::{sync::Arc, time::Instant};

use tokio::net::TcpStream;

use super::{
    OrigDstSource,
    addrs::{ClientAddr, OrigDstAddr, ProxyAddr},
    deny,
    http_egress::HttpEgress,
    listener::OutboundContext,
    peek::{Peeked, peek_first_bytes},
    relay::relay_until,
    mesh_identity::{MeshConnectError, MeshTlsError, steered_mesh_tls},
    revocation::Revoke,
    upstream::pick_percent,
};
use crate::{
    kubernetes::PodLookup,
    access_log::{ConnectionRecord, Decision, Outcome},
    policy::{ConnectionFacts, Decided, Detected, Verdict, declared_opaque, decide_and_keep},
    reload::ActiveConfig,
    sniff::{Sniffed, host_without_port},
};

pub async fn handle(
    client: TcpStream,
    client_addr: ClientAddr,
    local: ProxyAddr,
    source: OrigDstSource,
    ctx: Arc<OutboundContext>,
) {
    let started = Instant::now();
    // The configuration it is decided with; a newer one may revoke it (revocation.rs).
    let config = ctx.config.current();
    let mut record = ConnectionRecord::new(client_addr);
    match original_destination(&ctx, &client, source, local, &mut record) {
        Err(reason) => {
            record.reason = reason.into();
            deny::reset(client);
        }
        Ok(orig) => serve(client, orig, &ctx, &config, &mut record).await,
    }
    ctx.log_connection(&mut record, started.elapsed()).await;
}

async fn serve(client: TcpStream, orig: OrigDstAddr, ctx: &Arc<OutboundContext>, config: &Arc<ActiveConfig>, record: &mut ConnectionRecord) {
    let workload = match workload_of(ctx, config, record).await {
        Ok(w) => w,
        Err(reason) => {
            record.reason = reason.into();
            ctx.metrics.unknown_workload_denials.inc();
            deny::reset(client);
            return;
        }
    };
    record.workload = Some(workload.clone());
    // Declared opaque TCP: decided now, so a server that speaks first is not kept waiting.
    let peeked = if declared_opaque(&config.policy, &workload, record.src.0.ip(), orig.0, ctx.dns.as_ref()) {
        Peeked::Declared
    } else {
        peek_first_bytes(&client, ctx.sniff_timeout).await
    };
    record.detection = Some(match peeked {
        Peeked::Declared => "declared",
        Peeked::Silent | Peeked::Incomplete => "timeout",
        _ => "first-bytes",
    });
    let detected = match &peeked {
        Peeked::Gone => {
            (record.reason, record.outcome) = ("client-closed".into(), Outcome::Closed);
            return;
        }
        Peeked::Malformed(why) => {
            tracing::debug!(client = %record.src, why, "malformed first bytes");
            record.reason = "malformed-request".into();
            deny::reset(client);
            return;
        }
        Peeked::Sniffed(Sniffed::Http1(req)) => {
            record.protocol = Some("http");
            record.host = req.absolute_authority.clone().or_else(|| req.host.clone());
            return serve_http(client, orig, ctx, workload, record).await;
        }
        Peeked::Sniffed(Sniffed::Tls(hello)) => {
            record.protocol = Some("tls");
            record.sni = hello.sni.clone();
            Detected::Tls { sni: hello.sni.as_deref() }
        }
        Peeked::Sniffed(Sniffed::Http2(req)) => {
            record.protocol = Some("http2");
            record.host = req.authority.clone();
            Detected::Http { host: req.authority.as_deref().map(host_without_port) }
        }
        Peeked::Sniffed(Sniffed::Opaque) | Peeked::Silent | Peeked::Incomplete | Peeked::Declared => {
            record.protocol = Some("tcp");
            Detected::Opaque
        }
    };
    let t0 = Instant::now();
    let (verdict, decided) = {
        let facts = ConnectionFacts {
            workload: &workload,
            client: record.src.0.ip(),
            orig_dst: orig.0,
            detected,
            request: None,
            pick: pick_percent(),
        };
        decide_and_keep(&facts, &config.policy, ctx.dns.as_ref())
    };
    let kept = Kept { decided, generation: config.generation };
    ctx.metrics.decision_seconds.observe(t0.elapsed().as_secs_f64());
    match verdict {
        Verdict::Deny { reason, matched } => {
            (record.reason, record.matched) = (reason.into(), matched);
            match detected {
                Detected::Tls { .. } => deny::tls_alert(client).await,
                _ => deny::reset(client),
            }
        }
        Verdict::Allow { target, matched, reason, .. } => {
            (record.decision, record.reason, record.matched) = (Decision::Allow, reason.into(), matched);
            forward_stream(client, &target, kept, ctx, record).await;
        }
        Verdict::Steer { target, matched, reason, route } => {
            (record.decision, record.reason, record.matched) = (Decision::Steer, reason.into(), matched);
            match mesh_tls(ctx, config, &workload, &route, &target) {
                Ok(None) => forward_stream(client, &target, kept, ctx, record).await,
                Ok(Some(mesh)) => forward_mesh(client, &target, mesh, kept, ctx, record).await,
                Err(e) => {
                    tracing::warn!(error = %e, "no mesh identity for a steered connection");
                    record.outcome = Outcome::UpstreamUnreachable;
                    deny::reset(client);
                }
            }
            record.route = Some(route);
        }
    }
}

/// Who is calling. On a node agent, a pod cgroup names its pod; a pod the
/// API has not announced yet is waited for, then refused. Elsewhere (and for
/// cgroups outside the pods cgroup) a `--intercept-cgroup` WorkloadEntry, else
/// the client address.
async fn workload_of(ctx: &OutboundContext, config: &ActiveConfig, record: &ConnectionRecord) -> Result<crate::policy::WorkloadIdentity, &'static str> {
    let static_identity = || config.policy.identify(record.src.0.ip(), record.cgroup_id);
    let (Some(pods), Some(cgroup)) = (&ctx.pods, record.cgroup_id) else { return Ok(static_identity()) };
    match pods.lookup(cgroup, ctx.unknown_workload_wait).await {
        // An opted-out pod whose connect raced its exemption is still
        // decided under policy: stricter, never looser.
        PodLookup::Pod(w) | PodLookup::OptedOut(w) => Ok(w),
        PodLookup::NotAPod if config.policy.knows_cgroup(cgroup) => Ok(static_identity()),
        PodLookup::NotAPod | PodLookup::UnknownPod => Err("unknown-workload"),
    }
}

/// What a relayed stream was decided on, and under which generation.
struct Kept {
    decided: Decided,
    generation: u64,
}

impl Kept {
    /// Ends the relay once a newer configuration no longer lets the stream
    /// go to `upstream`.
    fn revoke(self, ctx: &OutboundContext, upstream: std::net::SocketAddr) -> Revoke {
        let dns = ctx.dns.clone();
        ctx.revoke_when(self.generation, move |config| self.decided.stands(&config.policy, dns.as_ref(), upstream))
    }
}

/// Carries an allowed stream (TLS, HTTP/2, opaque TCP) to its target.
async fn forward_stream(mut client: TcpStream, target: &crate::policy::Target, kept: Kept, ctx: &OutboundContext, record: &mut ConnectionRecord) {
    match ctx.dialer().connect(target).await {
        Err(e) => {
            tracing::debug!(?target, error = %e, "upstream connect failed");
            record.outcome = Outcome::UpstreamUnreachable;
            deny::reset(client);
        }
        Ok((mut up, addr)) => {
            record.upstream = Some(addr);
            let mut revoke = kept.revoke(ctx, addr.0);
            let (stats, mode) = ctx.relay.relay(&mut client, &mut up, addr.0.port(), &mut revoke).await;
            record.relay = Some(mode.name());
            record.relayed(&stats);
        }
    }
}

/// For a steered connection: the workload's mutual TLS to the gateway when
/// the route's DestinationRule says ISTIO_MUTUAL. `Err`: it says so, but no
/// identity can be presented; the connection must not go.
pub fn mesh_tls(
    ctx: &OutboundContext,
    config: &ActiveConfig,
    workload: &crate::policy::WorkloadIdentity,
    route: &crate::policy::RouteChoice,
    target: &crate::policy::Target,
) -> Result<Option<super::origination::Origination>, MeshTlsError> {
    steered_mesh_tls(ctx.mesh.as_ref(), config, workload, route, target.port())
}

/// A steered stream inside the workload's mutual TLS to the gateway.
async fn forward_mesh(
    mut client: TcpStream,
    target: &crate::policy::Target,
    (config, name): super::origination::Origination,
    kept: Kept,
    ctx: &OutboundContext,
    record: &mut ConnectionRecord,
) {
    let connected = match ctx.dialer().connect(target).await {
        Ok((tcp, addr)) => {
            record.upstream = Some(addr);
            match tokio::time::timeout(ctx.connect_timeout, crate::tls::originate(tcp, &name, config)).await {
                Ok(Ok(tls)) => Ok((tls, addr)),
                Ok(Err(e)) => Err(MeshConnectError::Handshake(e)),
                Err(_) => Err(MeshConnectError::HandshakeTimeout),
            }
        }
        Err(e) => Err(MeshConnectError::Connect(e)),
    };
    match connected {
        Ok((mut tls, addr)) => {
            let stats = relay_until(&mut client, &mut tls, &mut kept.revoke(ctx, addr.0)).await;
            record.relay = Some("copy");
            record.relayed(&stats);
        }
        Err(e) => {
            tracing::debug!(?target, error = %e, "mutual TLS to the gateway failed");
            record.outcome = Outcome::UpstreamUnreachable;
            deny::reset(client);
        }
    }
}

async fn serve_http(
    client: TcpStream,
    orig: OrigDstAddr,
    ctx: &Arc<OutboundContext>,
    workload: crate::policy::WorkloadIdentity,
    record: &mut ConnectionRecord,
) {
    let http = HttpEgress::new(ctx.clone(), workload, record.src, orig);
    let tally = http.serve(client).await;
    record.requests = Some(tally.requests);
    record.denied_requests = Some(tally.denied);
    record.upstream = tally.upstream;
    (record.bytes_up, record.bytes_down) = (tally.bytes_from_client, tally.bytes_to_client);
    record.outcome = Outcome::Closed;
    match tally.first {
        Some((decision, reason, matched, route)) => {
            (record.decision, record.reason, record.matched, record.route) = (decision, reason, matched, route)
        }
        None => record.reason = "no-request".into(),
    }
}

/// Looks the destination up once, at accept; everything further in uses the
/// typed result. `Err` carries the reason the connection is refused.
fn original_destination(
    ctx: &OutboundContext,
    stream: &TcpStream,
    source: OrigDstSource,
    local: ProxyAddr,
    record: &mut ConnectionRecord,
) -> Result<OrigDstAddr, &'static str> {
    let client = record.src;
    let addr = match source {
        OrigDstSource::Fixed(upstream) => upstream,
        OrigDstSource::Kernel => {
            let found = match &ctx.orig_dst {
                Some(lookup) => lookup.lookup(client.0, local.0).map_err(|e| {
                    tracing::warn!(%client, error = %e, "original destination lookup failed");
                    "orig-dst-lookup-failed"
                })?,
                None => None,
            };
            match found {
                Some(found) => {
                    record.pid = Some(found.pid);
                    record.cgroup_id = Some(found.cgroup_id);
                    found.addr
                }
                None if ctx.iptables_original_dst => netfilter_original_dst(stream).ok_or("no-original-destination")?,
                None => return Err("no-original-destination"),
            }
        }
    };
    record.orig_dst = Some(OrigDstAddr(addr));
    if ctx.listen_addrs.iter().any(|l| l.ip() == addr.ip() && l.port() == addr.port()) {
        return Err("proxy-loop");
    }
    Ok(OrigDstAddr(addr))
}

/// Netfilter's record of a connection an iptables `REDIRECT` sent here.
fn netfilter_original_dst(stream: &TcpStream) -> Option<std::net::SocketAddr> {
    use nix::sys::socket::{SockaddrIn, SockaddrIn6, getsockopt, sockopt};
    match stream.local_addr().ok()? {
        std::net::SocketAddr::V4(_) => {
            let raw = getsockopt(stream, sockopt::OriginalDst).ok()?;
            Some(std::net::SocketAddr::V4(SockaddrIn::from(raw).into()))
        }
        std::net::SocketAddr::V6(_) => {
            let raw = getsockopt(stream, sockopt::Ip6tOriginalDst).ok()?;
            Some(std::net::SocketAddr::V6(SockaddrIn6::from(raw).into()))
        }
    }
}
