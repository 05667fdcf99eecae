//! One workload certificate obtained through a CertificateSigningRequest:
//! a fresh key (which never leaves the node), a PKCS#10 request for the one
//! SPIFFE id, the CSR naming `gateway ca`'s signer, and the wait for its
//! certificate. What comes back is checked before use: its first
//! certificate must carry this key and this identity.

use std::time::Duration;

use k8s_openapi::{ByteString, api::certificates::v1::CertificateSigningRequest};
use kube::{
    Api, Client,
    api::{ObjectMeta, PostParams},
};
use rcgen::{CertificateParams, KeyPair, PublicKeyData, SanType};
use rustls_pki_types::{CertificateDer, pem::PemObject};
use x509_parser::prelude::{FromDer, GeneralName, X509Certificate};

use crate::{tls::SpiffeId, workload_ca::SIGNER_NAME};

/// How often the CSR is read while waiting for its certificate.
const POLL_EVERY: Duration = Duration::from_millis(500);
/// A CSR still unanswered after this is given up (and a new one made later).
const GIVE_UP_AFTER: Duration = Duration::from_secs(300);

/// An issued certificate and its key, PEM.
#[derive(Debug)]
pub struct Issued {
    pub chain: String,
    pub key: String,
    /// Seconds from now until the leaf certificate expires.
    pub remaining: Duration,
    pub csr_name: String,
}

#[derive(Debug, thiserror::Error)]
pub enum CsrError {
    #[error("building the request: {0}")]
    Request(#[from] rcgen::Error),
    #[error("API: {0}")]
    Api(#[from] kube::Error),
    #[error("CSR {name} was {condition}: {message}")]
    Refused { name: String, condition: String, message: String },
    #[error("CSR {0} got no certificate in time")]
    Timeout(String),
    #[error("CSR {name}: the certificate issued is unusable: {problem}")]
    BadCertificate { name: String, problem: String },
}

/// Asks for a certificate of `identity` valid `lifetime`, and waits for it.
pub async fn obtain(client: &Client, identity: &SpiffeId, lifetime: Duration) -> Result<Issued, CsrError> {
    let key = KeyPair::generate()?;
    let mut params = CertificateParams::default();
    params.subject_alt_names = vec![SanType::URI(identity.uri().try_into()?)];
    let request = params.serialize_request(&key)?.pem()?;
    let csr = CertificateSigningRequest {
        metadata: ObjectMeta { generate_name: Some("gateway-workload-".into()), ..Default::default() },
        spec: k8s_openapi::api::certificates::v1::CertificateSigningRequestSpec {
            request: ByteString(request.into_bytes()),
            signer_name: SIGNER_NAME.into(),
            usages: Some(vec!["client auth".into(), "digital signature".into(), "key encipherment".into()]),
            expiration_seconds: Some(i32::try_from(lifetime.as_secs()).unwrap_or(i32::MAX)),
            ..Default::default()
        },
        status: None,
    };
    let api: Api<CertificateSigningRequest> = Api::all(client.clone());
    let created = api.create(&PostParams::default(), &csr).await?;
    let name = created.metadata.name.clone().unwrap_or_default();
    tracing::debug!(csr = %name, identity = %identity, "CSR created");
    let deadline = tokio::time::Instant::now() + GIVE_UP_AFTER;
    loop {
        let current = api.get(&name).await?;
        let status = current.status.unwrap_or_default();
        if let Some(refusal) = status.conditions.iter().flatten().find(|c| c.status == "True" && matches!(c.type_.as_str(), "Denied" | "Failed")) {
            return Err(CsrError::Refused {
                name,
                condition: refusal.type_.clone(),
                message: format!("{}: {}", refusal.reason.clone().unwrap_or_default(), refusal.message.clone().unwrap_or_default()),
            });
        }
        if let Some(cert) = status.certificate.filter(|c| !c.0.is_empty()) {
            let chain = String::from_utf8(cert.0)
                .map_err(|_| CsrError::BadCertificate { name: name.clone(), problem: "not PEM text".into() })?;
            let remaining = check_issued(&chain, &key, identity)
                .map_err(|problem| CsrError::BadCertificate { name: name.clone(), problem })?;
            return Ok(Issued { chain, key: key.serialize_pem(), remaining, csr_name: name });
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(CsrError::Timeout(name));
        }
        tokio::time::sleep(POLL_EVERY).await;
    }
}

/// The leaf must hold `key`'s public key and exactly `identity`, and be
/// valid now; returns how long it stays valid.
fn check_issued(chain: &str, key: &KeyPair, identity: &SpiffeId) -> Result<Duration, String> {
    let leaf = CertificateDer::pem_slice_iter(chain.as_bytes())
        .next()
        .ok_or("no certificate")?
        .map_err(|e| format!("not PEM: {e}"))?;
    let (_, cert) = X509Certificate::from_der(&leaf).map_err(|e| format!("not X.509: {e}"))?;
    if cert.public_key().raw != key.subject_public_key_info().as_slice() {
        return Err("it is not for the key that was sent".into());
    }
    let uris: Vec<String> = cert
        .subject_alternative_name()
        .map_err(|e| e.to_string())?
        .map(|san| {
            san.value.general_names.iter().filter_map(|n| if let GeneralName::URI(u) = n { Some(u.to_string()) } else { None }).collect()
        })
        .unwrap_or_default();
    if uris != [identity.uri()] {
        return Err(format!("it names {uris:?}, not {identity}"));
    }
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let (from, until) = (cert.validity().not_before.timestamp(), cert.validity().not_after.timestamp());
    if now < from - 60 || now >= until {
        return Err("it is not valid now".into());
    }
    Ok(Duration::from_secs((until - now) as u64))
}
