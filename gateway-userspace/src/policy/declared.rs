//! What the registry declares about a destination before any byte is read.
//!
//! Istio sniffs only ports whose protocol is not declared: a port declared
//! `TCP` (or `MONGO`, `MYSQL`, `REDIS`, or named `tcp-…`) is proxied as
//! opaque TCP from the first moment, so server-first protocols (MySQL, SMTP,
//! SSH banners) start at once. The same holds here for a destination the
//! registry knows only as such a port.

use std::net::{IpAddr, SocketAddr};

use super::{DnsKnowledge, EgressPolicy, WorkloadIdentity, registry::canonical};

/// Whether every registration of the dialled `ip:port` that this workload
/// sees, by an entry's `addresses` or by a name this gateway's DNS server
/// gave it for that address, declares the port opaque (and there is at
/// least one). Such a connection is decided by address at accept, without
/// waiting for the client's first bytes.
pub fn declared_opaque(policy: &EgressPolicy, workload: &WorkloadIdentity, client: IpAddr, orig_dst: SocketAddr, dns: &dyn DnsKnowledge) -> bool {
    let registry = policy.registry_for(&workload.namespace);
    let (ip, port) = (canonical(orig_dst.ip()), orig_dst.port());
    let mut declared = false;
    let by_address = registry.by_address(ip).into_iter();
    let names = dns.names_for(client, ip);
    let by_name = names.iter().flat_map(|n| registry.by_name(n).into_iter().map(|(svc, _)| svc));
    for svc in by_address.chain(by_name) {
        match svc.port(port) {
            Some(p) if p.declared_opaque => declared = true,
            Some(_) => return false,
            None => {}
        }
    }
    declared
}
