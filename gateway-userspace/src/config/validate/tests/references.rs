use std::{collections::BTreeMap, path::Path};

use crate::config::{Code, LoadOptions, load_str};

const GATEWAY: &str = "apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: ingress, namespace: default}
spec:
  selector: {istio: ingressgateway}
  servers:
  - port: {number: 80, name: http, protocol: HTTP}
    hosts: ['*']
";

#[test]
fn a_selector_is_checked_against_an_instance_only_when_one_is_named() {
    let no_instance = load_str(Path::new("/unit-test/gw.yaml"), GATEWAY, &LoadOptions::default());
    assert!(no_instance.findings.is_empty(), "{:#?}", no_instance.findings);
    let labels = BTreeMap::from([("istio".to_string(), "egressgateway".to_string())]);
    let other = load_str(Path::new("/unit-test/gw.yaml"), GATEWAY, &LoadOptions { instance_labels: labels, ..LoadOptions::default() });
    let codes: Vec<Code> = other.findings.iter().map(|f| f.code).collect();
    assert_eq!(codes, [Code::SelectorMatchesNothing]);
}

#[test]
fn a_mirror_to_a_subset_no_rule_defines_is_reported() {
    let yaml = "apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews, namespace: default}
spec:
  hosts: [reviews.prod.svc.cluster.local]
  http:
  - route:
    - destination: {host: reviews.prod.svc.cluster.local, subset: v1}
    mirror: {host: reviews.prod.svc.cluster.local, subset: v3}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: reviews, namespace: default}
spec:
  host: reviews.prod.svc.cluster.local
  subsets: [{name: v1, labels: {version: v1}}]
";
    let loaded = load_str(Path::new("/unit-test/vs.yaml"), yaml, &LoadOptions::default());
    let got: Vec<(Code, &str)> = loaded.findings.iter().map(|f| (f.code, f.field.as_str())).collect();
    assert_eq!(got, [(Code::UnknownSubset, "spec.http[0].mirror.subset")], "{:#?}", loaded.findings);
}
