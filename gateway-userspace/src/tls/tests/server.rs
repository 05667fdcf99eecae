//! Server configs for TLS termination: client authentication modes, ALPN and
//! protocol versions.

use rustls::ProtocolVersion;

use super::{Pki, build_server, connect, failed, ok, server_settings};
use crate::tls::{
    ClientAuth, OriginationSettings, ServerSettings, TlsError, TlsVersion, origination_config,
    server_config,
};

fn client(pki: &Pki, with_cert: bool, alpn: &[&[u8]]) -> std::sync::Arc<rustls::ClientConfig> {
    let files = with_cert.then(|| pki.client("downstream"));
    origination_config(&OriginationSettings {
        mutual: with_cert,
        ca_certificates: Some(pki.ca.cert.clone()),
        client_certificate: files.as_ref().map(|f| f.cert.clone()),
        private_key: files.as_ref().map(|f| f.key.clone()),
        alpn: alpn.iter().map(|p| p.to_vec()).collect(),
        ..OriginationSettings::default()
    })
    .unwrap_or_else(|e| panic!("client config: {e}"))
}

fn with_client_auth(pki: &Pki, mode: ClientAuth) -> ServerSettings {
    ServerSettings {
        client_ca: Some(pki.ca.cert.clone()),
        client_auth: mode,
        ..server_settings(&pki.server("ingress", &["ingress.test"]))
    }
}

#[tokio::test]
async fn mutual_refuses_a_client_without_certificate() {
    let pki = Pki::new("srv-mutual");
    let server = build_server(&with_client_auth(&pki, ClientAuth::Required));
    let out = connect(server.clone(), "ingress.test", client(&pki, false, &[])).await;
    let err = failed("server", out.server);
    assert!(err.contains("sent no certificates"), "{err}");
    failed("client", out.client);

    let out = connect(server, "ingress.test", client(&pki, true, &[])).await;
    ok("client", out.client);
    assert!(ok("server", out.server).peer.is_some());
}

#[tokio::test]
async fn mutual_refuses_a_client_of_another_ca() {
    let pki = Pki::new("srv-mutual-ca");
    let other = Pki::new("srv-mutual-other");
    let server = build_server(&with_client_auth(&pki, ClientAuth::Required));
    let stranger = other.client("stranger");
    let client = origination_config(&OriginationSettings {
        mutual: true,
        ca_certificates: Some(pki.ca.cert.clone()),
        client_certificate: Some(stranger.cert),
        private_key: Some(stranger.key),
        ..OriginationSettings::default()
    })
    .unwrap_or_else(|e| panic!("{e}"));
    let out = connect(server, "ingress.test", client).await;
    assert!(failed("server", out.server).contains("UnknownIssuer"));
}

#[tokio::test]
async fn optional_mutual_accepts_clients_with_and_without_certificate() {
    let pki = Pki::new("srv-optional");
    let server = build_server(&with_client_auth(&pki, ClientAuth::Optional));
    let out = connect(server.clone(), "ingress.test", client(&pki, false, &[])).await;
    ok("client without cert", out.client);
    assert!(ok("server", out.server).peer.is_none());

    let out = connect(server, "ingress.test", client(&pki, true, &[])).await;
    ok("client with cert", out.client);
    assert!(ok("server", out.server).peer.is_some());
}

#[tokio::test]
async fn alpn_is_negotiated() {
    let pki = Pki::new("srv-alpn");
    let server = build_server(&ServerSettings {
        alpn: vec![b"h2".to_vec(), b"http/1.1".to_vec()],
        ..server_settings(&pki.server("ingress", &["ingress.test"]))
    });
    let out = connect(
        server.clone(),
        "ingress.test",
        client(&pki, false, &[b"http/1.1"]),
    )
    .await;
    assert_eq!(
        ok("client", out.client).alpn.as_deref(),
        Some(&b"http/1.1"[..])
    );
    assert_eq!(
        ok("server", out.server).alpn.as_deref(),
        Some(&b"http/1.1"[..])
    );

    let out = connect(server.clone(), "ingress.test", client(&pki, false, &[])).await;
    assert_eq!(ok("client without ALPN", out.client).alpn, None);

    let out = connect(server, "ingress.test", client(&pki, false, &[b"spdy/3"])).await;
    failed("client offering no common protocol", out.client);
}

#[tokio::test]
async fn version_bounds_are_enforced() {
    let pki = Pki::new("srv-version");
    let files = pki.server("ingress", &["ingress.test"]);
    let cases = [
        (None, None, ProtocolVersion::TLSv1_3),
        (None, Some(TlsVersion::Tls12), ProtocolVersion::TLSv1_2),
        (Some(TlsVersion::Tls13), None, ProtocolVersion::TLSv1_3),
    ];
    for (min_version, max_version, expected) in cases {
        let server = build_server(&ServerSettings {
            min_version,
            max_version,
            ..server_settings(&files)
        });
        let out = connect(server, "ingress.test", client(&pki, false, &[])).await;
        let seen = ok("client", out.client);
        assert_eq!(
            seen.version,
            Some(expected),
            "min {min_version:?} max {max_version:?}"
        );
    }
}

#[tokio::test]
async fn a_tls12_only_server_refuses_a_tls13_only_client() {
    let pki = Pki::new("srv-version-clash");
    let server = build_server(&ServerSettings {
        max_version: Some(TlsVersion::Tls12),
        ..server_settings(&pki.server("ingress", &["ingress.test"]))
    });
    let mut roots = rustls::RootCertStore::empty();
    for cert in crate::tls::load_certs(&pki.ca.cert).unwrap_or_else(|e| panic!("{e}")) {
        roots.add(cert).unwrap_or_else(|e| panic!("{e}"));
    }
    let tls13_only = rustls::ClientConfig::builder_with_provider(super::super::provider())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .unwrap_or_else(|e| panic!("{e}"))
        .with_root_certificates(roots)
        .with_no_client_auth();
    let out = connect(server, "ingress.test", std::sync::Arc::new(tls13_only)).await;
    failed("client", out.client);
    failed("server", out.server);
}

#[test]
fn inconsistent_settings_are_refused() {
    let pki = Pki::new("srv-settings");
    let base = server_settings(&pki.server("ingress", &["ingress.test"]));
    let min_above_max = ServerSettings {
        min_version: Some(TlsVersion::Tls13),
        max_version: Some(TlsVersion::Tls12),
        ..base.clone()
    };
    let auth_without_ca = ServerSettings {
        client_auth: ClientAuth::Required,
        ..base.clone()
    };
    for settings in [min_above_max, auth_without_ca] {
        match server_config(&settings) {
            Err(TlsError::Settings(_)) => {}
            other => panic!("{settings:?} should be refused, got {other:?}"),
        }
    }
    // A client CA without client authentication is simply not used.
    let ca_unused = ServerSettings {
        client_ca: Some(pki.ca.cert.clone()),
        ..base
    };
    server_config(&ca_unused).unwrap_or_else(|e| panic!("{e}"));
}
