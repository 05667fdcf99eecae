//! Plain HTTP/1 egress: every request on a keep-alive connection is decided
//! on its own Host against the configuration current when it arrives (as
//! Envoy applies a route update to the next request), and allowed requests
//! are forwarded over upstream connections kept per target; a reload closes
//! the kept ones it no longer allows.

use std::{convert::Infallible, sync::Arc, time::Instant};

use http_body_util::BodyExt;
use hyper::{Request, Response, StatusCode, body::Incoming, server::conn::http1, service::service_fn};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use super::{ProxyInputs, deny::forbidden_body, origination::{Origination, UpstreamTlsError}};
use crate::{
    transport::{
        addrs::{ClientAddr, OrigDstAddr, UpstreamAddr},
        counting::{ByteCounts, Counting},
        http_pool::{Body, Grant, Reuse, Upstream, UpstreamPool, text},
        pick_percent,
    },
    access_log::{Decision, RequestRecord},
    policy::{ConnectionFacts, Detected, HttpFacts, RouteChoice, Target, Verdict, WorkloadIdentity, decide_and_keep},
    reload::ActiveConfig,
    sniff::host_without_port,
};

/// One client connection's requests and the upstream connections they use.
pub struct HttpEgress {
    pub inputs: Arc<ProxyInputs>,
    pub workload: WorkloadIdentity,
    pub client: ClientAddr,
    pub orig: OrigDstAddr,
    upstreams: Arc<UpstreamPool>,
    tally: std::sync::Mutex<RequestTally>,
}

/// What the connection's requests came to, for its closing log line.
#[derive(Clone, Debug, Default)]
pub struct RequestTally {
    pub requests: u32,
    pub denied: u32,
    /// The first request's verdict stands for the connection.
    pub first: Option<(Decision, crate::access_log::Reason, Option<crate::policy::MatchedEntry>, Option<RouteChoice>)>,
    pub upstream: Option<UpstreamAddr>,
    /// Bytes read from and written to the client.
    pub bytes_from_client: u64,
    pub bytes_to_client: u64,
}

impl HttpEgress {
    fn mesh_tls(&self, config: &ActiveConfig, route: &RouteChoice, target: &Target) -> Result<Option<Origination>, UpstreamTlsError> {
        Ok(self.inputs.mesh_tls(config, &self.workload, route, target)?)
    }

    /// The origination for an allowed request: by the registered host it
    /// matched (a wildcard says nothing: the request's own host).
    fn originate(
        &self,
        config: &ActiveConfig,
        matched: Option<&crate::policy::MatchedEntry>,
        host: Option<&str>,
        subset: Option<&str>,
        port: u16,
    ) -> Result<Option<Origination>, UpstreamTlsError> {
        let host = matched.map(|m| m.host.as_str()).filter(|h| !h.starts_with('*')).or(host);
        match host {
            Some(h) => Ok(self.inputs.originations.for_destination(config, &self.workload.namespace, h, subset, port)?),
            None => Ok(None),
        }
    }

    pub fn new(inputs: Arc<ProxyInputs>, workload: WorkloadIdentity, client: ClientAddr, orig: OrigDstAddr) -> Arc<Self> {
        Arc::new(Self { inputs, workload, client, orig, upstreams: Default::default(), tally: Default::default() })
    }

    /// Serves the client's requests until it closes; returns the tally.
    pub async fn serve(self: Arc<Self>, client: TcpStream) -> RequestTally {
        let this = self.clone();
        let svc = service_fn(move |req| {
            let this = this.clone();
            async move { Ok::<_, Infallible>(this.handle(req).await) }
        });
        let counts = Arc::new(ByteCounts::default());
        let client = Counting::new(client, counts.clone());
        let conn = http1::Builder::new()
            .preserve_header_case(true)
            // A client may shut its side and still await the answers.
            .half_close(true)
            .timer(hyper_util::rt::TokioTimer::new())
            .header_read_timeout(std::time::Duration::from_secs(30))
            .serve_connection(TokioIo::new(client), svc);
        let mut conn = std::pin::pin!(conn);
        // Each reload, in this connection's own task: close what it no longer allows.
        let mut configs = self.inputs.config.subscribe();
        let served = loop {
            tokio::select! {
                served = conn.as_mut() => break served,
                Ok(()) = configs.changed() => {
                    let config = configs.borrow_and_update().clone();
                    self.upstreams.revoke(config);
                }
            }
        };
        if let Err(e) = served {
            tracing::debug!(client = %self.client, error = %e, "http egress connection ended with an error");
        }
        let mut tally = self.tally.lock().expect("tally lock").clone();
        (tally.bytes_from_client, tally.bytes_to_client) = counts.get();
        tally
    }

    async fn handle(&self, req: Request<Incoming>) -> Response<Body> {
        let started = Instant::now();
        let config = self.inputs.config.current();
        let authority = req
            .uri()
            .authority()
            .map(|a| a.as_str().to_string())
            .or_else(|| req.headers().get(hyper::header::HOST).and_then(|h| h.to_str().ok()).map(str::to_string));
        let host = authority.as_deref().map(|a| host_without_port(a).to_ascii_lowercase());
        let (verdict, decided) = {
            let path = req.uri().path().to_string();
            let headers = req.headers();
            let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_string);
            let request =
                HttpFacts {
                authority: authority.as_deref().unwrap_or(""),
                path: &path,
                method: req.method().as_str(),
                query: req.uri().query().unwrap_or(""),
                scheme: "http",
                header: &header,
            };
            let facts = ConnectionFacts {
                workload: &self.workload,
                client: self.client.0.ip(),
                orig_dst: self.orig.0,
                detected: Detected::Http { host: host.as_deref() },
                request: Some(request),
                pick: pick_percent(),
            };
            decide_and_keep(&facts, &config.policy, self.inputs.dns.as_ref())
        };
        // A kept upstream connection stays while a reload still lets this host reach it (asked
        // as a `GET /`: one kept for a request routed by path or headers may close early, which
        // costs a new connection, never a request).
        let grant = {
            let dns = self.inputs.dns.clone();
            Grant { generation: config.generation, stands: Arc::new(move |c, addr| decided.stands(&c.policy, dns.as_ref(), addr)) }
        };
        let mut record = RequestRecord::new(self.client, self.orig, &self.workload, &req, host.clone());
        let response = match &verdict {
            Verdict::Deny { reason, matched } => {
                record.deny(*reason, matched.clone());
                let body = forbidden_body(reason.as_str(), host.as_deref().unwrap_or("(no host)"));
                text(StatusCode::FORBIDDEN, body, Some(reason.as_str()))
            }
            Verdict::Allow { target, matched, reason, .. } | Verdict::Steer { target, matched, reason, .. } => {
                record.allow(*reason, matched.clone());
                if let Verdict::Steer { route, .. } = &verdict {
                    (record.decision, record.route) = (Decision::Steer, Some(route.clone()));
                }
                // Steered: mutual TLS to the gateway when its DestinationRule says so.
                // Allowed: TLS origination where its DestinationRule (for the subset a
                // `mesh` route chose) asks.
                let tls = match &verdict {
                    Verdict::Steer { route, .. } => self.mesh_tls(&config, route, target),
                    Verdict::Allow { subset, .. } => self.originate(&config, matched.as_ref(), host.as_deref(), subset.as_deref(), target.port()),
                    Verdict::Deny { .. } => Ok(None),
                };
                let forwarded = match tls {
                    Ok(tls) => {
                        let upstream = Upstream::Target(target.clone());
                        self.upstreams.send(self.inputs.dialer(), &upstream, tls, Reuse::default(), req.map(|b| b.boxed()), grant).await
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "TLS origination settings do not load");
                        Err(StatusCode::SERVICE_UNAVAILABLE)
                    }
                };
                match forwarded {
                    Ok((resp, upstream)) => {
                        record.upstream = Some(upstream);
                        resp
                    }
                    Err(status) => text(status, format!("upstream {}\n", status.canonical_reason().unwrap_or("error")), None),
                }
            }
        };
        record.status = response.status().as_u16();
        record.finish(started.elapsed());
        self.note(&record);
        self.inputs.metrics.record_request(&record);
        self.inputs.access_log.write_request(&record).await;
        response
    }

    fn note(&self, r: &RequestRecord) {
        let mut t = self.tally.lock().expect("tally lock");
        t.requests += 1;
        if r.decision == Decision::Deny {
            t.denied += 1;
        }
        if t.first.is_none() {
            t.first = Some((r.decision, r.reason, r.matched.clone(), r.route.clone()));
        }
        if r.upstream.is_some() {
            t.upstream = r.upstream;
        }
    }

}

