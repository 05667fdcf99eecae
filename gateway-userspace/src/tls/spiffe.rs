//! SPIFFE identities of mesh workloads:
//! `spiffe://<trust-domain>/ns/<namespace>/sa/<service-account>`.

use std::{fmt, str::FromStr};

use super::TlsError;

/// The identity of a mesh workload, as carried in the URI SAN of its
/// certificate.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SpiffeId {
    pub trust_domain: String,
    pub namespace: String,
    pub service_account: String,
}

/// Longest SPIFFE id accepted, as in the SPIFFE ID specification.
const MAX_LEN: usize = 2048;

impl SpiffeId {
    /// An identity from its parts, each checked as [`SpiffeId::parse`] would.
    pub fn new(
        trust_domain: &str,
        namespace: &str,
        service_account: &str,
    ) -> Result<Self, TlsError> {
        Self::parse(&format!(
            "spiffe://{trust_domain}/ns/{namespace}/sa/{service_account}"
        ))
    }

    /// Parses `spiffe://<trust-domain>/ns/<namespace>/sa/<service-account>`.
    /// The trust domain is lowercase letters, digits, `.`, `-` and `_`; path
    /// segments are letters, digits, `.`, `-` and `_`, and not `.` or `..`.
    /// Ports, user info, queries and fragments are refused.
    pub fn parse(uri: &str) -> Result<Self, TlsError> {
        let fail = |reason| TlsError::Spiffe {
            uri: uri.to_owned(),
            reason,
        };
        if uri.len() > MAX_LEN {
            return Err(fail("longer than 2048 bytes"));
        }
        let rest = uri
            .strip_prefix("spiffe://")
            .ok_or_else(|| fail("does not start with spiffe://"))?;
        let (trust_domain, path) = rest
            .split_once('/')
            .ok_or_else(|| fail("has no path /ns/<namespace>/sa/<service-account>"))?;
        check_trust_domain(trust_domain).map_err(fail)?;
        let segments: Vec<&str> = path.split('/').collect();
        let ["ns", namespace, "sa", service_account] = segments.as_slice() else {
            return Err(fail("path is not /ns/<namespace>/sa/<service-account>"));
        };
        check_segment(namespace).map_err(fail)?;
        check_segment(service_account).map_err(fail)?;
        Ok(Self {
            trust_domain: trust_domain.to_owned(),
            namespace: (*namespace).to_owned(),
            service_account: (*service_account).to_owned(),
        })
    }

    /// The URI form, as written in a certificate's SAN.
    pub fn uri(&self) -> String {
        self.to_string()
    }
}

impl fmt::Display for SpiffeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "spiffe://{}/ns/{}/sa/{}",
            self.trust_domain, self.namespace, self.service_account
        )
    }
}

impl FromStr for SpiffeId {
    type Err = TlsError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

fn check_trust_domain(td: &str) -> Result<(), &'static str> {
    if td.is_empty() {
        return Err("trust domain is empty");
    }
    let allowed =
        |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '-' | '_');
    if !td.chars().all(allowed) {
        return Err("trust domain may hold only lowercase letters, digits, '.', '-' and '_'");
    }
    Ok(())
}

fn check_segment(segment: &str) -> Result<(), &'static str> {
    if segment.is_empty() {
        return Err("namespace or service account is empty");
    }
    if segment == "." || segment == ".." {
        return Err("namespace or service account is '.' or '..'");
    }
    let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_');
    if !segment.chars().all(allowed) {
        return Err("namespace or service account may hold only letters, digits, '.', '-' and '_'");
    }
    Ok(())
}
