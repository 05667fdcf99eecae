//! Certificates, private keys and trust roots from PEM files.

use std::{
    env, fs,
    path::{Path, PathBuf},
};

use rustls::{RootCertStore, sign::CertifiedKey};
use rustls_pki_types::{
    CertificateDer, PrivateKeyDer,
    pem::{self, PemObject},
};

use super::{TlsError, provider};

/// Where the system's CA bundle is looked for, in order, when a config names
/// no CA file: Debian, Ubuntu and Alpine first, then Fedora and RHEL.
/// `SSL_CERT_FILE`, when set, comes before all of them.
pub const SYSTEM_CA_BUNDLES: &[&str] = &[
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/pki/tls/certs/ca-bundle.crt",
];

/// All the certificates of a PEM file, in file order (leaf first for a
/// chain). Fails when the file holds none.
pub fn load_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let bytes = read(path)?;
    let certs = CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| pem_error(path, "certificate", e))?;
    if certs.is_empty() {
        return Err(pem_error(path, "certificate", pem::Error::NoItemsFound));
    }
    Ok(certs)
}

/// The first private key of a PEM file: PKCS#8, PKCS#1 (RSA) or SEC1 (EC).
pub fn load_private_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    let bytes = read(path)?;
    PrivateKeyDer::from_pem_slice(&bytes).map_err(|e| pem_error(path, "private key", e))
}

/// A certificate chain and its private key, checked to belong together.
pub(super) fn load_identity(
    cert: &Path,
    key: &Path,
) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>), TlsError> {
    let chain = load_certs(cert)?;
    let private_key = load_private_key(key)?;
    match CertifiedKey::from_der(chain.clone(), private_key.clone_key(), &provider()) {
        Ok(_) => Ok((chain, private_key)),
        Err(rustls::Error::InconsistentKeys(_)) => Err(TlsError::KeyMismatch {
            cert: cert.to_path_buf(),
            key: key.to_path_buf(),
        }),
        Err(e) => Err(TlsError::Pem {
            path: key.to_path_buf(),
            problem: format!("unusable private key: {e}"),
        }),
    }
}

/// The trust anchors of a CA file. Certificates that cannot be anchors are
/// skipped (system bundles hold a few); a file with none usable fails.
pub(super) fn load_roots(path: &Path) -> Result<RootCertStore, TlsError> {
    let mut roots = RootCertStore::empty();
    let (added, skipped) = roots.add_parsable_certificates(load_certs(path)?);
    if added == 0 {
        return Err(TlsError::Pem {
            path: path.to_path_buf(),
            problem: format!("none of its {skipped} certificates is a usable CA"),
        });
    }
    if skipped > 0 {
        tracing::debug!(path = %path.display(), added, skipped, "skipped unusable CA certificates");
    }
    Ok(roots)
}

/// The system's trust anchors: `SSL_CERT_FILE`, else the first bundle of
/// [`SYSTEM_CA_BUNDLES`] that exists.
pub(super) fn system_roots() -> Result<RootCertStore, TlsError> {
    let candidates: Vec<PathBuf> = env::var_os("SSL_CERT_FILE")
        .map(PathBuf::from)
        .into_iter()
        .chain(SYSTEM_CA_BUNDLES.iter().map(PathBuf::from))
        .collect();
    match candidates.iter().find(|path| path.is_file()) {
        Some(path) => load_roots(path),
        None => {
            let looked: Vec<String> = candidates.iter().map(|p| p.display().to_string()).collect();
            Err(TlsError::Settings(format!(
                "no CA certificates given and no system CA bundle found (looked for {})",
                looked.join(", ")
            )))
        }
    }
}

fn read(path: &Path) -> Result<Vec<u8>, TlsError> {
    fs::read(path).map_err(|source| TlsError::Read {
        path: path.to_path_buf(),
        source,
    })
}

fn pem_error(path: &Path, what: &str, e: pem::Error) -> TlsError {
    let problem = match e {
        pem::Error::NoItemsFound => format!("no PEM {what} found (is it a PEM file?)"),
        pem::Error::MissingSectionEnd { .. } => "malformed PEM: a section has no END line".into(),
        pem::Error::IllegalSectionStart { .. } => "malformed PEM: bad BEGIN line".into(),
        pem::Error::Base64Decode(detail) => format!("malformed PEM: bad base64 ({detail})"),
        other => format!("cannot parse PEM {what}: {other}"),
    };
    TlsError::Pem {
        path: path.to_path_buf(),
        problem,
    }
}
