//! PEM loading errors, SPIFFE ids, SAN matching, the test PKI and
//! `gateway certs`.

use std::{fs, os::unix::fs::PermissionsExt, path::Path, process::Command};

use super::{Pki, TempDir, leaf_der, server_settings};
use crate::tls::{
    CaFiles, CertsArgs, IssueRequest, SpiffeId, TlsError, certs_command, command::plan, issue,
    load_certs, load_private_key, san, server_config,
};

#[test]
fn a_missing_file_is_a_read_error_naming_the_path() {
    let dir = TempDir::new("pem-missing");
    let path = dir.path().join("absent.crt");
    let err = load_certs(&path)
        .err()
        .unwrap_or_else(|| panic!("loaded a missing file"));
    assert!(matches!(err, TlsError::Read { .. }), "{err:?}");
    assert!(err.to_string().contains("absent.crt"), "{err}");
    assert!(matches!(
        load_private_key(&path),
        Err(TlsError::Read { .. })
    ));
}

#[test]
fn a_file_that_is_not_pem_is_refused_clearly() {
    let dir = TempDir::new("pem-garbage");
    let path = dir.path().join("garbage.pem");
    fs::write(&path, "this is not a certificate\n").unwrap_or_else(|e| panic!("{e}"));
    let err = load_certs(&path)
        .err()
        .unwrap_or_else(|| panic!("loaded garbage"));
    assert!(
        err.to_string().contains("no PEM certificate found"),
        "{err}"
    );
    let err = load_private_key(&path)
        .err()
        .unwrap_or_else(|| panic!("loaded garbage"));
    assert!(
        err.to_string().contains("no PEM private key found"),
        "{err}"
    );

    let broken = dir.path().join("broken.pem");
    fs::write(
        &broken,
        "-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n",
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let err = load_certs(&broken)
        .err()
        .unwrap_or_else(|| panic!("loaded bad base64"));
    assert!(err.to_string().contains("malformed PEM"), "{err}");
}

#[test]
fn a_certificate_file_holds_no_private_key_and_vice_versa() {
    let pki = Pki::new("pem-swapped");
    let files = pki.server("web", &["web.test"]);
    assert!(matches!(
        load_private_key(&files.cert),
        Err(TlsError::Pem { .. })
    ));
    assert!(matches!(load_certs(&files.key), Err(TlsError::Pem { .. })));
}

#[test]
fn a_key_that_is_not_the_certificates_is_refused() {
    let pki = Pki::new("pem-mismatch");
    let a = pki.server("a", &["a.test"]);
    let b = pki.server("b", &["b.test"]);
    let settings = crate::tls::ServerSettings {
        key: b.key.clone(),
        ..server_settings(&a)
    };
    let err = server_config(&settings)
        .err()
        .unwrap_or_else(|| panic!("mismatch accepted"));
    assert!(matches!(err, TlsError::KeyMismatch { .. }), "{err:?}");
    let text = err.to_string();
    assert!(text.contains("b.key") && text.contains("a.crt"), "{text}");
}

#[test]
fn spiffe_ids_round_trip() {
    let uri = "spiffe://cluster.local/ns/istio-system/sa/egress-gateway_v1.2";
    let id = SpiffeId::parse(uri).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(id.trust_domain, "cluster.local");
    assert_eq!(id.namespace, "istio-system");
    assert_eq!(id.service_account, "egress-gateway_v1.2");
    assert_eq!(id.uri(), uri);
    assert_eq!(id.to_string(), uri);
    assert_eq!(uri.parse::<SpiffeId>().ok(), Some(id));
}

#[test]
fn malformed_spiffe_ids_are_refused() {
    let bad = [
        "",
        "cluster.local/ns/a/sa/b",
        "https://cluster.local/ns/a/sa/b",
        "SPIFFE://cluster.local/ns/a/sa/b",
        "spiffe://",
        "spiffe://cluster.local",
        "spiffe://cluster.local/",
        "spiffe:///ns/a/sa/b",
        "spiffe://Cluster.local/ns/a/sa/b",
        "spiffe://cluster.local:8080/ns/a/sa/b",
        "spiffe://user@cluster.local/ns/a/sa/b",
        "spiffe://cluster.local/ns/a/sa/b/",
        "spiffe://cluster.local/ns/a/sa/b/extra",
        "spiffe://cluster.local/ns//sa/b",
        "spiffe://cluster.local/ns/a/sa/",
        "spiffe://cluster.local/ns/../sa/b",
        "spiffe://cluster.local/ns/a/sa/b?x=1",
        "spiffe://cluster.local/ns/a/sa/b#frag",
        "spiffe://cluster.local/ns/a%20b/sa/b",
        "spiffe://cluster.local/sa/b/ns/a",
        "spiffe://cluster.local/workload/a",
    ];
    for uri in bad {
        match SpiffeId::parse(uri) {
            Err(TlsError::Spiffe { uri: got, .. }) => assert_eq!(got, uri),
            other => panic!("{uri:?} should be refused, got {other:?}"),
        }
    }
    let long = format!("spiffe://cluster.local/ns/{}/sa/b", "a".repeat(2100));
    assert!(SpiffeId::parse(&long).is_err());
}

#[test]
fn san_matching_follows_istio_rules() {
    let sans = vec![
        san::San::Dns("api.example.com".into()),
        san::San::Dns("*.wild.example.com".into()),
        san::San::Uri("spiffe://cluster.local/ns/a/sa/b".into()),
        san::San::Ip("10.0.0.7".parse().unwrap_or_else(|e| panic!("{e}"))),
    ];
    let matching = [
        "api.example.com",
        "API.Example.com",
        "api.example.com.",
        "x.wild.example.com",
        "spiffe://cluster.local/ns/a/sa/b",
        "10.0.0.7",
    ];
    let not_matching = [
        "example.com",
        "wild.example.com",
        "a.b.wild.example.com",
        "*.wild.example.com.evil",
        "spiffe://cluster.local/ns/a/sa/c",
        "SPIFFE://cluster.local/ns/a/sa/b",
        "10.0.0.8",
        "",
    ];
    for wanted in matching {
        assert!(san::any_matches(&sans, wanted), "{wanted} should match");
    }
    for wanted in not_matching {
        assert!(
            !san::any_matches(&sans, wanted),
            "{wanted} should not match"
        );
    }
}

#[test]
fn issued_certificates_carry_what_was_asked_and_keys_are_private() {
    let pki = Pki::new("pki-files");
    let (files, id) = pki.workload("payments", "api");
    let certs = load_certs(&files.cert).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(certs.len(), 1, "the .crt holds the leaf only");
    let sans = san::sans(&certs[0]).unwrap_or_else(|| panic!("leaf does not parse"));
    assert_eq!(sans, vec![san::San::Uri(id.uri())]);
    for key in [&files.key, &pki.ca.key] {
        let mode = fs::metadata(key).map(|m| m.permissions().mode() & 0o777);
        assert_eq!(mode.ok(), Some(0o600), "{}", key.display());
    }
    let ca_key_matches = server_config(&crate::tls::ServerSettings {
        cert: pki.ca.cert.clone(),
        key: pki.ca.key.clone(),
        ..server_settings(&files)
    });
    assert!(ca_key_matches.is_ok(), "ca.key belongs to ca.crt");
}

#[test]
fn bad_issue_requests_are_refused_before_writing() {
    let pki = Pki::new("pki-bad-requests");
    let server = |name: &str| IssueRequest {
        name: name.into(),
        dns_names: vec!["x.test".into()],
        server: true,
        ..IssueRequest::default()
    };
    let bad = [
        server(""),
        server("../escape"),
        server("a/b"),
        server(".hidden"),
        server("ca"),
        IssueRequest {
            server: false,
            ..server("neither")
        },
        IssueRequest {
            dns_names: vec![],
            ..server("nameless")
        },
        IssueRequest {
            dns_names: vec!["bad name é".into()],
            ..server("latin")
        },
    ];
    for req in bad {
        match issue(&pki.ca, pki.dir.path(), &req) {
            Err(TlsError::Settings(_)) => {}
            other => panic!("{req:?} should be refused, got {other:?}"),
        }
    }
    let missing_ca = CaFiles::in_dir(&pki.dir.path().join("nowhere"));
    assert!(matches!(
        issue(&missing_ca, pki.dir.path(), &server("ok")),
        Err(TlsError::Read { .. })
    ));
}

/// Runs `openssl verify` and says whether it passed; `None` without openssl.
fn openssl_verify(ca: &Path, purpose: &str, leaf: &Path) -> Option<(bool, String)> {
    let out = Command::new("openssl")
        .args(["verify", "-purpose", purpose, "-CAfile"])
        .arg(ca)
        .arg(leaf)
        .output()
        .ok()?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    Some((out.status.success(), text))
}

#[test]
fn openssl_verifies_issued_certificates() {
    let pki = Pki::new("pki-openssl");
    let other = Pki::new("pki-openssl-other");
    let (workload, _) = pki.workload("payments", "api");
    let web = pki.server("web", &["web.test", "*.web.test"]);
    let checks = [
        (&pki.ca.cert, "sslserver", &web.cert, true),
        (&pki.ca.cert, "sslserver", &workload.cert, true),
        (&pki.ca.cert, "sslclient", &workload.cert, true),
        (&pki.ca.cert, "sslclient", &web.cert, false),
        (&other.ca.cert, "sslserver", &web.cert, false),
    ];
    for (ca, purpose, leaf, expected) in checks {
        let Some((passed, text)) = openssl_verify(ca, purpose, leaf) else {
            eprintln!("openssl is not installed; skipped");
            return;
        };
        assert_eq!(passed, expected, "{purpose} {}: {text}", leaf.display());
    }
}

fn args(out: &Path, workloads: &[&str], servers: &[&str]) -> CertsArgs {
    CertsArgs {
        out: out.to_path_buf(),
        trust_domain: "cluster.local".into(),
        workloads: workloads.iter().map(|s| s.to_string()).collect(),
        servers: servers.iter().map(|s| s.to_string()).collect(),
    }
}

#[test]
fn certs_command_issues_everything_and_reuses_its_ca() {
    let dir = TempDir::new("certs-command");
    let out = dir.path().join("pki");
    certs_command(&args(
        &out,
        &["istio-system/egress"],
        &["web=web.test,127.0.0.1"],
    ))
    .unwrap_or_else(|e| panic!("{e}"));
    let ca_before = fs::read(out.join("ca.crt")).unwrap_or_else(|e| panic!("{e}"));
    for file in [
        "ca.key",
        "istio-system-egress.crt",
        "istio-system-egress.key",
        "web.crt",
        "web.key",
    ] {
        assert!(out.join(file).is_file(), "{file} missing");
    }
    let workload = leaf_der(&out.join("istio-system-egress.crt"));
    let id = crate::tls::peer_spiffe_id(Some(&[workload]));
    assert_eq!(
        id.map(|i| i.uri()).as_deref(),
        Some("spiffe://cluster.local/ns/istio-system/sa/egress")
    );

    certs_command(&args(&out, &[], &["api=api.test"])).unwrap_or_else(|e| panic!("{e}"));
    let ca_after = fs::read(out.join("ca.crt")).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(ca_before, ca_after, "the existing CA is reused");
    let api = leaf_der(&out.join("api.crt"));
    let sans = san::sans(&api).unwrap_or_else(|| panic!("api.crt does not parse"));
    assert_eq!(sans, vec![san::San::Dns("api.test".into())]);
}

#[test]
fn certs_command_arguments_are_checked_first() {
    let dir = TempDir::new("certs-args");
    let out = dir.path().join("pki");
    let bad = [
        args(&out, &["no-slash"], &[]),
        args(&out, &["ns/sa/extra"], &[]),
        args(&out, &["ns/"], &[]),
        args(&out, &[], &["web"]),
        args(&out, &[], &["web="]),
        args(&out, &[], &["web=a.test,,b.test"]),
        args(&out, &["a/b"], &["a-b=a.test"]),
        CertsArgs {
            trust_domain: "Bad Domain".into(),
            ..args(&out, &["a/b"], &[])
        },
    ];
    for a in bad {
        assert!(certs_command(&a).is_err(), "{a:?} should be refused");
        assert!(!out.exists(), "nothing is written for {a:?}");
    }
    let planned = plan(&args(&out, &["ns/sa"], &["web=web.test, 10.1.2.3"]))
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(planned.len(), 2);
    assert_eq!(planned[0].name, "ns-sa");
    assert!(planned[0].client && planned[0].server);
    assert_eq!(planned[1].dns_names, vec!["web.test".to_string()]);
    assert_eq!(
        planned[1].ip_addresses,
        vec![
            "10.1.2.3"
                .parse::<std::net::IpAddr>()
                .unwrap_or_else(|e| panic!("{e}"))
        ]
    );
    assert!(!planned[1].client && planned[1].server);
}
