//! The node's per-workload mesh configs: cached, and reloaded when a
//! renewed certificate replaces the files.

use std::sync::Arc;

use crate::{
    policy::WorkloadIdentity,
    proxy::mesh_identity::MeshTls,
    tls::{IssueRequest, SpiffeId, generate_ca, issue},
};

#[test]
fn a_renewed_certificate_replaces_the_cached_config() {
    let dir = std::env::temp_dir().join(format!("mesh-identity-test-{}", std::process::id()));
    let ca = generate_ca(&dir, "mesh CA").unwrap();
    let certs = dir.join("certs");
    let request = IssueRequest {
        name: "shop-app".into(),
        spiffe: Some(SpiffeId::new("cluster.local", "shop", "app").unwrap()),
        client: true,
        ..IssueRequest::default()
    };
    issue(&ca, &certs, &request).unwrap();
    let mesh = MeshTls::new(ca.cert.clone(), None, None, Some(certs.clone()));
    let workload = WorkloadIdentity { service_account: Some("app".into()), ..WorkloadIdentity::unknown("shop") };
    let first = mesh.client_for(&workload).unwrap();
    assert!(Arc::ptr_eq(&first, &mesh.client_for(&workload).unwrap()), "unchanged files: the cached config");
    // Renewal writes new files (new modification times).
    std::thread::sleep(std::time::Duration::from_millis(20));
    issue(&ca, &certs, &request).unwrap();
    let renewed = mesh.client_for(&workload).unwrap();
    assert!(!Arc::ptr_eq(&first, &renewed), "the renewed certificate is loaded");
    let _ = std::fs::remove_dir_all(&dir);
}
