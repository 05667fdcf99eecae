//! Findings: every problem the loader reports, with a stable code, a
//! severity, a precise position and the resource and field it concerns.
//!
//! The codes are documented in `docs/config-findings.md`; keep the two in step.

use serde::Serialize;
use std::fmt;
use std::path::{Path, PathBuf};

/// How serious a finding is. Any `Error` prevents a snapshot from being built.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Error,
    Warning,
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
        })
    }
}

macro_rules! codes {
    ($($variant:ident = $code:literal, $sev:ident, $summary:literal;)*) => {
        /// Stable identifier of a kind of finding (`GW1xxx` schema, `GW15xx`
        /// TLS material, `GW2xxx` cross-resource references).
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub enum Code { $($variant,)* }

        impl Code {
            /// Every code, in documentation order.
            pub const ALL: &'static [Code] = &[$(Code::$variant,)*];

            /// The code as written in output, e.g. `GW1001`.
            pub fn as_str(self) -> &'static str {
                match self { $(Code::$variant => $code,)* }
            }

            /// The severity findings of this code carry.
            pub fn severity(self) -> Severity {
                match self { $(Code::$variant => Severity::$sev,)* }
            }

            /// A short description of the code, as in the documentation.
            pub fn summary(self) -> &'static str {
                match self { $(Code::$variant => $summary,)* }
            }
        }
    };
}

codes! {
    YamlSyntax = "GW1000", Error, "YAML syntax error";
    UnknownField = "GW1001", Error, "unknown field";
    WrongType = "GW1002", Error, "value has the wrong type";
    BadEnum = "GW1003", Error, "value is not one of the allowed enum values";
    MissingField = "GW1004", Error, "required field is missing";
    DuplicateKey = "GW1005", Error, "mapping key given twice";
    PortOutOfRange = "GW1006", Error, "port number out of range";
    InvalidHost = "GW1007", Error, "invalid host name or wildcard";
    InvalidRegex = "GW1008", Error, "regular expression does not compile";
    WeightSum = "GW1009", Error, "route weights do not sum to 100";
    InvalidDuration = "GW1010", Error, "invalid duration";
    InvalidAddress = "GW1011", Error, "invalid IP address or CIDR block";
    InvalidValue = "GW1012", Error, "value out of range or malformed";
    InvalidName = "GW1013", Error, "invalid resource or namespace name";
    ConflictingFields = "GW1014", Error, "fields that exclude each other are both set";
    UnsupportedVersion = "GW1020", Error, "unsupported apiVersion for a known kind";
    SkippedKind = "GW1021", Warning, "resource kind is not used by the gateway and was skipped";
    TlsMissingMaterial = "GW1501", Error, "TLS server without certificate material";
    TlsFileUnreadable = "GW1502", Error, "TLS file cannot be read";
    TlsFileInvalid = "GW1503", Error, "TLS file does not hold a parseable PEM certificate or key";
    TlsCredentialUnchecked = "GW1504", Warning, "credentialName cannot be resolved without a credential directory";
    TlsSettingsRequired = "GW1505", Error, "HTTPS or TLS server without tls settings";
    UnknownGateway = "GW2001", Error, "VirtualService refers to a Gateway that does not exist";
    UnknownSubset = "GW2002", Error, "route refers to a subset no DestinationRule defines";
    SelectorMatchesNothing = "GW2003", Warning, "Gateway selector matches no configured role";
    PortHostConflict = "GW2004", Error, "Gateways with overlapping selectors claim the same port and host (IST0145)";
    HostNotServed = "GW2005", Warning, "VirtualService host is served by none of its Gateways";
    DuplicateResource = "GW2006", Error, "resource defined twice";
    DuplicateSubset = "GW2007", Error, "subset name defined twice";
    MultipleSidecarsWithoutSelector = "GW2008", Warning, "more than one Sidecar of a namespace without workloadSelector (IST0111)";
    ConflictingSidecarSelectors = "GW2009", Warning, "two Sidecars select the same workloads (IST0110)";
    ServiceEntryAddressesRequired = "GW2010", Warning, "ServiceEntry TCP port without addresses (IST0134)";
    ConflictingServiceEntryProtocol = "GW2011", Warning, "one host and port given two protocols by ServiceEntries (IST0177)";
    NoServerCertificateVerification = "GW2012", Warning, "TLS origination without a CA to verify the server (IST0128, IST0129)";
    MergedGateways = "GW2013", Warning, "Gateways with the same selector serve the same port and host, merged (IST0145)";
    GatewayDuplicateCertificate = "GW2014", Warning, "Gateways on the same instances share a certificate (IST0138)";
    VirtualServiceUnreachableRule = "GW2015", Warning, "VirtualService rule never used (IST0130)";
    VirtualServiceIneffectiveMatch = "GW2016", Warning, "VirtualService match taken by an earlier one (IST0131)";
    ConflictingMeshVirtualServiceHosts = "GW2017", Warning, "VirtualServices bound to mesh for the same host (IST0109)";
    AuthzInvalidValue = "GW2101", Error, "AuthorizationPolicy value that never matches or is malformed";
    AuthzUnsupported = "GW2102", Warning, "AuthorizationPolicy feature the gateway enforces fail-closed only";
    AuthzEmptyRules = "GW2103", Warning, "AuthorizationPolicy whose rules allow or deny everything, or nothing";
}

impl fmt::Display for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for Code {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// The resource a finding is about.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct ResourceRef {
    pub kind: String,
    pub namespace: String,
    pub name: String,
}

impl fmt::Display for ResourceRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}/{}", self.kind, self.namespace, self.name)
    }
}

/// One problem found in the configuration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    pub code: Code,
    pub severity: Severity,
    pub file: PathBuf,
    /// 1-based line.
    pub line: usize,
    /// 1-based column.
    pub column: usize,
    pub resource: Option<ResourceRef>,
    /// Field path such as `spec.http[0].route[1].weight`; empty for the
    /// document as a whole.
    pub field: String,
    pub message: String,
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}: {}[{}]",
            self.file.display(),
            self.line,
            self.column,
            self.severity,
            self.code
        )?;
        if let Some(r) = &self.resource {
            write!(f, " {r}")?;
        }
        if !self.field.is_empty() {
            write!(f, " {}", self.field)?;
        }
        write!(f, ": {}", self.message)
    }
}

/// A 1-based position in a source file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Pos {
    pub line: usize,
    pub column: usize,
}

impl Pos {
    pub fn new(line: usize, column: usize) -> Pos {
        Pos { line, column }
    }
}

/// Builds a finding with the code's own severity.
pub(crate) fn finding(
    code: Code,
    file: &Path,
    pos: Pos,
    resource: Option<&ResourceRef>,
    field: &str,
    message: impl Into<String>,
) -> Finding {
    Finding {
        code,
        severity: code.severity(),
        file: file.to_path_buf(),
        line: pos.line.max(1),
        column: pos.column.max(1),
        resource: resource.cloned(),
        field: field.to_string(),
        message: message.into(),
    }
}

/// Sorts findings by file, position and code so output is deterministic.
pub(crate) fn sort(findings: &mut [Finding]) {
    findings.sort_by(|a, b| {
        (&a.file, a.line, a.column, a.code, &a.field, &a.message)
            .cmp(&(&b.file, b.line, b.column, b.code, &b.field, &b.message))
    });
}
