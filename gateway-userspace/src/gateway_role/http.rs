//! The gateway role's HTTP server and its phases of the HTTP pipeline
//! (`http_pipeline`): each request's Host and match pick the route of the
//! port's VirtualServices (`servers.rs`); the route answers it here
//! (redirect, direct response, CORS preflight, fault) or edits it and
//! sends it on (`forward.rs`), mirrors sampled; the answer gets the route's
//! response edits.

use std::{
    convert::Infallible,
    net::SocketAddr,
    sync::{Arc, Mutex},
    time::Instant,
};

use hyper::{Request, Response, StatusCode, body::Incoming, header::HeaderValue, service::service_fn};
use hyper_util::{
    rt::{TokioExecutor, TokioIo, TokioTimer},
    server::conn::auto,
};
use tokio::net::TcpStream;

use super::{
    GatewayContext, authorize::GatewayAuthz, cors,
    edge_headers::{as_http11, forwarding_headers, path_and_query, strip_connection_headers, uri_len},
    forward::{Exchange, with_timeouts},
    mirror,
    route_policy::{self, redirect_location, redirect_to},
    servers::{HttpAction, PortPlan, http_route},
};
use crate::{
    access_log::{Decision, Outcome, RequestRecord, ResponseFlag},
    config::{
        StringMatch,
        resources::{common::Headers, http_route::HttpRoute},
    },
    authz::AuthzHttp,
    http_pipeline::{self, Authority, AuthzOutcome, RequestTally, Role, Routed},
    policy::{Exit, HttpFacts, RouteChoice, Verdict, decide_exit},
    proxy::ProxyInputs,
    reload::ActiveConfig,
    transport::{
        addrs::{ClientAddr, OrigDstAddr},
        http_pool::{Body, incoming, text},
        idle::{Activity, Tracked, close_when_idle},
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
    let role = Arc::new(GatewayHttp { plan, ctx: ctx.clone(), peer, identity: identity.clone(), scheme, tally: Mutex::default() });
    // Envoy's idle timeout: no bytes and no request in flight for that long.
    let activity = Activity::new();
    let svc = {
        let (role, activity) = (role.clone(), activity.clone());
        service_fn(move |req| {
            let (role, busy) = (role.clone(), activity.busy());
            async move { Ok::<_, Infallible>(busy.until_sent(http_pipeline::handle(&*role, req).await)) }
        })
    };
    // HTTP/1.1, or HTTP/2 (prior knowledge, or ALPN after TLS termination).
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        // Header names go on in lower case, as Envoy's and HAProxy's HTTP/1 codecs write them.
        .half_close(true)
        .timer(TokioTimer::new())
        // The head timeout is ours (transport/idle.rs): hyper's also runs between requests.
        .header_read_timeout(None)
        // At most 100 header fields: hyper's default, left unset, as setting it
        // builds the parser's header arrays anew for every request.
        .max_buf_size(ctx.limits.max_header_bytes.max(8192));
    // Rapid reset, CONTINUATION and error floods: http2_limits.rs.
    super::http2_limits::apply(builder.http2().timer(TokioTimer::new()), ctx.limits.max_header_bytes);
    let conn = builder.serve_connection_with_upgrades(TokioIo::new(Tracked::new(io, activity.clone())), svc);
    let limits = &ctx.limits;
    let _ = close_when_idle(conn, &activity, limits.idle_timeout, limits.header_read_timeout, |c| c.graceful_shutdown()).await;
    let (requests, denied) = {
        let tally = role.tally.lock().expect("tally lock");
        (tally.requests, tally.denied)
    };
    let mut record = super::gateway_record(peer, &ctx, "http", identity);
    (record.requests, record.denied_requests) = (Some(requests), Some(denied));
    (record.decision, record.reason) = if denied == 0 { (Decision::Allow, "routed".into()) } else { (Decision::Deny, "denied-requests".into()) };
    record.outcome = Outcome::Closed;
    ctx.inputs.log_connection(&mut record, started.elapsed()).await;
}

/// One downstream connection on a port of this gateway.
struct GatewayHttp {
    plan: Arc<PortPlan>,
    ctx: Arc<GatewayContext>,
    peer: SocketAddr,
    /// The peer's SPIFFE identity (ISTIO_MUTUAL, or a client certificate).
    identity: Option<String>,
    scheme: &'static str,
    tally: Mutex<RequestTally>,
}

/// What the gateway makes of a request before any route acts on it.
enum GatewayDecision {
    /// The head is larger than `--max-header-bytes`: 431.
    HeadersTooLarge,
    /// The server says `tls.httpsRedirect`: 301 to `https`.
    HttpsRedirect,
    /// No route of the port's VirtualServices matches: 404.
    NoRoute,
    Route(Box<HttpAction>),
}

/// A forwarded request's route, for the upstream and response phases.
struct GatewayPlan {
    exchange: Exchange,
    choice: RouteChoice,
    route: Arc<HttpRoute>,
    /// The chosen destination's own header edits.
    destination_headers: Option<Headers>,
    /// An origin the route's `corsPolicy` allows.
    cors_origin: Option<HeaderValue>,
    /// An HTTP/2 client answered from an HTTP/1.1 upstream.
    strip_connection_headers: bool,
}

impl GatewayPlan {
    /// The route's header edits, then its destination's.
    fn header_edits(&self) -> impl Iterator<Item = &Headers> {
        self.route.headers.iter().chain(self.destination_headers.as_ref())
    }
}

impl Role for GatewayHttp {
    type Decision = GatewayDecision;
    type Plan = GatewayPlan;

    fn inputs(&self) -> &ProxyInputs {
        &self.ctx.inputs
    }

    fn scheme(&self) -> &'static str {
        self.scheme
    }

    fn tally(&self) -> &Mutex<RequestTally> {
        &self.tally
    }

    fn record(&self, req: &Request<Incoming>, authority: &Authority) -> RequestRecord {
        let placeholder = OrigDstAddr(SocketAddr::from(([0, 0, 0, 0], self.plan.port)));
        let host = authority.host.clone().unwrap_or_default();
        let mut record = RequestRecord::new(ClientAddr(self.peer), placeholder, &self.ctx.workload, req, Some(host));
        record.role = self.ctx.role;
        record.peer_identity = self.identity.clone();
        record
    }

    /// By the VirtualServices bound to the port's Gateways.
    fn decide(
        &self,
        config: &Arc<ActiveConfig>,
        req: &Request<Incoming>,
        _authority: &Authority,
        facts: &HttpFacts<'_>,
        record: &mut RequestRecord,
    ) -> GatewayDecision {
        let head_bytes: usize = uri_len(req.uri()) + req.headers().iter().map(|(k, v)| k.as_str().len() + v.len() + 4).sum::<usize>();
        if head_bytes > self.ctx.limits.max_header_bytes {
            record.deny("headers-too-large", None);
            return GatewayDecision::HeadersTooLarge;
        }
        if self.plan.https_redirect {
            record.allow("https-redirect", None);
            return GatewayDecision::HttpsRedirect;
        }
        let routes = self.ctx.bound_routes.get(&config.snapshot);
        let action = http_route(&routes, &self.plan, facts, &self.ctx.workload, pick_percent());
        match &action {
            None => {
                record.deny("no-route", None);
                record.flag(ResponseFlag::NoRoute);
            }
            Some(HttpAction::Respond { route, .. }) => {
                record.allow("direct-response", None);
                record.route = Some(route.clone());
            }
            Some(HttpAction::Redirect { route, .. }) => {
                record.allow("redirect", None);
                record.route = Some(route.clone());
            }
            Some(HttpAction::Forward { .. }) => {}
        }
        action.map_or(GatewayDecision::NoRoute, |a| GatewayDecision::Route(Box::new(a)))
    }

    /// Before any route acts, as Envoy's RBAC filter runs before its router.
    /// A forwarded request is also asked about as a connection to its
    /// destination's ServiceEntry.
    fn authorize(&self, config: &Arc<ActiveConfig>, decision: &GatewayDecision, authority: &Authority, http: &AuthzHttp<'_>) -> Option<AuthzOutcome> {
        let authz = config.policy.authorizer();
        if authz.is_empty() {
            return None;
        }
        let entry = match decision {
            GatewayDecision::Route(action) => match action.as_ref() {
                HttpAction::Forward { choice, .. } => {
                    let port = choice.port.unwrap_or(self.plan.port);
                    match decide_exit(&config.policy, &self.ctx.workload, &choice.destination, port, Exit::Any) {
                        Verdict::Allow { matched, .. } | Verdict::Steer { matched, .. } => matched,
                        Verdict::Deny { .. } => None,
                    }
                }
                _ => None,
            },
            _ => None,
        };
        let trusted = authz.settings().num_trusted_proxies;
        let ask = GatewayAuthz::new(&self.ctx, &self.plan.gateways, self.plan.port, self.identity.as_deref(), self.peer.ip())
            .to(authority.host.as_deref(), None, entry.as_ref())
            .forwarded_for((http.header)("x-forwarded-for").as_deref(), trusted);
        Some(AuthzOutcome { authorized: ask.ask(&config.policy, Some(*http))?, enforced: true })
    }

    async fn route(
        &self,
        config: &Arc<ActiveConfig>,
        decision: GatewayDecision,
        req: Request<Incoming>,
        authority: &Authority,
        record: &mut RequestRecord,
    ) -> Routed<GatewayPlan> {
        let host = authority.host.as_deref().unwrap_or("");
        let action = match decision {
            GatewayDecision::HeadersTooLarge => {
                return Routed::Answer(text(StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE, "request headers too large\n".into(), None));
            }
            GatewayDecision::HttpsRedirect => {
                return Routed::Answer(redirect_to(&format!("https://{}{}", authority.as_str(), path_and_query(&req)), 301));
            }
            GatewayDecision::NoRoute => return Routed::Answer(text(StatusCode::NOT_FOUND, format!("no route to {host}\n"), Some("no-route"))),
            GatewayDecision::Route(action) => *action,
        };
        let answer = match action {
            HttpAction::Respond { status, body, .. } => text(StatusCode::from_u16(status).unwrap_or(StatusCode::OK), body, None),
            HttpAction::Redirect { redirect, .. } => {
                let location = redirect_location(&redirect, self.scheme, host, self.plan.port, &req);
                redirect_to(&location, redirect.redirect_code)
            }
            HttpAction::Forward { choice, route, matched_uri, destination_headers } => {
                let exchange = Exchange { plan: self.plan.clone(), ctx: self.ctx.clone(), config: config.clone(), peer: self.peer };
                return self.routed(exchange, req, choice, route, matched_uri.as_ref(), destination_headers, record).await;
            }
        };
        Routed::Answer(answer)
    }

    async fn upstream(&self, plan: &GatewayPlan, req: Request<Body>, record: &mut RequestRecord) -> Response<Body> {
        with_timeouts(&plan.exchange, req, plan.choice.clone(), &plan.route, record).await
    }

    /// The route's response header edits (the route's, then its
    /// destination's), CORS headers for an allowed origin.
    fn respond(&self, plan: GatewayPlan, mut resp: Response<Body>, _record: &mut RequestRecord) -> Response<Body> {
        for h in plan.header_edits() {
            route_policy::edit_headers(resp.headers_mut(), &h.response);
        }
        if let (Some(policy), Some(origin)) = (plan.route.cors_policy.as_ref(), plan.cors_origin.clone()) {
            cors::decorate(policy, origin, resp.headers_mut());
        }
        if plan.strip_connection_headers {
            strip_connection_headers(resp.headers_mut());
        }
        resp
    }
}

impl GatewayHttp {
    /// A request on a route with destinations: CORS preflights and fault
    /// aborts answered here; otherwise edge headers, delays, rewrites,
    /// request header edits and mirrors before it goes on.
    #[allow(clippy::too_many_arguments)]
    async fn routed(
        &self,
        exchange: Exchange,
        mut req: Request<Incoming>,
        choice: RouteChoice,
        route: Arc<HttpRoute>,
        matched_uri: Option<&StringMatch>,
        destination_headers: Option<Headers>,
        record: &mut RequestRecord,
    ) -> Routed<GatewayPlan> {
        let cors_origin = route.cors_policy.as_ref().and_then(|c| Some((c, cors::allowed_origin(c, req.headers())?)));
        if let Some((policy, origin)) = &cors_origin
            && cors::is_preflight(req.method(), req.headers())
        {
            record.allow("cors-preflight", None);
            record.route = Some(choice);
            return Routed::Answer(cors::preflight(policy, origin.clone()));
        }
        let cors_origin = cors_origin.map(|(_, origin)| origin);
        let downstream_h2 = req.version() == hyper::Version::HTTP_2;
        // gRPC needs HTTP/2 end to end (streams, trailers); the rest goes out in HTTP/1.1.
        let grpc = downstream_h2
            && req.headers().get(hyper::header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).is_some_and(|c| c.starts_with("application/grpc"));
        if !grpc {
            as_http11(&mut req);
        }
        forwarding_headers(&mut req, self.peer, self.scheme);
        if let Some(status) = route_policy::abort(&route, f64::from(pick_percent())) {
            record.allow("fault-abort", None);
            record.flag(ResponseFlag::FaultInjected);
            record.route = Some(choice);
            return Routed::Answer(text(status, "fault filter abort\n".into(), None));
        }
        if let Some(d) = route_policy::delay(&route, f64::from(pick_percent())) {
            record.flag(ResponseFlag::DelayInjected);
            tokio::time::sleep(d).await;
        }
        route_policy::rewrite(&mut req, &route, matched_uri);
        let plan = GatewayPlan { exchange, choice, route, destination_headers, cors_origin, strip_connection_headers: downstream_h2 && !grpc };
        for h in plan.header_edits() {
            route_policy::edit_headers(req.headers_mut(), &h.request);
        }
        let req = mirror::copy_to_mirrors(&plan.exchange, req.map(incoming), &plan.choice, &plan.route).await;
        Routed::Forward(req, plan)
    }
}
