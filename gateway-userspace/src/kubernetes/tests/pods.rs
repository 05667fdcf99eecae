//! Tests of `pods.rs`.

use crate::kubernetes::pods::*;
use crate::{config::Labels, policy::WorkloadIdentity};

fn pod(ns: &str, labels: &[(&str, &str)]) -> PodIdentity {
    PodIdentity {
        uid: "u".into(),
        workload: WorkloadIdentity {
            namespace: ns.into(),
            name: Some("p".into()),
            labels: std::sync::Arc::new(labels.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()),
            service_account: Some("default".into()),
        },
        ips: vec![],
        host_network: false,
    }
}

#[test]
fn pods_opt_out_by_namespace_or_label() {
    let e = Enrollment { exempt_namespaces: ["kube-system".to_string()].into() };
    assert!(e.opted_out(&pod("kube-system", &[]), None));
    assert!(e.opted_out(&pod("a", &[(DATAPLANE_MODE, "none")]), None));
    let ns: Labels = [(DATAPLANE_MODE.to_string(), "none".to_string())].into();
    assert!(e.opted_out(&pod("a", &[]), Some(&ns)));
    assert!(!e.opted_out(&pod("a", &[(DATAPLANE_MODE, "ambient")]), None));
    assert!(!e.opted_out(&pod("a", &[]), Some(&Labels::new())));
}

#[test]
fn only_namespaces_labelled_audit_true_are_audited() {
    use k8s_openapi::api::core::v1::Namespace;
    let namespace = |name: &str, audit: Option<&str>| {
        let mut ns = Namespace::default();
        ns.metadata.name = Some(name.into());
        ns.metadata.labels = audit.map(|v| [(AUDIT.to_string(), v.to_string())].into());
        std::sync::Arc::new(ns)
    };
    let namespaces = [namespace("audited", Some("true")), namespace("other", Some("false")), namespace("plain", None)];
    let e = Enrollment { exempt_namespaces: Default::default() };
    let pods = NodePods::build(&[], &namespaces, &e);
    assert_eq!(pods.audited_namespaces, ["audited".to_string()].into());
}
