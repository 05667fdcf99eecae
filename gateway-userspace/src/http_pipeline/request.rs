//! The phases both roles share: the request's authority, the facts route
//! matches read, and the record that closes each request.

use std::{sync::Mutex, time::Duration};

use hyper::{HeaderMap, Request, Response};

use crate::{
    access_log::{Decision, Reason, RequestRecord},
    policy::{HttpFacts, MatchedEntry, RouteChoice},
    proxy::ProxyInputs,
    sniff::host_without_port,
    transport::addrs::UpstreamAddr,
};

/// What a request names as its destination.
#[derive(Clone, Debug, Default)]
pub struct Authority {
    /// The absolute URI's (HTTP/1) or `:authority` (HTTP/2) authority, else
    /// the `Host` header, as sent.
    pub authority: Option<String>,
    /// Its host, without the port, in lower case.
    pub host: Option<String>,
}

impl Authority {
    /// The authority phase.
    pub fn of<B>(req: &Request<B>) -> Self {
        let authority = req
            .uri()
            .authority()
            .map(|a| a.as_str().to_string())
            .or_else(|| req.headers().get(hyper::header::HOST).and_then(|h| h.to_str().ok()).map(str::to_string));
        let host = authority.as_deref().map(|a| host_without_port(a).to_ascii_lowercase());
        Authority { authority, host }
    }

    /// The authority, empty when the request names none.
    pub fn as_str(&self) -> &str {
        self.authority.as_deref().unwrap_or("")
    }
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
    /// The last upstream a request reached.
    pub upstream: Option<UpstreamAddr>,
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
    tally.lock().expect("tally lock").note(rec);
    inputs.metrics.record_request(rec);
    inputs.access_log.write_request(rec).await;
}
