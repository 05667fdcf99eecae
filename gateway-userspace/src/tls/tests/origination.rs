//! TLS origination (DestinationRule SIMPLE and MUTUAL) against real servers.

use std::{path::Path, sync::Arc};

use rustls::{ClientConfig, ServerConfig};

use super::{Pki, build_server, connect, failed, leaf_der, ok, server_settings};
use crate::tls::{
    ClientAuth, IssueRequest, OriginationSettings, ServerSettings, TlsError, origination_config,
};

fn simple(ca: &Path) -> OriginationSettings {
    OriginationSettings {
        ca_certificates: Some(ca.to_path_buf()),
        ..OriginationSettings::default()
    }
}

fn plain_server(pki: &Pki, dns: &[&str]) -> Arc<ServerConfig> {
    build_server(&server_settings(&pki.server("upstream", dns)))
}

fn client(s: &OriginationSettings) -> Arc<ClientConfig> {
    origination_config(s).unwrap_or_else(|e| panic!("origination config: {e}"))
}

#[tokio::test]
async fn simple_succeeds_against_a_server_of_the_configured_ca() {
    let pki = Pki::new("orig-ok");
    let server = plain_server(&pki, &["upstream.test"]);
    let out = connect(server, "upstream.test", client(&simple(&pki.ca.cert))).await;
    ok("client", out.client);
    let seen = ok("server", out.server);
    assert_eq!(seen.sni.as_deref(), Some("upstream.test"));
    assert!(
        seen.peer.is_none(),
        "SIMPLE must not present a client certificate"
    );
}

#[tokio::test]
async fn simple_fails_when_the_server_is_of_another_ca() {
    let pki = Pki::new("orig-ca");
    let other = Pki::new("orig-other-ca");
    let server = plain_server(&pki, &["upstream.test"]);
    let out = connect(server, "upstream.test", client(&simple(&other.ca.cert))).await;
    let err = failed("client", out.client);
    assert!(err.contains("upstream.test"), "error names the peer: {err}");
    assert!(err.contains("UnknownIssuer"), "error says why: {err}");
}

#[tokio::test]
async fn sni_is_sent_as_configured_and_verified() {
    let pki = Pki::new("orig-sni");
    let server = plain_server(&pki, &["api.upstream.test"]);
    let settings = OriginationSettings {
        sni: Some("api.upstream.test".into()),
        ..simple(&pki.ca.cert)
    };
    let name = settings.server_name("upstream.internal");
    assert_eq!(name, "api.upstream.test");
    let out = connect(server, name, client(&settings)).await;
    ok("client", out.client);
    assert_eq!(
        ok("server", out.server).sni.as_deref(),
        Some("api.upstream.test")
    );
}

#[tokio::test]
async fn hostname_mismatch_fails_without_subject_alt_names() {
    let pki = Pki::new("orig-host");
    let server = plain_server(&pki, &["upstream.test"]);
    let out = connect(server, "other.test", client(&simple(&pki.ca.cert))).await;
    let err = failed("client", out.client);
    assert!(err.contains("not valid for name \"other.test\""), "{err}");
}

#[tokio::test]
async fn subject_alt_names_match_even_when_the_hostname_differs() {
    let pki = Pki::new("orig-san-ok");
    let server = plain_server(&pki, &["upstream.test", "*.wild.test"]);
    for san in ["upstream.test", "UPSTREAM.test", "a.wild.test"] {
        let settings = OriginationSettings {
            subject_alt_names: vec!["nope.test".into(), san.into()],
            ..simple(&pki.ca.cert)
        };
        let out = connect(server.clone(), "somewhere.else", client(&settings)).await;
        ok(&format!("client with SAN {san}"), out.client);
        assert_eq!(
            ok("server", out.server).sni.as_deref(),
            Some("somewhere.else")
        );
    }
}

#[tokio::test]
async fn subject_alt_names_mismatch_fails_even_when_the_hostname_matches() {
    let pki = Pki::new("orig-san-bad");
    let server = plain_server(&pki, &["upstream.test", "*.wild.test"]);
    for san in ["nope.test", "a.b.wild.test", "spiffe://upstream.test"] {
        let settings = OriginationSettings {
            subject_alt_names: vec![san.into()],
            ..simple(&pki.ca.cert)
        };
        let out = connect(server.clone(), "upstream.test", client(&settings)).await;
        let err = failed(&format!("client with SAN {san}"), out.client);
        assert!(err.contains("NotValidForName"), "{err}");
    }
}

#[tokio::test]
async fn subject_alt_names_match_a_uri_san() {
    let pki = Pki::new("orig-san-uri");
    let (files, id) = pki.workload("payments", "api");
    let server = build_server(&server_settings(&files));
    let settings = OriginationSettings {
        subject_alt_names: vec![id.uri()],
        ..simple(&pki.ca.cert)
    };
    let out = connect(server, "payments.svc", client(&settings)).await;
    ok("client", out.client);
}

#[tokio::test]
async fn an_ip_server_name_is_verified_against_ip_sans_and_sends_no_sni() {
    let pki = Pki::new("orig-ip");
    let files = pki.issue(IssueRequest {
        name: "by-ip".into(),
        ip_addresses: vec!["127.0.0.1".parse().unwrap_or_else(|e| panic!("{e}"))],
        server: true,
        ..IssueRequest::default()
    });
    let server = build_server(&server_settings(&files));
    let out = connect(server, "127.0.0.1", client(&simple(&pki.ca.cert))).await;
    ok("client", out.client);
    assert_eq!(ok("server", out.server).sni, None);
}

#[tokio::test]
async fn mutual_presents_the_client_certificate() {
    let pki = Pki::new("orig-mutual");
    let server_files = pki.server("upstream", &["upstream.test"]);
    let server = build_server(&ServerSettings {
        client_ca: Some(pki.ca.cert.clone()),
        client_auth: ClientAuth::Required,
        ..server_settings(&server_files)
    });
    let client_files = pki.client("egress");
    let settings = OriginationSettings {
        mutual: true,
        client_certificate: Some(client_files.cert.clone()),
        private_key: Some(client_files.key.clone()),
        ..simple(&pki.ca.cert)
    };
    let out = connect(server, "upstream.test", client(&settings)).await;
    ok("client", out.client);
    let peer = ok("server", out.server)
        .peer
        .unwrap_or_else(|| panic!("no client cert seen"));
    assert_eq!(peer.first(), Some(&leaf_der(&client_files.cert)));
}

#[test]
fn mutual_without_a_client_certificate_is_a_settings_error() {
    let pki = Pki::new("orig-mutual-missing");
    let settings = OriginationSettings {
        mutual: true,
        ..simple(&pki.ca.cert)
    };
    match origination_config(&settings) {
        Err(TlsError::Settings(msg)) => assert!(msg.contains("MUTUAL"), "{msg}"),
        other => panic!("expected a settings error, got {other:?}"),
    }
}

#[test]
fn an_invalid_sni_is_refused_when_the_config_is_built() {
    let pki = Pki::new("orig-bad-sni");
    let settings = OriginationSettings {
        sni: Some("not a name".into()),
        ..simple(&pki.ca.cert)
    };
    match origination_config(&settings) {
        Err(TlsError::ServerName(name)) => assert_eq!(name, "not a name"),
        other => panic!("expected a server name error, got {other:?}"),
    }
}

#[tokio::test]
async fn insecure_skip_verify_accepts_an_unknown_ca_and_a_wrong_name() {
    let pki = Pki::new("orig-insecure");
    let server = plain_server(&pki, &["upstream.test"]);
    let settings = OriginationSettings {
        insecure_skip_verify: true,
        ..OriginationSettings::default()
    };
    let out = connect(server, "wrong.test", client(&settings)).await;
    ok("client", out.client);
}

#[tokio::test]
async fn the_system_bundle_does_not_trust_the_test_ca() {
    if !crate::tls::SYSTEM_CA_BUNDLES
        .iter()
        .any(|p| Path::new(p).is_file())
    {
        eprintln!("no system CA bundle on this machine; skipped");
        return;
    }
    let pki = Pki::new("orig-system");
    let server = plain_server(&pki, &["upstream.test"]);
    let out = connect(
        server,
        "upstream.test",
        client(&OriginationSettings::default()),
    )
    .await;
    failed("client", out.client);
}
