//! TLS for the gateway: certificates and keys from PEM files, client configs
//! that originate TLS to upstreams (Istio DestinationRule `SIMPLE` and
//! `MUTUAL`), mutual TLS between the node and the egress gateway with SPIFFE
//! identities (Istio's `ISTIO_MUTUAL`), server configs for TLS termination,
//! and a small test PKI behind `gateway certs`.
//!
//! The files, in the order a connection meets them:
//! - `pem.rs`: certificates, private keys and trust roots from PEM files.
//! - `origination.rs`: DestinationRule TLS settings to a client config, and
//!   the handshake to the upstream.
//! - `istio_mutual.rs`: node ↔ egress gateway mutual TLS (ISTIO_MUTUAL), and the peer's identity.
//! - `server.rs`: server configs for TLS termination.
//! - `reloading_cert.rs`: a server certificate read again when its files change.
//! - `verify.rs`: the certificate checks behind those configs.
//! - `san.rs`: subject alternative names read from a certificate.
//! - `spiffe.rs`: SPIFFE identities `spiffe://<td>/ns/<ns>/sa/<sa>`.
//! - `certs.rs` and `command.rs`: the test PKI and `gateway certs`.
//!
//! Every config uses the `ring` crypto provider explicitly, so nothing
//! depends on a process-wide default provider being installed.

mod certs;
mod command;
mod istio_mutual;
mod origination;
mod pem;
mod reloading_cert;
mod san;
mod server;
mod spiffe;
mod verify;

#[cfg(test)]
mod tests;

use std::{
    io,
    path::PathBuf,
    sync::{Arc, OnceLock},
};

use rustls::crypto::CryptoProvider;

pub use certs::{CaFiles, IssueRequest, IssuedFiles, generate_ca, issue};
pub use command::{CertsArgs, certs_command};
pub use istio_mutual::{mesh_client_config, mesh_server_config, peer_spiffe_id};
pub use origination::{OriginationSettings, originate, origination_config};
pub use pem::{SYSTEM_CA_BUNDLES, load_certs, load_private_key};
pub use server::{ClientAuth, ServerSettings, TlsVersion, server_config};
pub use spiffe::SpiffeId;

/// Everything that can go wrong in this module. Paths and names are part of
/// each message, so an operator can tell which file or peer is at fault.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A file could not be read.
    #[error("cannot read {}: {source}", .path.display())]
    Read { path: PathBuf, source: io::Error },
    /// A file or directory could not be written.
    #[error("cannot write {}: {source}", .path.display())]
    Write { path: PathBuf, source: io::Error },
    /// A file was read but holds no usable PEM item of the expected kind.
    #[error("{}: {problem}", .path.display())]
    Pem { path: PathBuf, problem: String },
    /// The private key is not the one of the certificate's public key.
    #[error(
        "private key {} does not match the certificate {}",
        .key.display(),
        .cert.display()
    )]
    KeyMismatch { cert: PathBuf, key: PathBuf },
    /// Settings that cannot make a working config (missing file for a mode,
    /// minimum version above the maximum, bad certificate request...).
    #[error("invalid TLS settings: {0}")]
    Settings(String),
    /// A name that cannot be a TLS server name (SNI).
    #[error("invalid TLS server name {0:?}")]
    ServerName(String),
    /// A string that is not a SPIFFE identity of the form
    /// `spiffe://<trust-domain>/ns/<namespace>/sa/<service-account>`.
    #[error("invalid SPIFFE id {uri:?}: {reason}")]
    Spiffe { uri: String, reason: &'static str },
    /// rustls refused the assembled config.
    #[error("TLS configuration rejected: {0}")]
    Config(#[from] rustls::Error),
    /// The handshake with the peer failed (the peer's side of things: bad
    /// certificate, wrong identity, protocol mismatch, connection reset).
    #[error("TLS handshake with {peer} failed: {source}")]
    Handshake { peer: String, source: io::Error },
    /// A certificate or key could not be generated.
    #[error("certificate generation failed: {0}")]
    Generate(#[from] rcgen::Error),
}

/// The crypto provider of every config built here.
fn provider() -> Arc<CryptoProvider> {
    static PROVIDER: OnceLock<Arc<CryptoProvider>> = OnceLock::new();
    PROVIDER
        .get_or_init(|| Arc::new(rustls::crypto::ring::default_provider()))
        .clone()
}
