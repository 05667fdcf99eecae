//! The CA key at work: loads the CA certificate and key (files mounted
//! from a Secret), and signs a granted request into a workload certificate
//! whose content the CA chooses alone: the one SPIFFE URI SAN, the usages
//! granted, the lifetime granted. Nothing else of the request is copied
//! but its public key.

use std::{path::Path, time::Duration};

use rcgen::{
    CertificateParams, CertificateSigningRequestParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, PublicKeyData, SanType, SerialNumber,
};
use time::OffsetDateTime;
use x509_parser::prelude::{FromDer, X509Certificate};

use super::checks::Grant;

/// Room for clocks running a little behind the CA's.
const BACKDATE: Duration = Duration::from_secs(5 * 60);

#[derive(Debug, thiserror::Error)]
pub enum SignerError {
    #[error("cannot read {path}: {source}")]
    Read { path: String, source: std::io::Error },
    #[error("{path}: {problem}")]
    Invalid { path: String, problem: String },
    #[error("the CA key does not belong to the CA certificate")]
    KeyMismatch,
    #[error("signing failed: {0}")]
    Sign(#[from] rcgen::Error),
}

pub struct Signer {
    issuer: Issuer<'static, KeyPair>,
    /// The CA certificate, PEM: the trust bundle and the end of every chain.
    pub ca_pem: String,
}

impl Signer {
    pub fn load(cert: &Path, key: &Path) -> Result<Self, SignerError> {
        let read = |p: &Path| {
            std::fs::read_to_string(p).map_err(|source| SignerError::Read { path: p.display().to_string(), source })
        };
        let invalid = |p: &Path, problem: String| SignerError::Invalid { path: p.display().to_string(), problem };
        let ca_pem = read(cert)?;
        let key_pair = KeyPair::from_pem(&read(key)?).map_err(|e| invalid(key, e.to_string()))?;
        let der = rustls_pki_types::pem::PemObject::from_pem_slice(ca_pem.as_bytes())
            .map(|c: rustls_pki_types::CertificateDer<'static>| c)
            .map_err(|e| invalid(cert, format!("no PEM certificate: {e}")))?;
        let (_, parsed) = X509Certificate::from_der(&der).map_err(|e| invalid(cert, e.to_string()))?;
        if !parsed.is_ca() {
            return Err(invalid(cert, "not a CA certificate (basicConstraints CA:FALSE or absent)".into()));
        }
        if parsed.public_key().raw != key_pair.subject_public_key_info().as_slice() {
            return Err(SignerError::KeyMismatch);
        }
        let issuer = Issuer::from_ca_cert_pem(&ca_pem, key_pair).map_err(|e| invalid(cert, e.to_string()))?;
        Ok(Self { issuer, ca_pem })
    }

    /// The certificate chain (leaf, then the CA) for a granted request.
    pub fn sign(&self, grant: &Grant, now: OffsetDateTime) -> Result<String, SignerError> {
        let mut params = CertificateParams::default();
        let mut dn = DistinguishedName::new();
        dn.push(DnType::OrganizationName, grant.identity.trust_domain.as_str());
        params.distinguished_name = dn;
        let uri = grant.identity.uri().try_into().map_err(|_| rcgen::Error::CouldNotParseCertificate)?;
        params.subject_alt_names = vec![SanType::URI(uri)];
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature, KeyUsagePurpose::KeyEncipherment];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        if grant.server_auth {
            params.extended_key_usages.push(ExtendedKeyUsagePurpose::ServerAuth);
        }
        params.use_authority_key_identifier_extension = true;
        params.serial_number = Some(random_serial()?);
        params.not_before = now - BACKDATE;
        params.not_after = now + grant.lifetime;
        let request = CertificateSigningRequestParams { params, public_key: grant.public_key.clone() };
        let cert = request.signed_by(&self.issuer)?;
        let mut chain = cert.pem();
        chain.push_str(self.ca_pem.trim_start());
        Ok(chain)
    }
}

/// 128 random bits, positive (the top bit cleared).
fn random_serial() -> Result<SerialNumber, SignerError> {
    let mut bytes = [0u8; 16];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut bytes)
        .map_err(|_| rcgen::Error::RingUnspecified)?;
    bytes[0] &= 0x7f;
    Ok(SerialNumber::from_slice(&bytes))
}

