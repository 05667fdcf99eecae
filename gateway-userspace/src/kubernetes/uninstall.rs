//! Stopping on a node: an upgrade or a drain keeps the interception pinned
//! (pods stay refused rather than unprotected until the next agent starts);
//! an uninstall, seen as the DaemonSet gone, removes it.

use k8s_openapi::api::apps::v1::DaemonSet;
use kube::{Api, Client};

/// What to do with the pinned interception at SIGTERM.
#[derive(Debug, PartialEq, Eq)]
pub enum OnStop {
    Keep,
    Detach,
}

/// Keep the pins unless the API says the DaemonSet no longer exists (or is
/// being deleted). An unreachable API keeps them: failing closed.
pub async fn on_stop(client: &Client, daemonset: Option<&(String, String)>) -> OnStop {
    let Some((namespace, name)) = daemonset else { return OnStop::Keep };
    let api: Api<DaemonSet> = Api::namespaced(client.clone(), namespace);
    match api.get_opt(name).await {
        Ok(None) => OnStop::Detach,
        Ok(Some(ds)) if ds.metadata.deletion_timestamp.is_some() => OnStop::Detach,
        Ok(Some(_)) => OnStop::Keep,
        Err(e) => {
            tracing::warn!(error = %e, "cannot tell whether the DaemonSet still exists; keeping the interception");
            OnStop::Keep
        }
    }
}
