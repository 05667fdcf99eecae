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
    GatewayContext, cors,
    forward::{Exchange, with_timeouts},
    mirror, route_policy,
    servers::{HttpAction, PortPlan, http_route},
};
use crate::{
    access_log::{Decision, Outcome, RequestRecord, ResponseFlag},
    config::resources::{
        common::Headers,
        http_route::{HttpRoute, Redirect, RedirectPortSelection},
    },
    policy::{HttpFacts, RouteChoice},
    transport::{
        addrs::{ClientAddr, OrigDstAddr},
        http_pool::{Body, text},
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
    let counts = Arc::new(std::sync::Mutex::new((0u32, 0u32)));
    let svc = {
        let (plan, ctx, counts, identity) = (plan.clone(), ctx.clone(), counts.clone(), identity.clone());
        service_fn(move |req| {
            let (plan, ctx, counts, identity) = (plan.clone(), ctx.clone(), counts.clone(), identity.clone());
            async move { Ok::<_, Infallible>(request(req, peer, plan, ctx, &counts, identity, scheme).await) }
        })
    };
    // HTTP/1.1, or HTTP/2 (prior knowledge, or ALPN after TLS termination).
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .preserve_header_case(true)
        .half_close(true)
        .timer(TokioTimer::new())
        // The head timeout is ours (idle.rs): hyper's also runs between requests.
        .header_read_timeout(None)
        .max_buf_size(ctx.limits.max_header_bytes.max(8192))
        .max_headers(100);
    // Rapid reset, CONTINUATION and error floods: http2_limits.rs.
    super::http2_limits::apply(builder.http2().timer(TokioTimer::new()), ctx.limits.max_header_bytes);
    // Envoy's idle timeout: no bytes and no request in flight for that long.
    let activity = super::idle::Activity::new();
    let (io, svc) = (super::idle::Tracked::new(io, activity.clone()), super::idle::BusyWhileServing::new(svc, &activity));
    let conn = builder.serve_connection_with_upgrades(TokioIo::new(io), svc);
    let limits = &ctx.limits;
    let _ = super::idle::close_when_idle(conn, &activity, limits.idle_timeout, limits.header_read_timeout, |c| c.graceful_shutdown()).await;
    let (requests, denied) = *counts.lock().expect("counts lock");
    let mut record = super::gateway_record(peer, &ctx, "http", identity);
    (record.requests, record.denied_requests) = (Some(requests), Some(denied));
    (record.decision, record.reason) = if denied == 0 { (Decision::Allow, "routed".into()) } else { (Decision::Deny, "denied-requests".into()) };
    record.outcome = Outcome::Closed;
    ctx.inputs.log_connection(&mut record, started.elapsed()).await;
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
pub(super) fn is_upgrade<B>(req: &Request<B>) -> bool {
    let connection = req.headers().get(hyper::header::CONNECTION).and_then(|v| v.to_str().ok()).unwrap_or("");
    req.headers().contains_key(hyper::header::UPGRADE) && connection.split(',').any(|t| t.trim().eq_ignore_ascii_case("upgrade"))
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
fn redirect_location<B>(r: &Redirect, scheme: &str, host: &str, port: u16, req: &Request<B>) -> String {
    let scheme = r.scheme.as_deref().unwrap_or(scheme);
    let authority = r.authority.clone().unwrap_or_else(|| host.to_string());
    let default_port = if scheme == "https" { 443 } else { 80 };
    let port = match r.derive_port {
        Some(RedirectPortSelection::FromRequestPort) => Some(port),
        Some(RedirectPortSelection::FromProtocolDefault) => None,
        None => r.port.or((port != default_port && r.scheme.is_none()).then_some(port)),
    };
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
    plan: Arc<PortPlan>,
    ctx: Arc<GatewayContext>,
    counts: &std::sync::Mutex<(u32, u32)>,
    identity: Option<String>,
    scheme: &'static str,
) -> Response<Body> {
    let started = Instant::now();
    let out = &ctx.inputs;
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
        let facts = HttpFacts {
            authority: &authority,
            path: req.uri().path(),
            method: req.method().as_str(),
            query: req.uri().query().unwrap_or(""),
            scheme,
            header: &header,
        };
        http_route(&config.snapshot, &plan, &facts, &ctx.workload, pick_percent())
    };
    let placeholder = OrigDstAddr(SocketAddr::from(([0, 0, 0, 0], plan.port)));
    let mut record = RequestRecord::new(ClientAddr(peer), placeholder, &ctx.workload, &req, Some(host.clone()));
    record.role = ctx.role;
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
                record.flag(ResponseFlag::NoRoute);
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
            Some(HttpAction::Forward { choice, route, matched_uri, destination_headers }) => {
                let x = Exchange { plan: plan.clone(), ctx: ctx.clone(), config: config.clone(), peer };
                let edits: Vec<&Headers> = route.headers.iter().chain(destination_headers.as_ref()).collect();
                routed(&x, req, choice, &route, matched_uri.as_ref(), &edits, scheme, &mut record).await
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

/// A request on a route with destinations: CORS, faults, rewrites, header
/// edits (the route's, then its destination's) and mirrors around the
/// exchange.
#[allow(clippy::too_many_arguments)]
async fn routed(
    x: &Exchange,
    mut req: Request<Incoming>,
    choice: RouteChoice,
    route: &HttpRoute,
    matched_uri: Option<&crate::config::StringMatch>,
    header_edits: &[&Headers],
    scheme: &'static str,
    record: &mut RequestRecord,
) -> Response<Body> {
    let cors_origin = route.cors_policy.as_ref().and_then(|c| Some((c, cors::allowed_origin(c, req.headers())?)));
    if let Some((policy, origin)) = &cors_origin
        && cors::is_preflight(req.method(), req.headers())
    {
        record.allow("cors-preflight", None);
        record.route = Some(choice);
        return cors::preflight(policy, origin.clone());
    }
    let downstream_h2 = req.version() == hyper::Version::HTTP_2;
    // gRPC needs HTTP/2 end to end (streams, trailers); the rest goes out in HTTP/1.1.
    let grpc = downstream_h2
        && req.headers().get(hyper::header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).is_some_and(|c| c.starts_with("application/grpc"));
    if !grpc {
        as_http11(&mut req);
    }
    forwarding_headers(&mut req, x.peer, scheme);
    if let Some(status) = route_policy::abort(route, f64::from(pick_percent())) {
        record.allow("fault-abort", None);
        record.flag(ResponseFlag::FaultInjected);
        record.route = Some(choice);
        return text(status, "fault filter abort\n".into(), None);
    }
    if let Some(d) = route_policy::delay(route, f64::from(pick_percent())) {
        record.flag(ResponseFlag::DelayInjected);
        tokio::time::sleep(d).await;
    }
    route_policy::rewrite(&mut req, route, matched_uri);
    for h in header_edits {
        route_policy::edit_headers(req.headers_mut(), &h.request);
    }
    let req = mirror::copy_to_mirrors(x, req.map(|b| b.boxed()), &choice, route).await;
    let mut resp = with_timeouts(x, req, choice, route, record).await;
    for h in header_edits {
        route_policy::edit_headers(resp.headers_mut(), &h.response);
    }
    if let Some((policy, origin)) = cors_origin {
        cors::decorate(policy, origin, resp.headers_mut());
    }
    if downstream_h2 && !grpc {
        strip_connection_headers(resp.headers_mut());
    }
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    fn redirect(scheme: Option<&str>, port: Option<u16>, derive: Option<RedirectPortSelection>) -> Redirect {
        Redirect { uri: None, authority: None, port, derive_port: derive, scheme: scheme.map(str::to_string), redirect_code: 301 }
    }

    #[test]
    fn redirect_locations_keep_or_replace_each_part_as_envoy_does() {
        let req = Request::builder().uri("/a?b=1").body(()).unwrap();
        let at = |r: &Redirect, port| redirect_location(r, "http", "api.test", port, &req);
        assert_eq!(at(&redirect(None, None, None), 8080), "http://api.test:8080/a?b=1", "a non-default port is kept");
        assert_eq!(at(&redirect(Some("https"), None, None), 8080), "https://api.test/a?b=1", "a new scheme takes its default port");
        assert_eq!(at(&redirect(None, Some(9090), None), 80), "http://api.test:9090/a?b=1");
        assert_eq!(at(&redirect(Some("https"), None, Some(RedirectPortSelection::FromRequestPort)), 8443), "https://api.test:8443/a?b=1");
        assert_eq!(at(&redirect(None, None, Some(RedirectPortSelection::FromProtocolDefault)), 8080), "http://api.test/a?b=1");
    }
}
