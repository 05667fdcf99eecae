use super::{denied, denied_request};
use crate::suggest::{Destination, Observed, SeenProtocol};

#[test]
fn denials_are_grouped_by_namespace_and_destination_with_first_and_last_seen() {
    let mut o = Observed::default();
    for (time, ns) in [("2026-01-02T00:00:00Z", "a"), ("2026-01-01T00:00:00Z", "a"), ("2026-01-03T00:00:00Z", "b")] {
        o.add_line(&denied(ns, "tls", Some("API.Example.test"), "203.0.113.10:443", time), None);
    }
    let a = &o.denied["a"];
    let key = Destination::Named { host: "api.example.test".into(), port: 443, protocol: SeenProtocol::Tls };
    assert_eq!((a[&key].count, a[&key].first.as_str(), a[&key].last.as_str()), (2, "2026-01-01T00:00:00Z", "2026-01-02T00:00:00Z"));
    assert_eq!(a[&key].reasons["not-registered"], 2);
    assert_eq!(o.denied["b"][&key].count, 1);
}

#[test]
fn a_call_without_a_name_is_kept_by_address_and_a_host_loses_its_port() {
    let mut o = Observed::default();
    o.add_line(&denied("default", "tcp", None, "[::ffff:203.0.113.12]:5432", "t"), None);
    o.add_line(&denied("default", "tls", None, "203.0.113.12:8443", "t"), None);
    o.add_line(&denied_request("default", "web.test:8080", "203.0.113.10:8080", "t"), None);
    o.add_line(&denied_request("default", "203.0.113.10", "203.0.113.10:80", "t"), None);
    let keys: Vec<&Destination> = o.denied["default"].keys().collect();
    assert_eq!(
        keys,
        [
            &Destination::Named { host: "web.test".into(), port: 8080, protocol: SeenProtocol::Http },
            &Destination::Address { addr: "203.0.113.10:80".parse().unwrap() },
            &Destination::Address { addr: "203.0.113.12:5432".parse().unwrap() },
            &Destination::Address { addr: "203.0.113.12:8443".parse().unwrap() },
        ]
    );
}

#[test]
fn lines_that_are_not_registry_denials_are_skipped() {
    let mut o = Observed::default();
    o.add_line("not json", None);
    o.add_line("", None);
    o.add_line(r#"{"event":"dns","workload":{"namespace":"default"},"name":"x.test","decision":"deny"}"#, None);
    let malformed = denied("default", "tcp", None, "203.0.113.1:1", "t").replace("not-registered", "malformed-request");
    o.add_line(&malformed, None);
    // An HTTP/1 connection's summary line: its requests have their own lines.
    let summary = denied("default", "http", Some("x.test"), "203.0.113.1:80", "t").replace(r#""bytes_up""#, r#""requests":1,"bytes_up""#);
    o.add_line(&summary, None);
    o.add_line(&denied("other", "tcp", None, "203.0.113.1:1", "t"), Some("default"));
    assert!(o.denied.is_empty(), "{:?}", o.denied);
    assert_eq!((o.lines, o.unreadable), (5, 1));
}

#[test]
fn allowed_calls_record_the_entry_that_allowed_them() {
    let mut o = Observed::default();
    let line = denied("default", "tls", Some("web.test"), "203.0.113.10:443", "t")
        .replace(r#""decision":"deny""#, r#""decision":"allow""#)
        .replace(r#""matched":null"#, r#""matched":{"kind":"ServiceEntry","namespace":"shared","name":"web","host":"web.test"}"#);
    o.add_line(&line, None);
    assert_eq!(o.allowed["default"]["shared/web.test"], 1);
    assert!(o.denied.is_empty());
}
