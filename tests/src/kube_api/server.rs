//! [`ApiServer`]: starting and stopping the stand-in, and what a test reads and writes directly
//! (playing the kubelet, controllers and `kubectl`) while the code under test uses the HTTP API.

use std::fs::File;
use std::net::TcpListener;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use serde_json::Value;

use super::listener;
use super::objects::{Target, prepare};
use super::resources::{self, ResourceType};
use super::routes::ApiRequest;
use super::shared::Shared;
use super::store::{Part, object_key};
use super::tls::{self, ServerTls};
use crate::names;
use crate::netns::{self, NetNs};
use crate::temp_dir::TempDir;

/// How long `stop` waits for connection threads to finish.
const STOP_GRACE: Duration = Duration::from_secs(10);

/// Settings of [`ApiServer::start_with`].
#[derive(Clone, Debug)]
pub struct ServerOptions {
    /// How often an open watch that allows bookmarks gets one (the real server: about a minute).
    pub bookmark_interval: Duration,
    /// The network namespace (`/run/netns/NAME`) whose loopback the server listens on, so that a
    /// `gateway` started there reaches it at 127.0.0.1; `None`: the test process's own.
    pub netns: Option<PathBuf>,
}

impl Default for ServerOptions {
    fn default() -> ServerOptions {
        ServerOptions {
            bookmark_interval: Duration::from_secs(1),
            netns: None,
        }
    }
}

/// A running stand-in API server on 127.0.0.1. Dropping it stops it and removes its files.
pub struct ApiServer {
    pub(super) shared: Arc<Shared>,
    listener: TcpListener,
    accept: Mutex<Option<JoinHandle<()>>>,
    pub(super) dir: TempDir,
    kubeconfig: PathBuf,
    pub(super) kubeconfigs_written: AtomicU32,
}

impl ApiServer {
    /// Starts a server with default options and every resource of the table served.
    pub fn start() -> ApiServer {
        ApiServer::start_with(ServerOptions::default())
    }

    /// Starts a server listening on the loopback of `netns` (where the gateway under test runs).
    /// The test side still reaches it through the methods below; its HTTP port is only reachable
    /// from inside that namespace.
    pub fn start_in(netns: &NetNs) -> ApiServer {
        ApiServer::start_with(ServerOptions {
            netns: Some(netns.path()),
            ..ServerOptions::default()
        })
    }

    pub fn start_with(options: ServerOptions) -> ApiServer {
        let listener = match &options.netns {
            None => listener::bind_loopback(),
            Some(path) => {
                let handle = File::open(path).unwrap_or_else(|e| {
                    panic!("cannot open network namespace {}: {e}", path.display())
                });
                // setns on a thread of its own: the socket lives in the namespace, the runner stays out.
                thread::spawn(move || {
                    netns::enter_on_this_thread(&handle);
                    listener::bind_loopback()
                })
                .join()
                .unwrap_or_else(|_| panic!("cannot enter network namespace {}", path.display()))
            }
        }
        .unwrap_or_else(|e| panic!("cannot bind a loopback port for the API server: {e}"));
        let address = listener::local_addr(&listener);
        let tls = ServerTls::generate();
        let token = tls::random_token();
        let dir = TempDir::create(&format!("{}-kube-api", names::unique_tag()));
        let kubeconfig = dir.path().join("kubeconfig");
        tls::write_kubeconfig(
            &kubeconfig,
            &format!("https://{address}"),
            tls.ca_pem(),
            &token,
        );
        let shared = Arc::new(Shared::new(token, address, options.bookmark_interval, tls));
        let server = ApiServer {
            shared,
            listener,
            accept: Mutex::new(None),
            dir,
            kubeconfig,
            kubeconfigs_written: AtomicU32::new(0),
        };
        server.spawn_accept();
        server
    }

    fn spawn_accept(&self) {
        let listener = self
            .listener
            .try_clone()
            .unwrap_or_else(|e| panic!("cannot clone the listening socket: {e}"));
        let handle = listener::spawn_accept(listener, Arc::clone(&self.shared));
        *self.accept.lock().unwrap_or_else(|p| p.into_inner()) = Some(handle);
    }

    /// `https://127.0.0.1:<port>`
    pub fn url(&self) -> String {
        format!("https://{}", self.shared.address)
    }

    /// A kubeconfig naming this server, its CA and the bearer token it accepts.
    pub fn kubeconfig(&self) -> PathBuf {
        self.kubeconfig.clone()
    }

    /// Another kubeconfig for this server with `token` instead (to check that it is refused).
    pub fn kubeconfig_with_token(&self, token: &str) -> PathBuf {
        let n = self.kubeconfigs_written.fetch_add(1, Ordering::Relaxed);
        let path = self.dir.path().join(format!("kubeconfig-{n}"));
        tls::write_kubeconfig(&path, &self.url(), self.shared.tls.ca_pem(), token);
        path
    }

    /// The server's CA certificate, PEM (it also signs CSRs; see [`ApiServer::sign_csr`]).
    pub fn ca_pem(&self) -> String {
        self.shared.tls.ca_pem().to_string()
    }

    /// The bearer token the server accepts.
    pub fn token(&self) -> String {
        self.shared.token.clone()
    }

    /// Creates or replaces an object whole (status included), as found by its `apiVersion`,
    /// `kind`, namespace and name; watches see ADDED or MODIFIED. Any `resourceVersion` in it is
    /// ignored. Returns the stored object. Panics on an unknown or unserved kind, or an invalid
    /// object.
    /// A `metadata.uid` given here is kept when the object is created (the
    /// test side plays the part of the store; over HTTP the server assigns it).
    pub fn apply(&self, object: Value) -> Value {
        let rt = self.served_kind(&object);
        let given_uid = object.pointer("/metadata/uid").and_then(Value::as_str).map(str::to_string);
        let mut object = prepare(
            rt,
            &Target {
                namespace: None,
                name: None,
            },
            object,
            true,
        )
        .unwrap_or_else(|e| panic!("apply: {e}"));
        if let Some(meta) = object["metadata"].as_object_mut() {
            meta.remove("resourceVersion");
        }
        let (ns, name) = object_key(&object);
        self.shared
            .write(|s| match s.get(rt, &ns, &name) {
                Some(_) => s.update(rt, object, Part::Whole),
                None => match given_uid {
                    Some(uid) => s.create_with_uid(rt, object, uid),
                    None => s.create(rt, object),
                },
            })
            .unwrap_or_else(|e| panic!("apply: {e}"))
    }

    /// One object; `namespace` is `""` for a cluster-scoped kind.
    pub fn get(&self, api_version: &str, kind: &str, namespace: &str, name: &str) -> Option<Value> {
        let rt = self.known_kind(api_version, kind);
        self.shared.store().get(rt, namespace, name).cloned()
    }

    /// Deletes an object (watches see DELETED); false when there was none.
    pub fn delete(&self, api_version: &str, kind: &str, namespace: &str, name: &str) -> bool {
        let rt = self.known_kind(api_version, kind);
        self.shared.write(|s| s.delete(rt, namespace, name).is_ok())
    }

    /// Every object of a kind, in namespace and name order.
    pub fn list(&self, api_version: &str, kind: &str) -> Vec<Value> {
        let rt = self.known_kind(api_version, kind);
        self.shared.store().snapshot(rt, None).unwrap_or_default()
    }

    /// Every Event: `events.k8s.io/v1` ones (what kube-runtime's Recorder writes), then core `v1`.
    pub fn events(&self) -> Vec<Value> {
        let mut events = self.list("events.k8s.io/v1", "Event");
        events.extend(self.list("v1", "Event"));
        events
    }

    /// Every request answered so far, in order (including refused ones, with their code).
    pub fn requests(&self) -> Vec<ApiRequest> {
        self.shared.requests()
    }

    /// The latest resourceVersion.
    pub fn resource_version(&self) -> u64 {
        self.shared.store().rv()
    }

    /// Drops the change history: a list (with `resourceVersionMatch=Exact` or a continue token)
    /// or watch from any version before now gets 410 Expired.
    pub fn compact(&self) {
        self.shared.write(|s| s.compact());
    }

    /// Makes every open watch that allows bookmarks send one now.
    pub fn bookmark_now(&self) {
        self.shared.write(|s| s.bookmark_epoch += 1);
    }

    /// Ends every open watch cleanly, as when their `timeoutSeconds` runs out (after anything
    /// already asked for, such as a [`ApiServer::bookmark_now`], has been sent).
    pub fn end_watches(&self) {
        self.shared.write(|s| s.watch_epoch += 1);
    }

    /// Stops serving: new connections are refused, and every open connection (watches too) is
    /// closed. The port stays reserved and the state is kept for [`ApiServer::resume`].
    pub fn stop(&self) {
        let handle = self.accept.lock().unwrap_or_else(|p| p.into_inner()).take();
        let Some(handle) = handle else { return };
        listener::stop_listening(&self.listener);
        let _ = handle.join();
        let left = self.shared.close_connections(STOP_GRACE);
        if left > 0 {
            eprintln!(
                "kube-api: {left} connection thread(s) still running {STOP_GRACE:?} after stop"
            );
        }
    }

    /// Serves again on the same port with the same state.
    pub fn resume(&self) {
        if self.is_serving() {
            return;
        }
        listener::relisten(&self.listener)
            .unwrap_or_else(|e| panic!("cannot listen again on {}: {e}", self.shared.address));
        self.spawn_accept();
    }

    pub fn is_serving(&self) -> bool {
        self.accept
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .is_some()
    }

    /// Stops serving a resource, as when its CRD is deleted: its objects go, its watches end, and
    /// its paths and discovery entries answer 404 until [`ApiServer::add_resource`].
    pub fn remove_resource(&self, group: &str, plural: &str) {
        let rt = resources::by_plural(group, plural)
            .unwrap_or_else(|| panic!("no resource {plural} in group {group:?} in the table"));
        self.shared.write(|s| s.remove_resource(rt));
    }

    /// Serves a resource of the table again (empty).
    pub fn add_resource(&self, group: &str, plural: &str) {
        let rt = resources::by_plural(group, plural)
            .unwrap_or_else(|| panic!("no resource {plural} in group {group:?} in the table"));
        self.shared.write(|s| s.add_resource(rt));
    }

    fn known_kind(&self, api_version: &str, kind: &str) -> &'static ResourceType {
        resources::by_kind(api_version, kind)
            .unwrap_or_else(|| panic!("no kind {kind} in {api_version} in the table"))
    }

    fn served_kind(&self, object: &Value) -> &'static ResourceType {
        let text = |f: &str| object[f].as_str().unwrap_or("");
        let rt = self.known_kind(text("apiVersion"), text("kind"));
        if !self.shared.store().serves(rt) {
            panic!(
                "apply: no matches for kind {:?} in version {:?} (the resource is removed)",
                rt.kind,
                rt.api_version()
            );
        }
        rt
    }
}

impl Drop for ApiServer {
    fn drop(&mut self) {
        self.stop();
    }
}
