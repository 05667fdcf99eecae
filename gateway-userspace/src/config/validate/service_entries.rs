//! ServiceEntry checks of `istioctl analyze`: a TCP port (or one without a
//! protocol) needs `addresses`, since opaque TCP is told apart only by the
//! address dialled (Istio's IST0134, ServiceEntryAddressesRequired); and
//! one host and port given two protocols by entries visible in one
//! namespace (IST0177, ConflictingServiceEntryProtocol), reported on each.

use std::collections::BTreeMap;

use crate::config::findings::{Code, Finding, finding};
use crate::config::resources::common::exported_to;
use crate::config::resources::gateway::Protocol;
use crate::config::resources::service_entry::ServiceEntry;
use crate::config::resources::{Decoded, Resource};

pub(crate) fn check(decoded: &[Decoded], findings: &mut Vec<Finding>) {
    let entries: Vec<(&Decoded, &ServiceEntry)> = decoded
        .iter()
        .filter_map(|d| match &d.resource {
            Some(Resource::ServiceEntry(se)) if !d.damaged => Some((d, se)),
            _ => None,
        })
        .collect();
    for (d, se) in &entries {
        addresses_required(d, se, findings);
    }
    protocol_conflicts(&entries, findings);
}

fn addresses_required(d: &Decoded, se: &ServiceEntry, findings: &mut Vec<Finding>) {
    if !se.addresses.is_empty() {
        return;
    }
    for (i, port) in se.ports.iter().enumerate() {
        if port.protocol.is_none_or(|p| p == Protocol::Tcp) {
            let field = format!("spec.ports[{i}]");
            let msg = format!(
                "(IST0134) port {} is {} but the entry has no addresses: opaque TCP is matched by address only; add `addresses`, or declare the protocol",
                port.number,
                port.protocol.map_or("without a protocol", |_| "TCP")
            );
            findings.push(finding(Code::ServiceEntryAddressesRequired, &d.file, d.pos_of(&field), Some(&d.reference), &field, msg));
        }
    }
}

/// One entry's port for a host: (entry index, port index, protocol).
type Claim = (usize, usize, &'static str);

fn protocol_conflicts(entries: &[(&Decoded, &ServiceEntry)], findings: &mut Vec<Finding>) {
    let mut claims: BTreeMap<(&str, u16), Vec<Claim>> = BTreeMap::new();
    for (e, (_, se)) in entries.iter().enumerate() {
        for host in &se.hosts {
            for (p, port) in se.ports.iter().enumerate() {
                claims.entry((host, port.number)).or_default().push((e, p, port.protocol.map_or("", |pr| pr.as_str())));
            }
        }
    }
    for ((host, number), claim) in claims {
        for &(e, p, protocol) in &claim {
            let (d, se) = entries[e];
            // Entries that one namespace sees together with this one.
            let rivals: Vec<&(usize, usize, &str)> = claim
                .iter()
                .filter(|(o, _, other)| {
                    let other_se = entries[*o].1;
                    *o != e && *other != protocol && visible_together(se, other_se)
                })
                .collect();
            if rivals.is_empty() {
                continue;
            }
            let mut names = vec![format!("{}/{}", se.meta.namespace, se.meta.name)];
            let mut protocols = vec![or_unset(protocol)];
            for (o, _, other) in &rivals {
                names.push(format!("{}/{}", entries[*o].1.meta.namespace, entries[*o].1.meta.name));
                protocols.push(or_unset(other));
            }
            protocols.sort_unstable();
            protocols.dedup();
            let field = format!("spec.ports[{p}].protocol");
            let msg = format!(
                "(IST0177) ServiceEntries {} give host `{host}` port {number} conflicting protocols ({}); use one protocol, or keep the host in one entry",
                names.join(", "),
                protocols.join(", ")
            );
            findings.push(finding(Code::ConflictingServiceEntryProtocol, &d.file, d.pos_of(&field), Some(&d.reference), &field, msg));
        }
    }
}

fn or_unset(p: &str) -> &str {
    if p.is_empty() { "unset" } else { p }
}

/// Whether some namespace sees both entries: either's own namespace, or any
/// when both are exported everywhere.
fn visible_together(a: &ServiceEntry, b: &ServiceEntry) -> bool {
    let sees = |ns: &str| exported_to(&a.export_to, &a.meta.namespace, ns) && exported_to(&b.export_to, &b.meta.namespace, ns);
    sees(&a.meta.namespace) || sees(&b.meta.namespace) || a.export_to.iter().chain(&b.export_to).any(|ns| !matches!(ns.as_str(), "." | "*" | "~") && sees(ns))
}
