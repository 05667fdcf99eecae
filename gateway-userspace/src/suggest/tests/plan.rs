use super::{denied, denied_request};
use crate::suggest::{Observed, PlanOptions, SeenProtocol, plan};

fn observed(lines: &[String]) -> Observed {
    let mut o = Observed::default();
    lines.iter().for_each(|l| o.add_line(l, None));
    o
}

#[test]
fn one_entry_per_namespace_and_host_with_every_port_seen() {
    let o = observed(&[
        denied("default", "tls", Some("api.example.test"), "203.0.113.10:443", "t1"),
        denied_request("default", "api.example.test", "203.0.113.10:80", "t2"),
        denied("team", "tls", Some("api.example.test"), "203.0.113.10:443", "t3"),
    ]);
    let p = plan(&o, &PlanOptions::default());
    assert_eq!(p.entries.len(), 2);
    let e = &p.entries[0];
    assert_eq!((e.namespace.as_str(), e.name.as_str(), e.resolution), ("default", "api-example-test", "DNS"));
    let ports: Vec<(u16, SeenProtocol)> = e.ports.iter().map(|(n, p, _)| (*n, *p)).collect();
    assert_eq!(ports, [(80, SeenProtocol::Http), (443, SeenProtocol::Tls)]);
    assert_eq!(e.seen().count, 2);
    assert_eq!(p.entries[1].namespace, "team");
}

#[test]
fn calls_without_a_name_become_one_address_entry_per_port() {
    let o = observed(&[
        denied("default", "tcp", None, "203.0.113.12:5432", "t"),
        denied("default", "tcp", None, "203.0.113.13:5432", "t"),
        denied("default", "tcp", None, "203.0.113.12:6379", "t"),
    ]);
    let p = plan(&o, &PlanOptions::default());
    let names: Vec<&str> = p.entries.iter().map(|e| e.name.as_str()).collect();
    assert_eq!(names, ["tcp-5432", "tcp-6379"]);
    assert_eq!(p.entries[0].addresses.len(), 2);
    assert_eq!((p.entries[0].resolution, p.entries[0].hosts[0].as_str()), ("NONE", "tcp-5432.default.external"));
}

#[test]
fn a_wildcard_only_when_asked_and_sidecars_only_when_asked() {
    let lines: Vec<String> =
        ["a", "b", "c"].iter().map(|s| denied("default", "tls", Some(&format!("{s}.example.test")), "203.0.113.10:443", "t")).collect();
    let p = plan(&observed(&lines), &PlanOptions::default());
    assert_eq!(p.entries.len(), 3);
    assert!(p.sidecars.is_empty());
    let p = plan(&observed(&lines), &PlanOptions { wildcard_min: 3, sidecars: true, egress: None });
    assert_eq!(p.entries.len(), 1);
    let e = &p.entries[0];
    assert_eq!((e.hosts[0].as_str(), e.name.as_str(), e.resolution, e.covers.len()), ("*.example.test", "wildcard-example-test", "NONE", 3));
    assert_eq!(p.sidecars[0].hosts, ["./*.example.test"]);
}
