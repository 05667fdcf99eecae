//! The server's TLS: a CA made per server, a serving certificate for 127.0.0.1 and `localhost`,
//! the kubeconfig that trusts that CA and carries the bearer token, and the CA as a CSR signer.

use std::io::Read;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use rcgen::{
    BasicConstraints, CertificateParams, CertificateSigningRequestParams, DnType,
    ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose, SanType,
};
use rustls_pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
use time::OffsetDateTime;

/// Certificates are valid from a little before now, so clock steps do not matter.
const BACKDATE: Duration = Duration::from_secs(300);
const VALIDITY: Duration = Duration::from_secs(2 * 24 * 3600);

/// The CA and the rustls configuration of one server.
pub struct ServerTls {
    ca_pem: String,
    issuer: Issuer<'static, KeyPair>,
    pub config: Arc<rustls::ServerConfig>,
}

impl ServerTls {
    pub fn generate() -> ServerTls {
        let now = OffsetDateTime::now_utc();
        let mut ca_params = CertificateParams::default();
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "kube-api stand-in CA");
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        ca_params.not_before = now - BACKDATE;
        ca_params.not_after = now + VALIDITY;
        let ca_key = KeyPair::generate().expect("generating the CA key");
        let ca_cert = ca_params.self_signed(&ca_key).expect("self-signing the CA");
        let issuer = Issuer::new(ca_params, ca_key);

        let mut params = CertificateParams::default();
        params
            .distinguished_name
            .push(DnType::CommonName, "kube-apiserver");
        params.subject_alt_names = vec![
            SanType::IpAddress([127, 0, 0, 1].into()),
            SanType::DnsName("localhost".try_into().expect("a valid DNS name")),
        ];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.not_before = now - BACKDATE;
        params.not_after = now + VALIDITY;
        let key = KeyPair::generate().expect("generating the server key");
        let cert = params
            .signed_by(&key, &issuer)
            .expect("signing the server certificate");

        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("ring supports the default TLS versions")
            .with_no_client_auth()
            .with_single_cert(
                vec![cert.der().clone(), ca_cert.der().clone()],
                PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
            )
            .expect("the server key matches its certificate");
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        ServerTls {
            ca_pem: ca_cert.pem(),
            issuer,
            config: Arc::new(config),
        }
    }

    /// The CA certificate, PEM.
    pub fn ca_pem(&self) -> &str {
        &self.ca_pem
    }

    /// Issues a certificate for a PEM `CERTIFICATE REQUEST`, as a CSR signer does: the subject and
    /// names requested, the extended usages of `usages` (`client auth`, `server auth`), valid for
    /// `validity`. Returns the certificate, PEM.
    pub fn sign(
        &self,
        request_pem: &str,
        usages: &[String],
        validity: Duration,
    ) -> Result<String, String> {
        let mut csr = CertificateSigningRequestParams::from_pem(request_pem)
            .map_err(|e| format!("bad certificate request: {e}"))?;
        let now = OffsetDateTime::now_utc();
        csr.params.is_ca = IsCa::ExplicitNoCa;
        csr.params.not_before = now - BACKDATE;
        csr.params.not_after = now + validity;
        csr.params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        csr.params.extended_key_usages = usages
            .iter()
            .filter_map(|u| match u.as_str() {
                "client auth" => Some(ExtendedKeyUsagePurpose::ClientAuth),
                "server auth" => Some(ExtendedKeyUsagePurpose::ServerAuth),
                _ => None,
            })
            .collect();
        let cert = csr
            .signed_by(&self.issuer)
            .map_err(|e| format!("cannot sign: {e}"))?;
        Ok(cert.pem())
    }
}

/// Writes a kubeconfig for `server` that trusts `ca_pem` and authenticates with `token`.
pub fn write_kubeconfig(path: &Path, server: &str, ca_pem: &str, token: &str) {
    let text = format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: stand-in\n  cluster:\n    server: \"{server}\"\n    certificate-authority-data: \"{ca}\"\ncontexts:\n- name: stand-in\n  context:\n    cluster: stand-in\n    user: node-agent\n    namespace: default\ncurrent-context: stand-in\nusers:\n- name: node-agent\n  user:\n    token: \"{token}\"\npreferences: {{}}\n",
        ca = BASE64.encode(ca_pem),
    );
    std::fs::write(path, text).unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
}

/// A random bearer token (32 hex digits from the kernel's random source).
pub fn random_token() -> String {
    let mut bytes = [0u8; 16];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut bytes))
        .expect("reading /dev/urandom");
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Base64 of PEM text, as CSR objects carry `spec.request` and `status.certificate`.
pub fn base64_encode(data: &[u8]) -> String {
    BASE64.encode(data)
}

pub fn base64_decode(text: &str) -> Option<Vec<u8>> {
    BASE64.decode(text).ok()
}
