//! Reaching the API server: a kubeconfig file, else the in-cluster service
//! account (the token and CA the kubelet mounts into every pod).

use std::path::Path;

use kube::{Client, Config, config::{KubeConfigOptions, Kubeconfig}};

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("reading kubeconfig {path}: {source}")]
    Kubeconfig { path: String, source: kube::config::KubeconfigError },
    #[error("in-cluster configuration (no --kubeconfig given): {0}")]
    InCluster(#[from] kube::config::InClusterError),
    #[error("building the Kubernetes client: {0}")]
    Build(#[from] kube::Error),
}

pub async fn connect(kubeconfig: Option<&Path>) -> Result<Client, ClientError> {
    let config = match kubeconfig {
        Some(path) => {
            let err = |source| ClientError::Kubeconfig { path: path.display().to_string(), source };
            let file = Kubeconfig::read_from(path).map_err(err)?;
            Config::from_custom_kubeconfig(file, &KubeConfigOptions::default()).await.map_err(err)?
        }
        None => Config::incluster()?,
    };
    Ok(Client::try_from(config)?)
}
