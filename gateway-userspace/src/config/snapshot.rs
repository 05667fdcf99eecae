//! The compiled configuration: normalised, validated, immutable resources
//! and the lookups the rest of the gateway needs.

use super::hosts::host_matches;
use super::resources::Resource;
use super::resources::authorization::AuthorizationPolicy;
use super::resources::common::{Labels, exported_to, selector_matches};
use super::resources::destination_rule::DestinationRule;
use super::resources::gateway::Gateway;
use super::resources::service_entry::{ServiceEntry, WorkloadEntry};
use super::resources::sidecar::Sidecar;
use super::resources::virtual_service::VirtualService;
use serde::Serialize;
use std::fmt;

/// Namespace whose Sidecar resources without a workloadSelector apply
/// mesh-wide (AuthorizationPolicies follow `--root-namespace`).
pub const ROOT_NAMESPACE: &str = "istio-system";

/// Every resource the gateway uses, each list sorted by namespace and name.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Snapshot {
    pub gateways: Vec<Gateway>,
    pub virtual_services: Vec<VirtualService>,
    pub destination_rules: Vec<DestinationRule>,
    pub service_entries: Vec<ServiceEntry>,
    pub sidecars: Vec<Sidecar>,
    pub workload_entries: Vec<WorkloadEntry>,
    pub authorization_policies: Vec<AuthorizationPolicy>,
}

/// Resource counts, for logs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Summary {
    pub gateways: usize,
    pub virtual_services: usize,
    pub destination_rules: usize,
    pub service_entries: usize,
    pub sidecars: usize,
    pub workload_entries: usize,
    pub authorization_policies: usize,
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} gateways, {} virtual services, {} destination rules, {} service entries, \
             {} sidecars, {} workload entries, {} authorization policies",
            self.gateways,
            self.virtual_services,
            self.destination_rules,
            self.service_entries,
            self.sidecars,
            self.workload_entries,
            self.authorization_policies
        )
    }
}

macro_rules! by_name {
    ($list:expr) => {
        $list.sort_by(|a, b| {
            (&a.meta.namespace, &a.meta.name).cmp(&(&b.meta.namespace, &b.meta.name))
        })
    };
}

impl Snapshot {
    /// Builds a snapshot from decoded resources (order does not matter).
    pub(crate) fn from_resources(resources: impl IntoIterator<Item = Resource>) -> Snapshot {
        let mut s = Snapshot::default();
        for r in resources {
            match r {
                Resource::Gateway(x) => s.gateways.push(x),
                Resource::VirtualService(x) => s.virtual_services.push(x),
                Resource::DestinationRule(x) => s.destination_rules.push(x),
                Resource::ServiceEntry(x) => s.service_entries.push(x),
                Resource::Sidecar(x) => s.sidecars.push(x),
                Resource::WorkloadEntry(x) => s.workload_entries.push(x),
                Resource::AuthorizationPolicy(x) => s.authorization_policies.push(x),
            }
        }
        by_name!(s.gateways);
        by_name!(s.virtual_services);
        by_name!(s.destination_rules);
        by_name!(s.service_entries);
        by_name!(s.sidecars);
        by_name!(s.workload_entries);
        by_name!(s.authorization_policies);
        s
    }

    /// Resource counts.
    pub fn summary(&self) -> Summary {
        Summary {
            gateways: self.gateways.len(),
            virtual_services: self.virtual_services.len(),
            destination_rules: self.destination_rules.len(),
            service_entries: self.service_entries.len(),
            sidecars: self.sidecars.len(),
            workload_entries: self.workload_entries.len(),
            authorization_policies: self.authorization_policies.len(),
        }
    }

    /// The Gateway `namespace/name`.
    pub fn gateway(&self, namespace: &str, name: &str) -> Option<&Gateway> {
        self.gateways
            .iter()
            .find(|g| g.meta.namespace == namespace && g.meta.name == name)
    }

    /// Gateways whose selector picks an instance with these labels.
    pub fn gateways_for_instance(&self, labels: &Labels) -> Vec<&Gateway> {
        self.gateways
            .iter()
            .filter(|g| selector_matches(&g.selector, labels))
            .collect()
    }

    /// VirtualServices bound to the Gateway `namespace/name`.
    pub fn virtual_services_for_gateway(
        &self,
        namespace: &str,
        name: &str,
    ) -> Vec<&VirtualService> {
        self.virtual_services
            .iter()
            .filter(|v| v.binds_gateway(namespace, name))
            .collect()
    }

    /// VirtualServices bound to `mesh` and visible from `namespace`.
    pub fn virtual_services_for_mesh(&self, namespace: &str) -> Vec<&VirtualService> {
        self.virtual_services
            .iter()
            .filter(|v| v.binds_mesh() && exported_to(&v.export_to, &v.meta.namespace, namespace))
            .collect()
    }

    /// The DestinationRule that applies to `host` for a workload in
    /// `namespace`: among visible rules whose host matches, one in the
    /// workload's namespace first, then the most specific host.
    pub fn destination_rule_for(&self, host: &str, namespace: &str) -> Option<&DestinationRule> {
        self.destination_rules
            .iter()
            .filter(|r| {
                host_matches(&r.host, host)
                    && exported_to(&r.export_to, &r.meta.namespace, namespace)
            })
            .min_by_key(|r| {
                let exact = !r.host.starts_with('*');
                (
                    r.meta.namespace != namespace,
                    !exact,
                    std::cmp::Reverse(r.host.len()),
                )
            })
    }

    /// ServiceEntries visible from `namespace`.
    pub fn service_entries_for(&self, namespace: &str) -> Vec<&ServiceEntry> {
        self.service_entries
            .iter()
            .filter(|s| exported_to(&s.export_to, &s.meta.namespace, namespace))
            .collect()
    }

    /// The Sidecar for a workload: one in its namespace whose selector
    /// matches its labels, else the namespace's one without selector, else
    /// the root namespace's one without selector.
    pub fn sidecar_for(&self, namespace: &str, labels: &Labels) -> Option<&Sidecar> {
        let in_ns = |ns: &'static str| self.sidecars.iter().filter(move |s| s.meta.namespace == ns);
        let own = || {
            self.sidecars
                .iter()
                .filter(|s| s.meta.namespace == namespace)
        };
        own()
            .find(|s| {
                s.workload_selector
                    .as_ref()
                    .is_some_and(|sel| selector_matches(sel, labels))
            })
            .or_else(|| own().find(|s| s.workload_selector.is_none()))
            .or_else(|| in_ns(ROOT_NAMESPACE).find(|s| s.workload_selector.is_none()))
    }

    /// WorkloadEntries in `namespace` whose labels satisfy `selector`.
    pub fn workload_entries_for(&self, namespace: &str, selector: &Labels) -> Vec<&WorkloadEntry> {
        self.workload_entries
            .iter()
            .filter(|w| {
                w.meta.namespace == namespace && selector_matches(selector, &w.workload.labels)
            })
            .collect()
    }

    /// WorkloadEntries a ServiceEntry selects with its `workloadSelector`.
    pub fn workload_entries_for_service_entry(&self, entry: &ServiceEntry) -> Vec<&WorkloadEntry> {
        match &entry.workload_selector {
            Some(sel) => self.workload_entries_for(&entry.meta.namespace, sel),
            None => Vec::new(),
        }
    }
}
