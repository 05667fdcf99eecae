use hyper::{HeaderMap, header::HeaderValue};

use super::super::cors::*;
use crate::config::resources::http_policy::CorsPolicy;
use crate::config::{StringMatch, resources::common::Pattern};

fn policy() -> CorsPolicy {
    CorsPolicy {
        allow_origins: vec![StringMatch::Exact("https://app.test".into()), StringMatch::Regex(Pattern::whole(r"https://.*\.corp\.test").expect("a valid pattern"))],
        allow_methods: vec!["GET".into(), "POST".into()],
        allow_headers: vec!["x-token".into()],
        expose_headers: vec!["x-trace".into()],
        max_age: Some(std::time::Duration::from_secs(600)),
        allow_credentials: Some(true),
    }
}

fn with_origin(o: &'static str) -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert(hyper::header::ORIGIN, HeaderValue::from_static(o));
    h
}

#[test]
fn origins_match_exactly_or_by_regex() {
    assert!(allowed_origin(&policy(), &with_origin("https://app.test")).is_some());
    assert!(allowed_origin(&policy(), &with_origin("https://x.corp.test")).is_some());
    assert!(allowed_origin(&policy(), &with_origin("https://evil.test")).is_none());
    assert!(allowed_origin(&policy(), &HeaderMap::new()).is_none());
    let any = CorsPolicy { allow_origins: vec![StringMatch::Exact("*".into())], ..policy() };
    assert!(allowed_origin(&any, &with_origin("https://evil.test")).is_some());
}

#[test]
fn a_preflight_answer_lists_what_is_allowed() {
    let resp = preflight(&policy(), HeaderValue::from_static("https://app.test"));
    let h = resp.headers();
    assert_eq!(h[hyper::header::ACCESS_CONTROL_ALLOW_ORIGIN], "https://app.test");
    assert_eq!(h[hyper::header::ACCESS_CONTROL_ALLOW_METHODS], "GET,POST");
    assert_eq!(h[hyper::header::ACCESS_CONTROL_ALLOW_HEADERS], "x-token");
    assert_eq!(h[hyper::header::ACCESS_CONTROL_MAX_AGE], "600");
    assert_eq!(h[hyper::header::ACCESS_CONTROL_ALLOW_CREDENTIALS], "true");
}
