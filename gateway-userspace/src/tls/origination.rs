//! TLS origination to upstreams, as an Istio DestinationRule's
//! `trafficPolicy.tls` asks for it (modes `SIMPLE` and `MUTUAL`).

use std::{path::PathBuf, sync::Arc};

use rustls::{ClientConfig, client::danger::ServerCertVerifier};
use rustls_pki_types::ServerName;
use tokio::net::TcpStream;
use tokio_rustls::{TlsConnector, client::TlsStream};

use super::{
    TlsError,
    pem::{load_identity, load_roots, system_roots},
    provider,
    verify::{InsecureVerifier, NameCheck, PeerVerifier},
};

/// DestinationRule `trafficPolicy.tls` for origination, already validated
/// for its mode: `SIMPLE` (`mutual: false`) or `MUTUAL` (`mutual: true`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OriginationSettings {
    /// Present `client_certificate` to the upstream (mode `MUTUAL`). Both
    /// `client_certificate` and `private_key` are then required; in `SIMPLE`
    /// they are ignored.
    pub mutual: bool,
    /// The name sent as SNI and verified, instead of the host connected to.
    pub sni: Option<String>,
    /// PEM file of the CAs that may sign the upstream's certificate; the
    /// system bundle when absent.
    pub ca_certificates: Option<PathBuf>,
    /// When non-empty, the upstream's certificate must carry one of these
    /// (DNS, URI or IP SAN) instead of being valid for the server name.
    pub subject_alt_names: Vec<String>,
    /// PEM certificate chain presented in mode `MUTUAL`.
    pub client_certificate: Option<PathBuf>,
    /// PEM private key of `client_certificate`.
    pub private_key: Option<PathBuf>,
    /// Accept any upstream certificate: no chain, no name check.
    pub insecure_skip_verify: bool,
    /// ALPN protocols offered, in order of preference; none when empty.
    pub alpn: Vec<Vec<u8>>,
}

impl OriginationSettings {
    /// The server name to hand to [`originate`] for a connection to `host`:
    /// the configured SNI, else the host itself.
    pub fn server_name<'a>(&'a self, host: &'a str) -> &'a str {
        self.sni.as_deref().unwrap_or(host)
    }
}

/// A client config for origination. Files are read now, not per connection;
/// build a new config to pick up rotated certificates.
pub fn origination_config(s: &OriginationSettings) -> Result<Arc<ClientConfig>, TlsError> {
    if let Some(sni) = &s.sni {
        parse_server_name(sni)?;
    }
    let provider = provider();
    let verifier: Arc<dyn ServerCertVerifier> = if s.insecure_skip_verify {
        tracing::warn!(
            "TLS origination with insecureSkipVerify: upstream certificates are not verified"
        );
        Arc::new(InsecureVerifier::new(&provider))
    } else {
        let roots = match &s.ca_certificates {
            Some(path) => load_roots(path)?,
            None => system_roots()?,
        };
        let check = if s.subject_alt_names.is_empty() {
            NameCheck::ServerName
        } else {
            NameCheck::AnySan(s.subject_alt_names.clone())
        };
        Arc::new(PeerVerifier::new(roots, &provider, check))
    };
    let builder = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .dangerous()
        .with_custom_certificate_verifier(verifier);
    let mut config = if s.mutual {
        let (Some(cert), Some(key)) = (&s.client_certificate, &s.private_key) else {
            return Err(TlsError::Settings(
                "mode MUTUAL needs both a client certificate and a private key".into(),
            ));
        };
        let (chain, key) = load_identity(cert, key)?;
        builder.with_client_auth_cert(chain, key)?
    } else {
        builder.with_no_client_auth()
    };
    config.alpn_protocols = s.alpn.clone();
    Ok(Arc::new(config))
}

/// The TLS handshake over an open connection. `server_name` is sent as SNI
/// (unless it is an IP address) and, for configs that check names, verified
/// against the certificate; see [`OriginationSettings::server_name`].
pub async fn originate(
    tcp: TcpStream,
    server_name: &str,
    config: Arc<ClientConfig>,
) -> Result<TlsStream<TcpStream>, TlsError> {
    let name = parse_server_name(server_name)?;
    TlsConnector::from(config)
        .connect(name, tcp)
        .await
        .map_err(|source| TlsError::Handshake {
            peer: server_name.to_owned(),
            source,
        })
}

/// A DNS name or an IP address, as rustls takes it.
pub(super) fn parse_server_name(name: &str) -> Result<ServerName<'static>, TlsError> {
    ServerName::try_from(name.to_owned()).map_err(|_| TlsError::ServerName(name.to_owned()))
}
