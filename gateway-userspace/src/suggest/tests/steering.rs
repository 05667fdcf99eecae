use std::{collections::BTreeMap, net::SocketAddr, path::Path};

use super::{denied, denied_request, suggest};
use crate::{
    config::{LoadOptions, load_str},
    policy::{ConnectionFacts, Detected, EgressPolicy, NoDns, Verdict, decide},
    suggest::{EgressGateway, PlanOptions},
    test_support::settings,
};

fn options() -> PlanOptions {
    let selector = BTreeMap::from([("istio".to_string(), "egressgateway".to_string())]);
    let gw = EgressGateway::new("istio-system", selector, "cluster.local");
    PlanOptions { egress: Some((gw, vec!["api.example.test".to_string()])), ..PlanOptions::default() }
}

fn proposal() -> String {
    suggest(
        &[
            denied("default", "tls", Some("api.example.test"), "203.0.113.10:443", "t"),
            denied_request("default", "api.example.test", "203.0.113.10:80", "t"),
            denied("default", "tls", Some("direct.example.test"), "203.0.113.10:443", "t"),
        ],
        &options(),
    )
}

#[test]
fn a_steered_host_gets_a_gateway_a_virtual_service_and_a_subset_and_validates_clean() {
    let yaml = proposal();
    for expected in [
        "kind: Gateway",
        "mode: PASSTHROUGH",
        "kind: VirtualService",
        "- mesh",
        "- egress-api-example-test",
        "kind: DestinationRule",
        "host: istio-egressgateway.istio-system.svc.cluster.local",
        "- istio-system",
    ] {
        assert!(yaml.contains(expected), "{expected} missing:\n{yaml}");
    }
    assert_eq!(yaml.matches("kind: Gateway").count(), 1, "only the chosen host is steered:\n{yaml}");
    for labels in [BTreeMap::new(), BTreeMap::from([("istio".to_string(), "egressgateway".to_string())])] {
        let opts = LoadOptions { instance_labels: labels, ..LoadOptions::default() };
        let loaded = load_str(Path::new("/unit-test/suggested.yaml"), &yaml, &opts);
        assert!(loaded.findings.is_empty(), "{yaml}\n{:#?}", loaded.findings);
    }
}

#[test]
fn applied_a_steered_call_goes_to_the_gateway_and_another_goes_direct() {
    let yaml = proposal();
    let snapshot = load_str(Path::new("/unit-test/suggested.yaml"), &yaml, &LoadOptions::default()).snapshot.expect("a snapshot");
    let policy = EgressPolicy::build(snapshot, settings());
    let workload = crate::policy::WorkloadIdentity::unknown("default");
    let ask = |detected| {
        let facts = ConnectionFacts {
            workload: &workload,
            client: "198.18.1.2".parse().unwrap(),
            orig_dst: "203.0.113.10:443".parse::<SocketAddr>().unwrap(),
            detected,
            request: None,
            pick: 0,
        };
        decide(&facts, &policy, &NoDns)
    };
    match ask(Detected::Tls { sni: Some("api.example.test") }) {
        Verdict::Steer { route, .. } => assert_eq!(&*route.destination, "istio-egressgateway.istio-system.svc.cluster.local"),
        other => panic!("expected a steer, got {other:?}"),
    }
    assert!(matches!(ask(Detected::Tls { sni: Some("direct.example.test") }), Verdict::Allow { .. }));
}
