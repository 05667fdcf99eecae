//! The request line, written directly: one line per HTTP request is the
//! audit log's busiest path, and the derived serialiser escapes every key
//! and formats every address through `fmt`. This writes the same JSON as
//! `RequestRecord`'s `Serialize` (a test holds the two equal, field for
//! field): keys as literals, a string copied whole when it needs no escape,
//! IPv4 addresses digit by digit, straight into the access log's pending
//! buffer. The rare nested parts (an authorization decision) go through
//! `serde_json`.

use std::{io::Write, net::SocketAddr};

use super::{Decision, RequestRecord, joined};
use crate::{
    policy::{MatchedEntry, RouteChoice, WorkloadIdentity},
    transport::addrs::write_ip,
};

/// Appends `r` as one JSON object, without the newline.
pub fn request(o: &mut Vec<u8>, r: &RequestRecord) {
    o.extend_from_slice(b"{\"time\":");
    string(o, r.time.as_str());
    o.extend_from_slice(b",\"event\":");
    string(o, r.event);
    o.extend_from_slice(b",\"role\":");
    string(o, r.role);
    o.extend_from_slice(b",\"src\":");
    address(o, r.src.0);
    o.extend_from_slice(b",\"orig_dst\":");
    address(o, r.orig_dst.0);
    o.extend_from_slice(b",\"workload\":");
    workload(o, &r.workload);
    if let Some(peer) = &r.peer_identity {
        o.extend_from_slice(b",\"peer_identity\":");
        string(o, peer);
    }
    o.extend_from_slice(b",\"method\":");
    string(o, &r.method);
    o.extend_from_slice(b",\"host\":");
    optional(o, r.host.as_deref());
    o.extend_from_slice(b",\"path\":");
    string(o, &r.path);
    o.extend_from_slice(b",\"decision\":");
    decision(o, r.decision);
    if let Some(would) = r.would {
        o.extend_from_slice(b",\"would\":");
        decision(o, would);
    }
    o.extend_from_slice(b",\"reason\":");
    string(o, r.reason.as_str());
    o.extend_from_slice(b",\"matched\":");
    match &r.matched {
        Some(m) => matched(o, m),
        None => o.extend_from_slice(b"null"),
    }
    if let Some(route) = &r.route {
        o.extend_from_slice(b",\"route\":");
        route_choice(o, route);
    }
    if let Some(authz) = &r.authz {
        o.extend_from_slice(b",\"authz\":");
        serde_json::to_writer(&mut *o, authz).expect("an authorization decision serialises");
    }
    if let Some(audited) = &r.audited {
        o.extend_from_slice(b",\"audited\":");
        string(o, audited);
    }
    o.extend_from_slice(b",\"upstream\":");
    match r.upstream {
        Some(u) => address(o, u.0),
        None => o.extend_from_slice(b"null"),
    }
    o.extend_from_slice(b",\"status\":");
    number(o, r.status);
    o.extend_from_slice(b",\"flags\":");
    match r.flags.as_slice() {
        [] => o.extend_from_slice(b"\"-\""),
        flags => string(o, &joined(flags)),
    }
    o.extend_from_slice(b",\"duration_ms\":");
    number(o, r.duration_ms);
    o.push(b'}');
}

fn workload(o: &mut Vec<u8>, w: &WorkloadIdentity) {
    o.extend_from_slice(b"{\"namespace\":");
    string(o, &w.namespace);
    o.extend_from_slice(b",\"name\":");
    optional(o, w.name.as_deref());
    if !w.labels.is_empty() {
        o.extend_from_slice(b",\"labels\":");
        for (i, (k, v)) in w.labels.iter().enumerate() {
            o.push(if i == 0 { b'{' } else { b',' });
            string(o, k);
            o.push(b':');
            string(o, v);
        }
        o.push(b'}');
    }
    o.extend_from_slice(b",\"service_account\":");
    optional(o, w.service_account.as_deref());
    o.push(b'}');
}

/// The fields a matched entry and a route choice open with.
fn resource(o: &mut Vec<u8>, kind: &str, namespace: &str, name: &str) {
    o.extend_from_slice(b"{\"kind\":");
    string(o, kind);
    o.extend_from_slice(b",\"namespace\":");
    string(o, namespace);
    o.extend_from_slice(b",\"name\":");
    string(o, name);
}

fn matched(o: &mut Vec<u8>, m: &MatchedEntry) {
    resource(o, m.kind, &m.namespace, &m.name);
    o.extend_from_slice(b",\"host\":");
    string(o, &m.host);
    o.push(b'}');
}

fn route_choice(o: &mut Vec<u8>, r: &RouteChoice) {
    resource(o, r.kind, &r.namespace, &r.name);
    o.extend_from_slice(b",\"destination\":");
    string(o, &r.destination);
    o.extend_from_slice(b",\"port\":");
    match r.port {
        Some(p) => number(o, p),
        None => o.extend_from_slice(b"null"),
    }
    o.extend_from_slice(b",\"subset\":");
    optional(o, r.subset.as_deref());
    o.push(b'}');
}

fn decision(o: &mut Vec<u8>, d: Decision) {
    o.push(b'"');
    o.extend_from_slice(d.as_str().as_bytes());
    o.push(b'"');
}

fn optional(o: &mut Vec<u8>, s: Option<&str>) {
    match s {
        Some(s) => string(o, s),
        None => o.extend_from_slice(b"null"),
    }
}

/// A JSON string. `serde_json` escapes only `"`, `\` and control
/// characters; a string without them is copied as it is. (The check reads
/// every byte without stopping early, which the compiler vectorises.)
fn string(o: &mut Vec<u8>, s: &str) {
    let escapes = s.bytes().fold(false, |any, b| any | (b < 0x20) | (b == b'"') | (b == b'\\'));
    if !escapes {
        o.push(b'"');
        o.extend_from_slice(s.as_bytes());
        o.push(b'"');
    } else {
        serde_json::to_writer(o, s).expect("a string serialises");
    }
}

fn number(o: &mut Vec<u8>, n: impl itoa::Integer) {
    o.extend_from_slice(itoa::Buffer::new().format(n).as_bytes());
}

/// A socket address as `Display` writes it, quoted.
fn address(o: &mut Vec<u8>, a: SocketAddr) {
    o.push(b'"');
    match a {
        SocketAddr::V4(v4) => {
            write_ip(o, (*v4.ip()).into());
            o.push(b':');
            o.extend_from_slice(itoa::Buffer::new().format(v4.port()).as_bytes());
        }
        SocketAddr::V6(v6) => write!(o, "{v6}").expect("writing to a Vec does not fail"),
    }
    o.push(b'"');
}
