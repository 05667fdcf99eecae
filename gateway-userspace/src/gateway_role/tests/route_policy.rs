use hyper::{Request, StatusCode};

use super::super::route_policy::*;
use crate::config::resources::http_route::{Redirect, RedirectPortSelection};

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

#[test]
fn retry_conditions_follow_envoy() {
    let r = RetryOn::parse("5xx");
    assert!(r.retries(Some(StatusCode::INTERNAL_SERVER_ERROR)) && r.retries(None));
    assert!(!r.retries(Some(StatusCode::CONFLICT)) && !r.retries(Some(StatusCode::OK)));
    let g = RetryOn::parse("gateway-error,retriable-4xx");
    assert!(g.retries(Some(StatusCode::BAD_GATEWAY)) && g.retries(Some(StatusCode::CONFLICT)));
    assert!(!g.retries(Some(StatusCode::INTERNAL_SERVER_ERROR)));
}
