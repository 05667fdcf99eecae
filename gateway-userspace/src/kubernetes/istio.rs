//! The Istio kinds read from the API server, as dynamic objects (their
//! storage version, `v1`), turned into documents for `config/`.

use kube::{
    api::{ApiResource, DynamicObject, GroupVersionKind},
    core::ObjectMeta,
};
use k8s_openapi::api::core::v1::ObjectReference;
use serde_json::{Value, json};

/// One Istio kind, as the API serves it.
#[derive(Clone, Copy, Debug)]
pub struct IstioKind {
    pub group: &'static str,
    pub kind: &'static str,
    pub plural: &'static str,
}

pub const VERSION: &str = "v1";

pub const KINDS: [IstioKind; 7] = [
    IstioKind { group: "networking.istio.io", kind: "Gateway", plural: "gateways" },
    IstioKind { group: "networking.istio.io", kind: "VirtualService", plural: "virtualservices" },
    IstioKind { group: "networking.istio.io", kind: "DestinationRule", plural: "destinationrules" },
    IstioKind { group: "networking.istio.io", kind: "ServiceEntry", plural: "serviceentries" },
    IstioKind { group: "networking.istio.io", kind: "Sidecar", plural: "sidecars" },
    IstioKind { group: "networking.istio.io", kind: "WorkloadEntry", plural: "workloadentries" },
    IstioKind { group: "security.istio.io", kind: "AuthorizationPolicy", plural: "authorizationpolicies" },
];

impl IstioKind {
    pub fn api_resource(&self) -> ApiResource {
        ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk(self.group, VERSION, self.kind), self.plural)
    }

    pub fn api_version(&self) -> String {
        format!("{}/{VERSION}", self.group)
    }

    /// The document `config/` reads: apiVersion, kind, the metadata that
    /// matters (name, namespace, labels, annotations) and the spec.
    pub fn document(&self, obj: &DynamicObject) -> Option<Value> {
        let meta = &obj.metadata;
        let mut metadata = json!({"name": meta.name.clone()?, "namespace": meta.namespace.clone()?});
        if let Some(labels) = &meta.labels {
            metadata["labels"] = json!(labels);
        }
        if let Some(annotations) = &meta.annotations {
            let kept: std::collections::BTreeMap<_, _> =
                annotations.iter().filter(|(k, _)| !k.starts_with("kubectl.kubernetes.io/")).collect();
            if !kept.is_empty() {
                metadata["annotations"] = json!(kept);
            }
        }
        let mut doc = json!({"apiVersion": self.api_version(), "kind": self.kind, "metadata": metadata});
        if let Some(spec) = obj.data.get("spec") {
            doc["spec"] = spec.clone();
        }
        Some(doc)
    }
}

/// The path findings name a document by: `kubernetes:<Kind>/<ns>/<name>`.
pub fn document_path(kind: &str, namespace: &str, name: &str) -> std::path::PathBuf {
    format!("kubernetes:{kind}/{namespace}/{name}").into()
}

/// What an Event about an object refers to.
pub fn object_reference(api_version: &str, kind: &str, meta: &ObjectMeta) -> ObjectReference {
    ObjectReference {
        api_version: Some(api_version.to_string()),
        kind: Some(kind.to_string()),
        name: meta.name.clone(),
        namespace: meta.namespace.clone(),
        uid: meta.uid.clone(),
        resource_version: meta.resource_version.clone(),
        ..Default::default()
    }
}
