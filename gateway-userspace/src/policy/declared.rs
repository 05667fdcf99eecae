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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{policy::NoDns, test_support::policy};

    const YAML: &str = "apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: db, namespace: default}
spec:
  hosts: [db.test]
  addresses: [203.0.113.20/32]
  ports:
  - {number: 3306, name: db, protocol: MYSQL}
  - {number: 25, name: tcp-smtp}
  - {number: 7, name: echo}
  - {number: 443, name: https, protocol: HTTPS}
  resolution: NONE
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: shared, namespace: default}
spec:
  hosts: [shared.test]
  addresses: [203.0.113.0/24]
  ports: [{number: 25, name: http-smtp, protocol: HTTP}]
  resolution: NONE
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: learned, namespace: default}
spec:
  hosts: [learned.test]
  ports: [{number: 5432, name: pg, protocol: TCP}]
  resolution: DNS
";

    struct Told(&'static str);

    impl DnsKnowledge for Told {
        fn answered(&self, _: IpAddr, name: &str, _: IpAddr) -> bool {
            name == self.0
        }
        fn names_for(&self, _: IpAddr, _: IpAddr) -> Vec<String> {
            vec![self.0.to_string()]
        }
    }

    fn ask(dst: &str, dns: &dyn DnsKnowledge) -> bool {
        let policy = policy(YAML);
        let client: IpAddr = "198.18.1.2".parse().unwrap();
        let workload = policy.identify(client, None);
        declared_opaque(&policy, &workload, client, dst.parse().unwrap(), dns)
    }

    #[test]
    fn an_address_registered_only_as_opaque_tcp_is_declared() {
        assert!(ask("203.0.113.20:3306", &NoDns), "MYSQL is opaque");
        assert!(!ask("203.0.113.20:443", &NoDns), "HTTPS is sniffed for its SNI");
        assert!(!ask("203.0.113.20:7", &NoDns), "an undeclared protocol is auto-detected");
        assert!(!ask("203.0.113.21:3306", &NoDns), "an unregistered address is sniffed (it may carry a name)");
    }

    #[test]
    fn one_registration_that_is_not_opaque_keeps_sniffing() {
        assert!(!ask("203.0.113.20:25", &NoDns), "tcp-smtp here, but HTTP for the /24 that covers it");
    }

    #[test]
    fn a_name_the_dns_server_gave_for_the_address_counts() {
        assert!(ask("198.51.100.7:5432", &Told("learned.test")));
        assert!(!ask("198.51.100.7:5432", &NoDns));
        assert!(!ask("198.51.100.7:5433", &Told("learned.test")), "another port is not registered");
    }
}
