//! A stand-in for kube-apiserver, for tests of the node agent.
//!
//! No package on these machines carries kube-apiserver (nor etcd), so the tests cannot run a real
//! one. This server takes its place for what the agent uses, speaking the real wire protocol: the
//! `gateway` binary (a kube-rs client) reaches it through a kubeconfig exactly as it would reach a
//! cluster, over TLS on 127.0.0.1 with a bearer token.
//!
//! What it serves, as the real server does:
//! - discovery: `/version`, `/api`, `/api/v1`, `/apis`, `/apis/<group>`, `/apis/<group>/<version>`,
//!   and aggregated discovery (`apidiscovery.k8s.io/v2`) when the `Accept` header asks for it;
//! - the resources of [`resources::ALL`]: core `v1` pods, namespaces, secrets, configmaps, services, events, nodes;
//!   `discovery.k8s.io/v1` endpointslices; `apps/v1` daemonsets; `events.k8s.io/v1` events;
//!   `networking.istio.io/v1` gateways, virtualservices, destinationrules, serviceentries,
//!   sidecars, workloadentries; `security.istio.io/v1` authorizationpolicies;
//!   `certificates.k8s.io/v1` certificatesigningrequests (with `/approval` and `/status`);
//! - get, list, watch, create, update (PUT), patch (merge and strategic merge as JSON merge patch,
//!   JSON patch, server-side apply as a plain merge that creates when absent), delete and
//!   deletecollection; `status` subresources (a plain update keeps the stored status);
//! - one global, increasing resourceVersion; lists at a version (`resourceVersionMatch=Exact`) and
//!   in pages (`limit`/`continue`); watches that replay history after a version, send BOOKMARKs
//!   when allowed (every [`ServerOptions::bookmark_interval`] and on [`ApiServer::bookmark_now`]),
//!   support `sendInitialEvents`, and end at `timeoutSeconds`;
//! - 410 `Expired` (a watch `ERROR` event, or the answer to an exact or continued list) for a
//!   version older than the last [`ApiServer::compact`];
//! - field selectors (per-resource field labels such as `spec.nodeName`, `=`/`==`/`!=`) and label
//!   selectors (`=`, `!=`, `in`, `notin`, `key`, `!key`) on lists and watches; a watched object
//!   that leaves the selection arrives as DELETED, one that enters it as ADDED;
//! - metadata-only answers (`PartialObjectMetadata[List]`) when the `Accept` header asks for them;
//! - bearer tokens: the server's own (an administrator), and service-account tokens, optionally
//!   bound to a node, made by [`ApiServer::kubeconfig_for_service_account`]; a created CSR's
//!   `spec.username`, `groups` and `extra` are the caller's, whatever the body said;
//! - 401 without a known token; 404 `NotFound` Status for a resource not served (a missing CRD);
//!   409 on a name taken or a stale resourceVersion; 422 for invalid names and incomplete Events
//!   and CSRs.
//!
//! Not modelled: authorization (every authenticated request is allowed; the [`ApiRequest`] log
//! lets a test compare the calls made with a ClusterRole), admission (namespaces need not exist),
//! graceful deletion and finalizers, managed fields, `dryRun` (refused with 400), the sharing of
//! storage between core and `events.k8s.io` Events (they are separate here).
//!
//! # The test-side API
//! ```no_run
//! use gateway_tests::kube_api::ApiServer;
//! use serde_json::json;
//!
//! let server = ApiServer::start();          // 127.0.0.1:<free port>, TLS, a CA of its own
//! // or ApiServer::start_in(&topology.node): on the loopback of the namespace the gateway runs in
//! let kubeconfig = server.kubeconfig();     // give this to `gateway --kubeconfig`
//! server.apply(json!({ "apiVersion": "v1", "kind": "Pod",
//!     "metadata": { "name": "p1", "namespace": "default" }, "spec": { "nodeName": "node-1" } }));
//! let pods = server.list("v1", "Pod");      // every object of a kind
//! let pod = server.get("v1", "Pod", "default", "p1"); // "" as namespace when cluster-scoped
//! server.delete("v1", "Pod", "default", "p1");
//! let events = server.events();             // events.k8s.io/v1 and core v1 Events
//! let calls = server.requests();            // every request, with its RBAC verb and resource
//! server.compact();                         // older versions now answer 410 Expired
//! server.bookmark_now();                    // every open watch that allows it gets a BOOKMARK
//! server.end_watches();                     // open watches end as at their timeout
//! server.stop();                            // refuse connections, close all; port kept
//! server.resume();                          // same port, same state
//! server.remove_resource("networking.istio.io", "sidecars"); // as if the CRD were deleted
//! server.add_resource("networking.istio.io", "sidecars");
//! let node_1 = server.kubeconfig_for_service_account("gateway-system", "gateway-node", Some("node-1"));
//! // CSRs: server.csrs(), server.approve_csr(name), server.sign_csr(name) -> PEM, server.ca_pem()
//! # let _ = (kubeconfig, pods, pod, events, calls, node_1);
//! ```
//! Dropping the server stops it and removes its kubeconfig directory.

mod csr;
mod discovery;
mod handlers;
mod identity;
mod list;
mod listener;
mod meta_only;
mod objects;
mod patch;
pub mod resources;
mod routes;
mod selectors;
mod server;
mod shared;
mod status;
mod store;
mod tls;
mod watch;
mod wire;

pub use identity::{Identity, NODE_NAME_EXTRA};
pub use routes::ApiRequest;
pub use server::{ApiServer, ServerOptions};
