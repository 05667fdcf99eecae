//! A route's `corsPolicy`, as Envoy's CORS filter applies it: a preflight
//! from an allowed origin is answered here; other responses to an allowed
//! origin carry the allow headers. Anything else passes unchanged.

use hyper::{HeaderMap, Method, StatusCode, header::HeaderValue};

use crate::{
    config::resources::http_policy::CorsPolicy,
    transport::http_pool::{Body, text},
};

/// The request's `Origin`, when the policy allows it.
pub fn allowed_origin(policy: &CorsPolicy, headers: &HeaderMap) -> Option<HeaderValue> {
    let origin = headers.get(hyper::header::ORIGIN)?;
    let o = origin.to_str().ok()?;
    policy
        .allow_origins
        .iter()
        .any(|m| m.matches("*", false) || m.matches(o, false))
        .then(|| origin.clone())
}

/// Whether the request is a CORS preflight.
pub fn is_preflight(method: &Method, headers: &HeaderMap) -> bool {
    method == Method::OPTIONS && headers.contains_key(hyper::header::ORIGIN) && headers.contains_key(hyper::header::ACCESS_CONTROL_REQUEST_METHOD)
}

/// The answer to a preflight from an allowed origin.
pub fn preflight(policy: &CorsPolicy, origin: HeaderValue) -> hyper::Response<Body> {
    let mut resp = text(StatusCode::OK, String::new(), None);
    let h = resp.headers_mut();
    h.insert(hyper::header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
    let mut put = |name, list: &[String]| {
        if let Ok(v) = HeaderValue::from_str(&list.join(",")) && !list.is_empty() {
            h.insert(name, v);
        }
    };
    put(hyper::header::ACCESS_CONTROL_ALLOW_METHODS, &policy.allow_methods);
    put(hyper::header::ACCESS_CONTROL_ALLOW_HEADERS, &policy.allow_headers);
    if let Some(age) = policy.max_age {
        h.insert(hyper::header::ACCESS_CONTROL_MAX_AGE, HeaderValue::from(age.as_secs()));
    }
    if policy.allow_credentials == Some(true) {
        h.insert(hyper::header::ACCESS_CONTROL_ALLOW_CREDENTIALS, HeaderValue::from_static("true"));
    }
    resp
}

/// The allow headers on a response to an allowed origin.
pub fn decorate(policy: &CorsPolicy, origin: HeaderValue, headers: &mut HeaderMap) {
    headers.insert(hyper::header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
    if policy.allow_credentials == Some(true) {
        headers.insert(hyper::header::ACCESS_CONTROL_ALLOW_CREDENTIALS, HeaderValue::from_static("true"));
    }
    if !policy.expose_headers.is_empty()
        && let Ok(v) = HeaderValue::from_str(&policy.expose_headers.join(","))
    {
        headers.insert(hyper::header::ACCESS_CONTROL_EXPOSE_HEADERS, v);
    }
}
