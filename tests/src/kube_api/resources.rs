//! The table of resources the stand-in can serve: API group and version, plural, kind, scope,
//! subresources and the field labels a `fieldSelector` may name, as the real server defines them.

/// One resource type (a row of discovery).
#[derive(Debug, PartialEq, Eq)]
pub struct ResourceType {
    /// API group; `""` is the core group.
    pub group: &'static str,
    pub version: &'static str,
    pub plural: &'static str,
    pub singular: &'static str,
    pub kind: &'static str,
    pub namespaced: bool,
    pub short_names: &'static [&'static str],
    /// Served subresources: `status` (ignored by a plain update), `approval` (CSRs).
    pub subresources: &'static [&'static str],
    /// Field labels a `fieldSelector` may name besides `metadata.name` and `metadata.namespace`.
    pub field_labels: &'static [&'static str],
    /// Names must be DNS labels (63 characters, no dots) rather than DNS subdomains.
    pub label_names: bool,
}

/// The verbs of every served resource, as discovery lists them.
pub const VERBS: &[&str] = &[
    "create",
    "delete",
    "deletecollection",
    "get",
    "list",
    "patch",
    "update",
    "watch",
];

/// The verbs of the `status` and `approval` subresources.
pub const SUBRESOURCE_VERBS: &[&str] = &["get", "patch", "update"];

impl ResourceType {
    /// `v1` for the core group, `<group>/<version>` otherwise.
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.to_string()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    /// `pods`, or `serviceentries.networking.istio.io`, as error messages name a resource.
    pub fn qualified(&self) -> String {
        if self.group.is_empty() {
            self.plural.to_string()
        } else {
            format!("{}.{}", self.plural, self.group)
        }
    }

    pub fn has_status(&self) -> bool {
        self.subresources.contains(&"status")
    }

    pub fn has_subresource(&self, name: &str) -> bool {
        self.subresources.contains(&name)
    }

    /// May a field selector name `label`?
    pub fn selectable_field(&self, label: &str) -> bool {
        label == "metadata.name"
            || (self.namespaced && label == "metadata.namespace")
            || self.field_labels.contains(&label)
    }
}

/// The row for (group, plural), served or not.
pub fn by_plural(group: &str, plural: &str) -> Option<&'static ResourceType> {
    ALL.iter()
        .find(|rt| rt.group == group && rt.plural == plural)
}

/// The row for an object's `apiVersion` and `kind`.
pub fn by_kind(api_version: &str, kind: &str) -> Option<&'static ResourceType> {
    ALL.iter()
        .find(|rt| rt.api_version() == api_version && rt.kind == kind)
}

const fn rt(
    group: &'static str,
    plural: &'static str,
    singular: &'static str,
    kind: &'static str,
    namespaced: bool,
) -> ResourceType {
    ResourceType {
        group,
        version: "v1",
        plural,
        singular,
        kind,
        namespaced,
        short_names: &[],
        subresources: &["status"],
        field_labels: &[],
        label_names: false,
    }
}

const ISTIO_NET: &str = "networking.istio.io";
const POD_FIELDS: &[&str] = &[
    "spec.nodeName",
    "spec.restartPolicy",
    "spec.schedulerName",
    "spec.serviceAccountName",
    "spec.hostNetwork",
    "status.phase",
    "status.podIP",
    "status.nominatedNodeName",
];
const CORE_EVENT_FIELDS: &[&str] = &[
    "involvedObject.kind",
    "involvedObject.namespace",
    "involvedObject.name",
    "involvedObject.uid",
    "involvedObject.apiVersion",
    "involvedObject.resourceVersion",
    "involvedObject.fieldPath",
    "reason",
    "reportingComponent",
    "type",
];
const EVENT_FIELDS: &[&str] = &[
    "regarding.kind",
    "regarding.namespace",
    "regarding.name",
    "regarding.uid",
    "reason",
    "reportingController",
    "type",
];

/// Every resource the stand-in knows. All are served from the start unless a test removes some.
pub static ALL: &[ResourceType] = &[
    ResourceType {
        short_names: &["po"],
        field_labels: POD_FIELDS,
        ..rt("", "pods", "pod", "Pod", true)
    },
    ResourceType {
        short_names: &["ns"],
        field_labels: &["status.phase"],
        label_names: true,
        ..rt("", "namespaces", "namespace", "Namespace", false)
    },
    ResourceType {
        subresources: &[],
        field_labels: &["type"],
        ..rt("", "secrets", "secret", "Secret", true)
    },
    ResourceType {
        short_names: &["cm"],
        subresources: &[],
        ..rt("", "configmaps", "configmap", "ConfigMap", true)
    },
    ResourceType {
        short_names: &["svc"],
        label_names: true,
        ..rt("", "services", "service", "Service", true)
    },
    ResourceType {
        short_names: &["ev"],
        subresources: &[],
        field_labels: CORE_EVENT_FIELDS,
        ..rt("", "events", "event", "Event", true)
    },
    ResourceType {
        short_names: &["no"],
        field_labels: &["spec.unschedulable"],
        ..rt("", "nodes", "node", "Node", false)
    },
    ResourceType {
        subresources: &[],
        ..rt(
            "discovery.k8s.io",
            "endpointslices",
            "endpointslice",
            "EndpointSlice",
            true,
        )
    },
    ResourceType {
        short_names: &["ds"],
        ..rt("apps", "daemonsets", "daemonset", "DaemonSet", true)
    },
    ResourceType {
        short_names: &["ev"],
        subresources: &[],
        field_labels: EVENT_FIELDS,
        ..rt("events.k8s.io", "events", "event", "Event", true)
    },
    ResourceType {
        short_names: &["gw"],
        ..rt(ISTIO_NET, "gateways", "gateway", "Gateway", true)
    },
    ResourceType {
        short_names: &["vs"],
        ..rt(
            ISTIO_NET,
            "virtualservices",
            "virtualservice",
            "VirtualService",
            true,
        )
    },
    ResourceType {
        short_names: &["dr"],
        ..rt(
            ISTIO_NET,
            "destinationrules",
            "destinationrule",
            "DestinationRule",
            true,
        )
    },
    ResourceType {
        short_names: &["se"],
        ..rt(
            ISTIO_NET,
            "serviceentries",
            "serviceentry",
            "ServiceEntry",
            true,
        )
    },
    ResourceType {
        ..rt(ISTIO_NET, "sidecars", "sidecar", "Sidecar", true)
    },
    ResourceType {
        short_names: &["we"],
        ..rt(
            ISTIO_NET,
            "workloadentries",
            "workloadentry",
            "WorkloadEntry",
            true,
        )
    },
    ResourceType {
        short_names: &["ap"],
        ..rt(
            "security.istio.io",
            "authorizationpolicies",
            "authorizationpolicy",
            "AuthorizationPolicy",
            true,
        )
    },
    ResourceType {
        short_names: &["csr"],
        subresources: &["approval", "status"],
        field_labels: &["spec.signerName"],
        ..rt(
            "certificates.k8s.io",
            "certificatesigningrequests",
            "certificatesigningrequest",
            "CertificateSigningRequest",
            false,
        )
    },
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_are_unique_and_found_by_plural_and_kind() {
        for row in ALL {
            assert_eq!(by_plural(row.group, row.plural), Some(row));
            assert_eq!(by_kind(&row.api_version(), row.kind), Some(row));
        }
        assert_eq!(by_kind("v1", "Pod").map(|r| r.plural), Some("pods"));
        assert_eq!(
            by_kind("events.k8s.io/v1", "Event").map(|r| r.group),
            Some("events.k8s.io")
        );
        assert!(by_plural("", "limitranges").is_none());
    }

    #[test]
    fn scope_and_field_labels() {
        let pods = by_plural("", "pods").unwrap();
        assert!(
            pods.selectable_field("spec.nodeName") && pods.selectable_field("metadata.namespace")
        );
        assert!(!pods.selectable_field("spec.containers"));
        let nodes = by_plural("", "nodes").unwrap();
        assert!(!nodes.namespaced && !nodes.selectable_field("metadata.namespace"));
        assert_eq!(
            by_plural("networking.istio.io", "serviceentries")
                .unwrap()
                .qualified(),
            "serviceentries.networking.istio.io"
        );
    }
}
