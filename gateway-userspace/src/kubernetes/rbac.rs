//! Every call the node agent and the gateways make to the Kubernetes API, by
//! resource and verb. The ClusterRoles (and the gateways' Role in their
//! namespace) in `deploy/` grant exactly these, no more; `tests/tests/deploy_manifests.rs` checks both.

/// One kind of request the agent makes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ApiCall {
    /// API group; `""` is the core group.
    pub group: &'static str,
    /// Plural resource name, as RBAC rules name it.
    pub resource: &'static str,
    pub verbs: &'static [&'static str],
}

const READ: &[&str] = &["get", "list", "watch"];
const WATCH: &[&str] = &["list", "watch"];

/// What the node agent (`gateway run --kubernetes`) calls.
pub const NODE_AGENT: &[ApiCall] = &[
    ApiCall { group: "", resource: "pods", verbs: READ },
    ApiCall { group: "", resource: "namespaces", verbs: WATCH },
    ApiCall { group: "", resource: "services", verbs: WATCH },
    ApiCall { group: "discovery.k8s.io", resource: "endpointslices", verbs: WATCH },
    ApiCall { group: "networking.istio.io", resource: "gateways", verbs: WATCH },
    ApiCall { group: "networking.istio.io", resource: "virtualservices", verbs: WATCH },
    ApiCall { group: "networking.istio.io", resource: "destinationrules", verbs: WATCH },
    ApiCall { group: "networking.istio.io", resource: "serviceentries", verbs: WATCH },
    ApiCall { group: "networking.istio.io", resource: "sidecars", verbs: WATCH },
    ApiCall { group: "networking.istio.io", resource: "workloadentries", verbs: WATCH },
    ApiCall { group: "security.istio.io", resource: "authorizationpolicies", verbs: WATCH },
    ApiCall { group: "events.k8s.io", resource: "events", verbs: &["create", "patch"] },
    ApiCall { group: "apps", resource: "daemonsets", verbs: &["get"] },
];

/// What the egress and ingress gateways (`gateway run --kubernetes --labels
/// istio=…`) call: the configuration they serve, the Services and
/// EndpointSlices behind it, and Events on resources with findings (every
/// `--kubernetes` instance writes them). They touch no pods, namespaces or
/// daemonsets.
pub const GATEWAY: &[ApiCall] = &[
    ApiCall { group: "", resource: "services", verbs: WATCH },
    ApiCall { group: "discovery.k8s.io", resource: "endpointslices", verbs: WATCH },
    ApiCall { group: "networking.istio.io", resource: "gateways", verbs: WATCH },
    ApiCall { group: "networking.istio.io", resource: "virtualservices", verbs: WATCH },
    ApiCall { group: "networking.istio.io", resource: "destinationrules", verbs: WATCH },
    ApiCall { group: "networking.istio.io", resource: "serviceentries", verbs: WATCH },
    ApiCall { group: "networking.istio.io", resource: "sidecars", verbs: WATCH },
    ApiCall { group: "networking.istio.io", resource: "workloadentries", verbs: WATCH },
    ApiCall { group: "security.istio.io", resource: "authorizationpolicies", verbs: WATCH },
    ApiCall { group: "events.k8s.io", resource: "events", verbs: &["create", "patch"] },
];

/// What the gateways call in their own namespace only, granted by a Role
/// there: the TLS Secrets their servers name (`--credential-secrets`).
pub const GATEWAY_IN_NAMESPACE: &[ApiCall] = &[ApiCall { group: "", resource: "secrets", verbs: WATCH }];

const CSRS: &str = "certificates.k8s.io";

/// What the node agent calls in addition with `--workload-certs-from-csr`:
/// its CertificateSigningRequests (granted by the ClusterRole in
/// `deploy/workload-ca/`).
pub const NODE_AGENT_WORKLOAD_CERTS: &[ApiCall] =
    &[ApiCall { group: CSRS, resource: "certificatesigningrequests", verbs: &["create", "get"] }];

/// ... and in its own namespace, by a Role there: the trust bundle ConfigMap.
pub const NODE_AGENT_WORKLOAD_CERTS_IN_NAMESPACE: &[ApiCall] = &[ApiCall { group: "", resource: "configmaps", verbs: &["get"] }];

/// What `gateway ca` calls cluster-wide: the CSRs of its signer (read,
/// approved or denied, signed) and the pods that entitle a node.
pub const WORKLOAD_CA: &[ApiCall] = &[
    ApiCall { group: CSRS, resource: "certificatesigningrequests", verbs: WATCH },
    ApiCall { group: CSRS, resource: "certificatesigningrequests/approval", verbs: &["patch"] },
    ApiCall { group: CSRS, resource: "certificatesigningrequests/status", verbs: &["patch"] },
    ApiCall { group: "", resource: "pods", verbs: WATCH },
];

/// The API server also asks the approver and the signer of a CSR for
/// `approve` and `sign` on `signers`, restricted to the signer's name
/// (`resourceNames`): (group, resource, verbs). The ClusterRole of
/// `gateway ca` grants these besides [`WORKLOAD_CA`].
pub const WORKLOAD_CA_SIGNER: (&str, &str, &[&str]) = (CSRS, "signers", &["approve", "sign"]);

/// What `gateway ca` calls in each namespace it publishes the trust bundle
/// in (a Role there): the ConfigMap, written by server-side apply.
pub const WORKLOAD_CA_IN_NAMESPACE: &[ApiCall] = &[ApiCall { group: "", resource: "configmaps", verbs: &["create", "patch"] }];

/// What a gateway calls in addition with `--cert-from-csr`: the same as a
/// node agent for its workloads, for its own identity.
pub const GATEWAY_WORKLOAD_CERTS: &[ApiCall] = NODE_AGENT_WORKLOAD_CERTS;

/// ... and in its own namespace: the trust bundle ConfigMap.
pub const GATEWAY_WORKLOAD_CERTS_IN_NAMESPACE: &[ApiCall] = NODE_AGENT_WORKLOAD_CERTS_IN_NAMESPACE;
