//! The trust bundle, published: the CA certificate in a ConfigMap
//! (`gateway-ca-root`, key `ca.crt`) in each namespace that needs it: the
//! CA's own (where the node agents and gateways run) and any named with
//! `--bundle-namespace`. Written at start and again every minute, so a
//! ConfigMap deleted or edited by hand comes back.

use std::time::Duration;

use k8s_openapi::api::core::v1::ConfigMap;
use kube::{
    Api, Client,
    api::{Patch, PatchParams},
};
use serde_json::json;

/// The ConfigMap's name.
pub const BUNDLE_CONFIGMAP: &str = "gateway-ca-root";
/// Its key holding the PEM CA certificate(s).
pub const BUNDLE_KEY: &str = "ca.crt";
const FIELD_MANAGER: &str = "gateway-ca";
const REPUBLISH_EVERY: Duration = Duration::from_secs(60);

/// Publishes `ca_pem` in every namespace, now and then every minute.
pub async fn publish_forever(client: Client, namespaces: Vec<String>, ca_pem: String) {
    loop {
        for ns in &namespaces {
            match publish(&client, ns, &ca_pem).await {
                Ok(()) => tracing::debug!(namespace = %ns, configmap = BUNDLE_CONFIGMAP, "trust bundle published"),
                Err(e) => tracing::warn!(namespace = %ns, configmap = BUNDLE_CONFIGMAP, error = %e, "cannot publish the trust bundle; retrying"),
            }
        }
        tokio::time::sleep(REPUBLISH_EVERY).await;
    }
}

async fn publish(client: &Client, namespace: &str, ca_pem: &str) -> Result<(), kube::Error> {
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), namespace);
    let object = json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": { "name": BUNDLE_CONFIGMAP, "namespace": namespace,
                      "labels": { "app.kubernetes.io/managed-by": FIELD_MANAGER } },
        "data": { BUNDLE_KEY: ca_pem },
    });
    api.patch(BUNDLE_CONFIGMAP, &PatchParams::apply(FIELD_MANAGER).force(), &Patch::Apply(&object)).await?;
    Ok(())
}
