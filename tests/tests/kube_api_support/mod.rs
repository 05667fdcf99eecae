//! What the stand-in API server's self-tests share: kube-rs clients made from the server's
//! kubeconfig, objects to apply, and a watcher whose events a test reads one by one.

// Each test binary uses a part of this module.
#![allow(dead_code)]

use std::path::Path;
use std::time::Duration;

use futures::StreamExt;
use gateway_tests::kube_api::{ApiRequest, ApiServer};
use k8s_openapi::api::core::v1::Pod;
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client, Config, ResourceExt};
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// A bound on every wait, so a broken server fails the test instead of hanging it.
pub const PATIENCE: Duration = Duration::from_secs(60);

/// A client configured from `kubeconfig`, as `gateway --kubeconfig` makes one.
pub async fn client_from(kubeconfig: &Path) -> Client {
    let kubeconfig = Kubeconfig::read_from(kubeconfig)
        .unwrap_or_else(|e| panic!("reading {}: {e}", kubeconfig.display()));
    let config = Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
        .await
        .unwrap_or_else(|e| panic!("kube-rs refuses the kubeconfig: {e}"));
    Client::try_from(config).unwrap_or_else(|e| panic!("building a client: {e}"))
}

pub async fn client(server: &ApiServer) -> Client {
    client_from(&server.kubeconfig()).await
}

/// A pod on `node` with `labels`, as a test applies it.
pub fn pod(ns: &str, name: &str, node: &str, labels: Value) -> Value {
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": { "name": name, "namespace": ns, "labels": labels },
        "spec": { "nodeName": node, "containers": [{ "name": "app", "image": "app:1" }] },
        "status": { "phase": "Running" }
    })
}

/// The HTTP status of a failed kube-rs call (panics on success or a non-API error).
pub fn api_code<T: std::fmt::Debug>(result: kube::Result<T>) -> u16 {
    match result {
        Err(kube::Error::Api(status)) => status.code,
        other => panic!("expected an API error, got {other:?}"),
    }
}

/// A watcher event, reduced to what the tests compare.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Seen {
    Init,
    InitApply(String),
    InitDone,
    Apply(String),
    Delete(String),
    /// A watch `ERROR` event, by its code.
    WatchError(u16),
}

/// A `kube::runtime::watcher` over pods running in the background.
pub struct PodWatch {
    rx: mpsc::UnboundedReceiver<Seen>,
    task: JoinHandle<()>,
}

impl PodWatch {
    pub fn start(api: Api<Pod>, config: watcher::Config) -> PodWatch {
        let (tx, rx) = mpsc::unbounded_channel();
        let task = tokio::spawn(async move {
            let mut stream = std::pin::pin!(watcher(api, config).default_backoff());
            while let Some(item) = stream.next().await {
                let seen = match item {
                    Ok(watcher::Event::Init) => Seen::Init,
                    Ok(watcher::Event::InitApply(p)) => Seen::InitApply(p.name_any()),
                    Ok(watcher::Event::InitDone) => Seen::InitDone,
                    Ok(watcher::Event::Apply(p)) => Seen::Apply(p.name_any()),
                    Ok(watcher::Event::Delete(p)) => Seen::Delete(p.name_any()),
                    Err(watcher::Error::WatchError(status)) => Seen::WatchError(status.code),
                    Err(_) => continue, // connection failures while the server is stopped
                };
                if tx.send(seen).is_err() {
                    return;
                }
            }
        });
        PodWatch { rx, task }
    }

    /// The next event.
    pub async fn next(&mut self) -> Seen {
        match tokio::time::timeout(PATIENCE, self.rx.recv()).await {
            Ok(Some(seen)) => seen,
            Ok(None) => panic!("the watcher ended"),
            Err(_) => panic!("no watcher event within {PATIENCE:?}"),
        }
    }

    /// The next events are exactly `expected`, in order.
    pub async fn expect(&mut self, expected: &[Seen]) {
        for want in expected {
            let got = self.next().await;
            assert_eq!(
                &got, want,
                "watcher events out of line (wanted {expected:?})"
            );
        }
    }

    /// Reads an initial listing: `Init`, one `InitApply` per name (in any order), `InitDone`.
    pub async fn expect_init(&mut self, names: &[&str]) {
        assert_eq!(self.next().await, Seen::Init);
        let mut listed = Vec::new();
        loop {
            match self.next().await {
                Seen::InitApply(name) => listed.push(name),
                Seen::InitDone => break,
                other => panic!("unexpected {other:?} in an initial listing"),
            }
        }
        listed.sort();
        let mut want: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        want.sort();
        assert_eq!(listed, want, "the initial listing");
    }
}

impl Drop for PodWatch {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Waits until the server has logged a request that `wanted` accepts; returns its position.
pub async fn wait_for_request(
    server: &ApiServer,
    from: usize,
    what: &str,
    wanted: impl Fn(&ApiRequest) -> bool,
) -> usize {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        if let Some(i) = server.requests().iter().skip(from).position(&wanted) {
            return from + i;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no {what} within {PATIENCE:?}: {:#?}",
            &server.requests()[from..]
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Is this a watch on pods?
pub fn pod_watch(r: &ApiRequest) -> bool {
    r.verb == "watch" && r.resource == "pods"
}

pub fn pod_list(r: &ApiRequest) -> bool {
    r.verb == "list" && r.resource == "pods"
}
