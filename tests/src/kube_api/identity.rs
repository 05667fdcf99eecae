//! Who a bearer token is, as the API server's authenticators would say: the
//! user name, groups and extra fields it writes into a CertificateSigningRequest's
//! spec (never what the client sent). The server's own token is an
//! administrator; [`ApiServer::kubeconfig_for_service_account`] makes tokens of
//! service accounts, optionally bound to a node as a pod's projected token is
//! under ServiceAccountTokenNodeBinding (`authentication.kubernetes.io/node-name`).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::Ordering;

use serde_json::{Value, json};

use super::server::ApiServer;
use super::tls;

/// Where the API server records the node a bound token was issued for.
pub const NODE_NAME_EXTRA: &str = "authentication.kubernetes.io/node-name";

/// An authenticated caller.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Identity {
    pub username: String,
    pub groups: Vec<String>,
    pub extra: BTreeMap<String, Vec<String>>,
}

impl Identity {
    /// The identity of the server's own token (what the default kubeconfig carries).
    pub fn admin() -> Identity {
        Identity {
            username: "node-agent".into(),
            groups: vec!["system:masters".into(), "system:authenticated".into()],
            extra: BTreeMap::new(),
        }
    }

    /// A service account's token; bound to `node` when given.
    pub fn service_account(namespace: &str, name: &str, node: Option<&str>) -> Identity {
        let mut extra = BTreeMap::new();
        if let Some(node) = node {
            extra.insert(NODE_NAME_EXTRA.to_string(), vec![node.to_string()]);
        }
        Identity {
            username: format!("system:serviceaccount:{namespace}:{name}"),
            groups: vec![
                "system:serviceaccounts".into(),
                format!("system:serviceaccounts:{namespace}"),
                "system:authenticated".into(),
            ],
            extra,
        }
    }

    /// Overwrites the requester fields of a CSR being created, as kube-apiserver does.
    pub fn stamp_csr(&self, object: &mut Value) {
        let spec = &mut object["spec"];
        spec["username"] = json!(self.username);
        spec["groups"] = json!(self.groups);
        match spec.as_object_mut() {
            Some(spec) if self.extra.is_empty() => {
                spec.remove("extra");
            }
            _ => spec["extra"] = json!(self.extra),
        }
    }
}

impl ApiServer {
    /// A kubeconfig whose token authenticates as service account `namespace/name`, bound to
    /// `node` when given (as the token of a pod on that node is).
    pub fn kubeconfig_for_service_account(&self, namespace: &str, name: &str, node: Option<&str>) -> PathBuf {
        let token = tls::random_token();
        self.shared.add_identity(&token, Identity::service_account(namespace, name, node));
        let n = self.kubeconfigs_written.fetch_add(1, Ordering::Relaxed);
        let path = self.dir.path().join(format!("kubeconfig-{n}"));
        tls::write_kubeconfig(&path, &self.url(), self.shared.tls.ca_pem(), &token);
        path
    }
}
