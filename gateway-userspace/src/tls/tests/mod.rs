//! Tests with real handshakes over loopback sockets, against certificates
//! from this module's own test PKI written to a temporary directory.

mod istio_mutual;
mod origination;
mod pki;
mod reloading_cert;
mod server;

use std::{
    env, fs,
    net::SocketAddr,
    path::{Path, PathBuf},
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use rustls::{ClientConfig, ProtocolVersion, ServerConfig};
use rustls_pki_types::CertificateDer;
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream},
};
use tokio_rustls::TlsAcceptor;

use super::{
    CaFiles, ClientAuth, IssueRequest, IssuedFiles, ServerSettings, SpiffeId, generate_ca, issue,
    originate, server_config,
};

/// A directory removed when dropped.
pub(super) struct TempDir(PathBuf);

impl TempDir {
    pub(super) fn new(label: &str) -> Self {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let path = env::temp_dir().join(format!("gateway-tls-{label}-{}-{n}", std::process::id()));
        let _ = fs::remove_dir_all(&path);
        fs::create_dir_all(&path).unwrap_or_else(|e| panic!("create {}: {e}", path.display()));
        Self(path)
    }

    pub(super) fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// A CA and the certificates it issued, in one temporary directory.
pub(super) struct Pki {
    pub(super) dir: TempDir,
    pub(super) ca: CaFiles,
}

impl Pki {
    pub(super) fn new(label: &str) -> Self {
        let dir = TempDir::new(label);
        let ca = generate_ca(dir.path(), &format!("{label} CA"))
            .unwrap_or_else(|e| panic!("generate CA {label}: {e}"));
        Self { dir, ca }
    }

    pub(super) fn issue(&self, req: IssueRequest) -> IssuedFiles {
        issue(&self.ca, self.dir.path(), &req).unwrap_or_else(|e| panic!("issue {req:?}: {e}"))
    }

    /// A server certificate for DNS names (and 127.0.0.1 when asked).
    pub(super) fn server(&self, name: &str, dns: &[&str]) -> IssuedFiles {
        self.issue(IssueRequest {
            name: name.into(),
            dns_names: dns.iter().map(|d| d.to_string()).collect(),
            server: true,
            ..IssueRequest::default()
        })
    }

    /// A client certificate with a DNS name only.
    pub(super) fn client(&self, name: &str) -> IssuedFiles {
        self.issue(IssueRequest {
            name: name.into(),
            dns_names: vec![format!("{name}.client.test")],
            client: true,
            ..IssueRequest::default()
        })
    }

    /// A client and server certificate for a workload identity.
    pub(super) fn workload(&self, ns: &str, sa: &str) -> (IssuedFiles, SpiffeId) {
        let id = SpiffeId::new("cluster.local", ns, sa)
            .unwrap_or_else(|e| panic!("spiffe id {ns}/{sa}: {e}"));
        let files = self.issue(IssueRequest {
            name: format!("{ns}-{sa}"),
            spiffe: Some(id.clone()),
            client: true,
            server: true,
            ..IssueRequest::default()
        });
        (files, id)
    }
}

/// Terminating settings for a certificate: no client auth, no ALPN, any
/// version.
pub(super) fn server_settings(files: &IssuedFiles) -> ServerSettings {
    ServerSettings {
        cert: files.cert.clone(),
        key: files.key.clone(),
        client_ca: None,
        client_auth: ClientAuth::None,
        alpn: Vec::new(),
        min_version: None,
        max_version: None,
        by_sni: Vec::new(),
    }
}

pub(super) fn build_server(settings: &ServerSettings) -> Arc<ServerConfig> {
    server_config(settings).unwrap_or_else(|e| panic!("server config {settings:?}: {e}"))
}

/// What one side saw of a finished handshake.
#[derive(Debug)]
pub(super) struct Seen {
    pub(super) sni: Option<String>,
    pub(super) peer: Option<Vec<CertificateDer<'static>>>,
    pub(super) alpn: Option<Vec<u8>>,
    pub(super) version: Option<ProtocolVersion>,
}

/// The outcome of one connection, as (client, server) each saw it. The
/// server writes a greeting after its handshake and the client reads it, so
/// a server that refuses the client after the client's handshake finished
/// (TLS 1.3 client authentication) fails the client too.
pub(super) struct Outcome {
    pub(super) client: Result<Seen, String>,
    pub(super) server: Result<Seen, String>,
}

const GREETING: &[u8] = b"hello";

/// One connection from a client config to a server config over loopback.
pub(super) async fn connect(
    server: Arc<ServerConfig>,
    server_name: &str,
    client: Arc<ClientConfig>,
) -> Outcome {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap_or_else(|e| panic!("bind loopback: {e}"));
    let addr = listener
        .local_addr()
        .unwrap_or_else(|e| panic!("local addr: {e}"));
    let serve = tokio::spawn(serve_once(listener, server));
    let client = run_client(addr, server_name, client).await;
    let server = match tokio::time::timeout(Duration::from_secs(10), serve).await {
        Ok(Ok(seen)) => seen,
        Ok(Err(join)) => Err(format!("server task: {join}")),
        Err(_) => Err("server timed out".into()),
    };
    Outcome { client, server }
}

async fn serve_once(listener: TcpListener, config: Arc<ServerConfig>) -> Result<Seen, String> {
    let (tcp, _) = listener
        .accept()
        .await
        .map_err(|e| format!("accept: {e}"))?;
    let mut tls = TlsAcceptor::from(config)
        .accept(tcp)
        .await
        .map_err(|e| format!("server handshake: {e}"))?;
    let conn = tls.get_ref().1;
    let seen = Seen {
        sni: conn.server_name().map(str::to_owned),
        peer: conn.peer_certificates().map(|c| c.to_vec()),
        alpn: conn.alpn_protocol().map(<[u8]>::to_vec),
        version: conn.protocol_version(),
    };
    tls.write_all(GREETING)
        .await
        .map_err(|e| format!("server write: {e}"))?;
    tls.shutdown()
        .await
        .map_err(|e| format!("server shutdown: {e}"))?;
    Ok(seen)
}

async fn run_client(
    addr: SocketAddr,
    server_name: &str,
    config: Arc<ClientConfig>,
) -> Result<Seen, String> {
    let work = async {
        let tcp = TcpStream::connect(addr)
            .await
            .map_err(|e| format!("connect: {e}"))?;
        let mut tls = originate(tcp, server_name, config)
            .await
            .map_err(|e| e.to_string())?;
        let mut greeting = [0u8; GREETING.len()];
        tls.read_exact(&mut greeting)
            .await
            .map_err(|e| format!("client read: {e}"))?;
        if greeting != GREETING {
            return Err(format!("unexpected greeting {greeting:?}"));
        }
        let conn = tls.get_ref().1;
        Ok(Seen {
            sni: None,
            peer: conn.peer_certificates().map(|c| c.to_vec()),
            alpn: conn.alpn_protocol().map(<[u8]>::to_vec),
            version: conn.protocol_version(),
        })
    };
    tokio::time::timeout(Duration::from_secs(10), work)
        .await
        .unwrap_or_else(|_| Err("client timed out".into()))
}

/// Unwraps a side's outcome that must have succeeded.
pub(super) fn ok(side: &str, seen: Result<Seen, String>) -> Seen {
    seen.unwrap_or_else(|e| panic!("{side} should have succeeded: {e}"))
}

/// Unwraps a side's outcome that must have failed, with its message.
pub(super) fn failed(side: &str, seen: Result<Seen, String>) -> String {
    match seen {
        Ok(seen) => panic!("{side} should have failed, saw {seen:?}"),
        Err(e) => e,
    }
}

/// The DER of the first certificate of a PEM file.
pub(super) fn leaf_der(path: &Path) -> CertificateDer<'static> {
    let certs = super::load_certs(path).unwrap_or_else(|e| panic!("{e}"));
    certs
        .into_iter()
        .next()
        .unwrap_or_else(|| panic!("{} is empty", path.display()))
}
