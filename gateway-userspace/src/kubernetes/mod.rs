//! The cluster as the source of truth, for `gateway run --kubernetes`.
//!
//! - `client.rs`: a kubeconfig, or the in-cluster service account.
//! - `mirror.rs`: one watched collection (list, watch, relist after 410).
//! - `node_agent.rs`: the pods of this node (`pods.rs`), the kubelet's
//!   cgroup tree (`pod_cgroups.rs`), the kernel's exemption map, and which pod
//!   a connection's cgroup belongs to.
//! - `cluster_config.rs`: Services (`services.rs`) and Istio resources
//!   (`istio.rs`) as configuration documents; findings become Events
//!   (`events.rs`); a gateway's Service port → target port map
//!   (`gateway_ports.rs`); the TLS Secrets that `credentialName` names, as
//!   files (`credential_secrets.rs`).
//! - `uninstall.rs`: at SIGTERM, keep the interception unless the DaemonSet is gone.
//! - `workload_certs.rs`: with `--workload-certs-from-csr`, each pod's
//!   service-account certificate through a CSR (`workload_csr.rs`) that
//!   `gateway ca` signs, renewed, and the trust bundle.
//! - `rbac.rs`: every API call made, for the ClusterRole.

pub mod client;
pub mod cluster_config;
pub mod credential_secrets;
pub mod events;
pub mod gateway_ports;
pub mod istio;
pub mod mirror;
pub mod node_agent;
pub mod pod_cgroups;
pub mod pods;
pub mod rbac;
pub mod services;
pub mod uninstall;
pub mod workload_certs;
pub mod workload_csr;

#[cfg(test)]
mod tests;

pub use cluster_config::ClusterConfig;
pub use node_agent::{NodeAgent, PodLookup};
