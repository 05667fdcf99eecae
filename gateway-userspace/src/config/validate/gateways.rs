//! Gateways that compete for the same instances, as `istioctl analyze`
//! reports them (Istio's IST0145, ConflictingGateways, and IST0138,
//! GatewayDuplicateCertificate), each finding on every Gateway involved.
//!
//! Two selectors overlap when one is contained in the other (an instance
//! carrying the larger one's labels is picked by both; an empty selector
//! picks every instance) or when a known role (the instance's labels, a
//! WorkloadEntry's) matches both. On one port, a host two such Gateways
//! both serve (wildcards matched as sets) is:
//! - with equal selectors, merged by Istio into one listener: a warning;
//! - with different, overlapping selectors, an error: which Gateway an
//!   instance applies depends on its labels.

use crate::config::findings::{Code, Finding, finding};
use crate::config::hosts::host_matches;
use crate::config::resources::common::{Labels, selector_matches};
use crate::config::resources::gateway::{Gateway, ServerTls};
use crate::config::resources::{Decoded, Resource};

pub(crate) fn check(decoded: &[Decoded], roles: &[&Labels], findings: &mut Vec<Finding>) {
    let gws: Vec<(&Decoded, &Gateway)> = decoded
        .iter()
        .filter_map(|d| match &d.resource {
            Some(Resource::Gateway(gw)) => Some((d, gw)),
            _ => None,
        })
        .collect();
    for (i, (d, gw)) in gws.iter().enumerate() {
        let rivals: Vec<&(&Decoded, &Gateway)> = gws
            .iter()
            .enumerate()
            .filter(|(j, (o, ogw))| *j != i && o.reference != d.reference && overlap(&gw.selector, &ogw.selector, roles))
            .map(|(_, g)| g)
            .collect();
        port_hosts(d, gw, &rivals, findings);
        certificates(d, gw, &rivals, findings);
    }
}

/// Whether one instance can be picked by both selectors.
fn overlap(a: &Labels, b: &Labels, roles: &[&Labels]) -> bool {
    selector_matches(a, b) || selector_matches(b, a) || roles.iter().any(|r| selector_matches(a, r) && selector_matches(b, r))
}

fn name(d: &Decoded) -> String {
    format!("{}/{}", d.reference.namespace, d.reference.name)
}

fn port_hosts(d: &Decoded, gw: &Gateway, rivals: &[&(&Decoded, &Gateway)], findings: &mut Vec<Finding>) {
    for (si, server) in gw.servers.iter().enumerate() {
        for (hi, host) in server.hosts.iter().enumerate() {
            let claims: Vec<&(&Decoded, &Gateway)> = rivals
                .iter()
                .copied()
                .filter(|(_, ogw)| {
                    ogw.servers.iter().any(|s| {
                        s.port.number == server.port.number
                            && s.hosts.iter().any(|h| host_matches(&h.host, &host.host) || host_matches(&host.host, &h.host))
                    })
                })
                .collect();
            if claims.is_empty() {
                continue;
            }
            let equal = claims.iter().all(|(_, o)| o.selector == gw.selector);
            let others: Vec<String> = claims.iter().map(|(o, _)| format!("{} ({}:{})", name(o), o.file.display(), o.doc_pos.line)).collect();
            let field = format!("spec.servers[{si}].hosts[{hi}]");
            let (code, msg) = if equal {
                let msg = format!(
                    "(IST0145) port {} host `{}` is also served by {} with the same selector; Istio merges them into one listener: serve each port and host from one Gateway",
                    server.port.number,
                    host.host,
                    others.join(", ")
                );
                (Code::MergedGateways, msg)
            } else {
                let msg = format!(
                    "(IST0145) port {} host `{}` is also served by {}, whose selector picks some of the same instances; which one applies depends on the instance: make the selectors disjoint or move the host into one Gateway",
                    server.port.number,
                    host.host,
                    others.join(", ")
                );
                (Code::PortHostConflict, msg)
            };
            findings.push(finding(code, &d.file, d.pos_of(&field), Some(&d.reference), &field, msg));
        }
    }
}

/// What names a server's certificate: its credential, or its files.
fn certificate(tls: &ServerTls) -> Option<String> {
    match (&tls.credential_name, &tls.server_certificate, &tls.private_key) {
        (Some(c), _, _) => Some(format!("credentialName `{c}`")),
        (None, Some(cert), Some(key)) => Some(format!("serverCertificate `{}` and privateKey `{}`", cert.display(), key.display())),
        _ => None,
    }
}

fn certificates(d: &Decoded, gw: &Gateway, rivals: &[&(&Decoded, &Gateway)], findings: &mut Vec<Finding>) {
    let mut reported = std::collections::BTreeSet::new();
    for (si, server) in gw.servers.iter().enumerate() {
        let Some(cert) = server.tls.as_ref().and_then(certificate) else { continue };
        if !reported.insert(cert.clone()) {
            continue;
        }
        let sharing: Vec<String> = rivals
            .iter()
            .filter(|(_, o)| o.servers.iter().any(|s| s.tls.as_ref().and_then(certificate).as_ref() == Some(&cert)))
            .map(|(o, _)| name(o))
            .collect();
        if sharing.is_empty() {
            continue;
        }
        let field = format!("spec.servers[{si}].tls");
        let msg = format!(
            "(IST0138) {cert} is also used by {} on the same instances; clients reusing an HTTP/2 connection for another host of the certificate get 404: serve those hosts from one Gateway",
            sharing.join(", ")
        );
        findings.push(finding(Code::GatewayDuplicateCertificate, &d.file, d.pos_of(&field), Some(&d.reference), &field, msg));
    }
}
