//! An HTTP server: each request's Host picks the route; the registry
//! decides; allowed requests go to the destination with their Host kept.

use std::{convert::Infallible, net::SocketAddr, sync::Arc, time::Instant};

use hyper::{Request, Response, StatusCode, body::Incoming, service::service_fn};
use hyper_util::{
    rt::{TokioExecutor, TokioIo, TokioTimer},
    server::conn::auto,
};
use tokio::net::TcpStream;

use http_body_util::BodyExt;

use super::{
    GatewayContext, route_policy,
    servers::{HttpAction, PortPlan, http_route},
};
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
    serve(client, peer, plan, ctx, None, "http").await;
}

/// Serves HTTP on `io` (a TCP stream, or the inside of a mutual TLS one
/// whose peer proved `identity`) until the client closes.
pub async fn serve<S>(io: S, peer: SocketAddr, plan: Arc<PortPlan>, ctx: Arc<GatewayContext>, identity: Option<String>, scheme: &'static str)
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
            async move { Ok::<_, Infallible>(request(req, peer, &plan, &ctx, &pool, &counts, identity, scheme).await) }
        })
    };
    // HTTP/1.1, or HTTP/2 (prior knowledge, or ALPN after TLS termination).
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .preserve_header_case(true)
        .half_close(true)
        .timer(TokioTimer::new())
        .header_read_timeout(ctx.limits.header_read_timeout)
        .max_buf_size(ctx.limits.max_header_bytes.max(8192))
        .max_headers(100);
    builder.http2().timer(TokioTimer::new()).max_concurrent_streams(100).max_header_list_size(ctx.limits.max_header_bytes as u32);
    let _ = builder.serve_connection_with_upgrades(TokioIo::new(io), svc).await;
    let (requests, denied) = *counts.lock().expect("counts lock");
    let mut record = super::gateway_record(peer, &ctx, "http", identity);
    (record.requests, record.denied_requests) = (Some(requests), Some(denied));
    (record.decision, record.reason) = if denied == 0 { (Decision::Allow, "routed") } else { (Decision::Deny, "denied-requests") };
    record.outcome = Outcome::Closed;
    ctx.outbound.log_connection(&mut record, started.elapsed()).await;
}

/// The largest request body kept for retries; a larger one is sent once.
const RETRY_BUFFER: usize = 1 << 20;

/// The route's `timeout` (504 when it runs out) around its `retries`.
#[allow(clippy::too_many_arguments)]
async fn with_timeouts(
    req: Request<Incoming>,
    choice: crate::policy::RouteChoice,
    route: &crate::config::resources::http_route::HttpRoute,
    plan: &PortPlan,
    ctx: &GatewayContext,
    pool: &UpstreamPool,
    config: &crate::reload::ActiveConfig,
    record: &mut RequestRecord,
) -> Response<Body> {
    let attempts = async {
        let retries = route.retries.as_ref().filter(|r| r.attempts > 0);
        let Some(retries) = retries else {
            return forward(req.map(|b| b.boxed()), choice, plan, ctx, pool, config, record).await;
        };
        let (parts, body) = req.into_parts();
        let body = match http_body_util::Limited::new(body, RETRY_BUFFER).collect().await {
            Ok(b) => b.to_bytes(),
            Err(_) => return text(StatusCode::PAYLOAD_TOO_LARGE, "request body too large to retry\n".into(), None),
        };
        let on = route_policy::RetryOn::parse(retries.retry_on.as_deref().unwrap_or("5xx,connect-failure,reset"));
        let mut last = None;
        for attempt in 0..=retries.attempts {
            let mut again = Request::builder().method(parts.method.clone()).uri(parts.uri.clone()).version(parts.version);
            *again.headers_mut().expect("a fresh builder") = parts.headers.clone();
            let again = again.body(http_body_util::Full::new(body.clone()).map_err(|never| match never {}).boxed()).expect("parts from a valid request");
            let exchange = forward(again, choice.clone(), plan, ctx, pool, config, record);
            let resp = match retries.per_try_timeout {
                Some(t) => match tokio::time::timeout(t, exchange).await {
                    Ok(resp) => resp,
                    Err(_) => {
                        record.flag("UT");
                        text(StatusCode::GATEWAY_TIMEOUT, "upstream request timeout\n".into(), None)
                    }
                },
                None => exchange.await,
            };
            let failed = record.upstream.is_none() || resp.status().is_server_error() || resp.status() == StatusCode::CONFLICT;
            if !(failed && on.retries(Some(resp.status()))) || attempt == retries.attempts {
                return resp;
            }
            tracing::debug!(attempt, status = %resp.status(), "retrying");
            last = Some(resp);
        }
        last.expect("at least one attempt")
    };
    let timed_out;
    let resp = match route.timeout.filter(|t| !t.is_zero()) {
        Some(t) => match tokio::time::timeout(t, attempts).await {
            Ok(resp) => {
                timed_out = false;
                resp
            }
            Err(_) => {
                timed_out = true;
                text(StatusCode::GATEWAY_TIMEOUT, "upstream request timeout\n".into(), None)
            }
        },
        None => {
            let r = attempts.await;
            timed_out = false;
            r
        }
    };
    if timed_out {
        record.flag("UT");
    }
    resp
}

/// The destination's registry check, origination, and the exchange.
async fn forward(
    req: Request<Body>,
    route: crate::policy::RouteChoice,
    plan: &PortPlan,
    ctx: &GatewayContext,
    pool: &UpstreamPool,
    config: &crate::reload::ActiveConfig,
    record: &mut RequestRecord,
) -> Response<Body> {
    let out = &ctx.outbound;
    let port = route.port.unwrap_or(plan.port);
    record.route = Some(route.clone());
    let (pool_settings, outlier) = destination_policy(&config.snapshot, &ctx.workload.namespace, &route.destination, port);
    let cluster = ctx.clusters.get(&route.destination, port);
    let Some(_slot) = cluster.admit(super::clusters::limit(pool_settings.as_ref())) else {
        record.allow("overflow", None);
        record.flag("UO");
        return text(StatusCode::SERVICE_UNAVAILABLE, "upstream connect error or disconnect/reset before headers. reset reason: overflow\n".into(), None);
    };
    // Originated TLS goes out as TLS: the registry checks it as such.
    let tls = out.originations.for_destination(config, &ctx.workload.namespace, &route.destination, port);
    let originates = matches!(tls, Ok(Some(_)));
    match decide_exit(&config.policy, &ctx.workload, &route.destination, port, originates) {
        Verdict::Deny { reason, matched } => {
            record.deny(reason.as_str(), matched);
            text(StatusCode::FORBIDDEN, forbidden_body(reason.as_str(), &route.destination), Some(reason.as_str()))
        }
        Verdict::Allow { target, matched, reason } | Verdict::Steer { target, matched, reason, .. } => {
            record.allow(reason.as_str(), matched);
            // A subset narrows the entry's endpoints by its DestinationRule labels.
            let target = if route.subset.is_some() { config.policy.route_target(&ctx.workload, &route, port) } else { target };
            let now = std::time::Instant::now();
            let (target, total) = match (target, &outlier) {
                (crate::policy::Target::Endpoints(list), Some(_)) => (crate::policy::Target::Endpoints(cluster.healthy(&list, now)), list.len()),
                (t, _) => (t, 1),
            };
            let forwarded = match tls {
                Ok(None) if is_upgrade(&req) => upgrade(out.dialer(), &target, req).await,
                Ok(tls) => pool.send(out.dialer(), &target, tls, req).await,
                Err(e) => {
                    tracing::warn!(error = %e, "TLS origination settings do not load");
                    Err(StatusCode::SERVICE_UNAVAILABLE)
                }
            };
            match forwarded {
                Ok((resp, addr)) => {
                    record.upstream = Some(addr);
                    if let Some(od) = &outlier {
                        cluster.report(addr.0, Some(resp.status().as_u16()), od, total, now);
                    }
                    resp
                }
                Err(status) => {
                    record.flag("UF");
                    text(status, format!("upstream {}\n", status.canonical_reason().unwrap_or("error")), None)
                }
            }
        }
    }
}

/// Upstreams are spoken to in HTTP/1.1: an HTTP/2 request gets origin-form
/// and a Host from its `:authority`.
fn as_http11<B>(req: &mut Request<B>) {
    if req.version() != hyper::Version::HTTP_2 {
        return;
    }
    *req.version_mut() = hyper::Version::HTTP_11;
    if let Some(authority) = req.uri().authority().map(|a| a.as_str().to_string())
        && !req.headers().contains_key(hyper::header::HOST)
            && let Ok(v) = hyper::header::HeaderValue::from_str(&authority) {
                req.headers_mut().insert(hyper::header::HOST, v);
            }
    if let Ok(origin) = path_and_query(req).parse() {
        *req.uri_mut() = origin;
    }
}

/// HTTP/2 forbids connection-specific headers an HTTP/1.1 upstream may send.
fn strip_connection_headers(headers: &mut hyper::HeaderMap) {
    for name in ["connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade"] {
        headers.remove(name);
    }
}

/// `Connection: upgrade` with an `Upgrade` protocol (WebSocket).
fn is_upgrade<B>(req: &Request<B>) -> bool {
    let connection = req.headers().get(hyper::header::CONNECTION).and_then(|v| v.to_str().ok()).unwrap_or("");
    req.headers().contains_key(hyper::header::UPGRADE) && connection.split(',').any(|t| t.trim().eq_ignore_ascii_case("upgrade"))
}

/// An upgrade request goes over a connection of its own; once the upstream
/// answers 101, both upgraded streams are joined byte for byte.
async fn upgrade(
    dialer: crate::proxy::Dialer<'_>,
    target: &crate::policy::Target,
    mut req: Request<Body>,
) -> Result<(Response<Body>, crate::proxy::addrs::UpstreamAddr), StatusCode> {
    let downstream = hyper::upgrade::on(&mut req);
    let (stream, addr) = dialer.connect(target).await.map_err(|_| StatusCode::SERVICE_UNAVAILABLE)?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await.map_err(|_| StatusCode::BAD_GATEWAY)?;
    tokio::spawn(async move {
        let _ = conn.with_upgrades().await;
    });
    let mut resp = sender.send_request(req).await.map_err(|_| StatusCode::BAD_GATEWAY)?;
    if resp.status() == StatusCode::SWITCHING_PROTOCOLS {
        let upstream = hyper::upgrade::on(&mut resp);
        tokio::spawn(async move {
            if let (Ok(d), Ok(u)) = tokio::join!(downstream, upstream) {
                let _ = tokio::io::copy_bidirectional(&mut TokioIo::new(d), &mut TokioIo::new(u)).await;
            }
        });
    }
    Ok((resp.map(|b| b.boxed()), addr))
}

/// A DestinationRule's connection pool and outlier detection for a
/// destination port (the port's settings over the rule's).
fn destination_policy(
    snapshot: &crate::config::Snapshot,
    namespace: &str,
    host: &str,
    port: u16,
) -> (
    Option<crate::config::resources::destination_rule::ConnectionPool>,
    Option<crate::config::resources::destination_rule::OutlierDetection>,
) {
    let Some(policy) = snapshot.destination_rule_for(host, namespace).and_then(|dr| dr.traffic_policy.as_ref()) else {
        return (None, None);
    };
    let port_level = policy.port_level_settings.iter().find(|p| p.port == Some(port));
    (
        port_level.and_then(|p| p.connection_pool.clone()).or_else(|| policy.connection_pool.clone()),
        port_level.and_then(|p| p.outlier_detection.clone()).or_else(|| policy.outlier_detection.clone()),
    )
}

fn path_and_query<B>(req: &Request<B>) -> String {
    req.uri().path_and_query().map_or_else(|| "/".to_string(), |p| p.as_str().to_string())
}

fn redirect_to(location: &str, code: u16) -> Response<Body> {
    let mut resp = text(StatusCode::from_u16(code).unwrap_or(StatusCode::MOVED_PERMANENTLY), String::new(), None);
    if let Ok(v) = hyper::header::HeaderValue::from_str(location) {
        resp.headers_mut().insert(hyper::header::LOCATION, v);
    }
    resp
}

/// Envoy's redirect: each part replaced when given, kept otherwise.
fn redirect_location<B>(r: &crate::config::resources::http_route::Redirect, scheme: &str, host: &str, port: u16, req: &Request<B>) -> String {
    let scheme = r.scheme.as_deref().unwrap_or(scheme);
    let authority = r.authority.clone().unwrap_or_else(|| host.to_string());
    let default_port = if scheme == "https" { 443 } else { 80 };
    let port = r.port.or((port != default_port && r.scheme.is_none()).then_some(port));
    let port = port.filter(|p| *p != default_port).map(|p| format!(":{p}")).unwrap_or_default();
    let path = r.uri.clone().unwrap_or_else(|| path_and_query(req));
    format!("{scheme}://{authority}{port}{path}")
}

/// `x-forwarded-for` (appended), `x-forwarded-proto` and `x-request-id`, as
/// Envoy sets them at the edge.
fn forwarding_headers<B>(req: &mut Request<B>, peer: SocketAddr, scheme: &str) {
    use hyper::header::HeaderValue;
    let headers = req.headers_mut();
    let xff = match headers.get("x-forwarded-for").and_then(|v| v.to_str().ok()) {
        Some(prior) => format!("{prior}, {}", peer.ip()),
        None => peer.ip().to_string(),
    };
    if let Ok(v) = HeaderValue::from_str(&xff) {
        headers.insert("x-forwarded-for", v);
    }
    headers.insert("x-forwarded-proto", HeaderValue::from_static(if scheme == "https" { "https" } else { "http" }));
    if !headers.contains_key("x-request-id")
        && let Ok(v) = HeaderValue::from_str(&request_id()) {
            headers.insert("x-request-id", v);
        }
}

/// A random UUID (version 4) in text form.
fn request_id() -> String {
    use std::hash::{BuildHasher, Hasher};
    let state = std::collections::hash_map::RandomState::new();
    let mut words = [0u64; 2];
    for (i, w) in words.iter_mut().enumerate() {
        let mut h = state.build_hasher();
        h.write_usize(i);
        h.write_u128(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos()));
        *w = h.finish();
    }
    let (a, b) = (words[0], words[1]);
    format!(
        "{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}",
        a >> 32,
        (a >> 16) & 0xffff,
        a & 0x0fff,
        0x8000 | (b >> 48) & 0x3fff,
        b & 0xffff_ffff_ffff
    )
}

async fn request(
    req: Request<Incoming>,
    peer: SocketAddr,
    plan: &PortPlan,
    ctx: &GatewayContext,
    pool: &UpstreamPool,
    counts: &std::sync::Mutex<(u32, u32)>,
    identity: Option<String>,
    scheme: &'static str,
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
    let head_bytes: usize = req.uri().to_string().len() + req.headers().iter().map(|(k, v)| k.as_str().len() + v.len() + 4).sum::<usize>();
    let response = if head_bytes > ctx.limits.max_header_bytes {
        record.deny("headers-too-large", None);
        text(StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE, "request headers too large\n".into(), None)
    } else if plan.https_redirect {
        record.allow("https-redirect", None);
        redirect_to(&format!("https://{authority}{}", path_and_query(&req)), 301)
    } else {
        match route {
            None => {
                record.deny("no-route", None);
                record.flag("NR");
                text(StatusCode::NOT_FOUND, format!("no route to {host}\n"), Some("no-route"))
            }
            Some(HttpAction::Respond { route, status, body }) => {
                record.allow("direct-response", None);
                record.route = Some(route);
                let status = StatusCode::from_u16(status).unwrap_or(StatusCode::OK);
                text(status, body, None)
            }
            Some(HttpAction::Redirect { route, redirect }) => {
                record.allow("redirect", None);
                record.route = Some(route);
                let location = redirect_location(&redirect, scheme, &host, plan.port, &req);
                redirect_to(&location, redirect.redirect_code)
            }
            Some(HttpAction::Forward { choice, route, matched_uri }) => {
                let mut req = req;
                let downstream_h2 = req.version() == hyper::Version::HTTP_2;
                // gRPC needs HTTP/2 end to end (streams, trailers); the rest goes out in HTTP/1.1.
                let grpc = downstream_h2
                    && req.headers().get(hyper::header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).is_some_and(|c| c.starts_with("application/grpc"));
                if !grpc {
                    as_http11(&mut req);
                }
                forwarding_headers(&mut req, peer, scheme);
                let pick = f64::from(pick_percent());
                if let Some(status) = route_policy::abort(&route, pick) {
                    record.allow("fault-abort", None);
                    record.flag("FI");
                    record.route = Some(choice);
                    text(status, "fault filter abort\n".into(), None)
                } else {
                    if let Some(d) = route_policy::delay(&route, f64::from(pick_percent())) {
                        record.flag("DI");
                        tokio::time::sleep(d).await;
                    }
                    route_policy::rewrite(&mut req, &route, matched_uri.as_ref());
                    if let Some(h) = &route.headers {
                        route_policy::edit_headers(req.headers_mut(), &h.request);
                    }
                    let mut resp = with_timeouts(req, choice, &route, plan, ctx, pool, &config, &mut record).await;
                    if let Some(h) = &route.headers {
                        route_policy::edit_headers(resp.headers_mut(), &h.response);
                    }
                    if downstream_h2 && !grpc {
                        strip_connection_headers(resp.headers_mut());
                    }
                    resp
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
