//! The node's upstream pools, one per client connection, known to one
//! place so that each reload revokes them all ([`UpstreamPool::revoke`]):
//! a connection's task does not watch the configuration itself, which it
//! would otherwise look at again on every wake-up of every request.

use std::{
    collections::HashMap,
    ops::Deref,
    sync::{
        Arc, Mutex, Weak,
        atomic::{AtomicU64, Ordering},
    },
};

use super::http_pool::UpstreamPool;
use crate::reload::ActiveConfig;

/// The pools of the open connections.
#[derive(Default)]
pub struct Pools {
    open: Mutex<HashMap<u64, Weak<UpstreamPool>>>,
    next: AtomicU64,
}

/// A connection's pool, known to [`Pools`] until it is dropped.
pub struct PoolOfConnection {
    pool: Arc<UpstreamPool>,
    id: u64,
    pools: Arc<Pools>,
}

impl Pools {
    /// A new, empty pool for one connection.
    pub fn open(self: &Arc<Self>) -> PoolOfConnection {
        let pool = Arc::new(UpstreamPool::default());
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        self.open.lock().expect("pools lock").insert(id, Arc::downgrade(&pool));
        PoolOfConnection { pool, id, pools: self.clone() }
    }

    /// Closes, in every open connection's pool, what `config` no longer allows.
    pub fn revoke(&self, config: &Arc<ActiveConfig>) {
        // Revoked outside the lock: a connection opening or closing meanwhile waits for nothing.
        let pools: Vec<Arc<UpstreamPool>> = self.open.lock().expect("pools lock").values().filter_map(Weak::upgrade).collect();
        for pool in pools {
            pool.revoke(config.clone());
        }
    }

    /// Revokes at each new configuration, until the store is gone.
    pub async fn follow(self: Arc<Self>, mut configs: tokio::sync::watch::Receiver<Arc<ActiveConfig>>) {
        while configs.changed().await.is_ok() {
            let config = configs.borrow_and_update().clone();
            self.revoke(&config);
        }
    }

    /// How many connections' pools are known.
    pub fn open_count(&self) -> usize {
        self.open.lock().expect("pools lock").len()
    }
}

impl Deref for PoolOfConnection {
    type Target = Arc<UpstreamPool>;

    fn deref(&self) -> &Arc<UpstreamPool> {
        &self.pool
    }
}

impl Drop for PoolOfConnection {
    fn drop(&mut self) {
        self.pools.open.lock().expect("pools lock").remove(&self.id);
    }
}
