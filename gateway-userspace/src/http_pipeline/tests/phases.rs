use hyper::Request;

use super::super::{Authority, RequestTally, facts, header_lookup};
use crate::{
    access_log::{Decision, RequestRecord},
    policy::WorkloadIdentity,
    transport::addrs::{ClientAddr, OrigDstAddr, UpstreamAddr},
};

#[test]
fn the_authority_is_the_absolute_uris_else_the_host_header() {
    let absolute = Request::builder().uri("http://API.Example.test:8080/a").header("host", "other.test").body(()).unwrap();
    let a = Authority::of(&absolute);
    assert_eq!(a.authority.as_deref(), Some("API.Example.test:8080"));
    assert_eq!(a.host.as_deref(), Some("api.example.test"), "no port, lower case");
    let origin_form = Request::builder().uri("/a").header("host", "Other.test:81").body(()).unwrap();
    let a = Authority::of(&origin_form);
    assert_eq!((a.authority.as_deref(), a.host.as_deref()), (Some("Other.test:81"), Some("other.test")));
    let none = Request::builder().uri("/a").body(()).unwrap();
    let a = Authority::of(&none);
    assert_eq!((a.authority, a.host.as_deref(), Authority::default().as_str()), (None, None, ""));
}

#[test]
fn the_facts_are_what_route_matches_read() {
    let req = Request::builder().method("POST").uri("http://api.test/v1/items?page=2").header("x-user", "ada").body(()).unwrap();
    let authority = Authority::of(&req);
    let header = header_lookup(req.headers());
    let f = facts(&req, &authority, "https", &header);
    assert_eq!((f.authority, f.path, f.method, f.query, f.scheme), ("api.test", "/v1/items", "POST", "page=2", "https"));
    assert_eq!((f.header)("x-user").as_deref(), Some("ada"));
    assert_eq!((f.header)("x-missing"), None);
}

#[test]
fn the_tally_keeps_the_first_verdict_counts_denials_and_the_last_upstream() {
    let workload = WorkloadIdentity { namespace: "default".into(), name: Some("client".into()), labels: Default::default(), service_account: None };
    let req = Request::builder().uri("/").body(()).unwrap();
    let record = || {
        RequestRecord::new(
            ClientAddr("198.18.1.2:40000".parse().unwrap()),
            OrigDstAddr("203.0.113.10:80".parse().unwrap()),
            &workload,
            &req,
            Some("api.test".into()),
        )
    };
    let mut tally = RequestTally::default();
    let mut allowed = record();
    allowed.allow("allowed", None);
    allowed.upstream = Some(UpstreamAddr("203.0.113.10:80".parse().unwrap()));
    tally.note(&allowed);
    let mut denied = record();
    denied.deny("no-route", None);
    tally.note(&denied);
    assert_eq!((tally.requests, tally.denied), (2, 1));
    assert_eq!(tally.first.as_ref().map(|f| f.0), Some(Decision::Allow), "the first request stands for the connection");
    assert_eq!(tally.upstream, allowed.upstream, "a denied request reached no upstream");
}
