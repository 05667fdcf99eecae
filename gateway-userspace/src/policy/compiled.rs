//! The policy built once per configuration snapshot and shared by every
//! connection that starts under it.

use std::{
    collections::HashMap,
    net::IpAddr,
    sync::{Arc, RwLock},
};

use super::{
    Target,
    route_match::{RouteChoice, RouteQuery, mesh_route},
    registry::{NamespaceRegistry, RegisteredService},
    workload::{WorkloadIdentity, WorkloadIndex},
};
use crate::authz::{Authorizer, AuthzSettings};
use crate::config::{
    NamespaceScope, ServerHost, Snapshot,
    resources::{
        common::exported_to,
        service_entry::Resolution,
        sidecar::{EgressListener, OutboundMode},
    },
};

/// Node-wide settings from the command line.
#[derive(Clone, Debug)]
pub struct PolicySettings {
    /// Namespace of workloads no WorkloadEntry describes.
    pub default_namespace: String,
    /// `--outbound-policy`; a Sidecar may override it per workload.
    pub outbound_mode: OutboundMode,
    /// cgroup id → (namespace, WorkloadEntry name), from `--intercept-cgroup DIR=NS/NAME`.
    pub cgroup_workloads: HashMap<u64, (String, String)>,
    /// How AuthorizationPolicies are read.
    pub authz: AuthzSettings,
}

/// What applies to one workload: its outbound mode and, if a Sidecar
/// selects it, the egress listeners whose hosts narrow its registry.
/// Borrowed from the snapshot: a decision builds one and copies nothing.
#[derive(Clone, Copy, Debug)]
pub struct Scope<'a> {
    pub mode: OutboundMode,
    pub egress: Option<&'a [EgressListener]>,
    pub sidecar_namespace: &'a str,
}

impl Scope<'_> {
    /// Whether the workload's Sidecar lets it see `host` of `svc` on `port`.
    pub fn admits(&self, svc: &RegisteredService, host: &str, port: u16) -> bool {
        let Some(listeners) = self.egress else { return true };
        listeners
            .iter()
            .filter(|l| l.port.as_ref().is_none_or(|p| p.number == port))
            .flat_map(|l| &l.hosts)
            .any(|h| namespace_ok(h, &svc.namespace, self.sidecar_namespace) && crate::config::hosts::hosts_overlap(&h.host, host))
    }
}

/// `ns/host`: the namespace the service is declared in.
fn namespace_ok(host: &ServerHost, service_ns: &str, sidecar_ns: &str) -> bool {
    match &host.scope {
        NamespaceScope::Any => true,
        NamespaceScope::Own => service_ns == sidecar_ns,
        NamespaceScope::None => false,
        NamespaceScope::Named(ns) => ns == service_ns,
    }
}

pub struct EgressPolicy {
    settings: PolicySettings,
    snapshot: Arc<Snapshot>,
    services: Vec<Arc<RegisteredService>>,
    workloads: WorkloadIndex,
    registries: RwLock<HashMap<String, Arc<NamespaceRegistry>, foldhash::fast::RandomState>>,
    /// The snapshot's VirtualServices bound to `mesh` (their indices, in
    /// order): the only ones a node connection's route is looked for in.
    mesh_services: Vec<usize>,
    /// The AuthorizationPolicies, compiled.
    authz: Authorizer,
}

impl std::fmt::Debug for EgressPolicy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EgressPolicy")
            .field("services", &self.services.len())
            .field("outbound_mode", &self.settings.outbound_mode)
            .finish_non_exhaustive()
    }
}

impl EgressPolicy {
    pub fn build(snapshot: Arc<Snapshot>, settings: PolicySettings) -> Self {
        let services =
            snapshot.service_entries.iter().map(|se| Arc::new(RegisteredService::from_entry(se, &snapshot))).collect();
        let workloads = WorkloadIndex::build(&snapshot, &settings.default_namespace, &settings.cgroup_workloads);
        let mesh_services =
            snapshot.virtual_services.iter().enumerate().filter(|(_, vs)| vs.binds_mesh()).map(|(i, _)| i).collect();
        let authz = Authorizer::build(&snapshot, settings.authz.clone());
        Self { settings, snapshot, services, workloads, registries: RwLock::default(), mesh_services, authz }
    }

    /// The AuthorizationPolicies of this configuration.
    pub fn authorizer(&self) -> &Authorizer {
        &self.authz
    }

    /// The first `mesh` route, of the VirtualServices the workload sees,
    /// that matches the query; `pick` (0..100) chooses among weighted
    /// destinations.
    pub fn mesh_route(&self, workload: &WorkloadIdentity, query: &RouteQuery<'_>, port: u16, pick: u32) -> Option<RouteChoice> {
        let visible = self
            .mesh_services
            .iter()
            .map(|&i| &self.snapshot.virtual_services[i])
            .filter(|vs| exported_to(&vs.export_to, &vs.meta.namespace, &workload.namespace));
        mesh_route(visible, workload, query, port, pick)
    }

    /// The workload behind a connection: by the caller's cgroup when
    /// `--intercept-cgroup` names its WorkloadEntry, else by address.
    pub fn identify(&self, client: IpAddr, cgroup_id: Option<u64>) -> WorkloadIdentity {
        self.workloads.identify(client, cgroup_id)
    }

    /// Whether `--intercept-cgroup` names the WorkloadEntry of this cgroup.
    pub fn knows_cgroup(&self, cgroup_id: u64) -> bool {
        self.workloads.knows_cgroup(cgroup_id)
    }

    /// The registry `namespace` sees, built on first use.
    pub fn registry_for(&self, namespace: &str) -> Arc<NamespaceRegistry> {
        if let Some(r) = self.registries.read().expect("registry lock").get(namespace) {
            return r.clone();
        }
        let built = Arc::new(NamespaceRegistry::build(&self.services, namespace));
        self.registries.write().expect("registry lock").entry(namespace.to_string()).or_insert(built).clone()
    }

    pub fn snapshot(&self) -> &Snapshot {
        &self.snapshot
    }

    /// Where a route's destination host is: its ServiceEntry's STATIC
    /// endpoints (or WorkloadEntries), its single-IP addresses, or else the
    /// proxy's own resolution of the host. A subset keeps the endpoints
    /// whose labels its DestinationRule names.
    pub fn route_target(&self, workload: &WorkloadIdentity, route: &RouteChoice, port: u16) -> Target {
        let port = route.port.unwrap_or(port);
        let registry = self.registry_for(&workload.namespace);
        let Some((svc, _)) = registry.by_name(&route.destination).into_iter().next() else {
            return Target::Resolve { host: route.destination.to_string(), port };
        };
        let subset = route.subset.as_ref().and_then(|name| {
            self.snapshot
                .destination_rule_for(&route.destination, &workload.namespace)
                .and_then(|dr| dr.subset(name))
                .map(|s| s.labels.clone())
        });
        let registered = svc.port(port).cloned().unwrap_or(super::registry::RegisteredPort {
            number: port,
            name: None,
            protocol: super::registry::PortProtocol::Tcp,
            declared_opaque: false,
            target_port: None,
        });
        match svc.resolution {
            Resolution::Dns | Resolution::DnsRoundRobin => {
                Target::Resolve { host: route.destination.to_string(), port: registered.target_port.unwrap_or(port) }
            }
            _ => {
                let endpoints = svc.endpoint_addrs_where(&registered, |labels| {
                    subset.as_ref().is_none_or(|want| crate::config::resources::common::selector_matches(want, labels))
                });
                if !endpoints.is_empty() {
                    return Target::Endpoints(endpoints);
                }
                let ips: Vec<std::net::SocketAddr> = svc
                    .addresses
                    .iter()
                    .filter(|c| c.prefix == if c.addr.is_ipv4() { 32 } else { 128 })
                    .map(|c| std::net::SocketAddr::new(c.addr, port))
                    .collect();
                if ips.is_empty() { Target::Resolve { host: route.destination.to_string(), port } } else { Target::Endpoints(ips) }
            }
        }
    }

    pub fn scope_for<'a>(&'a self, workload: &'a WorkloadIdentity) -> Scope<'a> {
        let sidecar = self.snapshot.sidecar_for(&workload.namespace, &workload.labels);
        Scope {
            mode: sidecar.and_then(|s| s.outbound_traffic_policy.as_ref()).map_or(self.settings.outbound_mode, |p| p.mode),
            egress: sidecar.map(|s| s.egress.as_slice()).filter(|e| !e.is_empty()),
            sidecar_namespace: sidecar.map_or(&workload.namespace, |s| s.meta.namespace.as_str()),
        }
    }
}
