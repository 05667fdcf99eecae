//! What the audit log says was refused: each denied connection or request
//! (or, in audit mode, allowed with `"would":"deny"`) read back as the
//! destination it wanted, grouped by the workload's namespace, with counts
//! and when it was first and last seen.

use std::{
    collections::BTreeMap,
    net::{IpAddr, SocketAddr},
};

use serde_json::Value;

/// How a destination showed itself.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum SeenProtocol {
    /// A TLS ClientHello with an SNI.
    Tls,
    /// An HTTP/1 request with a Host.
    Http,
    /// An HTTP/2 preface with an `:authority`.
    Http2,
    /// No name: opaque TCP, or TLS and HTTP without one.
    Tcp,
}

/// Where a refused call wanted to go.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Destination {
    /// A name (SNI, Host) on a port.
    Named { host: String, port: u16, protocol: SeenProtocol },
    /// No name: the dialled address.
    Address { addr: SocketAddr },
}

/// How often, and when, something was seen.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Seen {
    pub count: u64,
    /// RFC 3339 times as the log wrote them, which sort as text.
    pub first: String,
    pub last: String,
    /// The deny reasons given, with their counts.
    pub reasons: BTreeMap<String, u64>,
}

impl Seen {
    fn add(&mut self, time: &str, reason: &str) {
        self.count += 1;
        if self.first.is_empty() || (!time.is_empty() && time < self.first.as_str()) {
            self.first = time.to_string();
        }
        if time > self.last.as_str() {
            self.last = time.to_string();
        }
        *self.reasons.entry(reason.to_string()).or_default() += 1;
    }

    /// Both together: counts added, the earliest first and latest last.
    pub fn merge(&mut self, other: &Seen) {
        self.count += other.count;
        if self.first.is_empty() || (!other.first.is_empty() && other.first < self.first) {
            self.first.clone_from(&other.first);
        }
        if other.last > self.last {
            self.last.clone_from(&other.last);
        }
        for (r, n) in &other.reasons {
            *self.reasons.entry(r.clone()).or_default() += n;
        }
    }
}

/// Everything refused, by namespace and destination; and what each
/// namespace was allowed to, by registered host (for its Sidecar).
#[derive(Debug, Default)]
pub struct Observed {
    pub denied: BTreeMap<String, BTreeMap<Destination, Seen>>,
    /// Namespace → `namespace/host` of the entries that allowed its calls.
    pub allowed: BTreeMap<String, BTreeMap<String, u64>>,
    /// Lines read, and lines that were not JSON objects.
    pub lines: u64,
    pub unreadable: u64,
    /// At most this many destinations are kept in all (0: no limit); a
    /// refusal of a further one is only counted in `dropped`.
    pub max_destinations: usize,
    pub dropped: u64,
}

impl Observed {
    /// Reads one log line. Lines other than the node's connection and
    /// request events are skipped: DNS refusals (no port), and a gateway
    /// role's lines (what an exit refuses is its own routing, not a missing
    /// entry). A line that is not JSON is counted as unreadable.
    pub fn add_line(&mut self, line: &str, only_namespace: Option<&str>) {
        let line = line.trim();
        if line.is_empty() {
            return;
        }
        self.lines += 1;
        let Ok(v) = serde_json::from_str::<Value>(line) else {
            self.unreadable += 1;
            return;
        };
        self.add_value(&v, only_namespace);
    }

    /// One audit line, already parsed (read back, or as the proxy wrote it).
    pub fn add_value(&mut self, v: &Value, only_namespace: Option<&str>) {
        let Some(namespace) = v["workload"]["namespace"].as_str() else { return };
        if only_namespace.is_some_and(|ns| ns != namespace) || v["role"].as_str().is_some_and(|r| r != "node") {
            return;
        }
        let event = v["event"].as_str().unwrap_or("");
        // An HTTP/1 connection's line sums its requests, which have lines of their own.
        let summary_of_requests = event == "connection" && v["requests"].is_u64();
        if !matches!(event, "connection" | "request") || summary_of_requests {
            return;
        }
        // Audit mode allowed it, but the registry would have refused it.
        let refused = v["decision"] == "deny" || (v["decision"] == "allow" && v["would"] == "deny");
        match v["decision"].as_str() {
            _ if refused => {
                let Some(dest) = destination(v, event) else { return };
                if self.max_destinations > 0 && self.destinations() >= self.max_destinations && !self.holds(namespace, &dest) {
                    self.dropped += 1;
                    return;
                }
                let seen = self.denied.entry(namespace.to_string()).or_default().entry(dest).or_default();
                seen.add(v["time"].as_str().unwrap_or(""), v["reason"].as_str().unwrap_or(""));
            }
            Some("allow" | "steer") => {
                let m = &v["matched"];
                if let (Some(ns), Some(host)) = (m["namespace"].as_str(), m["host"].as_str()) {
                    *self.allowed.entry(namespace.to_string()).or_default().entry(format!("{ns}/{host}")).or_default() += 1;
                }
            }
            _ => {}
        }
    }
}

impl Observed {
    /// Destinations kept, in all namespaces.
    pub fn destinations(&self) -> usize {
        self.denied.values().map(BTreeMap::len).sum()
    }

    fn holds(&self, namespace: &str, dest: &Destination) -> bool {
        self.denied.get(namespace).is_some_and(|d| d.contains_key(dest))
    }

    /// Calls refused (or that would have been), in all namespaces.
    pub fn refused(&self) -> u64 {
        self.denied.values().flat_map(|d| d.values()).map(|s| s.count).sum()
    }
}

/// The destination of a denied line; `None` for a refusal that is not the
/// registry's (a malformed request, a client that closed first).
fn destination(v: &Value, event: &str) -> Option<Destination> {
    const REGISTRY_REASONS: [&str; 6] =
        ["not-registered", "not-in-sidecar-scope", "port-not-registered", "protocol-mismatch", "ip-name-mismatch", "no-endpoints"];
    if !REGISTRY_REASONS.contains(&v["reason"].as_str()?) {
        return None;
    }
    let addr: SocketAddr = v["orig_dst"].as_str()?.parse().ok()?;
    let addr = SocketAddr::new(canonical(addr.ip()), addr.port());
    let (name, protocol) = match (event, v["protocol"].as_str()) {
        ("request", _) => (v["host"].as_str(), SeenProtocol::Http),
        (_, Some("tls")) => (v["sni"].as_str(), SeenProtocol::Tls),
        (_, Some("http2")) => (v["host"].as_str(), SeenProtocol::Http2),
        (_, Some("http")) => (v["host"].as_str(), SeenProtocol::Http),
        _ => (None, SeenProtocol::Tcp),
    };
    match name.map(host_without_port).filter(|h| is_host_name(h)) {
        Some(host) => Some(Destination::Named { host, port: addr.port(), protocol }),
        None => Some(Destination::Address { addr }),
    }
}

/// An IPv4-mapped IPv6 address as the IPv4 address it is.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// `Host: example.test:8080` names `example.test`; lower case, no final dot.
fn host_without_port(host: &str) -> String {
    let host = match host.rsplit_once(':') {
        Some((h, port)) if !h.contains(':') && port.bytes().all(|b| b.is_ascii_digit()) => h,
        _ => host,
    };
    host.trim_end_matches('.').to_ascii_lowercase()
}

/// A DNS name a ServiceEntry can hold: not an address literal, labels of
/// letters, digits and hyphens.
fn is_host_name(host: &str) -> bool {
    host.parse::<IpAddr>().is_err()
        && !host.starts_with('[')
        && host.len() <= 253
        && host.contains('.')
        && host.split('.').all(|l| {
            !l.is_empty() && l.len() <= 63 && !l.starts_with('-') && !l.ends_with('-') && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
}
