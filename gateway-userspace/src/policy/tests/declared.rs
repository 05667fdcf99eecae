//! Destinations declared opaque TCP, decided by address at accept.

use std::net::IpAddr;

use crate::policy::*;
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
