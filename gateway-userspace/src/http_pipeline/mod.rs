//! One HTTP request, in named phases, for both roles that serve HTTP: the
//! node's egress (`proxy/http_egress.rs`) and the gateway role
//! (`gateway_role/http.rs`). [`handle`] runs the phases in this order; each
//! role implements [`Role`], the phases that differ:
//!
//! 1. **authority** ([`Authority::of`]): the authority the request names
//!    (absolute URI or `:authority`, else `Host`), and its host;
//! 2. **facts** ([`facts`]): what route matches look at;
//! 3. **decision** ([`Role::decide`]): the node decides against the
//!    registry (allow, steer, deny); the gateway picks the route of its
//!    Gateways' VirtualServices;
//! 4. **route** ([`Role::route`]): what that asks of this request: an
//!    answer now (403, 404, redirect, direct response, CORS preflight,
//!    fault), or an upstream and the request to send it, edited as the
//!    route says;
//! 5. **upstream** ([`Role::upstream`]): the exchange, over a connection
//!    kept in `transport/http_pool.rs` with the request's `Grant`;
//! 6. **response** ([`Role::respond`]): the role's edits to the answer;
//! 7. **record** ([`record`]): the request's audit line and metrics, and
//!    the connection's [`RequestTally`].
//!
//! Every request takes the configuration current when it arrives, so a
//! reload decides the next request of a kept-alive connection.

mod request;

use std::{future::Future, sync::Arc, sync::Mutex, time::Instant};

use hyper::{Request, Response, body::Incoming};

pub use request::{Authority, RequestTally, facts, header_lookup, record};

use crate::{access_log::RequestRecord, policy::HttpFacts, proxy::ProxyInputs, reload::ActiveConfig, transport::http_pool::Body};

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
pub async fn handle<R: Role>(role: &R, req: Request<Incoming>) -> Response<Body> {
    let started = Instant::now();
    let config = role.inputs().config.current();
    let authority = Authority::of(&req);
    let mut rec = role.record(&req, &authority);
    let decision = {
        let header = header_lookup(req.headers());
        let facts = facts(&req, &authority, role.scheme(), &header);
        role.decide(&config, &req, &authority, &facts, &mut rec)
    };
    let response = match role.route(&config, decision, req, &authority, &mut rec).await {
        Routed::Answer(resp) => resp,
        Routed::Forward(req, plan) => {
            let resp = role.upstream(&plan, req, &mut rec).await;
            role.respond(plan, resp, &mut rec)
        }
    };
    record(role.inputs(), role.tally(), &mut rec, &response, started.elapsed()).await;
    response
}
