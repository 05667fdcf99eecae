//! Configuration from the API server: Services and EndpointSlices (the
//! registry), and the Istio kinds. After every change the whole set becomes
//! documents for `config/`, which judges each resource on its own; the
//! first configuration is applied only once every collection has been listed.

use std::{
    collections::HashMap,
    path::PathBuf,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use k8s_openapi::api::{core::v1::{ObjectReference, Service}, discovery::v1::EndpointSlice};
use kube::{Api, Client, api::DynamicObject, runtime::watcher};
use tokio::sync::watch;

use super::{
    events::FindingEvents,
    gateway_ports::{GatewayPod, PortMap, port_map},
    istio::{IstioKind, KINDS, document_path, object_reference},
    mirror::{Mirror, Signals},
    services::service_entries,
};
use crate::{config::api_documents::ApiDocuments, reload::ConfigStore};

/// Changes that arrive together are applied together.
const SETTLE: Duration = Duration::from_millis(50);

pub struct ClusterConfig {
    services: Mirror<Service>,
    slices: Mirror<EndpointSlice>,
    istio: Vec<(IstioKind, Mirror<DynamicObject>)>,
    domain: String,
    applied: AtomicBool,
    /// A gateway's pod, and where its Gateway port map is published.
    gateway_ports: Option<(GatewayPod, watch::Sender<PortMap>)>,
}

impl ClusterConfig {
    /// Starts the watches and feeds every change into `store`.
    pub fn start(
        client: Client,
        domain: &str,
        store: Arc<ConfigStore>,
        events: Arc<FindingEvents>,
        gateway_ports: Option<(GatewayPod, watch::Sender<PortMap>)>,
    ) -> Arc<Self> {
        let signals = Signals::default();
        let all = watcher::Config::default;
        let istio = KINDS
            .iter()
            .map(|k| {
                let ar = k.api_resource();
                let api = Api::<DynamicObject>::all_with(client.clone(), &ar);
                (*k, Mirror::start_with(k.plural, api, all(), ar, &signals))
            })
            .collect();
        let this = Arc::new(Self {
            services: Mirror::start("services", Api::all(client.clone()), all(), &signals),
            slices: Mirror::start("endpointslices", Api::all(client), all(), &signals),
            istio,
            domain: domain.to_string(),
            applied: AtomicBool::new(false),
            gateway_ports,
        });
        let feeder = this.clone();
        tokio::spawn(async move {
            loop {
                signals.changed.notified().await;
                tokio::time::sleep(SETTLE).await;
                feeder.apply(&store, &events).await;
            }
        });
        this
    }

    /// Every collection has been listed at least once.
    pub fn is_synced(&self) -> bool {
        self.services.is_ready() && self.slices.is_ready() && self.istio.iter().all(|(_, m)| m.is_ready())
    }

    /// The first configuration from the API is in force.
    pub fn is_applied(&self) -> bool {
        self.applied.load(Ordering::Acquire)
    }

    /// Names the collections not listed yet (a missing CRD stays here).
    pub fn pending(&self) -> Vec<&'static str> {
        let mut out: Vec<&'static str> = self.istio.iter().filter(|(_, m)| !m.is_ready()).map(|(k, _)| k.plural).collect();
        for m in [self.services.name, self.slices.name] {
            let ready = if m == "services" { self.services.is_ready() } else { self.slices.is_ready() };
            if !ready {
                out.push(m);
            }
        }
        out
    }

    async fn apply(&self, store: &Arc<ConfigStore>, events: &FindingEvents) {
        if !self.is_synced() {
            return;
        }
        // The port map first: the listeners then bind a new generation's
        // servers on their target ports from the start.
        if let Some((pod, ports)) = &self.gateway_ports {
            let map = port_map(&self.services.objects(), &self.slices.objects(), pod);
            ports.send_if_modified(|current| {
                let changed = *current != map;
                if changed {
                    tracing::info!(?map, "Gateway ports mapped to the Service's target ports");
                    *current = map;
                }
                changed
            });
        }
        let (documents, objects) = self.documents();
        let report = store.reload_api(documents).await;
        let rejected: Vec<_> = report.rejected.into_iter().flat_map(|(_, f)| f).collect();
        events.publish(&rejected, &objects).await;
        events.publish(&report.findings, &objects).await;
        if matches!(report.outcome, crate::reload::ReloadOutcome::Applied { .. } | crate::reload::ReloadOutcome::Unchanged { .. }) {
            self.applied.store(true, Ordering::Release);
        }
    }

    /// All resources as documents, and the object each document came from.
    fn documents(&self) -> (ApiDocuments, HashMap<PathBuf, ObjectReference>) {
        let mut docs = ApiDocuments::new();
        let mut objects = HashMap::new();
        for (kind, mirror) in &self.istio {
            for obj in mirror.objects() {
                let Some(doc) = kind.document(&obj) else { continue };
                let (Some(ns), Some(name)) = (obj.metadata.namespace.as_deref(), obj.metadata.name.as_deref()) else { continue };
                let path = document_path(kind.kind, ns, name);
                objects.insert(path.clone(), object_reference(&kind.api_version(), kind.kind, &obj.metadata));
                docs.insert(path, pretty(&doc));
            }
        }
        let services = self.services.objects();
        let by_name: HashMap<(String, String), &Service> = services
            .iter()
            .filter_map(|s| Some(((s.metadata.namespace.clone()?, s.metadata.name.clone()?), s.as_ref())))
            .collect();
        for (ns, name, doc) in service_entries(&services, &self.slices.objects(), &self.domain) {
            let path = document_path("Service", &ns, &name);
            if let Some(svc) = by_name.get(&(ns, name)) {
                objects.insert(path.clone(), object_reference("v1", "Service", &svc.metadata));
            }
            docs.insert(path, pretty(&doc));
        }
        (docs, objects)
    }
}

/// Every Istio resource and Service the cluster holds, listed once.
pub async fn list_documents(client: &Client, domain: &str) -> anyhow::Result<ApiDocuments> {
    use anyhow::Context;
    let params = kube::api::ListParams::default();
    let mut docs = ApiDocuments::new();
    for kind in &KINDS {
        let ar = kind.api_resource();
        let list = Api::<DynamicObject>::all_with(client.clone(), &ar)
            .list(&params)
            .await
            .with_context(|| format!("listing {} (is the CRD installed?)", kind.plural))?;
        for obj in &list.items {
            let (Some(doc), Some(ns), Some(name)) = (kind.document(obj), obj.metadata.namespace.as_deref(), obj.metadata.name.as_deref())
            else {
                continue;
            };
            docs.insert(document_path(kind.kind, ns, name), pretty(&doc));
        }
    }
    let services: Vec<_> = Api::<Service>::all(client.clone()).list(&params).await.context("listing services")?.items.into_iter().map(Arc::new).collect();
    let slices: Vec<_> =
        Api::<EndpointSlice>::all(client.clone()).list(&params).await.context("listing endpointslices")?.items.into_iter().map(Arc::new).collect();
    for (ns, name, doc) in service_entries(&services, &slices, domain) {
        docs.insert(document_path("Service", &ns, &name), pretty(&doc));
    }
    Ok(docs)
}

/// Indented JSON (which is YAML): findings point at a useful line.
fn pretty(doc: &serde_json::Value) -> Vec<u8> {
    serde_json::to_vec_pretty(doc).unwrap_or_default()
}

