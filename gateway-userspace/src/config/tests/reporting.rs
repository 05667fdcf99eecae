//! Reporting across documents and files: all findings at once, recovery
//! after syntax errors, credential directories, deterministic order.

use super::{fixtures, listing, options};
use crate::config::{Code, LoadOptions, load, load_str};
use std::path::{Path, PathBuf};

fn codes(loaded: &crate::config::Loaded) -> Vec<&'static str> {
    loaded.findings.iter().map(|f| f.code.as_str()).collect()
}

#[test]
fn every_fault_of_a_file_is_reported() {
    let text = "\
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: many
spec:
  hosts: [foo.*.com, ok.com]
  gateways: [missing]
  http:
  - match:
    - uri: {regex: \"(\"}
    route:
    - destination: {host: a}
      weight: 10
    - destination: {host: b}
      weight: 10
    timeout: soon
    retires: {attempts: 2}
---
this: [is broken
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata:
  name: after-the-error
spec:
  host: reviews
  subsets:
  - name: v1
    labels: {version: v1}
";
    let loaded = load_str(Path::new("many.yaml"), text, &LoadOptions::default());
    assert_eq!(
        codes(&loaded),
        [
            "GW1007", "GW2001", "GW1008", "GW1009", "GW1010", "GW1001", "GW1000"
        ],
        "{}",
        listing(&loaded)
    );
    let unknown = &loaded.findings[5];
    assert_eq!((unknown.line, unknown.column), (17, 5));
    assert!(
        unknown.message.contains("did you mean `retries`?"),
        "{}",
        unknown.message
    );
    let syntax = loaded.findings.last().unwrap();
    assert!(syntax.line >= 19, "{syntax}");
    // The document after the broken one was still read: a route to its
    // subset does not produce GW2002.
    let with_ref = format!(
        "{text}---\napiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {{name: r}}\n\
         spec:\n  hosts: [reviews]\n  http:\n  - route:\n    - destination: {{host: reviews, subset: v1}}\n"
    );
    let loaded = load_str(Path::new("many.yaml"), &with_ref, &LoadOptions::default());
    assert!(!codes(&loaded).contains(&"GW2002"), "{}", listing(&loaded));
}

#[test]
fn findings_are_sorted_and_stable() {
    let a = load(&[fixtures().join("broken")], &options()).unwrap();
    let b = load(&[fixtures().join("broken")], &options()).unwrap();
    assert_eq!(a.findings, b.findings);
    let keys: Vec<_> = a
        .findings
        .iter()
        .map(|f| (f.file.clone(), f.line, f.column))
        .collect();
    let mut sorted = keys.clone();
    sorted.sort();
    assert_eq!(keys, sorted);
}

fn scratch_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("gw-config-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

const CREDENTIAL_GATEWAY: &str = "\
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: tls}
spec:
  selector: {istio: ingressgateway}
  servers:
  - port: {number: 443, name: https, protocol: HTTPS}
    hosts: [hello.com]
    tls: {mode: MODE, credentialName: hello-cred}
";

/// A credential directory in a scratch directory named by `tag`, holding
/// `hello-cred/{tls.crt,tls.key}`: (the directory, the credential, the
/// fixture certificates, options naming it).
fn hello_credential(tag: &str) -> (PathBuf, PathBuf, PathBuf, LoadOptions) {
    let dir = scratch_dir(tag);
    let cred = dir.join("hello-cred");
    std::fs::create_dir_all(&cred).unwrap();
    let certs = fixtures().join("good/certs");
    std::fs::copy(certs.join("hello.crt"), cred.join("tls.crt")).unwrap();
    std::fs::copy(certs.join("hello.key"), cred.join("tls.key")).unwrap();
    let opts = LoadOptions {
        credential_dir: Some(dir.clone()),
        ..options()
    };
    (dir, cred, certs, opts)
}

#[test]
fn credential_names_resolve_in_the_credential_directory() {
    let (dir, cred, certs, opts) = hello_credential("creds");

    let simple = CREDENTIAL_GATEWAY.replace("MODE", "SIMPLE");
    let loaded = load_str(Path::new("gw.yaml"), &simple, &opts);
    assert!(loaded.findings.is_empty(), "{}", listing(&loaded));
    let s = loaded.snapshot.unwrap();
    let files = s.gateways[0].servers[0]
        .tls
        .as_ref()
        .unwrap()
        .files
        .clone()
        .unwrap();
    assert_eq!(files.certificate, cred.join("tls.crt"));
    assert_eq!(files.ca_certificates, None);

    let mutual = CREDENTIAL_GATEWAY.replace("MODE", "MUTUAL");
    let loaded = load_str(Path::new("gw.yaml"), &mutual, &opts);
    assert_eq!(codes(&loaded), ["GW1502"], "{}", listing(&loaded));
    assert_eq!(
        loaded.findings[0].field,
        "spec.servers[0].tls.credentialName"
    );

    std::fs::copy(certs.join("hello.crt"), cred.join("ca.crt")).unwrap();
    let loaded = load_str(Path::new("gw.yaml"), &mutual, &opts);
    assert!(loaded.findings.is_empty(), "{}", listing(&loaded));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_rotated_credential_makes_a_different_snapshot_with_the_same_paths() {
    let (dir, cred, _, opts) = hello_credential("rotate");
    let simple = CREDENTIAL_GATEWAY.replace("MODE", "SIMPLE");
    let load = || {
        let loaded = load_str(Path::new("gw.yaml"), &simple, &opts);
        assert!(loaded.findings.is_empty(), "{}", listing(&loaded));
        loaded.snapshot.unwrap()
    };
    let before = load();
    assert_eq!(before, load(), "the same files, the same snapshot");
    // A new certificate and key under the same names.
    let ca = crate::tls::generate_ca(&dir.join("ca"), "rotation CA").unwrap();
    let request = crate::tls::IssueRequest { name: "next".into(), dns_names: vec!["hello.com".into()], server: true, ..Default::default() };
    let next = crate::tls::issue(&ca, &dir.join("next"), &request).unwrap();
    std::fs::copy(&next.cert, cred.join("tls.crt")).unwrap();
    std::fs::copy(&next.key, cred.join("tls.key")).unwrap();
    let after = load();
    let files = |s: &crate::config::Snapshot| s.gateways[0].servers[0].tls.as_ref().unwrap().files.clone().unwrap();
    assert_eq!(files(&before).certificate, files(&after).certificate);
    assert_ne!(before, after, "new contents under the same path are a new configuration");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn directories_are_read_recursively_in_order_skipping_hidden_entries() {
    let dir = scratch_dir("walk");
    std::fs::create_dir_all(dir.join("b/nested")).unwrap();
    std::fs::create_dir_all(dir.join("..data")).unwrap();
    let dr = |name: &str| {
        format!(
            "apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {{name: {name}}}\nspec: {{host: {name}}}\n"
        )
    };
    std::fs::write(dir.join("a.yaml"), dr("a")).unwrap();
    std::fs::write(dir.join("b/nested/c.yml"), dr("c")).unwrap();
    std::fs::write(dir.join("b/ignored.txt"), "not: yaml: at all").unwrap();
    std::fs::write(dir.join("..data/a.yaml"), dr("a")).unwrap();
    let loaded = load(std::slice::from_ref(&dir), &LoadOptions::default()).unwrap();
    assert!(loaded.findings.is_empty(), "{}", listing(&loaded));
    assert_eq!(loaded.snapshot.unwrap().destination_rules.len(), 2);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn scoped_gateway_hosts_limit_which_namespaces_bind() {
    let text = "\
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: gw, namespace: istio-system}
spec:
  selector: {istio: ingressgateway}
  servers:
  - port: {number: 80, name: http, protocol: HTTP}
    hosts: [\"team-a/*.example.com\"]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: b, namespace: team-b}
spec:
  hosts: [app.example.com]
  gateways: [istio-system/gw]
  http:
  - route:
    - destination: {host: app}
";
    let loaded = load_str(Path::new("scoped.yaml"), text, &options());
    assert_eq!(codes(&loaded), ["GW2005"], "{}", listing(&loaded));
    assert_eq!(loaded.findings[0].code, Code::HostNotServed);
    assert!(!loaded.has_errors());
    let fixed = text.replace("team-b", "team-a");
    assert!(
        load_str(Path::new("scoped.yaml"), &fixed, &options())
            .findings
            .is_empty()
    );
}
