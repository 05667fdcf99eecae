//! An HTTP server: each request's Host picks the route; the registry
//! decides; allowed requests go to the destination with their Host kept.

use std::{convert::Infallible, net::SocketAddr, sync::Arc, time::Instant};

use hyper::{Request, Response, StatusCode, body::Incoming, server::conn::http1, service::service_fn};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use super::{GatewayContext, servers::{PortPlan, http_route}};
use crate::{
    access_log::{Decision, Outcome, RequestRecord},
    policy::{HttpFacts, Verdict, decide_exit},
    proxy::{
        addrs::{ClientAddr, OrigDstAddr},
        deny::forbidden_body,
        http_pool::{Body, UpstreamPool, text},
        pick_percent,
    },
};

pub async fn handle(client: TcpStream, peer: SocketAddr, plan: Arc<PortPlan>, ctx: Arc<GatewayContext>) {
    serve(client, peer, plan, ctx, None).await;
}

/// Serves HTTP on `io` (a TCP stream, or the inside of a mutual TLS one
/// whose peer proved `identity`) until the client closes.
pub async fn serve<S>(io: S, peer: SocketAddr, plan: Arc<PortPlan>, ctx: Arc<GatewayContext>, identity: Option<String>)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let started = Instant::now();
    let pool = Arc::new(UpstreamPool::default());
    let counts = Arc::new(std::sync::Mutex::new((0u32, 0u32)));
    let svc = {
        let (plan, ctx, pool, counts, identity) = (plan.clone(), ctx.clone(), pool.clone(), counts.clone(), identity.clone());
        service_fn(move |req| {
            let (plan, ctx, pool, counts, identity) = (plan.clone(), ctx.clone(), pool.clone(), counts.clone(), identity.clone());
            async move { Ok::<_, Infallible>(request(req, peer, &plan, &ctx, &pool, &counts, identity).await) }
        })
    };
    let _ = http1::Builder::new()
        .preserve_header_case(true)
        .half_close(true)
        .timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(std::time::Duration::from_secs(30))
        .serve_connection(TokioIo::new(io), svc)
        .await;
    let (requests, denied) = *counts.lock().expect("counts lock");
    let mut record = super::gateway_record(peer, &ctx, "http", identity);
    (record.requests, record.denied_requests) = (Some(requests), Some(denied));
    (record.decision, record.reason) = if denied == 0 { (Decision::Allow, "routed") } else { (Decision::Deny, "denied-requests") };
    record.outcome = Outcome::Closed;
    record.finish(started.elapsed());
    ctx.outbound.metrics.record_connection(&record);
    ctx.outbound.access_log.write(&record).await;
}

async fn request(
    req: Request<Incoming>,
    peer: SocketAddr,
    plan: &PortPlan,
    ctx: &GatewayContext,
    pool: &UpstreamPool,
    counts: &std::sync::Mutex<(u32, u32)>,
    identity: Option<String>,
) -> Response<Body> {
    let started = Instant::now();
    let out = &ctx.outbound;
    let config = out.config.current();
    let authority = req
        .uri()
        .authority()
        .map(|a| a.as_str().to_string())
        .or_else(|| req.headers().get(hyper::header::HOST).and_then(|h| h.to_str().ok()).map(str::to_string))
        .unwrap_or_default();
    let host = crate::sniff::host_without_port(&authority).to_ascii_lowercase();
    let route = {
        let headers = req.headers();
        let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_string);
        let facts = HttpFacts { authority: &authority, path: req.uri().path(), method: req.method().as_str(), header: &header };
        http_route(&config.snapshot, plan, &facts, pick_percent())
    };
    let placeholder = OrigDstAddr(SocketAddr::from(([0, 0, 0, 0], plan.port)));
    let mut record = RequestRecord::new(ClientAddr(peer), placeholder, &ctx.workload, &req, Some(host.clone()));
    record.role = "egress-gateway";
    record.peer_identity = identity;
    let response = match route {
        None => {
            record.deny("no-route", None);
            text(StatusCode::NOT_FOUND, format!("no route to {host}\n"), Some("no-route"))
        }
        Some(route) => {
            let port = route.port.unwrap_or(plan.port);
            record.route = Some(route.clone());
            // Originated TLS goes out as TLS: the registry checks it as such.
            let tls = out.originations.for_destination(&config, &ctx.workload.namespace, &route.destination, port);
            let originates = matches!(tls, Ok(Some(_)));
            match decide_exit(&config.policy, &ctx.workload, &route.destination, port, originates) {
                Verdict::Deny { reason, matched } => {
                    record.deny(reason.as_str(), matched);
                    text(StatusCode::FORBIDDEN, forbidden_body(reason.as_str(), &route.destination), Some(reason.as_str()))
                }
                Verdict::Allow { target, matched, reason } | Verdict::Steer { target, matched, reason, .. } => {
                    record.allow(reason.as_str(), matched);
                    let forwarded = match tls {
                        Ok(tls) => pool.send(out.dialer(), &target, tls, req).await,
                        Err(e) => {
                            tracing::warn!(error = %e, "TLS origination settings do not load");
                            Err(StatusCode::SERVICE_UNAVAILABLE)
                        }
                    };
                    match forwarded {
                        Ok((resp, addr)) => {
                            record.upstream = Some(addr);
                            resp
                        }
                        Err(status) => text(status, format!("upstream {}\n", status.canonical_reason().unwrap_or("error")), None),
                    }
                }
            }
        }
    };
    record.status = response.status().as_u16();
    record.finish(started.elapsed());
    {
        let mut c = counts.lock().expect("counts lock");
        c.0 += 1;
        if record.decision == Decision::Deny {
            c.1 += 1;
        }
    }
    out.metrics.record_request(&record);
    out.access_log.write_request(&record).await;
    response
}
