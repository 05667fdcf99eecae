//! TLS origination that does not verify the server: a DestinationRule
//! whose `tls` is SIMPLE or MUTUAL with neither `caCertificates` nor a
//! `credentialName` to take a CA from, unless `insecureSkipVerify` says so
//! on purpose. Istio reports it at the rule's level (IST0128,
//! NoServerCertificateVerificationDestinationLevel) and per port (IST0129,
//! NoServerCertificateVerificationPortLevel).

use crate::config::findings::{Code, Finding, finding};
use crate::config::resources::destination_rule::{ClientTls, ClientTlsMode, TrafficPolicy};
use crate::config::resources::{Decoded, Resource};

pub(crate) fn check(decoded: &[Decoded], findings: &mut Vec<Finding>) {
    for d in decoded {
        let (Some(Resource::DestinationRule(rule)), false) = (&d.resource, d.damaged) else { continue };
        let policies = rule
            .traffic_policy
            .iter()
            .map(|p| ("spec.trafficPolicy".to_string(), p))
            .chain(rule.subsets.iter().enumerate().filter_map(|(i, s)| s.traffic_policy.as_ref().map(|p| (format!("spec.subsets[{i}].trafficPolicy"), p))));
        for (at, policy) in policies {
            policy_findings(d, &rule.host, &at, policy, findings);
        }
    }
}

fn policy_findings(d: &Decoded, host: &str, at: &str, policy: &TrafficPolicy, findings: &mut Vec<Finding>) {
    if let Some(tls) = policy.tls.as_ref().filter(|t| unverified(t)) {
        let field = format!("{at}.tls");
        let msg = format!(
            "(IST0128) TLS {} to `{host}` does not verify the server's certificate: add `caCertificates` (or a `credentialName` holding `ca.crt`)",
            tls.mode.as_str()
        );
        findings.push(finding(Code::NoServerCertificateVerification, &d.file, d.pos_of(&field), Some(&d.reference), &field, msg));
    }
    for (i, port_policy) in policy.port_level_settings.iter().enumerate() {
        let Some(tls) = port_policy.tls.as_ref().filter(|t| unverified(t)) else { continue };
        let field = format!("{at}.portLevelSettings[{i}].tls");
        let port = port_policy.port.map_or_else(|| "?".to_string(), |p| p.to_string());
        let msg = format!(
            "(IST0129) TLS {} to `{host}` port {port} does not verify the server's certificate: add `caCertificates` (or a `credentialName` holding `ca.crt`)",
            tls.mode.as_str()
        );
        findings.push(finding(Code::NoServerCertificateVerification, &d.file, d.pos_of(&field), Some(&d.reference), &field, msg));
    }
}

fn unverified(tls: &ClientTls) -> bool {
    matches!(tls.mode, ClientTlsMode::Simple | ClientTlsMode::Mutual)
        && tls.ca_certificates.is_none()
        && tls.credential_name.is_none()
        && tls.insecure_skip_verify != Some(true)
}
