//! The ServiceEntries one namespace sees, indexed for the decision: exact
//! hosts and wildcard suffixes in hash maps, CIDRs by prefix length, so a
//! lookup costs a few hash probes however large the registry.

use std::{
    collections::HashMap,
    net::{IpAddr, SocketAddr},
    sync::Arc,
};

use serde::Serialize;

use crate::config::{
    Protocol, ServiceEntry, Snapshot,
    resources::{
        common::exported_to,
        service_entry::{Address, Resolution, ServicePort},
    },
    values::Cidr,
};

/// How the proxy treats a registered port.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PortProtocol {
    /// HTTP/1, HTTP/2, gRPC: decided by Host / `:authority`.
    Http,
    /// TLS, HTTPS: decided by SNI.
    Tls,
    /// Anything else: decided by address.
    Tcp,
}

/// Whether a port declares an opaque protocol (`TCP`, `MONGO`, `MYSQL`,
/// `REDIS`, or, without a protocol, a name such as `tcp-db`): Istio's
/// explicit protocol selection, under which nothing is sniffed. A port that
/// declares nothing is auto-detected, though it is decided like TCP.
fn declares_opaque(port: &ServicePort) -> bool {
    const OPAQUE: [&str; 4] = ["tcp", "mongo", "mysql", "redis"];
    match port.protocol {
        Some(p) => matches!(p, Protocol::Tcp | Protocol::Mongo | Protocol::Mysql | Protocol::Redis),
        None => {
            let name = port.name.as_deref().unwrap_or("").to_ascii_lowercase();
            OPAQUE.contains(&name.split('-').next().unwrap_or(""))
        }
    }
}

impl PortProtocol {
    /// Istio's protocol, or else its port-name prefix convention (`http-…`).
    fn of(port: &ServicePort) -> Self {
        match port.protocol {
            Some(Protocol::Http | Protocol::Http2 | Protocol::Grpc | Protocol::GrpcWeb | Protocol::HttpProxy) => Self::Http,
            Some(Protocol::Https | Protocol::Tls) => Self::Tls,
            Some(_) => Self::Tcp,
            None => {
                let name = port.name.as_deref().unwrap_or("").to_ascii_lowercase();
                let prefix = name.split('-').next().unwrap_or("");
                match prefix {
                    "http" | "http2" | "grpc" | "grpc-web" => Self::Http,
                    "https" | "tls" => Self::Tls,
                    _ => Self::Tcp,
                }
            }
        }
    }
}

#[derive(Clone, Debug)]
pub struct RegisteredPort {
    pub number: u16,
    pub name: Option<String>,
    pub protocol: PortProtocol,
    /// Declared opaque TCP: connections to it are decided at accept.
    pub declared_opaque: bool,
    pub target_port: Option<u16>,
}

#[derive(Clone, Debug)]
pub struct Endpoint {
    pub ip: IpAddr,
    pub ports: std::collections::BTreeMap<String, u16>,
    pub labels: crate::config::Labels,
}

/// One ServiceEntry as the egress path needs it.
#[derive(Debug)]
pub struct RegisteredService {
    pub namespace: Arc<str>,
    pub name: Arc<str>,
    /// In lower case. Shared with the matched entry a verdict names.
    pub hosts: Vec<Arc<str>>,
    pub addresses: Vec<Cidr>,
    pub ports: Vec<RegisteredPort>,
    pub resolution: Resolution,
    pub endpoints: Vec<Endpoint>,
    export_to: Vec<String>,
}

impl RegisteredService {
    pub fn from_entry(se: &ServiceEntry, snapshot: &Snapshot) -> Self {
        let mut endpoints: Vec<Endpoint> = se
            .endpoints
            .iter()
            .filter_map(|w| match &w.address {
                Some(Address::Ip(ip)) => Some(Endpoint { ip: *ip, ports: w.ports.clone(), labels: w.labels.clone() }),
                _ => None,
            })
            .collect();
        for we in snapshot.workload_entries_for_service_entry(se) {
            if let Some(Address::Ip(ip)) = &we.workload.address {
                endpoints.push(Endpoint { ip: *ip, ports: we.workload.ports.clone(), labels: we.workload.labels.clone() });
            }
        }
        Self {
            namespace: se.meta.namespace.as_str().into(),
            name: se.meta.name.as_str().into(),
            hosts: se.hosts.iter().map(|h| h.to_ascii_lowercase().into()).collect(),
            addresses: se.addresses.clone(),
            ports: se
                .ports
                .iter()
                .map(|p| RegisteredPort {
                    number: p.number,
                    name: p.name.clone(),
                    protocol: PortProtocol::of(p),
                    declared_opaque: declares_opaque(p),
                    target_port: p.target_port,
                })
                .collect(),
            resolution: se.resolution,
            endpoints,
            export_to: se.export_to.clone(),
        }
    }

    pub fn port(&self, number: u16) -> Option<&RegisteredPort> {
        self.ports.iter().find(|p| p.number == number)
    }

    pub fn contains_address(&self, ip: IpAddr) -> bool {
        self.addresses.iter().any(|c| c.contains(ip))
    }

    /// The endpoints' socket addresses for `port`.
    pub fn endpoint_addrs(&self, port: &RegisteredPort) -> Vec<SocketAddr> {
        self.endpoint_addrs_where(port, |_| true)
    }

    /// Those of the endpoints whose labels pass `keep`.
    pub fn endpoint_addrs_where(&self, port: &RegisteredPort, keep: impl Fn(&crate::config::Labels) -> bool) -> Vec<SocketAddr> {
        self.endpoints
            .iter()
            .filter(|e| keep(&e.labels))
            .map(|e| {
                let p = port
                    .name
                    .as_ref()
                    .and_then(|n| e.ports.get(n).copied())
                    .or(port.target_port)
                    .unwrap_or(port.number);
                SocketAddr::new(e.ip, p)
            })
            .collect()
    }

    pub fn matched(&self, host: &Arc<str>) -> MatchedEntry {
        MatchedEntry { kind: "ServiceEntry", namespace: self.namespace.clone(), name: self.name.clone(), host: host.clone() }
    }
}

/// The resource a verdict rests on, for the audit log. Its text is the
/// registry's own, shared: a verdict's entry is cloned into the request's
/// record, its metrics and its connection's tally.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct MatchedEntry {
    pub kind: &'static str,
    pub namespace: Arc<str>,
    pub name: Arc<str>,
    pub host: Arc<str>,
}

/// The ServiceEntries visible from one namespace.
#[derive(Debug, Default)]
pub struct NamespaceRegistry {
    services: Vec<Arc<RegisteredService>>,
    exact: Index<String, Vec<(usize, usize)>>,
    /// `*.example.test` is filed under `example.test`.
    wildcard: Index<String, Vec<(usize, usize)>>,
    /// (prefix length, masked address) per family, longest prefix first.
    cidrs_v4: Vec<(u8, Index<u32, Vec<usize>>)>,
    cidrs_v6: Vec<(u8, Index<u128, Vec<usize>>)>,
}

/// The keys come from the configuration; a request only looks them up, so
/// a fast hash is enough (every decision looks up a name's every suffix).
type Index<K, V> = HashMap<K, V, foldhash::fast::RandomState>;

impl NamespaceRegistry {
    pub fn build(all: &[Arc<RegisteredService>], namespace: &str) -> Self {
        let mut r = Self::default();
        let mut v4: HashMap<u8, Index<u32, Vec<usize>>> = HashMap::new();
        let mut v6: HashMap<u8, Index<u128, Vec<usize>>> = HashMap::new();
        for svc in all.iter().filter(|s| exported_to(&s.export_to, &s.namespace, namespace)) {
            let i = r.services.len();
            r.services.push(svc.clone());
            for (h, host) in svc.hosts.iter().enumerate() {
                match host.strip_prefix("*.") {
                    Some(suffix) => r.wildcard.entry(suffix.to_string()).or_default().push((i, h)),
                    None if &**host == "*" => r.wildcard.entry(String::new()).or_default().push((i, h)),
                    None => r.exact.entry(host.to_string()).or_default().push((i, h)),
                }
            }
            for c in &svc.addresses {
                match c.addr {
                    IpAddr::V4(a) => {
                        let masked = u32::from(a) & mask32(c.prefix);
                        v4.entry(c.prefix).or_default().entry(masked).or_default().push(i);
                    }
                    IpAddr::V6(a) => {
                        let masked = u128::from(a) & mask128(c.prefix);
                        v6.entry(c.prefix).or_default().entry(masked).or_default().push(i);
                    }
                }
            }
        }
        // Own namespace first, as Istio prefers local definitions.
        let own = |list: &mut Vec<(usize, usize)>, services: &[Arc<RegisteredService>]| {
            list.sort_by_key(|(i, _)| &*services[*i].namespace != namespace);
        };
        for list in r.exact.values_mut().chain(r.wildcard.values_mut()) {
            own(list, &r.services);
        }
        r.cidrs_v4 = v4.into_iter().collect();
        r.cidrs_v4.sort_by_key(|c| std::cmp::Reverse(c.0));
        r.cidrs_v6 = v6.into_iter().collect();
        r.cidrs_v6.sort_by_key(|c| std::cmp::Reverse(c.0));
        r
    }

    /// Entries whose hosts match `name`: exact first, then wildcards from the
    /// most specific suffix to `*`. Yields (service, matched host pattern).
    pub fn by_name<'a>(&'a self, name: &str) -> Vec<(&'a RegisteredService, &'a Arc<str>)> {
        let name = name.trim_end_matches('.');
        let name: std::borrow::Cow<str> = if name.bytes().any(|b| b.is_ascii_uppercase()) { name.to_ascii_lowercase().into() } else { name.into() };
        let mut out = Vec::new();
        let mut push = |list: Option<&Vec<(usize, usize)>>| {
            for &(i, h) in list.into_iter().flatten() {
                let svc = &*self.services[i];
                out.push((svc, &svc.hosts[h]));
            }
        };
        push(self.exact.get(&*name));
        let mut rest = &*name;
        while let Some((_, parent)) = rest.split_once('.') {
            push(self.wildcard.get(parent));
            rest = parent;
        }
        push(self.wildcard.get(""));
        out
    }

    /// Entries whose `addresses` contain `ip`, longest prefix first.
    pub fn by_address(&self, ip: IpAddr) -> Vec<&RegisteredService> {
        let mut out = Vec::new();
        match canonical(ip) {
            IpAddr::V4(a) => {
                for (prefix, map) in &self.cidrs_v4 {
                    if let Some(list) = map.get(&(u32::from(a) & mask32(*prefix))) {
                        out.extend(list.iter().map(|&i| &*self.services[i]));
                    }
                }
            }
            IpAddr::V6(a) => {
                for (prefix, map) in &self.cidrs_v6 {
                    if let Some(list) = map.get(&(u128::from(a) & mask128(*prefix))) {
                        out.extend(list.iter().map(|&i| &*self.services[i]));
                    }
                }
            }
        }
        out
    }

    pub fn len(&self) -> usize {
        self.services.len()
    }

    pub fn is_empty(&self) -> bool {
        self.services.is_empty()
    }
}

fn mask32(prefix: u8) -> u32 {
    u32::MAX.checked_shl(32 - u32::from(prefix.min(32))).unwrap_or(0)
}

fn mask128(prefix: u8) -> u128 {
    u128::MAX.checked_shl(128 - u32::from(prefix.min(128))).unwrap_or(0)
}

pub fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_canonical(),
        v4 => v4,
    }
}
