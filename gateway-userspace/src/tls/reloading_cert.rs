//! A server certificate read again from its files when they change: a
//! certificate renewed on disk (replaced whole, by rename) is presented from
//! the next handshake on, without rebuilding the server config. A change
//! that cannot be loaded (a half-written pair, a key that does not match)
//! keeps the last good certificate.

use std::{
    path::{Path, PathBuf},
    sync::{Arc, Mutex},
    time::SystemTime,
};

use rustls::{
    server::{ClientHello, ResolvesServerCert},
    sign::CertifiedKey,
};

use super::{TlsError, pem::load_identity, provider};

type Stamps = [Option<SystemTime>; 2];

#[derive(Debug)]
pub struct ReloadingCert {
    cert: PathBuf,
    key: PathBuf,
    current: Mutex<(Stamps, Arc<CertifiedKey>)>,
}

impl ReloadingCert {
    /// Loads the pair now; it must be usable.
    pub fn load(cert: &Path, key: &Path) -> Result<Self, TlsError> {
        let stamps = stamps(cert, key);
        let loaded = certified(cert, key)?;
        Ok(Self { cert: cert.to_path_buf(), key: key.to_path_buf(), current: Mutex::new((stamps, loaded)) })
    }

    /// The pair to present: reloaded first if either file changed.
    pub fn current(&self) -> Arc<CertifiedKey> {
        let now = stamps(&self.cert, &self.key);
        let mut current = self.current.lock().expect("certificate lock");
        if current.0 != now {
            match certified(&self.cert, &self.key) {
                Ok(loaded) => {
                    tracing::info!(cert = %self.cert.display(), "server certificate reloaded");
                    *current = (now, loaded);
                }
                Err(e) => tracing::warn!(cert = %self.cert.display(), error = %e, "changed certificate not usable; the previous one stays"),
            }
        }
        current.1.clone()
    }
}

impl ResolvesServerCert for ReloadingCert {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current())
    }
}

fn stamps(cert: &Path, key: &Path) -> Stamps {
    [cert, key].map(|p| std::fs::metadata(p).and_then(|m| m.modified()).ok())
}

fn certified(cert: &Path, key: &Path) -> Result<Arc<CertifiedKey>, TlsError> {
    let (chain, key) = load_identity(cert, key)?;
    Ok(Arc::new(CertifiedKey::from_der(chain, key, &provider())?))
}
