//! Subject alternative names read from a certificate, and Istio's
//! `subjectAltNames` matching against them.

use std::net::IpAddr;

use x509_parser::{extensions::GeneralName, prelude::FromDer};

/// One subject alternative name of a certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum San {
    Dns(String),
    Uri(String),
    Ip(IpAddr),
}

/// The DNS, URI and IP SANs of a DER certificate; `None` when it cannot be
/// parsed. Other kinds of names are left out.
pub(super) fn sans(der: &[u8]) -> Option<Vec<San>> {
    let (_, cert) = x509_parser::certificate::X509Certificate::from_der(der).ok()?;
    let Some(ext) = cert.subject_alternative_name().ok()? else {
        return Some(Vec::new());
    };
    let names = ext
        .value
        .general_names
        .iter()
        .filter_map(|name| match name {
            GeneralName::DNSName(dns) => Some(San::Dns((*dns).to_owned())),
            GeneralName::URI(uri) => Some(San::Uri((*uri).to_owned())),
            GeneralName::IPAddress(bytes) => ip_from_bytes(bytes).map(San::Ip),
            _ => None,
        })
        .collect();
    Some(names)
}

/// Whether any of the certificate's SANs is `wanted`: an IP address matches
/// an IP SAN, a URI (it has `://`) matches a URI SAN exactly, and anything
/// else matches a DNS SAN, case-insensitively, where a wildcard SAN
/// `*.example.com` stands for exactly one leftmost label.
pub(super) fn any_matches(sans: &[San], wanted: &str) -> bool {
    if let Ok(ip) = wanted.parse::<IpAddr>() {
        return sans.contains(&San::Ip(ip));
    }
    if wanted.contains("://") {
        return sans
            .iter()
            .any(|san| matches!(san, San::Uri(uri) if uri == wanted));
    }
    sans.iter()
        .any(|san| matches!(san, San::Dns(dns) if dns_matches(dns, wanted)))
}

fn dns_matches(presented: &str, wanted: &str) -> bool {
    let presented = presented.trim_end_matches('.');
    let wanted = wanted.trim_end_matches('.');
    if presented.is_empty() || wanted.is_empty() {
        return false;
    }
    if let Some(suffix) = presented.strip_prefix("*.") {
        return match wanted.split_once('.') {
            Some((label, rest)) => {
                !label.is_empty() && label != "*" && rest.eq_ignore_ascii_case(suffix)
            }
            None => false,
        };
    }
    presented.eq_ignore_ascii_case(wanted)
}

fn ip_from_bytes(bytes: &[u8]) -> Option<IpAddr> {
    match bytes.len() {
        4 => <[u8; 4]>::try_from(bytes).ok().map(IpAddr::from),
        16 => <[u8; 16]>::try_from(bytes).ok().map(IpAddr::from),
        _ => None,
    }
}
