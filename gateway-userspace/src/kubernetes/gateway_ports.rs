//! Which port a Gateway server listens on, as Istio maps it in a cluster.
//!
//! A Gateway's `port.number` names a port of the Service in front of the
//! gateway's pods (80, 443), and the listener binds that Service port's
//! `targetPort` (8080, 8443), so an unprivileged gateway serves Istio's
//! YAML unchanged. The Services that front this pod are those whose
//! EndpointSlices list it (`targetRef` kind `Pod`, this pod's name); a slice
//! also carries each port already resolved, named `targetPort`s included.
//! A server port that no such Service exposes is bound as declared.

use std::{
    collections::{BTreeMap, BTreeSet},
    sync::Arc,
};

use k8s_openapi::api::{core::v1::Service, discovery::v1::EndpointSlice};

/// The label tying an EndpointSlice to its Service.
const SERVICE_NAME: &str = "kubernetes.io/service-name";

/// Gateway server port (a Service port) → the ports this pod listens on.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PortMap(BTreeMap<u16, BTreeSet<u16>>);

impl PortMap {
    /// Where a server declared on `port` listens: the Service's target
    /// ports, or the port itself when no Service exposes it.
    pub fn listen_ports(&self, port: u16) -> Vec<u16> {
        match self.0.get(&port) {
            Some(targets) if !targets.is_empty() => targets.iter().copied().collect(),
            _ => vec![port],
        }
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    fn add(&mut self, service_port: u16, target: u16) {
        self.0.entry(service_port).or_default().insert(target);
    }
}

/// This gateway's pod: where its Services are, and its name in their slices.
#[derive(Clone, Debug)]
pub struct GatewayPod {
    pub namespace: String,
    pub name: String,
}

/// The port map of `pod` from the Services and EndpointSlices of the cluster.
pub fn port_map(services: &[Arc<Service>], slices: &[Arc<EndpointSlice>], pod: &GatewayPod) -> PortMap {
    let mut map = PortMap::default();
    for slice in slices.iter().filter(|s| s.metadata.namespace.as_deref() == Some(pod.namespace.as_str())) {
        if !lists_pod(slice, &pod.name) {
            continue;
        }
        let Some(name) = slice.metadata.labels.as_ref().and_then(|l| l.get(SERVICE_NAME)) else { continue };
        let service = services
            .iter()
            .find(|s| s.metadata.namespace.as_deref() == Some(pod.namespace.as_str()) && s.metadata.name.as_ref() == Some(name));
        let Some(service_ports) = service.and_then(|s| s.spec.as_ref()).and_then(|s| s.ports.as_ref()) else { continue };
        for resolved in slice.ports.iter().flatten() {
            if resolved.protocol.as_deref().is_some_and(|p| p != "TCP") {
                continue;
            }
            // A slice port carries its Service port's name (none for a
            // Service with a single unnamed port).
            let declared = service_ports.iter().find(|p| p.name == resolved.name && p.protocol.as_deref().is_none_or(|p| p == "TCP"));
            let (Some(declared), Some(target)) = (declared, resolved.port) else { continue };
            if let (Ok(from), Ok(to)) = (u16::try_from(declared.port), u16::try_from(target)) {
                map.add(from, to);
            }
        }
    }
    map
}

fn lists_pod(slice: &EndpointSlice, pod: &str) -> bool {
    slice.endpoints.iter().any(|e| e.target_ref.as_ref().is_some_and(|r| r.kind.as_deref() == Some("Pod") && r.name.as_deref() == Some(pod)))
}
