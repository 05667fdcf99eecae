//! What the connection threads and the test side share: the store behind one lock with a
//! condition variable that wakes watches on every write, the request log, the TLS setup, and the
//! registry of open connections that `stop` closes.

use std::collections::HashMap;
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use super::identity::Identity;
use super::routes::ApiRequest;
use super::store::Store;
use super::tls::ServerTls;

pub struct Shared {
    store: Mutex<Store>,
    /// Notified after every write to the store (and on stop), so watches wake up.
    pub changed: Condvar,
    pub token: String,
    pub address: SocketAddr,
    pub bookmark_interval: Duration,
    pub tls: ServerTls,
    requests: Mutex<Vec<ApiRequest>>,
    /// Tokens other than `token`, and whom they authenticate.
    identities: Mutex<HashMap<String, Identity>>,
    connections: Mutex<Connections>,
    connections_closed: Condvar,
}

#[derive(Default)]
struct Connections {
    next_id: u64,
    open: HashMap<u64, TcpStream>,
}

/// A lock guard that does not care whether another thread panicked while holding the lock: the
/// store is only ever changed by whole operations.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Shared {
    pub fn new(
        token: String,
        address: SocketAddr,
        bookmark_interval: Duration,
        tls: ServerTls,
    ) -> Shared {
        Shared {
            store: Mutex::new(Store::new()),
            changed: Condvar::new(),
            token,
            address,
            bookmark_interval,
            tls,
            requests: Mutex::new(Vec::new()),
            identities: Mutex::new(HashMap::new()),
            connections: Mutex::new(Connections::default()),
            connections_closed: Condvar::new(),
        }
    }

    /// The store, for reading or for a write that [`Shared::write`] does not fit.
    pub fn store(&self) -> MutexGuard<'_, Store> {
        lock(&self.store)
    }

    /// Runs `f` on the store, then wakes every watch.
    pub fn write<T>(&self, f: impl FnOnce(&mut Store) -> T) -> T {
        let out = f(&mut self.store());
        self.changed.notify_all();
        out
    }

    /// Waits on the store's condition variable for at most `timeout`.
    pub fn wait<'a>(
        &self,
        guard: MutexGuard<'a, Store>,
        timeout: Duration,
    ) -> MutexGuard<'a, Store> {
        match self.changed.wait_timeout(guard, timeout) {
            Ok((guard, _)) => guard,
            Err(poisoned) => poisoned.into_inner().0,
        }
    }

    /// Whom `Authorization: Bearer <token>` authenticates, if anyone.
    pub fn authenticate(&self, authorization: Option<&str>) -> Option<Identity> {
        let token = authorization?.strip_prefix("Bearer ")?;
        if token == self.token {
            return Some(Identity::admin());
        }
        lock(&self.identities).get(token).cloned()
    }

    pub fn add_identity(&self, token: &str, identity: Identity) {
        lock(&self.identities).insert(token.to_string(), identity);
    }

    pub fn log(&self, request: ApiRequest) {
        lock(&self.requests).push(request);
    }

    pub fn requests(&self) -> Vec<ApiRequest> {
        lock(&self.requests).clone()
    }

    /// Registers an accepted connection so `close_connections` can end it.
    pub fn register(&self, tcp: &TcpStream) -> Option<u64> {
        let clone = tcp.try_clone().ok()?;
        let mut c = lock(&self.connections);
        c.next_id += 1;
        let id = c.next_id;
        c.open.insert(id, clone);
        Some(id)
    }

    pub fn unregister(&self, id: u64) {
        lock(&self.connections).open.remove(&id);
        self.connections_closed.notify_all();
    }

    /// Shuts every open connection down and waits (at most `timeout`) until their threads are
    /// gone. Returns how many were still open at the end.
    pub fn close_connections(&self, timeout: Duration) -> usize {
        let deadline = Instant::now() + timeout;
        let mut c = lock(&self.connections);
        for tcp in c.open.values() {
            let _ = tcp.shutdown(Shutdown::Both);
        }
        // Watches sleep on the store's condition variable: wake them to notice.
        self.write(|s| s.watch_epoch += 1);
        while !c.open.is_empty() {
            let now = Instant::now();
            if now >= deadline {
                break;
            }
            c = match self.connections_closed.wait_timeout(c, deadline - now) {
                Ok((guard, _)) => guard,
                Err(poisoned) => poisoned.into_inner().0,
            };
        }
        c.open.len()
    }
}
