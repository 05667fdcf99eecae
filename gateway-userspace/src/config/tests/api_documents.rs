//! Documents from the Kubernetes API: a broken one falls back to its last good version.

use std::path::PathBuf;

use crate::config::LoadOptions;
use crate::config::api_documents::*;

fn doc(name: &str, host: &str) -> Vec<u8> {
    format!(
        "{{\"apiVersion\": \"networking.istio.io/v1\", \"kind\": \"ServiceEntry\",
              \"metadata\": {{\"name\": \"{name}\", \"namespace\": \"a\"}},
              \"spec\": {{\"hosts\": [\"{host}\"], \"ports\": [{{\"number\": 443, \"name\": \"tls\", \"protocol\": \"TLS\"}}]}}}}"
    )
    .into_bytes()
}

#[test]
fn a_broken_document_falls_back_to_its_last_good_version_and_spares_the_others() {
    let good = doc("one", "one.example.com");
    let broken = doc("one", "not a host!");
    let other = doc("two", "two.example.com");
    let p1 = PathBuf::from("kubernetes:ServiceEntry/a/one");
    let p2 = PathBuf::from("kubernetes:ServiceEntry/a/two");
    let api: ApiDocuments = [(p1.clone(), broken), (p2.clone(), other.clone())].into();
    let last_good: ApiDocuments = [(p1.clone(), good.clone())].into();
    let out = load_with_api(&[], &api, &last_good, &LoadOptions::default()).unwrap();
    assert!(!out.loaded.has_errors(), "{:?}", out.loaded.findings);
    assert_eq!(out.used.get(&p1), Some(&good));
    assert_eq!(out.used.get(&p2), Some(&other));
    assert_eq!(out.rejected.len(), 1);
    assert_eq!(out.rejected[0].0, p1);
    let snapshot = out.loaded.snapshot.unwrap();
    assert_eq!(snapshot.service_entries.len(), 2);

    // Without a last good version, the broken one is simply left out.
    let out = load_with_api(&[], &api, &ApiDocuments::new(), &LoadOptions::default()).unwrap();
    assert_eq!(out.used.len(), 1);
    assert_eq!(out.loaded.snapshot.unwrap().service_entries.len(), 1);
}
