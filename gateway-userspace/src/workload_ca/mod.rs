//! `gateway ca`: the in-cluster CA of the mesh identities. It approves and
//! signs the Kubernetes CertificateSigningRequests that name its signer,
//! [`SIGNER_NAME`], when the requesting node runs a pod of the identity
//! asked for, and publishes its certificate as the trust bundle.
//!
//! Why the requester's node can be trusted: a node agent authenticates
//! with the bound service-account token the kubelet projects into its pod.
//! The API server, not the caller, writes a CSR's `spec.username`,
//! `spec.groups` and `spec.extra` from the authenticated credentials
//! (whatever the body said). A pod's bound token names the node the pod was
//! scheduled to, and the service-account authenticator puts that name in
//! the user's extra `authentication.kubernetes.io/node-name` (KEP-4193:
//! ServiceAccountTokenPodNodeInfo, on by default since Kubernetes 1.30 and
//! GA in 1.32; node-bound tokens, ServiceAccountTokenNodeBinding, are GA in
//! 1.33). The token is signed by the API server, which checks at every
//! request that the pod it is bound to still exists (and, with
//! ServiceAccountTokenNodeBindingValidation, the node too), so the node
//! name is nothing the requester chose. A node agent can therefore only obtain the
//! identities of pods on its own node: a compromised node cannot mint the
//! identities of workloads elsewhere. A CSR without that field (an older
//! cluster, a legacy Secret token) is denied.
//!
//! - `checks.rs`: the judgement of one request (pure functions).
//! - `signer.rs`: the CA key, and the certificate it issues.
//! - `controller.rs`: the watch on CSRs and pods; approval, denial, signing.
//! - `bundle.rs`: the trust bundle ConfigMap.

pub mod bundle;
pub mod checks;
pub mod controller;
pub mod signer;

#[cfg(test)]
mod tests;

use std::{path::PathBuf, sync::Arc, time::Duration};

use clap::Args;

use crate::kubernetes::mirror::Signals;

/// The `spec.signerName` this CA serves; CSRs naming any other are left alone.
pub const SIGNER_NAME: &str = "gateway.dev/workload";

#[derive(Debug, Args)]
pub struct CaArgs {
    /// Reach the API server through this kubeconfig instead of the in-cluster
    /// service account.
    #[arg(long)]
    pub kubeconfig: Option<PathBuf>,
    /// The CA certificate (PEM), from the Secret mounted into the pod.
    #[arg(long)]
    pub ca_cert: PathBuf,
    /// The CA private key (PEM).
    #[arg(long)]
    pub ca_key: PathBuf,
    /// The SPIFFE trust domain of the identities issued.
    #[arg(long, default_value = "cluster.local")]
    pub trust_domain: String,
    /// `NAMESPACE/NAME` of the node agents' service account, whose CSRs are
    /// served (repeatable).
    #[arg(long = "node-agent", value_parser = crate::cli::parse_namespaced, default_value = "gateway-system/gateway-node")]
    pub node_agents: Vec<(String, String)>,
    /// `NAMESPACE/NAME` of a gateway's service account, whose CSRs for its
    /// own identity are served (repeatable; none by default).
    #[arg(long = "gateway", value_parser = crate::cli::parse_namespaced)]
    pub gateways: Vec<(String, String)>,
    /// Longest certificate lifetime issued, in seconds; also the lifetime
    /// of a request that names no `expirationSeconds`.
    #[arg(long, default_value_t = 86_400, value_parser = clap::value_parser!(u64).range(60..))]
    pub max_lifetime_secs: u64,
    /// Seconds a CSR for a pod not (yet) seen on the requesting node stays
    /// pending before it is denied.
    #[arg(long, default_value_t = 10)]
    pub pod_wait_secs: u64,
    /// This CA's namespace, where the trust bundle is always published.
    #[arg(long, env = "POD_NAMESPACE", default_value = "gateway-system")]
    pub namespace: String,
    /// More namespaces to publish the trust bundle ConfigMap in (repeatable).
    #[arg(long = "bundle-namespace")]
    pub bundle_namespaces: Vec<String>,
}

/// Runs the CA until the process is stopped.
pub async fn run(args: CaArgs) -> anyhow::Result<()> {
    let signer = Arc::new(signer::Signer::load(&args.ca_cert, &args.ca_key)?);
    let client = crate::kubernetes::client::connect(args.kubeconfig.as_deref()).await?;
    let policy = checks::Policy {
        trust_domain: args.trust_domain.clone(),
        requesters: args.node_agents.iter().map(|(ns, sa)| checks::service_account_user(ns, sa)).collect(),
        gateways: args.gateways.iter().map(|(ns, sa)| checks::service_account_user(ns, sa)).collect(),
        max_lifetime: Duration::from_secs(args.max_lifetime_secs),
    };
    let mut namespaces = vec![args.namespace.clone()];
    namespaces.extend(args.bundle_namespaces.iter().cloned());
    namespaces.sort();
    namespaces.dedup();
    tokio::spawn(bundle::publish_forever(client.clone(), namespaces, signer.ca_pem.clone()));
    let signals = Signals::default();
    let controller = controller::Controller::new(client, signer, policy, Duration::from_secs(args.pod_wait_secs), &signals);
    tracing::info!(signer = SIGNER_NAME, trust_domain = %args.trust_domain, "workload CA running");
    tokio::select! {
        () = controller.run(signals) => Ok(()),
        r = tokio::signal::ctrl_c() => r.map_err(anyhow::Error::from),
        () = sigterm() => Ok(()),
    }
}

async fn sigterm() {
    match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(mut s) => {
            s.recv().await;
        }
        Err(_) => std::future::pending().await,
    }
}
