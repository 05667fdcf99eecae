//! The gateway role's upstream phase of the HTTP pipeline: the route's
//! timeout around its retries, and each attempt in three steps: admit
//! (in-flight limit, the registry check of the destination, the TLS its
//! DestinationRule asks for), pick endpoints (health, load balancing), and
//! the exchange over a pooled connection.

use std::{net::SocketAddr, sync::Arc, time::Instant};

use http_body_util::BodyExt;
use hyper::{Request, Response, StatusCode, body::Incoming};
use hyper_util::rt::TokioIo;

use super::{
    GatewayContext, balance,
    clusters::{Cluster, Slot},
    route_policy,
    servers::PortPlan,
};
use crate::{
    access_log::{RequestRecord, ResponseFlag},
    config::resources::http_route::HttpRoute,
    policy::{DenyReason, Exit, ExitDecided, ResolvedTrafficPolicy, RouteChoice, Target, Verdict, decide_route_exit, resolve_traffic_policy},
    proxy::{ProxyInputs, deny::forbidden_body},
    reload::ActiveConfig,
    transport::{
        Dialer,
        addrs::UpstreamAddr,
        http_pool::{Body, Grant, incoming, Origination, Reuse, Upstream, text},
    },
};

/// The largest request body kept for retries or a mirror; a larger one is
/// sent once.
pub const REPLAY_BUFFER: usize = 1 << 20;

/// What one request carries to the upstream side.
#[derive(Clone)]
pub struct Exchange {
    pub plan: Arc<PortPlan>,
    pub ctx: Arc<GatewayContext>,
    pub config: Arc<ActiveConfig>,
    pub peer: SocketAddr,
}

/// The route's `timeout` (504 when it runs out) around its `retries`.
///
/// Each future is built where it is awaited (not bound first and then
/// wrapped in a timeout): a future bound to a name keeps its own room in
/// the caller's state beside the wrapper's, and each level would double
/// the size of the request's future.
pub async fn with_timeouts(x: &Exchange, req: Request<Body>, choice: RouteChoice, route: &HttpRoute, record: &mut RequestRecord) -> Response<Body> {
    match route.timeout.filter(|t| !t.is_zero()) {
        Some(t) => match tokio::time::timeout(t, attempts(x, req, choice, route, record)).await {
            Ok(resp) => resp,
            Err(_) => timed_out(record),
        },
        None => attempts(x, req, choice, route, record).await,
    }
}

/// The request, and its `retries` when the route has them.
async fn attempts(x: &Exchange, req: Request<Body>, choice: RouteChoice, route: &HttpRoute, record: &mut RequestRecord) -> Response<Body> {
    let Some(retries) = route.retries.as_ref().filter(|r| r.attempts > 0) else {
        return forward(x, req, choice, record).await;
    };
    let (parts, body) = req.into_parts();
    let body = match http_body_util::Limited::new(body, REPLAY_BUFFER).collect().await {
        Ok(b) => b.to_bytes(),
        Err(_) => return text(StatusCode::PAYLOAD_TOO_LARGE, "request body too large to retry\n".into(), None),
    };
    let on = route_policy::RetryOn::parse(retries.retry_on.as_deref().unwrap_or("5xx,connect-failure,reset"));
    let mut attempt = 0;
    loop {
        let again = replay(&parts, body.clone());
        let resp = match retries.per_try_timeout {
            Some(t) => match tokio::time::timeout(t, forward(x, again, choice.clone(), record)).await {
                Ok(resp) => resp,
                Err(_) => timed_out(record),
            },
            None => forward(x, again, choice.clone(), record).await,
        };
        let failed = record.upstream.is_none() || resp.status().is_server_error() || resp.status() == StatusCode::CONFLICT;
        if !(failed && on.retries(Some(resp.status()))) || attempt == retries.attempts {
            return resp;
        }
        tracing::debug!(attempt, status = %resp.status(), "retrying");
        attempt += 1;
    }
}

/// Envoy's answer when the route's or a try's timeout runs out.
fn timed_out(record: &mut RequestRecord) -> Response<Body> {
    record.flag(ResponseFlag::UpstreamRequestTimeout);
    text(StatusCode::GATEWAY_TIMEOUT, "upstream request timeout\n".into(), None)
}

/// A copy of a request whose body was read into memory.
pub fn replay(parts: &hyper::http::request::Parts, body: hyper::body::Bytes) -> Request<Body> {
    let mut again = Request::builder().method(parts.method.clone()).uri(parts.uri.clone()).version(parts.version);
    *again.headers_mut().expect("a fresh builder") = parts.headers.clone();
    again.body(http_body_util::Full::new(body).map_err(|never| match never {}).boxed()).expect("parts from a valid request")
}

/// A route's destination, in three steps: admitted (its limits, the
/// registry, its TLS), its endpoints picked (health, load balancer), and
/// the exchange with the first that takes a connection.
pub async fn forward(x: &Exchange, req: Request<Body>, route: RouteChoice, record: &mut RequestRecord) -> Response<Body> {
    record.route = Some(route.clone());
    let admitted = match admit(x, route, record) {
        Ok(a) => a,
        Err(refused) => return refused.answer(),
    };
    let picked = match pick_endpoints(x, &admitted, &req, record).await {
        Ok(p) => p,
        Err(refused) => return refused.answer(),
    };
    // Boxed: the exchange (connection, TLS, upgrade) is the largest part of
    // a request's future, and each async caller above would hold it again.
    Box::pin(exchange(x, admitted, picked, req, record)).await
}

/// Why a request does not go upstream.
#[derive(Debug)]
enum Refused {
    /// The destination's `http1MaxPendingRequests` (or `http2MaxRequests`)
    /// are in flight.
    Overflow,
    /// The registry does not let the destination out.
    Denied { reason: DenyReason, destination: String },
    /// Its DestinationRule asks for TLS whose settings do not load.
    TlsSettings,
    /// The target has no address.
    NoHealthyUpstream,
}

impl Refused {
    /// What the client is told, as Envoy words it.
    fn answer(self) -> Response<Body> {
        match self {
            Refused::Overflow => text(
                StatusCode::SERVICE_UNAVAILABLE,
                "upstream connect error or disconnect/reset before headers. reset reason: overflow\n".into(),
                None,
            ),
            Refused::Denied { reason, destination } => text(StatusCode::FORBIDDEN, forbidden_body(reason.as_str(), &destination), Some(reason.as_str())),
            Refused::TlsSettings => text(StatusCode::SERVICE_UNAVAILABLE, "upstream TLS settings do not load\n".into(), None),
            Refused::NoHealthyUpstream => text(StatusCode::SERVICE_UNAVAILABLE, "no healthy upstream\n".into(), None),
        }
    }
}

/// What let a request go to its destination: the DestinationRule settings,
/// a slot under the in-flight limit, the registry's target, the TLS to
/// originate and the `Grant` pooled connections keep.
struct Admitted {
    policy: ResolvedTrafficPolicy,
    cluster: Arc<Cluster>,
    slot: Slot,
    target: Target,
    tls: Option<Origination>,
    grant: Grant,
}

/// The in-flight limit (503 overflow), the registry (403), and the TLS the
/// DestinationRule asks for (503 when its settings do not load).
fn admit(x: &Exchange, route: RouteChoice, record: &mut RequestRecord) -> Result<Admitted, Refused> {
    let (ctx, config) = (&*x.ctx, &*x.config);
    let port = route.port.unwrap_or(x.plan.port);
    let policy = resolve_traffic_policy(&config.snapshot, &ctx.workload.namespace, &route.destination, route.subset.as_deref(), port);
    let cluster = ctx.clusters.get(&route.destination, port);
    let Some(slot) = cluster.admit(super::clusters::limit(policy.connection_pool.as_ref())) else {
        record.allow("overflow", None);
        record.flag(ResponseFlag::UpstreamOverflow);
        return Err(Refused::Overflow);
    };
    // Originated TLS goes out as TLS: the registry checks it as such.
    let tls = ctx.inputs.originations.for_destination(config, &ctx.workload.namespace, &route.destination, route.subset.as_deref(), port);
    let exit = if matches!(tls, Ok(Some(_))) { Exit::Any } else { Exit::Http };
    // A subset narrows the entry's endpoints by its DestinationRule labels.
    let target = match decide_route_exit(&config.policy, &ctx.workload, &route, port, exit) {
        Verdict::Deny { reason, matched } => {
            record.deny(reason, matched);
            return Err(Refused::Denied { reason, destination: route.destination.to_string() });
        }
        Verdict::Allow { target, matched, reason, .. } | Verdict::Steer { target, matched, reason, .. } => {
            record.allow(reason, matched);
            target
        }
    };
    // A pooled connection stays while a reload still lets this destination out.
    let grant = {
        let kept = ExitDecided { workload: ctx.workload.clone(), route, port, exit, target: target.clone() };
        Grant { generation: config.generation, stands: Arc::new(move |c, addr| kept.stands(&c.policy, addr)) }
    };
    let tls = tls.map_err(|e| {
        tracing::warn!(error = %e, "TLS origination settings do not load");
        record.flag(ResponseFlag::UpstreamConnectionFailure);
        Refused::TlsSettings
    })?;
    Ok(Admitted { policy, cluster, slot, target, tls, grant })
}

/// The endpoints to try, in order, and what the balancer asks of the answer.
struct Picked {
    ordered: Vec<SocketAddr>,
    /// How many the target has, ejected or not (outlier detection's base).
    total: usize,
    /// When they were picked, for endpoint health.
    at: Instant,
    /// A made-up consistent-hash cookie to set on the answer.
    set_cookie: Option<hyper::header::HeaderValue>,
}

/// The target's addresses (503 when there are none), those not ejected,
/// ordered by the DestinationRule's load balancer.
async fn pick_endpoints(x: &Exchange, a: &Admitted, req: &Request<Body>, record: &mut RequestRecord) -> Result<Picked, Refused> {
    let at = Instant::now();
    let endpoints = match dialer(&x.ctx.inputs, &a.policy).addresses(&a.target).await {
        Ok(list) if !list.is_empty() => list,
        _ => {
            record.flag(ResponseFlag::NoHealthyUpstream);
            return Err(Refused::NoHealthyUpstream);
        }
    };
    let total = endpoints.len();
    let healthy = if a.policy.outlier_detection.is_some() { a.cluster.healthy(&endpoints, at) } else { endpoints };
    let lb = a.policy.load_balancer.as_ref();
    let (hash_input, set_cookie) =
        balance::hash_input(lb, &balance::RequestKey { headers: req.headers(), query: req.uri().query().unwrap_or(""), peer: x.peer.ip() });
    let ordered = balance::order(lb, healthy, &a.cluster, hash_input.as_deref());
    Ok(Picked { ordered, total, at, set_cookie })
}

/// The request over a pooled connection to the first endpoint that takes
/// one (only a connect failure moves on), or an upgrade over a connection
/// of its own. The request holds its slot and its endpoint's active count
/// until the response body is done.
async fn exchange(x: &Exchange, a: Admitted, p: Picked, req: Request<Body>, record: &mut RequestRecord) -> Response<Body> {
    let Admitted { policy, cluster, slot, tls, grant, .. } = a;
    let dialer = dialer(&x.ctx.inputs, &policy);
    let mut active = None;
    let forwarded = if tls.is_none() && is_upgrade(&req) {
        Box::pin(upgrade(&dialer, &p.ordered, req)).await
    } else {
        let reuse = reuse(&policy);
        let h2 = req.version() == hyper::Version::HTTP_2;
        let mut result = Err(StatusCode::SERVICE_UNAVAILABLE);
        for addr in &p.ordered {
            match x.ctx.pool.connection(&dialer, &Upstream::Endpoint(*addr), tls.clone(), reuse, h2, grant.clone()).await {
                Ok(conn) => {
                    active = Some(cluster.start(conn.addr().0));
                    result = conn.send(&dialer, req).await;
                    break;
                }
                Err(status) => {
                    if let Some(od) = &policy.outlier_detection {
                        cluster.report(*addr, None, od, p.total, p.at);
                    }
                    result = Err(status);
                }
            }
        }
        result
    };
    match forwarded {
        Ok((mut resp, addr)) => {
            record.upstream = Some(addr);
            if let Some(od) = &policy.outlier_detection {
                cluster.report(addr.0, Some(resp.status().as_u16()), od, p.total, p.at);
            }
            if let Some(c) = p.set_cookie {
                resp.headers_mut().append(hyper::header::SET_COOKIE, c);
            }
            // The request counts against the limits until its body is done.
            resp.map(|b| {
                b.map_frame(move |f| {
                    let _held = (&slot, &active);
                    f
                })
                .boxed()
            })
        }
        Err(status) => {
            record.flag(ResponseFlag::UpstreamConnectionFailure);
            text(status, format!("upstream {}\n", status.canonical_reason().unwrap_or("error")), None)
        }
    }
}

/// The proxy's dialer, with the DestinationRule's `tcp.connectTimeout`.
fn dialer<'a>(inputs: &'a ProxyInputs, policy: &ResolvedTrafficPolicy) -> Dialer<'a> {
    let mut dialer = inputs.dialer();
    if let Some(t) = policy.connection_pool.as_ref().and_then(|p| p.tcp_connect_timeout) {
        dialer.timeout = t;
    }
    dialer
}

/// `Connection: upgrade` with an `Upgrade` protocol (WebSocket).
fn is_upgrade<B>(req: &Request<B>) -> bool {
    let connection = req.headers().get(hyper::header::CONNECTION).and_then(|v| v.to_str().ok()).unwrap_or("");
    req.headers().contains_key(hyper::header::UPGRADE) && connection.split(',').any(|t| t.trim().eq_ignore_ascii_case("upgrade"))
}

/// `connectionPool.http`: how long and how often a connection is reused.
fn reuse(policy: &ResolvedTrafficPolicy) -> Reuse {
    let mut r = Reuse::default();
    if let Some(p) = &policy.connection_pool {
        r.max_requests = p.max_requests_per_connection.filter(|n| *n > 0);
        if let Some(t) = p.http_idle_timeout.filter(|t| !t.is_zero()) {
            r.idle_timeout = t;
        }
    }
    r
}

/// An upgrade request goes over a connection of its own; once the upstream
/// answers 101, both upgraded streams are joined byte for byte.
async fn upgrade(dialer: &Dialer<'_>, endpoints: &[SocketAddr], mut req: Request<Body>) -> Result<(Response<Body>, UpstreamAddr), StatusCode> {
    let downstream = hyper::upgrade::on(&mut req);
    let (stream, addr) = dialer.connect_first(endpoints).await.map_err(|_| StatusCode::SERVICE_UNAVAILABLE)?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await.map_err(|_| StatusCode::BAD_GATEWAY)?;
    tokio::spawn(async move {
        let _ = conn.with_upgrades().await;
    });
    let mut resp: Response<Incoming> = sender.send_request(req).await.map_err(|_| StatusCode::BAD_GATEWAY)?;
    if resp.status() == StatusCode::SWITCHING_PROTOCOLS {
        let upstream = hyper::upgrade::on(&mut resp);
        tokio::spawn(async move {
            if let (Ok(d), Ok(u)) = tokio::join!(downstream, upstream) {
                let _ = tokio::io::copy_bidirectional(&mut TokioIo::new(d), &mut TokioIo::new(u)).await;
            }
        });
    }
    Ok((resp.map(incoming), addr))
}
