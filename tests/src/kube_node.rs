//! A node of a cluster, for the node agent's tests: the topology's network
//! namespaces, a kubelet-shaped cgroup tree, the stand-in API server holding
//! the pods of node `node-1`, and `gateway run --kubernetes --intercept-pods`
//! pointed at both.

use std::net::IpAddr;
use std::path::Path;
use std::process::Command;

use serde_json::{Value, json};

use crate::addresses::{PROXY_V4, PROXY_V6};
use crate::gateway_process::{GatewayConfig, PROXY_PORT};
use crate::kube_api::ApiServer;
use crate::kubelet::{Driver, KubeletTree, PodCgroup};
use crate::topology::Topology;

pub const NODE: &str = "node-1";

/// One pod as the API and the kubelet know it.
pub struct PodSpec<'a> {
    pub namespace: &'a str,
    pub name: &'a str,
    pub uid: &'a str,
    pub service_account: &'a str,
    pub labels: &'a [(&'a str, &'a str)],
    pub ip: IpAddr,
}

impl PodSpec<'_> {
    /// The Pod object, scheduled on `NODE` and running.
    pub fn object(&self) -> Value {
        let labels: serde_json::Map<String, Value> = self.labels.iter().map(|(k, v)| (k.to_string(), json!(v))).collect();
        json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": self.name, "namespace": self.namespace, "uid": self.uid, "labels": labels},
            "spec": {"nodeName": NODE, "serviceAccountName": self.service_account,
                     "containers": [{"name": "app", "image": "app"}]},
            "status": {"phase": "Running", "podIP": self.ip.to_string(), "podIPs": [{"ip": self.ip.to_string()}]}
        })
    }
}

/// A namespace object, with labels.
pub fn namespace(name: &str, labels: &[(&str, &str)]) -> Value {
    let labels: serde_json::Map<String, Value> = labels.iter().map(|(k, v)| (k.to_string(), json!(v))).collect();
    json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": labels}})
}

/// The node agent's command line: the kubeconfig, the pods cgroup, the
/// topology's proxy addresses; REGISTRY_ONLY; no configuration files.
pub fn agent_config(topo: &Topology, api: &ApiServer, tree: &KubeletTree, extra: &[&str]) -> GatewayConfig {
    let mut config = GatewayConfig::enforcing(topo, Vec::new());
    config.intercept_cgroups.clear();
    config.proxy_addresses = vec![IpAddr::V4(PROXY_V4), IpAddr::V6(PROXY_V6)];
    config.proxy_port = PROXY_PORT;
    let kubeconfig = api.kubeconfig();
    let root = tree.pods_root();
    let mut args: Vec<String> = [
        "--kubernetes", "--kubeconfig", &kubeconfig.to_string_lossy(), "--intercept-pods", "--node-name", NODE,
        "--cgroup-root", &root.to_string_lossy(),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    args.extend(extra.iter().map(|s| s.to_string()));
    config.extra_args = args;
    config
}

/// A kubelet tree in the given layout for this topology.
pub fn kubelet(topo: &Topology, driver: Driver) -> KubeletTree {
    KubeletTree::create(&topo.tag, driver)
}

/// A small TCP client in a pod: connects, sends a line, prints what came
/// back (`ok <reply>`) or why it did not (`refused <error>`).
pub fn probe(pod: &PodCgroup, netns: &Path, target: &str, port: u16) -> String {
    let out = probe_command(pod, netns, target, port).output().expect("probe runs");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

pub fn probe_command(pod: &PodCgroup, netns: &Path, target: &str, port: u16) -> Command {
    pod.command(netns, "python3", &["-c", PROBE, target, &port.to_string()])
}

const PROBE: &str = r#"
import socket, sys
try:
    s = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=8)
    s.sendall(b"ping\n")
    print("ok", s.recv(64).decode().strip())
except Exception as e:
    print("refused", type(e).__name__)
"#;
