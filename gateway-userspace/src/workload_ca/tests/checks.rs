//! The request checks, and a certificate signed from a granted request.

use std::time::Duration;

use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair, SanType};

use crate::workload_ca::checks::{CsrFacts, PodFacts, Policy, decide, service_account_user};

const AGENT: &str = "system:serviceaccount:gateway-system:gateway-node";

fn policy() -> Policy {
    Policy {
        trust_domain: "cluster.local".into(),
        requesters: [service_account_user("gateway-system", "gateway-node")].into(),
        gateways: [service_account_user("gateway-system", "gateway")].into(),
        max_lifetime: Duration::from_secs(3600),
    }
}

fn request_with(sans: Vec<SanType>, ca: bool) -> Vec<u8> {
    let mut params = CertificateParams::default();
    params.subject_alt_names = sans;
    if ca {
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    }
    let key = KeyPair::generate().unwrap();
    params.serialize_request(&key).unwrap().pem().unwrap().into_bytes()
}

fn uri(s: &str) -> SanType {
    SanType::URI(s.try_into().unwrap())
}

fn csr(request: Vec<u8>) -> CsrFacts {
    CsrFacts {
        username: AGENT.into(),
        node_names: vec!["node-1".into()],
        usages: vec!["client auth".into(), "digital signature".into()],
        request,
        expiration_seconds: None,
    }
}

fn shop_csr() -> CsrFacts {
    csr(request_with(vec![uri("spiffe://cluster.local/ns/shop/sa/app")], false))
}

fn pod(ns: &str, sa: &str, node: &str) -> PodFacts {
    PodFacts { namespace: ns.into(), service_account: sa.into(), node: node.into(), finished: false }
}

fn reason(facts: &CsrFacts, pods: &[PodFacts]) -> &'static str {
    decide(facts, &policy(), pods).expect_err("refused").reason
}

#[test]
fn a_node_running_a_pod_of_the_identity_is_granted_it() {
    let grant = decide(&shop_csr(), &policy(), &[pod("shop", "app", "node-1")]).expect("granted");
    assert_eq!(grant.identity.uri(), "spiffe://cluster.local/ns/shop/sa/app");
    assert_eq!(grant.because, "a pod of shop/app runs on node node-1");
    assert_eq!(grant.lifetime, Duration::from_secs(3600), "no expirationSeconds: the maximum");
    assert!(!grant.server_auth);
}

#[test]
fn a_node_without_such_a_pod_is_refused() {
    assert_eq!(reason(&shop_csr(), &[pod("shop", "app", "node-2")]), "NotEntitled", "the pod runs elsewhere");
    assert_eq!(reason(&shop_csr(), &[pod("shop", "other", "node-1")]), "NotEntitled", "another service account");
    assert_eq!(reason(&shop_csr(), &[pod("bank", "app", "node-1")]), "NotEntitled", "another namespace");
    let finished = PodFacts { finished: true, ..pod("shop", "app", "node-1") };
    assert_eq!(reason(&shop_csr(), &[finished]), "NotEntitled", "a finished pod entitles no one");
}

#[test]
fn only_node_agents_with_a_node_bound_token_are_served() {
    let pods = [pod("shop", "app", "node-1")];
    let mut facts = shop_csr();
    facts.username = "system:serviceaccount:shop:app".into();
    assert_eq!(reason(&facts, &pods), "NotANodeAgent");
    let mut facts = shop_csr();
    facts.node_names.clear();
    assert_eq!(reason(&facts, &pods), "NoNodeBinding");
    facts.node_names = vec!["node-1".into(), "node-2".into()];
    assert_eq!(reason(&facts, &pods), "NoNodeBinding");
}

#[test]
fn a_gateway_is_served_for_its_own_identity_only() {
    let mut own = csr(request_with(vec![uri("spiffe://cluster.local/ns/gateway-system/sa/gateway")], false));
    own.username = service_account_user("gateway-system", "gateway");
    own.node_names.clear();
    let grant = decide(&own, &policy(), &[]).expect("its own identity, no pod needed");
    assert_eq!(grant.because, "the gateway's own service account");
    let mut other = shop_csr();
    other.username = service_account_user("gateway-system", "gateway");
    assert_eq!(reason(&other, &[pod("shop", "app", "node-1")]), "NotOwnIdentity");
}

#[test]
fn the_request_must_name_exactly_one_spiffe_id_of_the_trust_domain() {
    let pods = [pod("shop", "app", "node-1")];
    let cases = [
        (vec![], "MalformedRequest"),
        (vec![SanType::DnsName("app.shop".try_into().unwrap())], "MalformedRequest"),
        (vec![uri("spiffe://cluster.local/ns/shop/sa/app"), uri("spiffe://cluster.local/ns/shop/sa/app")], "MalformedRequest"),
        (vec![uri("spiffe://cluster.local/ns/shop/app")], "MalformedRequest"),
        (vec![uri("spiffe://other.domain/ns/shop/sa/app")], "WrongTrustDomain"),
    ];
    for (sans, want) in cases {
        let label = format!("{sans:?}");
        assert_eq!(reason(&csr(request_with(sans, false)), &pods), want, "{label}");
    }
    let ca = request_with(vec![uri("spiffe://cluster.local/ns/shop/sa/app")], true);
    assert_eq!(reason(&csr(ca), &pods), "MalformedRequest", "a CA certificate is never issued");
    assert_eq!(reason(&csr(b"not a request".to_vec()), &pods), "MalformedRequest");
    assert_eq!(reason(&csr(vec![0xff, 0xfe]), &pods), "MalformedRequest");
}

#[test]
fn a_request_whose_signature_does_not_verify_is_refused() {
    let pods = [pod("shop", "app", "node-1")];
    let pem = String::from_utf8(shop_csr().request).unwrap();
    let der = rustls_pki_types::pem::PemObject::from_pem_slice(pem.as_bytes())
        .map(|d: rustls_pki_types::CertificateSigningRequestDer<'static>| d.as_ref().to_vec())
        .unwrap();
    let mut tampered = der;
    let last = tampered.len() - 1;
    tampered[last] ^= 0x01;
    let encoded = pem_encode("CERTIFICATE REQUEST", &tampered);
    assert_eq!(reason(&csr(encoded.into_bytes()), &pods), "MalformedRequest");
}

#[test]
fn usages_must_include_client_auth_and_nothing_beyond_tls() {
    let pods = [pod("shop", "app", "node-1")];
    let mut facts = shop_csr();
    facts.usages = vec!["server auth".into()];
    assert_eq!(reason(&facts, &pods), "BadUsages");
    facts.usages = vec!["client auth".into(), "cert sign".into()];
    assert_eq!(reason(&facts, &pods), "BadUsages");
    facts.usages = vec!["client auth".into(), "server auth".into()];
    assert!(decide(&facts, &policy(), &pods).expect("granted").server_auth);
}

#[test]
fn the_lifetime_asked_is_honoured_up_to_the_maximum() {
    let pods = [pod("shop", "app", "node-1")];
    let mut facts = shop_csr();
    facts.expiration_seconds = Some(600);
    assert_eq!(decide(&facts, &policy(), &pods).unwrap().lifetime, Duration::from_secs(600));
    facts.expiration_seconds = Some(7 * 86_400);
    assert_eq!(decide(&facts, &policy(), &pods).unwrap().lifetime, Duration::from_secs(3600));
    facts.expiration_seconds = Some(0);
    assert_eq!(reason(&facts, &pods), "BadLifetime");
}

#[test]
fn the_signed_certificate_carries_only_the_granted_identity_and_chains_to_the_ca() {
    let dir = std::env::temp_dir().join(format!("workload-ca-test-{}", std::process::id()));
    let ca = crate::tls::generate_ca(&dir, "test mesh CA").unwrap();
    let signer = crate::workload_ca::signer::Signer::load(&ca.cert, &ca.key).unwrap();
    let grant = decide(&shop_csr(), &policy(), &[pod("shop", "app", "node-1")]).unwrap();
    let chain = signer.sign(&grant, time::OffsetDateTime::now_utc()).unwrap();
    let certs: Vec<rustls_pki_types::CertificateDer<'static>> =
        rustls_pki_types::pem::PemObject::pem_slice_iter(chain.as_bytes()).collect::<Result<_, _>>().unwrap();
    assert_eq!(certs.len(), 2, "leaf, then the CA");
    let (_, leaf) = x509_parser::parse_x509_certificate(&certs[0]).unwrap();
    let sans: Vec<String> = leaf
        .subject_alternative_name()
        .unwrap()
        .unwrap()
        .value
        .general_names
        .iter()
        .map(|n| n.to_string())
        .collect();
    assert_eq!(sans, ["URI(spiffe://cluster.local/ns/shop/sa/app)"]);
    assert!(!leaf.is_ca());
    let (_, root) = x509_parser::parse_x509_certificate(&certs[1]).unwrap();
    leaf.verify_signature(Some(root.public_key())).expect("signed by the CA");
    let lifetime = leaf.validity().not_after.timestamp() - time::OffsetDateTime::now_utc().unix_timestamp();
    assert!((3500..=3600).contains(&lifetime), "lifetime {lifetime}");
    // A key that is not the CA certificate's is refused at load.
    let other = crate::tls::generate_ca(&dir.join("other"), "other").unwrap();
    assert!(crate::workload_ca::signer::Signer::load(&ca.cert, &other.key).is_err());
    let _ = std::fs::remove_dir_all(&dir);
}

fn pem_encode(label: &str, der: &[u8]) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut b64 = String::new();
    for chunk in der.chunks(3) {
        let n = chunk.iter().fold(0u32, |acc, b| acc << 8 | u32::from(*b)) << (8 * (3 - chunk.len()));
        for i in 0..=chunk.len() {
            b64.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
        }
        b64.push_str(&"=".repeat(3 - chunk.len()));
    }
    let lines: Vec<&str> = b64.as_bytes().chunks(64).map(|c| std::str::from_utf8(c).unwrap()).collect();
    format!("-----BEGIN {label}-----\n{}\n-----END {label}-----\n", lines.join("\n"))
}
