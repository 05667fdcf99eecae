//! Mutual TLS between node and egress gateway with SPIFFE identities.

use std::sync::Arc;

use rustls::{ClientConfig, ServerConfig};

use super::{IssuedFiles, Pki, connect, failed, ok};
use crate::tls::{
    OriginationSettings, SpiffeId, mesh_client_config, mesh_server_config, origination_config,
    peer_spiffe_id,
};

fn gateway(pki: &Pki, files: &IssuedFiles) -> Arc<ServerConfig> {
    mesh_server_config(&pki.ca.cert, &files.cert, &files.key)
        .unwrap_or_else(|e| panic!("mesh server config: {e}"))
}

fn node(pki: &Pki, files: &IssuedFiles, expected: Option<&SpiffeId>) -> Arc<ClientConfig> {
    mesh_client_config(&pki.ca.cert, &files.cert, &files.key, expected)
        .unwrap_or_else(|e| panic!("mesh client config: {e}"))
}

#[tokio::test]
async fn each_side_reads_the_others_spiffe_id() {
    let mesh = Pki::new("mesh-ok");
    let (gw_files, gw_id) = mesh.workload("istio-system", "egress-gateway");
    let (node_files, node_id) = mesh.workload("istio-system", "node-proxy");
    let out = connect(
        gateway(&mesh, &gw_files),
        "outbound_.443_._.api.example.com",
        node(&mesh, &node_files, Some(&gw_id)),
    )
    .await;
    let client = ok("node", out.client);
    let server = ok("gateway", out.server);
    assert_eq!(peer_spiffe_id(client.peer.as_deref()), Some(gw_id));
    assert_eq!(peer_spiffe_id(server.peer.as_deref()), Some(node_id));
    assert_eq!(
        server.sni.as_deref(),
        Some("outbound_.443_._.api.example.com")
    );
}

#[tokio::test]
async fn any_spiffe_id_is_accepted_when_none_is_expected() {
    let mesh = Pki::new("mesh-any");
    let (gw_files, gw_id) = mesh.workload("istio-system", "egress-gateway");
    let (node_files, _) = mesh.workload("istio-system", "node-proxy");
    let out = connect(
        gateway(&mesh, &gw_files),
        "gw",
        node(&mesh, &node_files, None),
    )
    .await;
    assert_eq!(
        peer_spiffe_id(ok("node", out.client).peer.as_deref()),
        Some(gw_id)
    );
    ok("gateway", out.server);
}

#[tokio::test]
async fn a_client_certificate_of_another_ca_is_refused() {
    let mesh = Pki::new("mesh-ca");
    let other = Pki::new("mesh-other-ca");
    let (gw_files, _) = mesh.workload("istio-system", "egress-gateway");
    let (intruder, _) = other.workload("istio-system", "node-proxy");
    // The intruder trusts the real mesh CA, but its own certificate is not from it.
    let client = mesh_client_config(&mesh.ca.cert, &intruder.cert, &intruder.key, None)
        .unwrap_or_else(|e| panic!("{e}"));
    let out = connect(gateway(&mesh, &gw_files), "gw", client).await;
    let err = failed("gateway", out.server);
    assert!(err.contains("UnknownIssuer"), "{err}");
    failed("node", out.client);
}

#[tokio::test]
async fn a_client_without_certificate_is_refused() {
    let mesh = Pki::new("mesh-nocert");
    let (gw_files, gw_id) = mesh.workload("istio-system", "egress-gateway");
    let client = origination_config(&OriginationSettings {
        ca_certificates: Some(mesh.ca.cert.clone()),
        subject_alt_names: vec![gw_id.uri()],
        ..OriginationSettings::default()
    })
    .unwrap_or_else(|e| panic!("{e}"));
    let out = connect(gateway(&mesh, &gw_files), "gw", client).await;
    let err = failed("gateway", out.server);
    assert!(err.contains("sent no certificates"), "{err}");
    failed("node", out.client);
}

#[tokio::test]
async fn a_client_certificate_without_spiffe_id_is_refused() {
    let mesh = Pki::new("mesh-nospiffe-client");
    let (gw_files, _) = mesh.workload("istio-system", "egress-gateway");
    let anonymous = mesh.client("anonymous");
    let out = connect(
        gateway(&mesh, &gw_files),
        "gw",
        node(&mesh, &anonymous, None),
    )
    .await;
    failed("gateway", out.server);
    failed("node", out.client);
}

#[tokio::test]
async fn an_unexpected_server_identity_is_refused() {
    let mesh = Pki::new("mesh-expected");
    let (gw_files, _) = mesh.workload("istio-system", "egress-gateway");
    let (node_files, _) = mesh.workload("istio-system", "node-proxy");
    let wanted = SpiffeId::new("cluster.local", "istio-system", "other-gateway")
        .unwrap_or_else(|e| panic!("{e}"));
    let out = connect(
        gateway(&mesh, &gw_files),
        "gw",
        node(&mesh, &node_files, Some(&wanted)),
    )
    .await;
    let err = failed("node", out.client);
    assert!(err.contains("NotValidForName"), "{err}");
}

#[tokio::test]
async fn a_gateway_without_spiffe_id_is_refused() {
    let mesh = Pki::new("mesh-nospiffe-server");
    let plain = mesh.server("gw", &["gw"]);
    let (node_files, _) = mesh.workload("istio-system", "node-proxy");
    let out = connect(gateway(&mesh, &plain), "gw", node(&mesh, &node_files, None)).await;
    let err = failed("node", out.client);
    assert!(err.contains("ApplicationVerificationFailure"), "{err}");
}

#[tokio::test]
async fn a_gateway_of_another_ca_is_refused() {
    let mesh = Pki::new("mesh-server-ca");
    let other = Pki::new("mesh-server-other-ca");
    let (impostor, _) = other.workload("istio-system", "egress-gateway");
    let (node_files, _) = mesh.workload("istio-system", "node-proxy");
    let server = mesh_server_config(&other.ca.cert, &impostor.cert, &impostor.key)
        .unwrap_or_else(|e| panic!("{e}"));
    let out = connect(server, "gw", node(&mesh, &node_files, None)).await;
    let err = failed("node", out.client);
    assert!(err.contains("UnknownIssuer"), "{err}");
}

#[test]
fn peer_spiffe_id_needs_a_leaf_with_a_spiffe_uri() {
    assert_eq!(peer_spiffe_id(None), None);
    assert_eq!(peer_spiffe_id(Some(&[])), None);
    let pki = Pki::new("mesh-peer-id");
    let plain = super::leaf_der(&pki.server("plain", &["plain.test"]).cert);
    assert_eq!(peer_spiffe_id(Some(&[plain])), None);
    let garbage = rustls_pki_types::CertificateDer::from(vec![0x30, 0x03, 0x02, 0x01, 0x00]);
    assert_eq!(peer_spiffe_id(Some(&[garbage])), None);
}
