//! The good fixtures load without findings, in every API version, to equal
//! snapshots.

use super::{fixtures, listing, options};
use crate::config::hosts::GatewayRef;
use crate::config::resources::destination_rule::ClientTlsMode;
use crate::config::resources::service_entry::{Location, Resolution};
use crate::config::{LoadOptions, Protocol, ServerTlsMode, load, load_str};
use std::path::PathBuf;
use std::time::Duration;

const VERSIONS: [&str; 3] = ["v1", "v1beta1", "v1alpha3"];

fn load_version(v: &str) -> crate::config::Loaded {
    load(&[fixtures().join("good").join(v)], &options()).expect("fixtures are readable")
}

#[test]
fn every_version_loads_without_findings() {
    for v in VERSIONS {
        let loaded = load_version(v);
        assert!(loaded.findings.is_empty(), "{v}:\n{}", listing(&loaded));
        assert!(loaded.snapshot.is_some());
    }
}

#[test]
fn versions_give_equal_snapshots() {
    let base = load_version("v1").snapshot.unwrap();
    for v in &VERSIONS[1..] {
        let other = load_version(v).snapshot.unwrap();
        assert_eq!(*base, *other, "{v} differs from v1");
        let a = serde_json::to_string(&*base).unwrap();
        let b = serde_json::to_string(&*other).unwrap();
        assert_eq!(a, b);
    }
}

#[test]
fn version_folders_differ_only_in_api_version() {
    let dir = fixtures().join("good");
    let strip = |text: String| -> Vec<String> {
        text.lines()
            .filter(|l| !l.starts_with("apiVersion:"))
            .map(str::to_string)
            .collect()
    };
    for entry in std::fs::read_dir(dir.join("v1")).unwrap() {
        let name = entry.unwrap().file_name();
        let base = strip(std::fs::read_to_string(dir.join("v1").join(&name)).unwrap());
        for v in &VERSIONS[1..] {
            let other = strip(std::fs::read_to_string(dir.join(v).join(&name)).unwrap());
            assert_eq!(base, other, "{v}/{name:?}");
        }
    }
}

#[test]
fn ingress_http_is_normalised() {
    let s = load_version("v1").snapshot.unwrap();
    let gw = s.gateway("default", "hello-gateway").unwrap();
    assert_eq!(gw.servers[0].port.number, 80);
    assert_eq!(gw.servers[0].port.protocol, Protocol::Http);
    assert_eq!(gw.servers[0].hosts[0].host, "hello.com");
    let vs = s
        .virtual_services
        .iter()
        .find(|v| v.meta.name == "hello")
        .unwrap();
    assert_eq!(vs.meta.namespace, "default");
    assert_eq!(
        vs.gateways,
        vec![GatewayRef::Gateway {
            namespace: "default".into(),
            name: "hello-gateway".into()
        }]
    );
    let dest = &vs.http[0].route[0].destination;
    assert_eq!(dest.host, "hello.default.svc.cluster.local");
    assert_eq!(dest.port, Some(80));
}

#[test]
fn https_gateway_has_checked_files_and_expanded_hosts() {
    let s = load_version("v1").snapshot.unwrap();
    let gw = s.gateway("default", "hello-https-gateway").unwrap();
    let tls = gw.servers[0].tls.as_ref().unwrap();
    assert_eq!(tls.mode, ServerTlsMode::Simple);
    let files = tls.files.as_ref().expect("files were checked");
    assert!(
        files.certificate.ends_with("good/certs/hello.crt"),
        "{:?}",
        files.certificate
    );
    assert!(
        !files
            .certificate
            .components()
            .any(|c| c.as_os_str() == "v1")
    );
    let vs = s
        .virtual_services
        .iter()
        .find(|v| v.meta.name == "hello-https")
        .unwrap();
    assert_eq!(
        vs.http[0].route[0].destination.host,
        "hello.default.svc.cluster.local"
    );
    assert_eq!(vs.http[0].timeout, Some(Duration::from_secs(5)));
    assert_eq!(
        vs.http[0].retries.as_ref().unwrap().per_try_timeout,
        Some(Duration::from_secs(2))
    );
    let dr = s
        .destination_rule_for("hello.default.svc.cluster.local", "default")
        .unwrap();
    assert_eq!(dr.subsets.len(), 2);
}

#[test]
fn egress_task_binds_mesh_and_gateway() {
    let s = load_version("v1").snapshot.unwrap();
    let se = &s.service_entries_for("default")[0];
    assert!(s.service_entries.iter().any(|e| e.hosts == ["httpbin.org"]
        && e.location == Location::MeshExternal
        && e.resolution == Resolution::Dns
        && e.ports[0].number == 443));
    assert!(!se.hosts.is_empty());
    let vs = s.virtual_services_for_gateway("default", "egressgateway");
    assert_eq!(vs.len(), 1);
    assert!(vs[0].binds_mesh());
    assert_eq!(vs[0].tls.len(), 2);
    assert!(
        s.virtual_services_for_mesh("default")
            .iter()
            .any(|v| v.meta.name == vs[0].meta.name)
    );
}

#[test]
fn tls_origination_rule_applies() {
    let s = load_version("v1").snapshot.unwrap();
    let dr = s
        .destination_rule_for("api.example.com", "default")
        .unwrap();
    let policy = dr.traffic_policy.as_ref().unwrap();
    assert_eq!(policy.tls.as_ref().unwrap().mode, ClientTlsMode::Simple);
    assert_eq!(
        policy
            .outlier_detection
            .as_ref()
            .unwrap()
            .base_ejection_time,
        Some(Duration::from_secs(60))
    );
}

#[test]
fn summary_counts_resources() {
    let s = load_version("v1").snapshot.unwrap();
    let sum = s.summary();
    assert_eq!(sum.gateways, 3);
    assert_eq!(sum.virtual_services, 4);
    assert_eq!(sum.destination_rules, 3);
    assert_eq!(sum.service_entries, 2);
    assert_eq!(sum.workload_entries, 1);
    assert_eq!(sum.sidecars, 1);
    assert_eq!(sum.authorization_policies, 1);
    assert!(
        sum.to_string()
            .starts_with("3 gateways, 4 virtual services")
    );
}

#[test]
fn default_namespace_comes_from_options() {
    let opts = LoadOptions {
        default_namespace: "bookinfo".into(),
        ..LoadOptions::default()
    };
    let text = "apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata:\n  name: r\nspec:\n  host: reviews\n";
    let loaded = load_str(&PathBuf::from("mem.yaml"), text, &opts);
    let s = loaded.snapshot.unwrap();
    assert_eq!(s.destination_rules[0].meta.namespace, "bookinfo");
    assert_eq!(
        s.destination_rules[0].host,
        "reviews.bookinfo.svc.cluster.local"
    );
}

#[test]
fn other_kinds_are_skipped_with_one_warning() {
    let text =
        "apiVersion: v1\nkind: Service\nmetadata:\n  name: hello\nspec:\n  ports:\n  - port: 80\n";
    let loaded = load_str(&PathBuf::from("svc.yaml"), text, &LoadOptions::default());
    assert_eq!(loaded.findings.len(), 1, "{}", listing(&loaded));
    assert_eq!(loaded.findings[0].code.as_str(), "GW1021");
    assert!(!loaded.has_errors());
    assert!(loaded.snapshot.is_some());
}

#[test]
fn missing_paths_are_errors() {
    let err = load(
        &[PathBuf::from("/nonexistent/istio")],
        &LoadOptions::default(),
    )
    .unwrap_err();
    assert!(matches!(err, crate::config::ConfigError::NotFound { .. }));
}
