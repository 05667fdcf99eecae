//! Istio configuration: reads `networking.istio.io` (v1alpha3, v1beta1,
//! v1) and `security.istio.io` resources from YAML files, reports every
//! problem as a [`Finding`], and compiles valid input into an immutable
//! [`Snapshot`]. Nothing outside this module knows Istio's resource shapes.

pub mod api_documents;
mod decode;
mod fields;
pub mod findings;
pub mod hosts;
pub mod resources;
pub mod snapshot;
pub(crate) mod source;
mod validate;
pub mod values;
pub mod yaml;

#[cfg(test)]
mod tests;

pub use findings::{Code, Finding, Pos, ResourceRef, Severity};
pub use hosts::{GatewayRef, NamespaceScope, ServerHost};
pub use resources::authorization::AuthorizationPolicy;
pub use resources::common::{Destination, Labels, StringMatch};
pub use resources::destination_rule::DestinationRule;
pub use resources::gateway::{Gateway, Protocol, Server, ServerTlsMode};
pub use resources::service_entry::{ServiceEntry, WorkloadEntry};
pub use resources::sidecar::Sidecar;
pub use resources::virtual_service::VirtualService;
pub use snapshot::{Snapshot, Summary};

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Errors that stop loading altogether. Problems in the configuration
/// itself are findings, not errors.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("configuration path {} does not exist", path.display())]
    NotFound { path: PathBuf },
    #[error("cannot read configuration path {}: {source}", path.display())]
    Unreadable {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl ConfigError {
    fn read(path: &Path, e: std::io::Error) -> ConfigError {
        match e.kind() {
            std::io::ErrorKind::NotFound => ConfigError::NotFound {
                path: path.to_path_buf(),
            },
            _ => ConfigError::Unreadable {
                path: path.to_path_buf(),
                source: e,
            },
        }
    }
}

/// How to read the configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadOptions {
    /// Namespace of resources without `metadata.namespace`.
    pub default_namespace: String,
    /// Labels of this gateway instance (a role Gateway selectors may match).
    pub instance_labels: BTreeMap<String, String>,
    /// Directory holding `<credentialName>/{tls.crt,tls.key,ca.crt}`.
    pub credential_dir: Option<PathBuf>,
    /// A reference to a Gateway or subset that does not exist is a warning,
    /// not an error: in a cluster, resources arrive in any order, and the
    /// route answers as Envoy does (503) until the target appears.
    pub lenient_references: bool,
}

impl Default for LoadOptions {
    fn default() -> Self {
        LoadOptions {
            default_namespace: "default".into(),
            instance_labels: BTreeMap::new(),
            credential_dir: None,
            lenient_references: false,
        }
    }
}

/// The outcome of loading: every finding, and the snapshot when no finding
/// is an error.
#[derive(Debug, Clone)]
pub struct Loaded {
    pub findings: Vec<Finding>,
    pub snapshot: Option<Arc<Snapshot>>,
}

impl Loaded {
    pub fn has_errors(&self) -> bool {
        self.findings.iter().any(|f| f.severity == Severity::Error)
    }

    /// Number of error and warning findings.
    pub fn counts(&self) -> (usize, usize) {
        let errors = self
            .findings
            .iter()
            .filter(|f| f.severity == Severity::Error)
            .count();
        (errors, self.findings.len() - errors)
    }
}

/// Loads files and directories (recursively, `*.yaml`/`*.yml`, sorted).
/// Returns `Err` only when a path cannot be read.
pub fn load(paths: &[PathBuf], opts: &LoadOptions) -> Result<Loaded, ConfigError> {
    let sources = source::collect(paths)?;
    Ok(load_sources(&sources, opts))
}

/// Loads configuration held in memory, as if read from `path` (relative
/// TLS file paths resolve against its directory).
pub fn load_str(path: &Path, text: &str, opts: &LoadOptions) -> Loaded {
    load_sources(
        &[source::Source {
            path: path.to_path_buf(),
            bytes: text.as_bytes().to_vec(),
        }],
        opts,
    )
}

pub(crate) fn load_sources(sources: &[source::Source], opts: &LoadOptions) -> Loaded {
    let mut findings = Vec::new();
    let mut decoded = Vec::new();
    for src in sources {
        let text = source::text(src, &mut findings);
        for doc in yaml::parse_documents(&text) {
            match doc {
                yaml::Doc::Err { pos, message } => {
                    let msg = format!("YAML syntax error: {message}; this document was skipped");
                    findings.push(findings::finding(
                        Code::YamlSyntax,
                        &src.path,
                        pos,
                        None,
                        "",
                        msg,
                    ));
                }
                yaml::Doc::Ok(node) if node.value == yaml::Value::Null => {}
                yaml::Doc::Ok(node) => {
                    let ns = &opts.default_namespace;
                    if let Some(d) = resources::decode_document(&src.path, &node, ns, &mut findings)
                    {
                        decoded.push(d);
                    }
                }
            }
        }
    }
    validate::run(&mut decoded, opts, &mut findings);
    if opts.lenient_references {
        for f in findings.iter_mut().filter(|f| matches!(f.code, Code::UnknownGateway | Code::UnknownSubset)) {
            f.severity = Severity::Warning;
        }
    }
    findings::sort(&mut findings);
    let has_errors = findings.iter().any(|f| f.severity == Severity::Error);
    let snapshot = if has_errors {
        None
    } else {
        Some(Arc::new(Snapshot::from_resources(
            decoded.into_iter().filter_map(|d| d.resource),
        )))
    };
    Loaded { findings, snapshot }
}
