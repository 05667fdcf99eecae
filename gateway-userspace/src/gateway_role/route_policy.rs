//! What an HTTP route does to a request besides choosing its destination:
//! redirects, fault injection, rewrites, header edits, and when to retry.

use std::time::Duration;

use hyper::{
    HeaderMap, Request, Response, StatusCode,
    header::{HeaderName, HeaderValue},
};

use super::edge_headers::path_and_query;
use crate::{
    config::{
        StringMatch,
        resources::{
            common::HeaderOps,
            http_route::{HttpRoute, Redirect, RedirectPortSelection},
        },
    },
    transport::http_pool::{Body, text},
};

/// An answer sending the client to `location` with `code` (301 when it is
/// not a status).
pub fn redirect_to(location: &str, code: u16) -> Response<Body> {
    let mut resp = text(StatusCode::from_u16(code).unwrap_or(StatusCode::MOVED_PERMANENTLY), String::new(), None);
    if let Ok(v) = HeaderValue::from_str(location) {
        resp.headers_mut().insert(hyper::header::LOCATION, v);
    }
    resp
}

/// Envoy's redirect: each part replaced when given, kept otherwise.
pub fn redirect_location<B>(r: &Redirect, scheme: &str, host: &str, port: u16, req: &Request<B>) -> String {
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

/// `fault.abort`, for the requests `pick` (0..100) selects.
pub fn abort(route: &HttpRoute, pick: f64) -> Option<StatusCode> {
    let a = route.fault.as_ref()?.abort.as_ref()?;
    (pick < a.percentage).then(|| StatusCode::from_u16(a.http_status.unwrap_or(503)).unwrap_or(StatusCode::SERVICE_UNAVAILABLE))
}

/// `fault.delay`, for the requests `pick` (0..100) selects.
pub fn delay(route: &HttpRoute, pick: f64) -> Option<Duration> {
    let d = route.fault.as_ref()?.delay.as_ref()?;
    (pick < d.percentage).then_some(d.fixed_delay)
}

/// `rewrite`: the matched prefix (or the whole path for an exact match)
/// becomes `uri`; `uriRegexRewrite` substitutes; `authority` replaces Host.
pub fn rewrite<B>(req: &mut Request<B>, route: &HttpRoute, matched: Option<&StringMatch>) {
    let Some(rw) = &route.rewrite else { return };
    let path = req.uri().path().to_string();
    let query = req.uri().query().map(|q| format!("?{q}")).unwrap_or_default();
    let new_path = match (&rw.uri, matched, &rw.uri_regex) {
        (Some(to), Some(StringMatch::Prefix(p)), _) if path.starts_with(p.as_str()) => Some(format!("{to}{}", &path[p.len()..])),
        (Some(to), _, _) => Some(to.clone()),
        (None, _, Some((pattern, to))) => Some(pattern.regex().replace_all(&path, to.as_str()).into_owned()),
        _ => None,
    };
    if let Some(p) = new_path {
        let p = if p.starts_with('/') { p } else { format!("/{p}") };
        if let Ok(uri) = format!("{p}{query}").parse() {
            *req.uri_mut() = uri;
        }
    }
    if let Some(authority) = &rw.authority
        && let Ok(v) = HeaderValue::from_str(authority) {
            req.headers_mut().insert(hyper::header::HOST, v);
        }
}

/// `set` replaces, `add` appends, `remove` deletes.
pub fn edit_headers(headers: &mut HeaderMap, ops: &HeaderOps) {
    for name in &ops.remove {
        if let Ok(n) = HeaderName::from_bytes(name.as_bytes()) {
            headers.remove(n);
        }
    }
    for (name, value) in &ops.set {
        if let (Ok(n), Ok(v)) = (HeaderName::from_bytes(name.as_bytes()), HeaderValue::from_str(value)) {
            headers.insert(n, v);
        }
    }
    for (name, value) in &ops.add {
        if let (Ok(n), Ok(v)) = (HeaderName::from_bytes(name.as_bytes()), HeaderValue::from_str(value)) {
            headers.append(n, v);
        }
    }
}

/// Envoy's retry conditions that `retryOn` lists.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RetryOn {
    pub five_xx: bool,
    pub gateway_error: bool,
    pub connect_failure: bool,
    pub reset: bool,
    pub retriable_4xx: bool,
}

impl RetryOn {
    pub fn parse(s: &str) -> Self {
        let mut r = Self::default();
        for c in s.split(',').map(str::trim) {
            match c {
                "5xx" => r.five_xx = true,
                "gateway-error" => r.gateway_error = true,
                "connect-failure" => r.connect_failure = true,
                "reset" => r.reset = true,
                "retriable-4xx" => r.retriable_4xx = true,
                _ => {}
            }
        }
        r
    }

    /// Whether an attempt that ended with `status` (or without a response:
    /// `None`, a connect failure or reset) is tried again.
    pub fn retries(&self, status: Option<StatusCode>) -> bool {
        match status {
            None => self.connect_failure || self.reset || self.five_xx || self.gateway_error,
            Some(s) if s.as_u16() == 409 => self.retriable_4xx,
            Some(s) if matches!(s.as_u16(), 502..=504) => self.gateway_error || self.five_xx,
            Some(s) => s.is_server_error() && self.five_xx,
        }
    }
}
