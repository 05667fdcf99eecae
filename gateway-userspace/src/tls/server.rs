//! Server configs for TLS termination: Istio Gateway `SIMPLE`, `MUTUAL` and
//! `OPTIONAL_MUTUAL`, with ALPN and protocol version bounds.

use std::{path::PathBuf, sync::Arc};

use rustls::{
    ServerConfig, SupportedProtocolVersion,
    server::{ClientHello, ResolvesServerCert, WebPkiClientVerifier, danger::ClientCertVerifier},
    sign::CertifiedKey,
    version::{TLS12, TLS13},
};

use super::{
    TlsError,
    pem::{load_identity, load_roots},
    provider,
};

/// Whether clients must present a certificate.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ClientAuth {
    /// No client certificate is asked for (`SIMPLE`).
    #[default]
    None,
    /// Asked for and verified when sent; clients without one are accepted
    /// (`OPTIONAL_MUTUAL`).
    Optional,
    /// Required and verified (`MUTUAL`).
    Required,
}

/// A TLS protocol version the gateway speaks. Older versions are not
/// supported; config validation refuses them before they get here.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum TlsVersion {
    Tls12,
    Tls13,
}

/// Settings of one terminating listener.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerSettings {
    /// PEM certificate chain presented to clients, leaf first.
    pub cert: PathBuf,
    /// PEM private key of `cert`.
    pub key: PathBuf,
    /// PEM file of the CAs client certificates must chain to; required
    /// unless `client_auth` is `None`, ignored then.
    pub client_ca: Option<PathBuf>,
    /// Whether clients must present a certificate.
    pub client_auth: ClientAuth,
    /// ALPN protocols accepted, in order of preference; none when empty.
    pub alpn: Vec<Vec<u8>>,
    /// Lowest version accepted; TLS 1.2 when absent.
    pub min_version: Option<TlsVersion>,
    /// Highest version accepted; TLS 1.3 when absent.
    pub max_version: Option<TlsVersion>,
    /// Other servers on the same port: (hosts, certificate, key), chosen by
    /// SNI; `cert`/`key` answer any other name.
    pub by_sni: Vec<(Vec<String>, PathBuf, PathBuf)>,
}

/// A server config for TLS termination. Files are read now; build a new
/// config to pick up rotated certificates.
pub fn server_config(s: &ServerSettings) -> Result<Arc<ServerConfig>, TlsError> {
    let provider = provider();
    let versions = protocol_versions(s.min_version, s.max_version)?;
    let verifier: Arc<dyn ClientCertVerifier> = match (s.client_auth, &s.client_ca) {
        (ClientAuth::None, _) => WebPkiClientVerifier::no_client_auth(),
        (_, None) => {
            return Err(TlsError::Settings(
                "client certificate verification needs a client CA file".into(),
            ));
        }
        (mode, Some(ca)) => {
            let roots = Arc::new(load_roots(ca)?);
            let mut builder = WebPkiClientVerifier::builder_with_provider(roots, provider.clone());
            if mode == ClientAuth::Optional {
                builder = builder.allow_unauthenticated();
            }
            builder
                .build()
                .map_err(|e| TlsError::Settings(format!("client CA {}: {e}", ca.display())))?
        }
    };
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&versions)?
        .with_client_cert_verifier(verifier);
    let mut config = if s.by_sni.is_empty() {
        let (chain, key) = load_identity(&s.cert, &s.key)?;
        builder.with_single_cert(chain, key)?
    } else {
        builder.with_cert_resolver(Arc::new(SniResolver::load(s, &provider)?))
    };
    config.alpn_protocols = s.alpn.clone();
    Ok(Arc::new(config))
}

/// Several servers on one port: the certificate whose hosts match the SNI
/// (exact, or a leading `*.` wildcard), else the first server's.
#[derive(Debug)]
struct SniResolver {
    by_host: Vec<(String, Arc<CertifiedKey>)>,
    default: Arc<CertifiedKey>,
}

impl SniResolver {
    fn load(s: &ServerSettings, provider: &Arc<rustls::crypto::CryptoProvider>) -> Result<Self, TlsError> {
        let certified = |cert: &PathBuf, key: &PathBuf| -> Result<Arc<CertifiedKey>, TlsError> {
            let (chain, key) = load_identity(cert, key)?;
            Ok(Arc::new(CertifiedKey::from_der(chain, key, provider)?))
        };
        let default = certified(&s.cert, &s.key)?;
        let mut by_host = Vec::new();
        for (hosts, cert, key) in &s.by_sni {
            let ck = certified(cert, key)?;
            by_host.extend(hosts.iter().map(|h| (h.to_ascii_lowercase(), ck.clone())));
        }
        Ok(Self { by_host, default })
    }
}

impl ResolvesServerCert for SniResolver {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let Some(sni) = hello.server_name().map(str::to_ascii_lowercase) else { return Some(self.default.clone()) };
        let fits = |pattern: &str| match pattern.strip_prefix('*') {
            Some(suffix) => sni.len() > suffix.len() && sni.ends_with(suffix),
            None => pattern == sni,
        };
        let exact = self.by_host.iter().find(|(h, _)| !h.starts_with('*') && fits(h));
        let wildcard = || self.by_host.iter().filter(|(h, _)| h.starts_with('*') && fits(h)).max_by_key(|(h, _)| h.len());
        Some(exact.or_else(wildcard).map_or_else(|| self.default.clone(), |(_, ck)| ck.clone()))
    }
}

/// The versions between `min` and `max`, both included.
pub(super) fn protocol_versions(
    min: Option<TlsVersion>,
    max: Option<TlsVersion>,
) -> Result<Vec<&'static SupportedProtocolVersion>, TlsError> {
    let min = min.unwrap_or(TlsVersion::Tls12);
    let max = max.unwrap_or(TlsVersion::Tls13);
    if min > max {
        return Err(TlsError::Settings(format!(
            "minimum TLS version {min:?} is above the maximum {max:?}"
        )));
    }
    let all = [(TlsVersion::Tls12, &TLS12), (TlsVersion::Tls13, &TLS13)];
    Ok(all
        .into_iter()
        .filter(|(v, _)| (min..=max).contains(v))
        .map(|(_, version)| version)
        .collect())
}
