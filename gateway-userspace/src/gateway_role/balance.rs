//! Which endpoint a request goes to, by the DestinationRule's
//! `loadBalancer`. The chosen endpoint comes first; the others follow, to be
//! tried in turn should it not accept a connection.

use std::net::{IpAddr, SocketAddr};

use hyper::{HeaderMap, header::HeaderValue};

use super::clusters::Cluster;
use crate::{
    config::resources::destination_rule::{ConsistentHash, LoadBalancer, SimpleLb},
    policy::route_match::query_param,
    transport::random_u64,
};

/// What a request offers a consistent-hash balancer.
pub struct RequestKey<'a> {
    pub headers: &'a HeaderMap,
    pub query: &'a str,
    pub peer: IpAddr,
}

/// The hash input of a request, and the cookie to set when `httpCookie`
/// with a `ttl` finds none (Envoy then makes one up and sets it).
pub fn hash_input(lb: Option<&LoadBalancer>, req: &RequestKey<'_>) -> (Option<String>, Option<HeaderValue>) {
    let Some(hash) = lb.and_then(|l| l.consistent_hash.as_ref()) else { return (None, None) };
    match hash {
        ConsistentHash::HttpHeaderName(name) => (req.headers.get(name.as_str()).and_then(|v| v.to_str().ok()).map(str::to_string), None),
        ConsistentHash::UseSourceIp => (Some(req.peer.to_string()), None),
        ConsistentHash::HttpQueryParameterName(name) => (query_param(req.query, name), None),
        ConsistentHash::HttpCookie { name, path, ttl } => match cookie(req.headers, name) {
            Some(v) => (Some(v), None),
            None => match ttl {
                Some(ttl) if !ttl.is_zero() => {
                    let value = format!("{:016x}", random_u64());
                    let path = path.as_deref().map(|p| format!("; Path={p}")).unwrap_or_default();
                    let set = format!("{name}=\"{value}\"; Max-Age={}{path}; HttpOnly", ttl.as_secs());
                    (Some(value), HeaderValue::from_str(&set).ok())
                }
                _ => (None, None),
            },
        },
    }
}

fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers.get_all(hyper::header::COOKIE).iter().filter_map(|v| v.to_str().ok()).flat_map(|v| v.split(';')).find_map(|c| {
        let (k, v) = c.trim().split_once('=')?;
        (k == name).then(|| v.trim_matches('"').to_string())
    })
}

/// `endpoints` in the order to try them. Istio's default is LEAST_REQUEST.
pub fn order(lb: Option<&LoadBalancer>, mut endpoints: Vec<SocketAddr>, cluster: &Cluster, hash_input: Option<&str>) -> Vec<SocketAddr> {
    let n = endpoints.len();
    if n <= 1 {
        return endpoints;
    }
    let first = match (lb.and_then(|l| l.consistent_hash.as_ref()), hash_input, lb.and_then(|l| l.simple)) {
        (Some(_), Some(input), _) => rendezvous(&endpoints, input),
        // Consistent hash without its key: any endpoint.
        (Some(_), None, _) | (None, _, Some(SimpleLb::Random)) => (random_u64() % n as u64) as usize,
        (None, _, Some(SimpleLb::RoundRobin)) => cluster.next_round_robin() % n,
        (None, _, Some(SimpleLb::Passthrough)) => 0,
        // Power of two choices among the least busy.
        (None, _, _) => {
            let a = (random_u64() % n as u64) as usize;
            let b = (a + 1 + (random_u64() % (n as u64 - 1)) as usize) % n;
            if cluster.active(endpoints[b]) < cluster.active(endpoints[a]) { b } else { a }
        }
    };
    endpoints.rotate_left(first);
    endpoints
}

/// Highest-random-weight hashing: each key keeps its endpoint while the set
/// stays, and only the keys of a removed endpoint move.
fn rendezvous(endpoints: &[SocketAddr], input: &str) -> usize {
    let weight = |e: &SocketAddr| mix(fnv1a(input.as_bytes()) ^ fnv1a(e.to_string().as_bytes()));
    (0..endpoints.len()).max_by_key(|&i| weight(&endpoints[i])).unwrap_or(0)
}

/// Stable across processes, so every replica agrees.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3))
}

fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}
