//! Mutual TLS between the node and the egress gateway (Istio's
//! `ISTIO_MUTUAL`). Both sides present a certificate issued by the mesh CA
//! and verify the peer's chain against that CA only. Names are not checked:
//! a peer is known by the SPIFFE id in its certificate's URI SAN, and a peer
//! without one is refused.

use std::{path::Path, sync::Arc};

use rustls::{ClientConfig, ServerConfig, server::WebPkiClientVerifier};
use rustls_pki_types::CertificateDer;

use super::{
    SpiffeId, TlsError,
    pem::{load_identity, load_roots},
    provider,
    reloading_cert::ReloadingCert,
    san,
    verify::{NameCheck, PeerVerifier, SpiffeClientVerifier},
};

/// The egress gateway's side: requires a client certificate from the mesh
/// CA with a SPIFFE id, and presents `cert`, read again whenever it changes. Read the client's identity after the handshake with
/// [`peer_spiffe_id`].
pub fn mesh_server_config(
    mesh_ca: &Path,
    cert: &Path,
    key: &Path,
) -> Result<Arc<ServerConfig>, TlsError> {
    let provider = provider();
    let roots = Arc::new(load_roots(mesh_ca)?);
    let inner = WebPkiClientVerifier::builder_with_provider(roots, provider.clone())
        .build()
        .map_err(|e| TlsError::Settings(format!("mesh CA {}: {e}", mesh_ca.display())))?;
    // Read again when renewed on disk (`--cert-from-csr`, or by hand).
    let identity = ReloadingCert::load(cert, key)?;
    let config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_client_cert_verifier(Arc::new(SpiffeClientVerifier { inner }))
        .with_cert_resolver(Arc::new(identity));
    Ok(Arc::new(config))
}

/// The node's side: presents `cert`, and accepts a gateway whose chain leads
/// to the mesh CA and which carries a SPIFFE id, `expected_server` when
/// given. The server name passed to [`super::originate`] is only sent as SNI.
pub fn mesh_client_config(
    mesh_ca: &Path,
    cert: &Path,
    key: &Path,
    expected_server: Option<&SpiffeId>,
) -> Result<Arc<ClientConfig>, TlsError> {
    let provider = provider();
    let check = NameCheck::Spiffe(expected_server.cloned());
    let verifier = PeerVerifier::new(load_roots(mesh_ca)?, &provider, check);
    let (chain, key) = load_identity(cert, key)?;
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_client_auth_cert(chain, key)?;
    Ok(Arc::new(config))
}

/// The SPIFFE id in the first URI SAN of the peer's leaf certificate that
/// parses as one. Pass `connection.peer_certificates()`.
pub fn peer_spiffe_id(certs: Option<&[CertificateDer<'_>]>) -> Option<SpiffeId> {
    let leaf = certs?.first()?;
    san::sans(leaf)?.into_iter().find_map(|name| match name {
        san::San::Uri(uri) => SpiffeId::parse(&uri).ok(),
        _ => None,
    })
}
