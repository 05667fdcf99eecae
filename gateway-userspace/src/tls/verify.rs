//! The certificate checks behind the configs: a chain to the configured
//! roots, then the peer's name by one of three rules (`NameCheck`).

use std::sync::Arc;

use rustls::{
    CertificateError, DigitallySignedStruct, DistinguishedName, Error, RootCertStore,
    SignatureScheme,
    client::{
        danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier},
        verify_server_cert_signed_by_trust_anchor, verify_server_name,
    },
    crypto::{
        CryptoProvider, WebPkiSupportedAlgorithms, verify_tls12_signature, verify_tls13_signature,
    },
    server::{
        ParsedCertificate,
        danger::{ClientCertVerified, ClientCertVerifier},
    },
};
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};

use super::{SpiffeId, san};

/// How the server certificate's identity is checked once its chain is good.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum NameCheck {
    /// Valid for the server name the connection was opened with (SNI).
    ServerName,
    /// Carries one of these SANs, whatever the server name (Istio's
    /// `subjectAltNames`).
    AnySan(Vec<String>),
    /// Carries a SPIFFE id; this one when given. The server name is ignored.
    Spiffe(Option<SpiffeId>),
}

impl NameCheck {
    /// The identity decision, apart from the chain.
    pub(super) fn check(
        &self,
        end_entity: &CertificateDer<'_>,
        parsed: &ParsedCertificate<'_>,
        server_name: &ServerName<'_>,
    ) -> Result<(), Error> {
        match self {
            Self::ServerName => verify_server_name(parsed, server_name),
            Self::AnySan(wanted) => {
                let sans = san::sans(end_entity).ok_or(CertificateError::BadEncoding)?;
                if wanted.iter().any(|w| san::any_matches(&sans, w)) {
                    return Ok(());
                }
                tracing::debug!(
                    ?wanted,
                    presented = ?sans,
                    "certificate carries none of the subject alt names"
                );
                Err(CertificateError::NotValidForName.into())
            }
            Self::Spiffe(expected) => check_spiffe(end_entity, expected.as_ref()),
        }
    }
}

/// Requires a SPIFFE id in the leaf; the expected one when given.
pub(super) fn check_spiffe(
    end_entity: &CertificateDer<'_>,
    expected: Option<&SpiffeId>,
) -> Result<(), Error> {
    let certs = std::slice::from_ref(end_entity);
    match (super::peer_spiffe_id(Some(certs)), expected) {
        (None, _) => {
            tracing::debug!("peer certificate carries no SPIFFE id");
            Err(CertificateError::ApplicationVerificationFailure.into())
        }
        (Some(found), Some(expected)) if found != *expected => {
            tracing::debug!(%found, %expected, "peer SPIFFE identity is not the expected one");
            Err(CertificateError::NotValidForName.into())
        }
        (Some(_), _) => Ok(()),
    }
}

/// Verifies servers: chain to `roots`, then `check`.
#[derive(Debug)]
pub(super) struct PeerVerifier {
    roots: Arc<RootCertStore>,
    algorithms: WebPkiSupportedAlgorithms,
    check: NameCheck,
}

impl PeerVerifier {
    pub(super) fn new(roots: RootCertStore, provider: &CryptoProvider, check: NameCheck) -> Self {
        Self {
            roots: Arc::new(roots),
            algorithms: provider.signature_verification_algorithms,
            check,
        }
    }
}

impl ServerCertVerifier for PeerVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, Error> {
        let parsed = ParsedCertificate::try_from(end_entity)?;
        verify_server_cert_signed_by_trust_anchor(
            &parsed,
            &self.roots,
            intermediates,
            now,
            self.algorithms.all,
        )?;
        self.check.check(end_entity, &parsed, server_name)?;
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// Accepts any server certificate (`insecureSkipVerify`). The handshake
/// signatures are still checked, so the peer holds the key of what it sent.
#[derive(Debug)]
pub(super) struct InsecureVerifier {
    algorithms: WebPkiSupportedAlgorithms,
}

impl InsecureVerifier {
    pub(super) fn new(provider: &CryptoProvider) -> Self {
        Self {
            algorithms: provider.signature_verification_algorithms,
        }
    }
}

impl ServerCertVerifier for InsecureVerifier {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// Verifies mesh clients: the inner (chain) verifier, then a SPIFFE id in
/// the leaf.
#[derive(Debug)]
pub(super) struct SpiffeClientVerifier {
    pub(super) inner: Arc<dyn ClientCertVerifier>,
}

impl ClientCertVerifier for SpiffeClientVerifier {
    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        self.inner.root_hint_subjects()
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, Error> {
        let verified = self
            .inner
            .verify_client_cert(end_entity, intermediates, now)?;
        check_spiffe(end_entity, None)?;
        Ok(verified)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}
