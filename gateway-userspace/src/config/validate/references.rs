//! Checks across resources: gateway references, subsets, selectors, and
//! hosts served by bound gateways; port and host claims in `gateways.rs`.

use crate::config::findings::{Code, Finding, finding};
use crate::config::hosts::{GatewayRef, host_matches};
use crate::config::resources::common::{Destination, Labels, exported_to, selector_matches};
use crate::config::resources::destination_rule::DestinationRule;
use crate::config::resources::gateway::Gateway;
use crate::config::resources::virtual_service::VirtualService;
use crate::config::resources::{Decoded, Resource};
use std::collections::BTreeMap;

pub(crate) fn check(decoded: &[Decoded], instance_labels: &Labels, findings: &mut Vec<Finding>) {
    let mut gateways: BTreeMap<(&str, &str), &Decoded> = BTreeMap::new();
    for d in decoded.iter().filter(|d| d.reference.kind == "Gateway") {
        gateways
            .entry((&d.reference.namespace, &d.reference.name))
            .or_insert(d);
    }
    let rules: Vec<&DestinationRule> = decoded
        .iter()
        .filter_map(|d| match &d.resource {
            Some(Resource::DestinationRule(r)) => Some(r),
            _ => None,
        })
        .collect();
    let rules_complete = !decoded
        .iter()
        .any(|d| d.reference.kind == "DestinationRule" && d.damaged);
    for d in decoded {
        let Some(Resource::VirtualService(vs)) = &d.resource else {
            continue;
        };
        gateway_refs(d, vs, &gateways, findings);
        if rules_complete {
            subsets(d, vs, &rules, findings);
        }
        if !d.damaged {
            hosts_served(d, vs, &gateways, findings);
        }
    }
    let mut roles: Vec<&Labels> = Vec::new();
    if !instance_labels.is_empty() {
        roles.push(instance_labels);
    }
    let mut roles_complete = true;
    for d in decoded
        .iter()
        .filter(|d| d.reference.kind == "WorkloadEntry")
    {
        match &d.resource {
            Some(Resource::WorkloadEntry(we)) => roles.push(&we.workload.labels),
            _ => roles_complete = false,
        }
    }
    // Only an instance has labels to match: files validated on their own
    // (a cluster's configuration) name none, and draw no such warning.
    if roles_complete && !instance_labels.is_empty() {
        selectors(decoded, &roles, findings);
    }
    super::gateways::check(decoded, &roles, findings);
}

fn report(findings: &mut Vec<Finding>, d: &Decoded, code: Code, field: &str, msg: String) {
    findings.push(finding(
        code,
        &d.file,
        d.pos_of(field),
        Some(&d.reference),
        field,
        msg,
    ));
}

fn gateway_refs(
    d: &Decoded,
    vs: &VirtualService,
    gateways: &BTreeMap<(&str, &str), &Decoded>,
    out: &mut Vec<Finding>,
) {
    let mut refs: Vec<(String, &GatewayRef)> = Vec::new();
    if d.positions.contains_key("spec.gateways") {
        refs.extend(
            vs.gateways
                .iter()
                .enumerate()
                .map(|(i, g)| (format!("spec.gateways[{i}]"), g)),
        );
    }
    for (i, r) in vs.http.iter().enumerate() {
        for (j, m) in r.matches.iter().enumerate() {
            refs.extend(
                m.gateways
                    .iter()
                    .enumerate()
                    .map(|(k, g)| (format!("spec.http[{i}].match[{j}].gateways[{k}]"), g)),
            );
        }
    }
    for (i, r) in vs.tls.iter().enumerate() {
        for (j, m) in r.matches.iter().enumerate() {
            refs.extend(
                m.gateways
                    .iter()
                    .enumerate()
                    .map(|(k, g)| (format!("spec.tls[{i}].match[{j}].gateways[{k}]"), g)),
            );
        }
    }
    for (i, r) in vs.tcp.iter().enumerate() {
        for (j, m) in r.matches.iter().enumerate() {
            refs.extend(
                m.gateways
                    .iter()
                    .enumerate()
                    .map(|(k, g)| (format!("spec.tcp[{i}].match[{j}].gateways[{k}]"), g)),
            );
        }
    }
    for (field, g) in refs {
        let GatewayRef::Gateway { namespace, name } = g else {
            continue;
        };
        if gateways.contains_key(&(namespace.as_str(), name.as_str())) {
            continue;
        }
        let similar: Vec<String> = gateways
            .keys()
            .filter(|(_, n)| *n == name)
            .map(|(ns, n)| format!("{ns}/{n}"))
            .collect();
        let hint = match similar.first() {
            Some(s) => format!("did you mean `{s}`?"),
            None => "define that Gateway or use `mesh`".to_string(),
        };
        let msg = format!("Gateway `{namespace}/{name}` does not exist; {hint}");
        report(out, d, Code::UnknownGateway, &field, msg);
    }
}

fn subsets(d: &Decoded, vs: &VirtualService, rules: &[&DestinationRule], out: &mut Vec<Finding>) {
    let mut dests: Vec<(String, &Destination)> = Vec::new();
    for (i, r) in vs.http.iter().enumerate() {
        dests.extend(r.route.iter().enumerate().map(|(j, x)| {
            (
                format!("spec.http[{i}].route[{j}].destination"),
                &x.destination,
            )
        }));
    }
    for (i, r) in vs.http.iter().enumerate() {
        // A single `mirror` is kept as the first of `mirrors`.
        let single = d.positions.contains_key(&format!("spec.http[{i}].mirror"));
        dests.extend(r.mirrors.iter().enumerate().map(|(k, m)| {
            let field = match (single, k) {
                (true, 0) => format!("spec.http[{i}].mirror"),
                (true, k) => format!("spec.http[{i}].mirrors[{}].destination", k - 1),
                (false, k) => format!("spec.http[{i}].mirrors[{k}].destination"),
            };
            (field, &m.destination)
        }));
    }
    for (i, r) in vs.tls.iter().enumerate() {
        dests.extend(r.route.iter().enumerate().map(|(j, x)| {
            (
                format!("spec.tls[{i}].route[{j}].destination"),
                &x.destination,
            )
        }));
    }
    for (i, r) in vs.tcp.iter().enumerate() {
        dests.extend(r.route.iter().enumerate().map(|(j, x)| {
            (
                format!("spec.tcp[{i}].route[{j}].destination"),
                &x.destination,
            )
        }));
    }
    let ns = &vs.meta.namespace;
    for (field, dest) in dests {
        let Some(subset) = &dest.subset else { continue };
        let candidates: Vec<&&DestinationRule> = rules
            .iter()
            .filter(|r| {
                host_matches(&r.host, &dest.host)
                    && exported_to(&r.export_to, &r.meta.namespace, ns)
            })
            .collect();
        if candidates.iter().any(|r| r.subset(subset).is_some()) {
            continue;
        }
        let field = format!("{field}.subset");
        let msg = match candidates.first() {
            None => format!(
                "subset `{subset}` needs a DestinationRule for host `{}`, and none is visible here; add one that defines it",
                dest.host
            ),
            Some(r) => {
                let known: Vec<&str> = r.subsets.iter().map(|s| s.name.as_str()).collect();
                format!(
                    "DestinationRule {}/{} for host `{}` has no subset `{subset}` (it has: {}); add it or fix the name",
                    r.meta.namespace,
                    r.meta.name,
                    dest.host,
                    if known.is_empty() {
                        "none".to_string()
                    } else {
                        known.join(", ")
                    }
                )
            }
        };
        report(out, d, Code::UnknownSubset, &field, msg);
    }
}

fn hosts_served(
    d: &Decoded,
    vs: &VirtualService,
    gateways: &BTreeMap<(&str, &str), &Decoded>,
    out: &mut Vec<Finding>,
) {
    let mut bound: Vec<&Gateway> = Vec::new();
    for g in &vs.gateways {
        let GatewayRef::Gateway { namespace, name } = g else {
            continue;
        };
        let Some(gd) = gateways.get(&(namespace.as_str(), name.as_str())) else {
            continue;
        };
        match &gd.resource {
            Some(Resource::Gateway(gw)) if !gd.damaged => bound.push(gw),
            _ => return,
        }
    }
    if bound.is_empty() {
        return;
    }
    for (i, host) in vs.hosts.iter().enumerate() {
        let served = bound.iter().any(|gw| {
            gw.servers
                .iter()
                .flat_map(|s| s.hosts.iter())
                .any(|h| h.admits(&gw.meta.namespace, &vs.meta.namespace, host))
        });
        if !served {
            let names: Vec<String> = bound
                .iter()
                .map(|g| format!("{}/{}", g.meta.namespace, g.meta.name))
                .collect();
            let msg = format!(
                "host `{host}` is served by none of its gateways ({}); add it to a server's hosts or remove it",
                names.join(", ")
            );
            report(
                out,
                d,
                Code::HostNotServed,
                &format!("spec.hosts[{i}]"),
                msg,
            );
        }
    }
}

fn selectors(decoded: &[Decoded], roles: &[&Labels], out: &mut Vec<Finding>) {
    for d in decoded {
        let Some(Resource::Gateway(gw)) = &d.resource else {
            continue;
        };
        if gw.selector.is_empty() || roles.iter().any(|r| selector_matches(&gw.selector, r)) {
            continue;
        }
        let sel: Vec<String> = gw
            .selector
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        let msg = format!(
            "selector {} matches no role of this gateway (instance labels or WorkloadEntry labels); \
             fix the selector or the instance labels",
            sel.join(",")
        );
        report(out, d, Code::SelectorMatchesNothing, "spec.selector", msg);
    }
}
