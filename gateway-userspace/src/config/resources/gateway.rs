//! `Gateway` (networking.istio.io): servers the gateway listens on.

use super::common::{Labels, Meta, labels};
use crate::config::decode::{Cx, IstioEnum, istio_enum};
use crate::config::findings::Code;
use crate::config::hosts::{NamespaceScope, ServerHost, host_problem};
use crate::config::values::is_dns_label;
use crate::config::yaml::Node;
use serde::Serialize;
use std::net::IpAddr;
use std::path::{Component, Path, PathBuf};

istio_enum!(
    /// Port protocol (Istio accepts any letter case; kept upper case).
    Protocol {
        Http = "HTTP", Https = "HTTPS", Http2 = "HTTP2", HttpProxy = "HTTP_PROXY",
        Grpc = "GRPC", GrpcWeb = "GRPC-WEB", Tcp = "TCP", Udp = "UDP", Tls = "TLS",
        Mongo = "MONGO", Redis = "REDIS", Mysql = "MYSQL",
    }
);

impl Protocol {
    /// Whether the protocol carries HTTP once decoded.
    pub fn is_http(self) -> bool {
        matches!(
            self,
            Protocol::Http | Protocol::Https | Protocol::Http2 | Protocol::Grpc | Protocol::GrpcWeb
        )
    }
}

istio_enum!(
    /// How a Gateway server treats TLS.
    ServerTlsMode {
        Passthrough = "PASSTHROUGH", Simple = "SIMPLE", Mutual = "MUTUAL",
        AutoPassthrough = "AUTO_PASSTHROUGH", IstioMutual = "ISTIO_MUTUAL",
        OptionalMutual = "OPTIONAL_MUTUAL",
    }
);

impl ServerTlsMode {
    /// Whether the gateway terminates TLS with its own certificate.
    pub fn terminates(self) -> bool {
        matches!(
            self,
            ServerTlsMode::Simple | ServerTlsMode::Mutual | ServerTlsMode::OptionalMutual
        )
    }
    /// Whether client certificates are verified against a CA.
    pub fn verifies_clients(self) -> bool {
        matches!(self, ServerTlsMode::Mutual | ServerTlsMode::OptionalMutual)
    }
}

istio_enum!(
    /// TLS protocol version bound.
    TlsVersion { Auto = "TLS_AUTO", V1_0 = "TLSV1_0", V1_1 = "TLSV1_1", V1_2 = "TLSV1_2", V1_3 = "TLSV1_3" }
);

/// A Gateway resource.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Gateway {
    pub meta: Meta,
    /// Labels of the gateway instances this applies to (empty: all).
    pub selector: Labels,
    pub servers: Vec<Server>,
}

/// One listener of a Gateway.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Server {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    pub port: ServerPort,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bind: Option<Bind>,
    pub hosts: Vec<ServerHost>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls: Option<ServerTls>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub default_endpoint: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ServerPort {
    pub number: u16,
    pub name: String,
    pub protocol: Protocol,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target_port: Option<u16>,
}

/// Where a server binds: an address or a Unix socket.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Bind {
    Ip(IpAddr),
    Unix(String),
}

/// TLS settings of a server. Relative file paths are resolved against the
/// directory of the file that declared them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ServerTls {
    pub https_redirect: bool,
    pub mode: ServerTlsMode,
    pub server_certificate: Option<PathBuf>,
    pub private_key: Option<PathBuf>,
    pub ca_certificates: Option<PathBuf>,
    pub credential_name: Option<String>,
    pub subject_alt_names: Vec<String>,
    pub verify_certificate_spki: Vec<String>,
    pub verify_certificate_hash: Vec<String>,
    pub min_protocol_version: Option<TlsVersion>,
    pub max_protocol_version: Option<TlsVersion>,
    pub cipher_suites: Vec<String>,
    /// The files actually used (from the paths above or from
    /// `credentialName` in the credential directory), once checked.
    pub files: Option<TlsFiles>,
}

/// Certificate chain, key and optional CA bundle of a server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TlsFiles {
    pub certificate: PathBuf,
    pub private_key: PathBuf,
    pub ca_certificates: Option<PathBuf>,
    /// SHA-256 over the three files' contents as read when checked, so a
    /// rotated certificate makes a new configuration (and re-keys its
    /// listener) even though no path changed.
    #[serde(skip)]
    pub contents: [u8; 32],
}

pub(crate) fn decode(cx: &mut Cx<'_>, spec: &Node, meta: Meta) -> Option<Gateway> {
    let mut f = cx.map(spec, "spec")?;
    let selector = f.get(cx, "selector", labels).unwrap_or_default();
    let servers = f.req(cx, "servers", |cx, n, p| Some(cx.list(n, p, server)));
    f.finish(cx);
    Some(Gateway {
        meta,
        selector,
        servers: servers?,
    })
}

/// Reads a protocol name in any letter case.
pub(crate) fn protocol(cx: &mut Cx<'_>, n: &Node, p: &str) -> Option<Protocol> {
    let s = cx.string(n, p)?;
    let up = s.to_ascii_uppercase();
    if let Some((_, v)) = Protocol::NAMES.iter().find(|(name, _)| *name == up) {
        return Some(*v);
    }
    let names: Vec<&str> = Protocol::NAMES.iter().map(|(n, _)| *n).collect();
    let msg = format!("`{s}` is not a protocol; use one of {}", names.join(", "));
    cx.report(Code::BadEnum, n.pos, p, msg);
    None
}

fn server(cx: &mut Cx<'_>, n: &Node, p: &str) -> Option<Server> {
    let mut f = cx.map(n, p)?;
    let name = f.string(cx, "name");
    let port = f.req(cx, "port", server_port);
    let bind = f.get(cx, "bind", bind);
    let hosts = f.req(cx, "hosts", |cx, n, p| {
        Some(cx.nonempty_list(n, p, "host", server_host))
    });
    let tls = f.get(cx, "tls", server_tls);
    let default_endpoint = f.string(cx, "defaultEndpoint");
    let pos = f.pos;
    f.finish(cx);
    let port = port?;
    if tls.is_none() && matches!(port.protocol, Protocol::Https | Protocol::Tls) {
        let msg = format!(
            "this {} server needs `tls` settings; add `tls:` with a mode such as SIMPLE or PASSTHROUGH",
            port.protocol.as_str()
        );
        cx.report(Code::TlsSettingsRequired, pos, p, msg);
    }
    Some(Server {
        name,
        port,
        bind,
        hosts: hosts?,
        tls,
        default_endpoint,
    })
}

pub(crate) fn server_port(cx: &mut Cx<'_>, n: &Node, p: &str) -> Option<ServerPort> {
    let mut f = cx.map(n, p)?;
    let number = f.req(cx, "number", |cx, n, p| cx.port(n, p, false));
    let name = f.req(cx, "name", |cx, n, p| cx.string(n, p));
    let protocol = f.req(cx, "protocol", protocol);
    let target_port = f.get(cx, "targetPort", |cx, n, p| cx.port(n, p, false));
    f.finish(cx);
    Some(ServerPort {
        number: number?,
        name: name?,
        protocol: protocol?,
        target_port,
    })
}

fn bind(cx: &mut Cx<'_>, n: &Node, p: &str) -> Option<Bind> {
    let s = cx.string(n, p)?;
    if let Some(path) = s.strip_prefix("unix://") {
        return Some(Bind::Unix(path.to_string()));
    }
    match s.parse::<IpAddr>() {
        Ok(ip) => Some(Bind::Ip(ip)),
        Err(_) => {
            let msg = format!(
                "`{s}` is not an IP address; use an address like `0.0.0.0` or `unix:///path`"
            );
            cx.report(Code::InvalidAddress, n.pos, p, msg);
            None
        }
    }
}

/// Reads a `namespace/host` entry (Gateway servers and Sidecar egress).
pub(crate) fn server_host(cx: &mut Cx<'_>, n: &Node, p: &str) -> Option<ServerHost> {
    let s = cx.string(n, p)?;
    let parsed = ServerHost::parse(&s);
    if let NamespaceScope::Named(ns) = &parsed.scope
        && !is_dns_label(ns)
    {
        let msg = format!("`{ns}` in `{s}` is not a namespace; use `*/`, `./` or a namespace name");
        cx.report(Code::InvalidName, n.pos, p, msg);
        return None;
    }
    if let Some(problem) = host_problem(&parsed.host) {
        cx.report(Code::InvalidHost, n.pos, p, problem);
        return None;
    }
    Some(parsed)
}

/// Resolves `path` against the directory of the declaring file, without
/// touching the file system (`..` is folded lexically).
pub(crate) fn resolve_path(file: &Path, path: &str) -> PathBuf {
    let joined = match file.parent() {
        Some(dir) if Path::new(path).is_relative() => dir.join(path),
        _ => PathBuf::from(path),
    };
    let mut out = PathBuf::new();
    for c in joined.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                if !matches!(
                    out.components().next_back(),
                    None | Some(Component::ParentDir | Component::RootDir)
                ) {
                    out.pop();
                } else if !out.has_root() {
                    out.push("..");
                }
            }
            other => out.push(other),
        }
    }
    out
}

fn path_field(cx: &mut Cx<'_>, n: &Node, p: &str) -> Option<PathBuf> {
    let s = cx.string(n, p)?;
    if s.is_empty() {
        cx.report(
            Code::InvalidValue,
            n.pos,
            p,
            "the path is empty; give a file path or remove the field",
        );
        return None;
    }
    Some(resolve_path(cx.file, &s))
}

fn server_tls(cx: &mut Cx<'_>, n: &Node, p: &str) -> Option<ServerTls> {
    let mut f = cx.map(n, p)?;
    let tls = ServerTls {
        https_redirect: f.boolean(cx, "httpsRedirect").unwrap_or(false),
        mode: f
            .enumeration(cx, "mode")
            .unwrap_or(ServerTlsMode::Passthrough),
        server_certificate: f.get(cx, "serverCertificate", path_field),
        private_key: f.get(cx, "privateKey", path_field),
        ca_certificates: f.get(cx, "caCertificates", path_field),
        credential_name: f.string(cx, "credentialName"),
        subject_alt_names: f.strings(cx, "subjectAltNames"),
        verify_certificate_spki: f.strings(cx, "verifyCertificateSpki"),
        verify_certificate_hash: f.strings(cx, "verifyCertificateHash"),
        min_protocol_version: f.enumeration(cx, "minProtocolVersion"),
        max_protocol_version: f.enumeration(cx, "maxProtocolVersion"),
        cipher_suites: f.strings(cx, "cipherSuites"),
        files: None,
    };
    f.ignore(&["caCrl", "credentialNames", "tlsCertificates"]);
    f.finish(cx);
    if let (Some(min), Some(max)) = (tls.min_protocol_version, tls.max_protocol_version)
        && min != TlsVersion::Auto
        && max != TlsVersion::Auto
        && min > max
    {
        let mp = format!("{p}.minProtocolVersion");
        let msg = format!(
            "minProtocolVersion {} is above maxProtocolVersion {}; lower the minimum or raise the maximum",
            min.as_str(),
            max.as_str()
        );
        cx.report(Code::InvalidValue, cx.pos_of(&mp), &mp, msg);
    }
    Some(tls)
}
