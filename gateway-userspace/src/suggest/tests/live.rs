//! Audit mode's lines read back, and the refusals `/suggest` keeps in
//! memory (`live.rs`), bounded.

use super::{denied, denied_request};
use crate::suggest::{Destination, LiveRefusals, Observed, SeenProtocol};

/// `line` as audit mode writes it: allowed, with `"would":"deny"`.
fn would_deny(line: &str) -> serde_json::Value {
    let mut v: serde_json::Value = serde_json::from_str(line).unwrap();
    v["decision"] = "allow".into();
    v["would"] = "deny".into();
    v
}

#[test]
fn would_deny_lines_count_as_refusals_and_plain_allows_do_not() {
    let mut o = Observed::default();
    o.add_line(&would_deny(&denied("default", "tls", Some("api.example.test"), "203.0.113.10:443", "t")).to_string(), None);
    o.add_line(&would_deny(&denied_request("default", "web.test", "203.0.113.10:80", "t")).to_string(), None);
    let mut allowed = would_deny(&denied("default", "tls", Some("x.example.test"), "203.0.113.10:443", "t"));
    allowed["would"] = serde_json::Value::Null;
    o.add_line(&allowed.to_string(), None);
    let keys: Vec<&Destination> = o.denied["default"].keys().collect();
    assert_eq!(
        keys,
        [
            &Destination::Named { host: "api.example.test".into(), port: 443, protocol: SeenProtocol::Tls },
            &Destination::Named { host: "web.test".into(), port: 80, protocol: SeenProtocol::Http },
        ]
    );
}

#[test]
fn live_refusals_keep_at_most_their_capacity_and_count_the_rest() {
    let live = LiveRefusals::with_capacity(2);
    for host in ["a.example.test", "b.example.test", "a.example.test", "c.example.test"] {
        let line = would_deny(&denied("default", "tls", Some(host), "203.0.113.10:443", "2026-01-01T00:00:00Z"));
        live.observe(&line);
    }
    assert_eq!(live.dropped(), 1, "c is past the limit; a again is kept");
    let yaml = live.render(None).unwrap();
    assert!(yaml.contains("a.example.test") && yaml.contains("b.example.test") && !yaml.contains("c.example.test"), "{yaml}");
    assert!(yaml.contains("# 1 call(s) to further destinations were not kept (at most 2)."), "{yaml}");
}

#[test]
fn live_refusals_render_one_namespace_as_valid_configuration() {
    let live = LiveRefusals::default();
    live.observe(&would_deny(&denied("a", "tls", Some("api.example.test"), "203.0.113.10:443", "t")));
    live.observe(&would_deny(&denied("b", "tcp", None, "203.0.113.12:5432", "t")));
    // An enforced refusal is kept as well.
    let enforced: serde_json::Value = serde_json::from_str(&denied("a", "tls", Some("plain.example.test"), "203.0.113.10:443", "t")).unwrap();
    live.observe(&enforced);
    let only_a = live.render(Some("a")).unwrap();
    assert!(only_a.contains("namespace: a") && !only_a.contains("namespace: b"), "{only_a}");
    assert!(only_a.contains("plain.example.test"), "{only_a}");
    let all = live.render(None).unwrap();
    let snapshot = crate::test_support::snapshot(&all);
    assert_eq!(snapshot.service_entries.len(), 3, "{all}");
}
