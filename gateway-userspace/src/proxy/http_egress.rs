//! Plain HTTP/1 egress, the node's role in the HTTP pipeline
//! (`http_pipeline`): every request on a keep-alive connection is decided
//! on its own Host against the configuration current when it arrives (as
//! Envoy applies a route update to the next request), allowed requests are
//! steered or originated as their decision says and forwarded over
//! upstream connections kept per target; a reload closes the kept ones it
//! no longer allows.

use std::{
    convert::Infallible,
    sync::{Arc, Mutex},
};

use hyper::{Request, Response, StatusCode, body::Incoming, server::conn::http1, service::service_fn};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use super::{ProxyInputs, deny::forbidden_body, origination::{Origination, UpstreamTlsError}};
use crate::{
    access_log::{ConnectionRecord, Decision, Outcome, RequestRecord},
    authz::AuthzHttp,
    http_pipeline::{self, Authority, AuthzOutcome, RequestTally, Role, Routed},
    policy::{ConnectionFacts, Decided, Detected, Enforcement, HttpFacts, Target, Verdict, WorkloadIdentity, decide_and_keep_enforced},
    reload::ActiveConfig,
    transport::{
        addrs::{ClientAddr, OrigDstAddr},
        idle::{Activity, Tracked, close_when_idle},
        http_pool::{Body, Grant, incoming, Reuse, Upstream, text},
        pools::PoolOfConnection,
        pick_percent,
    },
};

/// Serves an intercepted plain HTTP/1 connection until the client closes,
/// and fills in its connection line from what its requests came to.
pub async fn serve(client: TcpStream, orig: OrigDstAddr, inputs: &Arc<ProxyInputs>, workload: WorkloadIdentity, record: &mut ConnectionRecord) {
    let upstreams = inputs.pools.open();
    let http = Arc::new(HttpEgress { inputs: inputs.clone(), workload, client: record.src, orig, upstreams, tally: Default::default() });
    let tally = http.serve(client).await;
    record.requests = Some(tally.requests);
    record.denied_requests = Some(tally.denied);
    record.upstream = tally.upstream;
    (record.bytes_up, record.bytes_down) = (tally.bytes_from_client, tally.bytes_to_client);
    record.outcome = Outcome::Closed;
    match tally.first {
        Some((decision, reason, matched, route)) => {
            (record.decision, record.reason, record.matched, record.route) = (decision, reason, matched, route);
            record.would = tally.first_would;
        }
        None => record.reason = "no-request".into(),
    }
}

/// One client connection's requests and the upstream connections they use.
struct HttpEgress {
    inputs: Arc<ProxyInputs>,
    workload: WorkloadIdentity,
    client: ClientAddr,
    orig: OrigDstAddr,
    /// Its own upstream connections; each reload revokes what it no longer allows (`pools.rs`).
    upstreams: PoolOfConnection,
    tally: Mutex<RequestTally>,
}

/// Where an allowed or steered request goes.
struct NodePlan {
    target: Target,
    tls: Option<Origination>,
    grant: Grant,
}

impl HttpEgress {
    /// Serves the client's requests until it closes; returns the tally.
    async fn serve(self: Arc<Self>, client: TcpStream) -> RequestTally {
        // The idle and head timeouts (Envoy's), and the byte counts.
        let activity = Activity::new();
        let (this, served) = (self.clone(), activity.clone());
        let svc = service_fn(move |req| {
            let (this, busy) = (this.clone(), served.busy());
            async move { Ok::<_, Infallible>(busy.until_sent(http_pipeline::handle(&*this, req).await)) }
        });
        let client = Tracked::new(client, activity.clone());
        // Header names go on in lower case, as Envoy's and HAProxy's HTTP/1 codecs write them.
        let conn = http1::Builder::new()
            // A client may shut its side and still await the answers.
            .half_close(true)
            // The head timeout is ours: hyper's also runs between requests,
            // and costs a timer per request.
            .header_read_timeout(None)
            .serve_connection(TokioIo::new(client), svc);
        let settings = &self.inputs.settings;
        // An overdue head is logged by `close_when_idle`, in the connection's span.
        if let Some(Err(e)) = close_when_idle(conn, &activity, settings.http_idle_timeout, settings.header_read_timeout, |c| c.graceful_shutdown()).await {
            tracing::debug!(client = %self.client, error = %e, "http egress connection ended with an error");
        }
        let mut tally = self.tally.lock().expect("tally lock").clone();
        (tally.bytes_from_client, tally.bytes_to_client) = activity.bytes();
        tally
    }

    /// The TLS an allowed request goes out with. Steered: mutual TLS to the
    /// gateway when its DestinationRule says so. Allowed: TLS origination
    /// where the DestinationRule of the registered host it matched (a
    /// wildcard says nothing: the request's own host), for the subset a
    /// `mesh` route chose, asks.
    fn upstream_tls(&self, config: &ActiveConfig, verdict: &Verdict, host: Option<&str>) -> Result<Option<Origination>, UpstreamTlsError> {
        match verdict {
            Verdict::Steer { route, target, .. } => Ok(self.inputs.mesh_tls(config, &self.workload, route, target)?),
            Verdict::Allow { matched, subset, .. } => {
                let host = matched.as_ref().map(|m| &*m.host).filter(|h| !h.starts_with('*')).or(host);
                // Port-level settings name the Service's port, the one the
                // pod dialled, not the `targetPort` the request goes to.
                let port = self.orig.0.port();
                match host {
                    Some(h) => Ok(self.inputs.originations.for_destination(config, &self.workload.namespace, h, subset.as_deref(), port)?),
                    None => Ok(None),
                }
            }
            Verdict::Deny { .. } => Ok(None),
        }
    }

    /// The route phase: a denial's 403, or the target, its TLS and the
    /// grant its kept connection stands on.
    fn routed(&self, config: &Arc<ActiveConfig>, (verdict, decided): (Verdict, Decided), req: Request<Incoming>, authority: &Authority) -> Routed<NodePlan> {
        let host = authority.host.as_deref();
        let target = match &verdict {
            Verdict::Deny { reason, .. } => {
                let body = forbidden_body(reason.as_str(), host.unwrap_or("(no host)"));
                return Routed::Answer(text(StatusCode::FORBIDDEN, body, Some(reason.as_str())));
            }
            Verdict::Allow { target, .. } | Verdict::Steer { target, .. } => target.clone(),
        };
        let tls = match self.upstream_tls(config, &verdict, host) {
            Ok(tls) => tls,
            Err(e) => {
                tracing::warn!(error = %e, "TLS origination settings do not load");
                return Routed::Answer(upstream_error(StatusCode::SERVICE_UNAVAILABLE));
            }
        };
        // A kept upstream connection stays while a reload still lets this host reach it (asked
        // as a `GET /`: one kept for a request routed by path or headers may close early, which
        // costs a new connection, never a request).
        let grant = {
            let dns = self.inputs.dns.clone();
            Grant { generation: config.generation, stands: Arc::new(move |c, addr| decided.stands(&c.policy, dns.as_ref(), addr)) }
        };
        Routed::Forward(req.map(incoming), NodePlan { target, tls, grant })
    }
}

impl Role for HttpEgress {
    type Decision = (Verdict, Decided);
    type Plan = NodePlan;

    fn inputs(&self) -> &ProxyInputs {
        &self.inputs
    }

    fn scheme(&self) -> &'static str {
        "http"
    }

    fn tally(&self) -> &Mutex<RequestTally> {
        &self.tally
    }

    fn record(&self, req: &Request<Incoming>, authority: &Authority) -> RequestRecord {
        RequestRecord::new(self.client, self.orig, &self.workload, req, authority.host.clone())
    }

    /// Against the registry and the `mesh` routes, with the request's host.
    fn decide(
        &self,
        config: &Arc<ActiveConfig>,
        _req: &Request<Incoming>,
        authority: &Authority,
        facts: &HttpFacts<'_>,
        record: &mut RequestRecord,
    ) -> (Verdict, Decided) {
        let facts = ConnectionFacts {
            workload: &self.workload,
            client: self.client.0.ip(),
            orig_dst: self.orig.0,
            detected: Detected::Http { host: authority.host.as_deref() },
            request: Some(HttpFacts { ..*facts }),
            pick: pick_percent(),
        };
        let enforcement = self.inputs.enforcement(&self.workload);
        let (verdict, would_deny, decided) = decide_and_keep_enforced(&facts, &config.policy, self.inputs.dns.as_ref(), enforcement);
        match &verdict {
            Verdict::Deny { reason, matched } => record.deny(*reason, matched.clone()),
            Verdict::Allow { matched, reason, .. } => match &would_deny {
                Some(would) => record.would_deny(would),
                None => record.allow(*reason, matched.clone()),
            },
            Verdict::Steer { matched, reason, route, .. } => {
                record.allow(*reason, matched.clone());
                (record.decision, record.route) = (Decision::Steer, Some(route.clone()));
            }
        }
        (verdict, decided)
    }

    /// The policies attached to the ServiceEntry it was decided to.
    fn authorize(&self, config: &Arc<ActiveConfig>, (verdict, _): &(Verdict, Decided), authority: &Authority, http: &AuthzHttp<'_>) -> Option<AuthzOutcome> {
        let matched = match verdict {
            Verdict::Deny { .. } => return None,
            Verdict::Allow { matched, .. } | Verdict::Steer { matched, .. } => matched.as_ref(),
        };
        let authorized = super::authorize::request(&config.policy, &self.workload, self.client.0.ip(), matched, authority.host.as_deref(), self.orig.0.port(), *http)?;
        Some(AuthzOutcome { authorized, enforced: self.inputs.enforcement(&self.workload) == Enforcement::Enforce })
    }

    /// Denied: 403 with the reason. Otherwise the target, and the TLS it
    /// takes; settings that do not load: 503.
    fn route(
        &self,
        config: &Arc<ActiveConfig>,
        decision: (Verdict, Decided),
        req: Request<Incoming>,
        authority: &Authority,
        _record: &mut RequestRecord,
    ) -> impl Future<Output = Routed<NodePlan>> + Send {
        // Nothing here waits: the answer is ready when asked, and the
        // request is not moved into a future of its own.
        std::future::ready(self.routed(config, decision, req, authority))
    }

    /// Over an upstream connection kept per target.
    async fn upstream(&self, plan: &NodePlan, req: Request<Body>, record: &mut RequestRecord) -> Response<Body> {
        let upstream = Upstream::Target(plan.target.clone());
        match self.upstreams.send(self.inputs.dialer(), &upstream, plan.tls.clone(), Reuse::default(), req, plan.grant.clone()).await {
            Ok((resp, addr)) => {
                record.upstream = Some(addr);
                resp
            }
            Err(status) => upstream_error(status),
        }
    }

    /// The upstream's answer, as it is.
    fn respond(&self, _plan: NodePlan, resp: Response<Body>, _record: &mut RequestRecord) -> Response<Body> {
        resp
    }
}

fn upstream_error(status: StatusCode) -> Response<Body> {
    text(status, format!("upstream {}\n", status.canonical_reason().unwrap_or("error")), None)
}
