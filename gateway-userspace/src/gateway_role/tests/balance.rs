use std::collections::HashMap;

use std::net::SocketAddr;

use hyper::{HeaderMap, header::HeaderValue};

use super::super::{balance::*, clusters::Cluster};
use crate::config::resources::destination_rule::{ConsistentHash, LoadBalancer, SimpleLb};

fn endpoints() -> Vec<SocketAddr> {
    (10..14).map(|i| SocketAddr::from(([203, 0, 113, i], 8080))).collect()
}

fn lb(simple: Option<SimpleLb>, hash: Option<ConsistentHash>) -> LoadBalancer {
    LoadBalancer { simple, consistent_hash: hash, warmup_duration: None }
}

#[test]
fn round_robin_visits_each_endpoint_in_turn() {
    let c = Cluster::default();
    let rr = lb(Some(SimpleLb::RoundRobin), None);
    let firsts: Vec<SocketAddr> = (0..8).map(|_| order(Some(&rr), endpoints(), &c, None)[0]).collect();
    assert_eq!(firsts[..4], endpoints()[..]);
    assert_eq!(firsts[4..], endpoints()[..]);
}

#[test]
fn least_request_avoids_the_busy_endpoint() {
    let c = std::sync::Arc::new(Cluster::default());
    let busy = endpoints()[0];
    let _held: Vec<_> = (0..5).map(|_| c.start(busy)).collect();
    for _ in 0..200 {
        assert_ne!(order(None, endpoints(), &c, None)[0], busy);
    }
}

#[test]
fn random_and_the_hash_spread_and_the_hash_sticks() {
    let c = Cluster::default();
    let mut seen: HashMap<SocketAddr, u32> = HashMap::new();
    for _ in 0..400 {
        *seen.entry(order(Some(&lb(Some(SimpleLb::Random), None)), endpoints(), &c, None)[0]).or_default() += 1;
    }
    assert!(seen.len() == 4 && seen.values().all(|n| *n > 50), "{seen:?}");
    let hash = lb(None, Some(ConsistentHash::HttpHeaderName("x-user".into())));
    let mut by_key: HashMap<SocketAddr, u32> = HashMap::new();
    for user in 0..200 {
        let key = format!("user-{user}");
        let chosen = order(Some(&hash), endpoints(), &c, Some(&key))[0];
        assert_eq!(order(Some(&hash), endpoints(), &c, Some(&key))[0], chosen, "the same key, the same endpoint");
        *by_key.entry(chosen).or_default() += 1;
        // Removing another endpoint does not move this key.
        let removed = endpoints().into_iter().rev().find(|e| *e != chosen).expect("another endpoint");
        let fewer: Vec<SocketAddr> = endpoints().into_iter().filter(|e| *e != removed).collect();
        assert_eq!(order(Some(&hash), fewer, &c, Some(&key))[0], chosen);
    }
    assert_eq!(by_key.len(), 4, "keys spread over every endpoint: {by_key:?}");
}

#[test]
fn a_missing_cookie_with_a_ttl_is_made_up_and_set() {
    let hash = lb(None, Some(ConsistentHash::HttpCookie { name: "sticky".into(), path: Some("/".into()), ttl: Some(std::time::Duration::from_secs(60)) }));
    let mut headers = HeaderMap::new();
    let req = RequestKey { headers: &headers, query: "", peer: [198, 18, 1, 2].into() };
    let (value, set) = hash_input(Some(&hash), &req);
    let set = set.expect("a cookie to set");
    assert!(set.to_str().unwrap().starts_with(&format!("sticky=\"{}\"; Max-Age=60; Path=/", value.unwrap())));
    headers.insert(hyper::header::COOKIE, HeaderValue::from_static("a=b; sticky=\"abc\""));
    let req = RequestKey { headers: &headers, query: "", peer: [198, 18, 1, 2].into() };
    assert_eq!(hash_input(Some(&hash), &req), (Some("abc".into()), None));
}
