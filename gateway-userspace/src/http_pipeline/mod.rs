//! One HTTP request, in named phases, for both roles that serve HTTP: the
//! node's egress (`proxy/http_egress.rs`) and the gateway role
//! (`gateway_role/http.rs`). [`handle`] runs the phases in this order; each
//! role implements [`Role`], the phases that differ:
//!
//! 1. **authority** ([`Authority::of`]): the authority the request names
//!    (absolute URI or `:authority`, else `Host`), and its host;
//! 2. **facts** ([`facts`]): the path normalised as the mesh says
//!    (`authz::path`, Istio's `pathNormalization`; what goes upstream too),
//!    and what route matches look at;
//! 3. **decision** ([`Role::decide`]): the node decides against the
//!    registry (allow, steer, deny); the gateway picks the route of its
//!    Gateways' VirtualServices;
//! 4. **authorization** ([`Role::authorize`]): the AuthorizationPolicies
//!    that apply (`authz`), on the request's normalised path; denied: 403
//!    `RBAC: access denied`, as Envoy answers;
//! 5. **route** ([`Role::route`]): what that asks of this request: an
//!    answer now (403, 404, redirect, direct response, CORS preflight,
//!    fault), or an upstream and the request to send it, edited as the
//!    route says;
//! 6. **upstream** ([`Role::upstream`]): the exchange, over a connection
//!    kept in `transport/http_pool.rs` with the request's `Grant`;
//! 7. **response** ([`Role::respond`]): the role's edits to the answer;
//! 8. **record** ([`record`]): the request's audit line and metrics, and
//!    the connection's [`RequestTally`].
//!
//! Every request takes the configuration current when it arrives, so a
//! reload decides the next request of a kept-alive connection.

use std::{
    future::Future,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use hyper::{HeaderMap, Request, Response, StatusCode, body::Incoming};

use crate::{
    access_log::{Decision, Reason, RequestRecord},
    authz::{AuthzHttp, Authorized, PathNormalization, path},
    metrics::RequestSeries,
    policy::{HttpFacts, MatchedEntry, RouteChoice},
    proxy::ProxyInputs,
    reload::ActiveConfig,
    sniff::host_without_port,
    transport::{addrs::UpstreamAddr, http_pool::{Body, text}},
};

/// What the route phase makes of a request.
pub enum Routed<P> {
    /// Answered here; nothing goes upstream.
    Answer(Response<Body>),
    /// To go upstream, with what the upstream and response phases need.
    Forward(Request<Body>, P),
}

/// The phases one role does its own way.
pub trait Role: Sync {
    /// What the decision phase concluded, for the route phase.
    type Decision: Send;
    /// Where the request goes and what the response phase needs.
    type Plan: Send + Sync;

    fn inputs(&self) -> &ProxyInputs;
    /// `http` or `https`: how the client spoke to this proxy.
    fn scheme(&self) -> &'static str;
    /// The connection's requests so far.
    fn tally(&self) -> &Mutex<RequestTally>;
    /// The request's audit record, before anything is decided.
    fn record(&self, req: &Request<Incoming>, authority: &Authority) -> RequestRecord;

    /// The decision phase.
    fn decide(
        &self,
        config: &Arc<ActiveConfig>,
        req: &Request<Incoming>,
        authority: &Authority,
        facts: &HttpFacts<'_>,
        record: &mut RequestRecord,
    ) -> Self::Decision;

    /// The authorization phase: the policies that apply to this request,
    /// asked with its source; `None` when none can apply.
    fn authorize(&self, config: &Arc<ActiveConfig>, decision: &Self::Decision, authority: &Authority, http: &AuthzHttp<'_>) -> Option<AuthzOutcome>;

    /// The route phase.
    fn route(
        &self,
        config: &Arc<ActiveConfig>,
        decision: Self::Decision,
        req: Request<Incoming>,
        authority: &Authority,
        record: &mut RequestRecord,
    ) -> impl Future<Output = Routed<Self::Plan>> + Send;

    /// The upstream phase.
    fn upstream(&self, plan: &Self::Plan, req: Request<Body>, record: &mut RequestRecord) -> impl Future<Output = Response<Body>> + Send;

    /// The response phase.
    fn respond(&self, plan: Self::Plan, resp: Response<Body>, record: &mut RequestRecord) -> Response<Body>;
}

/// One request, through every phase.
pub async fn handle<R: Role>(role: &R, mut req: Request<Incoming>) -> Response<Body> {
    let started = Instant::now();
    let config = role.inputs().config.current();
    let authority = Authority::of(&req);
    let mut rec = role.record(&req, &authority);
    let normalization = config.policy.authorizer().settings().path_normalization;
    let strict_path = match normalize_path(&mut req, normalization) {
        Some(strict) => strict,
        None => {
            let resp = text(StatusCode::BAD_REQUEST, "bad request path\n".to_string(), None);
            rec.deny("malformed-request", None);
            record(role.inputs(), role.tally(), &mut rec, &resp, started.elapsed()).await;
            return resp;
        }
    };
    let (decision, authorized) = {
        let header = header_lookup(req.headers());
        let facts = facts(&req, &authority, role.scheme(), &header);
        let decision = role.decide(&config, &req, &authority, &facts, &mut rec);
        let path = req.uri().path();
        let http = AuthzHttp { method: req.method().as_str(), path, strict_path: strict_path.as_deref().unwrap_or(path), header: &header };
        let authorized = role.authorize(&config, &decision, &authority, &http);
        (decision, authorized)
    };
    let refused = authorized.as_ref().is_some_and(|a| rec.authorized(&a.authorized, a.enforced));
    let response = if refused {
        rbac_denied()
    } else {
        match role.route(&config, decision, req, &authority, &mut rec).await {
            Routed::Answer(resp) => resp,
            Routed::Forward(req, plan) => {
                let resp = role.upstream(&plan, req, &mut rec).await;
                role.respond(plan, resp, &mut rec)
            }
        }
    };
    record(role.inputs(), role.tally(), &mut rec, &response, started.elapsed()).await;
    response
}

/// What the authorization phase concluded.
pub struct AuthzOutcome {
    pub authorized: Authorized,
    /// Audit mode: a denial is recorded as `would`, not carried out.
    pub enforced: bool,
}

/// Envoy's answer to a request its RBAC filter denies.
pub fn rbac_denied() -> Response<Body> {
    text(StatusCode::FORBIDDEN, "RBAC: access denied".to_string(), None)
}

/// Normalises the request's path (query kept) and gives its strict
/// reading (`None` for a canonical path, most requests', which is every
/// reading of itself); `None` for a path that will not form a URI again
/// (400).
fn normalize_path(req: &mut Request<Incoming>, how: PathNormalization) -> Option<Option<String>> {
    let raw = req.uri().path();
    if path::is_canonical(raw) {
        return Some(None);
    }
    let strict = Some(path::strict(raw));
    let normalized = path::normalize(raw, how);
    if normalized != raw {
        let with_query = match req.uri().query() {
            Some(q) => format!("{normalized}?{q}"),
            None => normalized,
        };
        let mut parts = req.uri().clone().into_parts();
        let rebuilt = with_query.parse().ok().and_then(|pq| {
            parts.path_and_query = Some(pq);
            hyper::Uri::from_parts(parts).ok()
        });
        *req.uri_mut() = rebuilt?;
    }
    Some(strict)
}

/// What a request names as its destination.
#[derive(Clone, Debug, Default)]
pub struct Authority {
    /// The absolute URI's (HTTP/1) or `:authority` (HTTP/2) authority, else
    /// the `Host` header, as sent.
    pub authority: Option<String>,
    /// Its host, without the port, in lower case; shared with the
    /// request's audit record.
    pub host: Option<Arc<str>>,
}

impl Authority {
    /// The authority phase.
    pub fn of<B>(req: &Request<B>) -> Self {
        let authority = req
            .uri()
            .authority()
            .map(|a| a.as_str().to_string())
            .or_else(|| req.headers().get(hyper::header::HOST).and_then(|h| h.to_str().ok()).map(str::to_string));
        let host = authority.as_deref().map(|a| lower_case(host_without_port(a)));
        Authority { authority, host }
    }

    /// The authority, empty when the request names none.
    pub fn as_str(&self) -> &str {
        self.authority.as_deref().unwrap_or("")
    }
}

/// `host` in lower case, copied once (most are already).
fn lower_case(host: &str) -> Arc<str> {
    if host.bytes().any(|b| b.is_ascii_uppercase()) { host.to_ascii_lowercase().into() } else { host.into() }
}

/// A request header's value as text, for route matches.
pub fn header_lookup(headers: &HeaderMap) -> impl Fn(&str) -> Option<String> + Sync + '_ {
    |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_string)
}

/// The facts phase: what VirtualService HTTP matches look at.
pub fn facts<'a, B>(
    req: &'a Request<B>,
    authority: &'a Authority,
    scheme: &'a str,
    header: &'a (dyn Fn(&str) -> Option<String> + Sync),
) -> HttpFacts<'a> {
    HttpFacts {
        authority: authority.as_str(),
        path: req.uri().path(),
        method: req.method().as_str(),
        query: req.uri().query().unwrap_or(""),
        scheme,
        header,
    }
}

/// What a connection's requests came to, for its closing log line.
#[derive(Clone, Debug, Default)]
pub struct RequestTally {
    pub requests: u32,
    pub denied: u32,
    /// The first request's verdict, which stands for the connection.
    pub first: Option<(Decision, Reason, Option<MatchedEntry>, Option<RouteChoice>)>,
    /// Audit mode: the first request's `would`.
    pub first_would: Option<Decision>,
    /// The last upstream a request reached.
    pub upstream: Option<UpstreamAddr>,
    /// The metric series the last request counted in, for the next.
    pub series: RequestSeries,
    /// Bytes read from and written to the client.
    pub bytes_from_client: u64,
    pub bytes_to_client: u64,
}

impl RequestTally {
    fn note(&mut self, r: &RequestRecord) {
        self.requests += 1;
        if r.decision == Decision::Deny {
            self.denied += 1;
        }
        if self.first.is_none() {
            self.first = Some((r.decision, r.reason, r.matched.clone(), r.route.clone()));
            self.first_would = r.would;
        }
        if r.upstream.is_some() {
            self.upstream = r.upstream;
        }
    }
}

/// The record phase: the answer's status, the request's duration, the
/// connection's tally, metrics, and the audit line.
pub async fn record<B>(inputs: &ProxyInputs, tally: &Mutex<RequestTally>, rec: &mut RequestRecord, response: &Response<B>, elapsed: Duration) {
    rec.status = response.status().as_u16();
    rec.finish(elapsed);
    {
        let mut tally = tally.lock().expect("tally lock");
        tally.note(rec);
        inputs.metrics.record_request(rec, &mut tally.series);
    }
    inputs.access_log.write_request(rec).await;
}

#[cfg(test)]
mod tests;
