use std::{net::SocketAddr, path::Path};

use super::{denied, denied_request, suggest};
use crate::{
    config::{LoadOptions, load_str},
    policy::{ConnectionFacts, Detected, EgressPolicy, NoDns, Verdict, decide},
    suggest::PlanOptions,
    test_support::settings,
};

fn lines() -> Vec<String> {
    vec![
        denied("default", "tls", Some("api.example.test"), "203.0.113.10:443", "2026-01-01T00:00:00Z"),
        denied("default", "tls", Some("api.example.test"), "203.0.113.10:443", "2026-01-02T00:00:00Z"),
        denied_request("default", "web.example.test", "203.0.113.10:80", "2026-01-01T00:00:00Z"),
        denied("default", "tcp", None, "203.0.113.12:5432", "2026-01-01T00:00:00Z"),
        denied("team", "tls", Some("a.other.test"), "203.0.113.10:8443", "2026-01-01T00:00:00Z"),
    ]
}

#[test]
fn the_proposal_is_commented_and_loads_with_no_finding() {
    for opts in [PlanOptions::default(), PlanOptions { wildcard_min: 2, sidecars: true, egress: None }] {
        let yaml = suggest(&lines(), &opts);
        let expected = match opts.wildcard_min {
            0 => "# Suggested from the audit log: 2 denied (not-registered 2), first 2026-01-01T00:00:00Z, last 2026-01-02T00:00:00Z",
            _ => "#   port 443 (HTTPS): 2 denied (not-registered 2), first 2026-01-01T00:00:00Z, last 2026-01-02T00:00:00Z",
        };
        assert!(yaml.contains(expected), "{yaml}");
        let loaded = load_str(Path::new("/unit-test/suggested.yaml"), &yaml, &LoadOptions::default());
        assert!(loaded.findings.is_empty(), "{yaml}\n{:#?}", loaded.findings);
    }
}

#[test]
fn protocols_follow_what_was_seen() {
    let yaml = suggest(&lines(), &PlanOptions::default());
    for expected in ["protocol: HTTPS", "name: https-443", "protocol: HTTP\n", "protocol: TCP", "protocol: TLS", "- 203.0.113.12", "resolution: DNS"] {
        assert!(yaml.contains(expected), "{expected} missing:\n{yaml}");
    }
}

/// Applied, the proposal allows every call the log refused, from the
/// namespace that made it and no other; a host never seen stays refused.
#[test]
fn applied_the_proposal_allows_what_was_refused_and_nothing_else() {
    let yaml = suggest(&lines(), &PlanOptions::default());
    let snapshot = load_str(Path::new("/unit-test/suggested.yaml"), &yaml, &LoadOptions::default()).snapshot.expect("a snapshot");
    let policy = EgressPolicy::build(snapshot, settings());
    let ask = |namespace: &str, dst: &str, detected: Detected<'_>| {
        let workload = crate::policy::WorkloadIdentity::unknown(namespace);
        let facts = ConnectionFacts {
            workload: &workload,
            client: "198.18.1.2".parse().unwrap(),
            orig_dst: dst.parse::<SocketAddr>().unwrap(),
            detected,
            request: None,
            pick: 0,
        };
        decide(&facts, &policy, &NoDns)
    };
    let allowed = |v: &Verdict| matches!(v, Verdict::Allow { .. });
    assert!(allowed(&ask("default", "203.0.113.10:443", Detected::Tls { sni: Some("api.example.test") })));
    assert!(allowed(&ask("default", "203.0.113.10:80", Detected::Http { host: Some("web.example.test") })));
    assert!(allowed(&ask("default", "203.0.113.12:5432", Detected::Opaque)));
    assert!(allowed(&ask("team", "203.0.113.10:8443", Detected::Tls { sni: Some("a.other.test") })));
    for (ns, dst, detected) in [
        ("team", "203.0.113.10:443", Detected::Tls { sni: Some("api.example.test") }),
        ("default", "203.0.113.10:443", Detected::Tls { sni: Some("unrelated.test") }),
        ("default", "203.0.113.13:5432", Detected::Opaque),
        ("default", "203.0.113.12:5433", Detected::Opaque),
        ("default", "203.0.113.10:8443", Detected::Tls { sni: Some("api.example.test") }),
    ] {
        assert!(!allowed(&ask(ns, dst, detected)), "{ns} {dst} {detected:?} must stay refused");
    }
}
