//! Tests of `pods.rs`.

use crate::kubernetes::pods::*;
use crate::{config::Labels, policy::WorkloadIdentity};

fn pod(ns: &str, labels: &[(&str, &str)]) -> PodIdentity {
    PodIdentity {
        uid: "u".into(),
        workload: WorkloadIdentity {
            namespace: ns.into(),
            name: Some("p".into()),
            labels: labels.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
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
