//! Sidecars that compete for the same workloads, as `istioctl analyze`
//! reports them: more than one Sidecar of a namespace without a
//! `workloadSelector` (Istio's IST0111, MultipleSidecarsWithoutWorkloadSelectors),
//! and two whose selectors pick the same workload (IST0110,
//! ConflictingSidecarWorkloadSelectors). Istio then applies one of them,
//! which one is undefined; the gateway the first by name. Every Sidecar of
//! a conflict is reported, as a warning: rejecting them (Istio rates these
//! errors) would drop the scoping in force, which is not failing closed.
//!
//! Without pods, the workloads are the WorkloadEntries of the namespace;
//! two equal selectors conflict whatever workloads exist.

use std::collections::BTreeMap;

use crate::config::findings::{Code, Finding, finding};
use crate::config::resources::common::{Labels, selector_matches};
use crate::config::resources::{Decoded, Resource};

pub(crate) fn check(decoded: &[Decoded], findings: &mut Vec<Finding>) {
    let mut by_namespace: BTreeMap<&str, Vec<(&Decoded, Option<&Labels>)>> = BTreeMap::new();
    for d in decoded {
        if let (Some(Resource::Sidecar(s)), false) = (&d.resource, d.damaged) {
            by_namespace.entry(&s.meta.namespace).or_default().push((d, s.workload_selector.as_ref().filter(|l| !l.is_empty())));
        }
    }
    let workloads: Vec<(&str, &Labels)> = decoded
        .iter()
        .filter_map(|d| match &d.resource {
            Some(Resource::WorkloadEntry(we)) => Some((we.meta.namespace.as_str(), &we.workload.labels)),
            _ => None,
        })
        .collect();
    for (namespace, sidecars) in by_namespace {
        let unselected: Vec<&Decoded> = sidecars.iter().filter(|(_, sel)| sel.is_none()).map(|(d, _)| *d).collect();
        if unselected.len() > 1 {
            let names = names(&unselected);
            for d in &unselected {
                let msg = format!(
                    "(IST0111) namespace {namespace} has {} Sidecars without workloadSelector ({names}); Istio applies only one: merge them, or give all but one a workloadSelector",
                    unselected.len()
                );
                findings.push(finding(Code::MultipleSidecarsWithoutSelector, &d.file, d.pos_of("spec"), Some(&d.reference), "", msg));
            }
        }
        let selected: Vec<(&Decoded, &Labels)> = sidecars.iter().filter_map(|(d, sel)| sel.map(|s| (*d, s))).collect();
        let in_namespace: Vec<&Labels> = workloads.iter().filter(|(ns, _)| *ns == namespace).map(|(_, l)| *l).collect();
        for (i, (d, sel)) in selected.iter().enumerate() {
            let rivals: Vec<&Decoded> = selected
                .iter()
                .enumerate()
                .filter(|(j, (_, other))| {
                    *j != i && (sel == other || in_namespace.iter().any(|w| selector_matches(sel, w) && selector_matches(other, w)))
                })
                .map(|(_, (o, _))| *o)
                .collect();
            if rivals.is_empty() {
                continue;
            }
            let msg = format!(
                "(IST0110) its workloadSelector picks the same workloads as {}; Istio applies only one Sidecar to a workload: make the selectors disjoint",
                names(&rivals)
            );
            let field = "spec.workloadSelector";
            findings.push(finding(Code::ConflictingSidecarSelectors, &d.file, d.pos_of(field), Some(&d.reference), field, msg));
        }
    }
}

fn names(ds: &[&Decoded]) -> String {
    ds.iter().map(|d| format!("{}/{}", d.reference.namespace, d.reference.name)).collect::<Vec<_>>().join(", ")
}
