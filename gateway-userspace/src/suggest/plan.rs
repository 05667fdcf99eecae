//! From what was refused to the resources that would allow it: one
//! ServiceEntry per namespace and host (its ports as seen), one per
//! namespace and port for calls that named nothing (their addresses), a
//! wildcard where asked, and optionally each namespace's Sidecar.
//!
//! Every entry is exported to its own namespace only (`exportTo: ["."]`),
//! so applying the proposal lets exactly the workloads that were refused
//! reach what they asked for. A named host resolves by DNS (the gateway
//! connects to its own resolution of the name); a wildcard cannot, so it is
//! `NONE` and admits the addresses the gateway's DNS gave the workload.

use std::{
    collections::{BTreeMap, BTreeSet},
    net::IpAddr,
};

use super::{
    observed::{Destination, Observed, Seen, SeenProtocol},
    steering::{self, EgressGateway},
    wildcard,
};

/// Options of a proposal.
#[derive(Debug, Default, Clone)]
pub struct PlanOptions {
    /// Fold this many subdomains of one domain into a wildcard (0: never).
    pub wildcard_min: usize,
    /// Propose each namespace's Sidecar egress hosts.
    pub sidecars: bool,
    /// Send these hosts through this egress gateway.
    pub egress: Option<(EgressGateway, Vec<String>)>,
}

/// One proposed ServiceEntry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntryPlan {
    pub namespace: String,
    pub name: String,
    pub hosts: Vec<String>,
    /// Address-only entries: the addresses dialled.
    pub addresses: Vec<IpAddr>,
    /// (port, protocol, what was seen on it).
    pub ports: Vec<(u16, SeenProtocol, Seen)>,
    pub resolution: &'static str,
    /// Namespaces that see the entry: its own (`.`), and the egress
    /// gateway's for a steered host.
    pub export_to: Vec<String>,
    /// Hosts a wildcard covers, for the comment.
    pub covers: Vec<String>,
}

impl EntryPlan {
    /// All the port observations together.
    pub fn seen(&self) -> Seen {
        let mut all = Seen::default();
        self.ports.iter().for_each(|(_, _, s)| all.merge(s));
        all
    }
}

/// One proposed Sidecar: the namespace's egress hosts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SidecarPlan {
    pub namespace: String,
    pub hosts: Vec<String>,
}

#[derive(Debug, Default)]
pub struct Plan {
    pub entries: Vec<EntryPlan>,
    pub sidecars: Vec<SidecarPlan>,
    /// Egress gateway resources: (comment, document).
    pub steering: Vec<(String, serde_json::Value)>,
}

pub fn plan(observed: &Observed, opts: &PlanOptions) -> Plan {
    let mut out = Plan::default();
    for (namespace, denied) in &observed.denied {
        let mut names = Names::default();
        let mut named: BTreeMap<String, BTreeMap<u16, (SeenProtocol, Seen)>> = BTreeMap::new();
        let mut unnamed: BTreeMap<u16, (BTreeSet<IpAddr>, Seen)> = BTreeMap::new();
        for (dest, seen) in denied {
            match dest {
                Destination::Named { host, port, protocol } => {
                    let slot = named.entry(host.clone()).or_default().entry(*port).or_insert((*protocol, Seen::default()));
                    // One port, two protocols seen: TLS is the one a name-based entry must admit by SNI;
                    // else the first.
                    if *protocol == SeenProtocol::Tls {
                        slot.0 = SeenProtocol::Tls;
                    }
                    slot.1.merge(seen);
                }
                Destination::Address { addr } => {
                    let slot = unnamed.entry(addr.port()).or_default();
                    slot.0.insert(addr.ip());
                    slot.1.merge(seen);
                }
            }
        }
        let hosts: BTreeSet<String> = named.keys().cloned().collect();
        for (wild, covered) in wildcard::fold(&hosts, opts.wildcard_min) {
            let mut ports: BTreeMap<u16, (SeenProtocol, Seen)> = BTreeMap::new();
            for h in &covered {
                for (port, (proto, seen)) in named.remove(h).unwrap_or_default() {
                    let slot = ports.entry(port).or_insert((proto, Seen::default()));
                    if proto == SeenProtocol::Tls {
                        slot.0 = proto;
                    }
                    slot.1.merge(&seen);
                }
            }
            out.entries.push(EntryPlan {
                namespace: namespace.clone(),
                name: names.take(&wild),
                hosts: vec![wild],
                addresses: Vec::new(),
                ports: ports.into_iter().map(|(p, (proto, s))| (p, proto, s)).collect(),
                resolution: "NONE",
                export_to: vec![".".to_string()],
                covers: covered.into_iter().collect(),
            });
        }
        for (host, ports) in named {
            out.entries.push(EntryPlan {
                namespace: namespace.clone(),
                name: names.take(&host),
                hosts: vec![host],
                addresses: Vec::new(),
                ports: ports.into_iter().map(|(p, (proto, s))| (p, proto, s)).collect(),
                resolution: "DNS",
                export_to: vec![".".to_string()],
                covers: Vec::new(),
            });
        }
        for (port, (addrs, seen)) in unnamed {
            let name = names.take(&format!("tcp-{port}"));
            out.entries.push(EntryPlan {
                namespace: namespace.clone(),
                hosts: vec![format!("{name}.{namespace}.external")],
                name,
                addresses: addrs.into_iter().collect(),
                ports: vec![(port, SeenProtocol::Tcp, seen)],
                resolution: "NONE",
                export_to: vec![".".to_string()],
                covers: Vec::new(),
            });
        }
        if opts.sidecars {
            let mut hosts: BTreeSet<String> =
                out.entries.iter().filter(|e| &e.namespace == namespace).flat_map(|e| e.hosts.iter().map(|h| format!("./{h}"))).collect();
            if let Some(allowed) = observed.allowed.get(namespace) {
                hosts.extend(allowed.keys().map(|h| match h.split_once('/') {
                    Some((ns, host)) if ns == namespace => format!("./{host}"),
                    _ => h.clone(),
                }));
            }
            out.sidecars.push(SidecarPlan { namespace: namespace.clone(), hosts: hosts.into_iter().collect() });
        }
    }
    if let Some((gw, hosts)) = &opts.egress {
        // The gateway decides on the registry too: it must see the entries.
        for e in out.entries.iter_mut().filter(|e| e.hosts.iter().any(|h| hosts.contains(h))) {
            if e.namespace != gw.namespace {
                e.export_to.push(gw.namespace.clone());
            }
        }
        out.steering = steering::resources(&out.entries, hosts, gw);
    }
    out
}

/// Resource names unique within a namespace, made from host names.
#[derive(Default)]
struct Names(BTreeSet<String>);

impl Names {
    fn take(&mut self, from: &str) -> String {
        let base = resource_name(from);
        let name = (1..)
            .map(|n| if n == 1 { base.clone() } else { format!("{}-{n}", &base[..base.len().min(59)]) })
            .find(|n| !self.0.contains(n))
            .unwrap_or(base);
        self.0.insert(name.clone());
        name
    }
}

/// A DNS-1123 label from a host: `*.api.example.com` → `wildcard-api-example-com`.
pub fn resource_name(host: &str) -> String {
    let mapped: String = host
        .replace('*', "wildcard")
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_lowercase() } else { '-' })
        .collect();
    let mut name: String = mapped.split('-').filter(|s| !s.is_empty()).collect::<Vec<_>>().join("-");
    name.truncate(63);
    let name = name.trim_end_matches('-').to_string();
    if name.is_empty() { "suggested".to_string() } else { name }
}
