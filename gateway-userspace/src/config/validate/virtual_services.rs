//! VirtualService checks of `istioctl analyze`: rules that can never be
//! used (Istio's IST0130, VirtualServiceUnreachableRule), matches already
//! taken by an earlier one (IST0131, VirtualServiceIneffectiveMatch), for
//! `http`, `tls` and `tcp` alike; and two VirtualServices bound to `mesh`
//! that one namespace sees for the same host (IST0109,
//! ConflictingMeshGatewayVirtualServiceHosts), reported on each as a
//! warning: the gateway takes the first route by name, and rejecting both
//! would send the host's traffic past the routes in force.
//!
//! A match is taken when an equal match (its `name` aside) came before; a
//! rule is unreachable when an earlier rule has no match (it takes every
//! request), or when each of its matches is taken.

use std::collections::BTreeMap;

use crate::config::findings::{Code, Finding, finding};
use crate::config::resources::common::exported_to;
use crate::config::resources::http_route::HttpMatch;
use crate::config::resources::virtual_service::VirtualService;
use crate::config::resources::{Decoded, Resource};

pub(crate) fn check(decoded: &[Decoded], findings: &mut Vec<Finding>) {
    let services: Vec<(&Decoded, &VirtualService)> = decoded
        .iter()
        .filter_map(|d| match &d.resource {
            Some(Resource::VirtualService(vs)) if !d.damaged => Some((d, vs)),
            _ => None,
        })
        .collect();
    for (d, vs) in &services {
        let unnamed = |m: &HttpMatch| HttpMatch { name: None, ..m.clone() };
        let http: Vec<Vec<HttpMatch>> = vs.http.iter().map(|r| r.matches.iter().map(unnamed).collect()).collect();
        rules(d, "http", &http, findings);
        let tls: Vec<_> = vs.tls.iter().map(|r| r.matches.clone()).collect();
        rules(d, "tls", &tls, findings);
        let tcp: Vec<_> = vs.tcp.iter().map(|r| r.matches.clone()).collect();
        rules(d, "tcp", &tcp, findings);
    }
    mesh_hosts(&services, findings);
}

/// Unreachable rules and ineffective matches among one list of rules.
fn rules<M: PartialEq>(d: &Decoded, kind: &str, rules: &[Vec<M>], findings: &mut Vec<Finding>) {
    let mut catch_all: Option<usize> = None;
    let mut seen: Vec<(&M, usize, usize)> = Vec::new();
    for (i, matches) in rules.iter().enumerate() {
        let rule = format!("spec.{kind}[{i}]");
        if let Some(first) = catch_all {
            let msg = format!("(IST0130) {rule} is never used: {kind}[{first}] has no match and takes everything; only the last rule may have none");
            findings.push(finding(Code::VirtualServiceUnreachableRule, &d.file, d.pos_of(&rule), Some(&d.reference), &rule, msg));
            continue;
        }
        if matches.is_empty() {
            catch_all = Some(i);
            continue;
        }
        let taken: Vec<Option<(usize, usize)>> = matches
            .iter()
            .enumerate()
            .map(|(k, m)| {
                let earlier = seen.iter().find(|(s, _, _)| *s == m).map(|(_, r, j)| (*r, *j));
                earlier.or_else(|| matches[..k].iter().position(|o| o == m).map(|j| (i, j)))
            })
            .collect();
        if taken.iter().all(|t| t.is_some_and(|(r, _)| r != i)) {
            let msg = format!("(IST0130) {rule} is never used: each of its matches is taken by an earlier rule; remove it or change its matches");
            findings.push(finding(Code::VirtualServiceUnreachableRule, &d.file, d.pos_of(&rule), Some(&d.reference), &rule, msg));
        } else {
            for (k, t) in taken.iter().enumerate() {
                let Some((r, j)) = t else { continue };
                let field = format!("{rule}.match[{k}]");
                let msg = format!("(IST0131) {field} is never used: spec.{kind}[{r}].match[{j}] is the same and comes first; remove one");
                findings.push(finding(Code::VirtualServiceIneffectiveMatch, &d.file, d.pos_of(&field), Some(&d.reference), &field, msg));
            }
        }
        seen.extend(matches.iter().enumerate().map(|(k, m)| (m, i, k)));
    }
}

fn mesh_hosts(services: &[(&Decoded, &VirtualService)], findings: &mut Vec<Finding>) {
    let mut by_host: BTreeMap<&str, Vec<(usize, usize)>> = BTreeMap::new();
    for (v, (_, vs)) in services.iter().enumerate() {
        if vs.binds_mesh() {
            for (h, host) in vs.hosts.iter().enumerate() {
                by_host.entry(host).or_default().push((v, h));
            }
        }
    }
    for (host, claims) in by_host {
        for &(v, h) in &claims {
            let (d, vs) = services[v];
            let rivals: Vec<String> = claims
                .iter()
                .filter(|(o, _)| *o != v && visible_together(vs, services[*o].1))
                .map(|(o, _)| format!("{}/{}", services[*o].1.meta.namespace, services[*o].1.meta.name))
                .collect();
            if rivals.is_empty() {
                continue;
            }
            let field = format!("spec.hosts[{h}]");
            let msg = format!(
                "(IST0109) VirtualServices {}/{} and {} are bound to `mesh` for the same host `{host}`, which is undefined; merge them into one, or narrow them with exportTo",
                vs.meta.namespace,
                vs.meta.name,
                rivals.join(", ")
            );
            findings.push(finding(Code::ConflictingMeshVirtualServiceHosts, &d.file, d.pos_of(&field), Some(&d.reference), &field, msg));
        }
    }
}

/// Whether some namespace sees both: one of their own, or one they name.
fn visible_together(a: &VirtualService, b: &VirtualService) -> bool {
    let sees = |ns: &str| exported_to(&a.export_to, &a.meta.namespace, ns) && exported_to(&b.export_to, &b.meta.namespace, ns);
    sees(&a.meta.namespace)
        || sees(&b.meta.namespace)
        || a.export_to.iter().chain(&b.export_to).any(|ns| !matches!(ns.as_str(), "." | "*" | "~") && sees(ns))
}
