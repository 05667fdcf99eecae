//! One watched collection: a kube-runtime reflector kept in step with the
//! API server (list, then watch from the list's resourceVersion, relisting
//! after a 410), and a signal to whoever derives state from it.

use std::{fmt::Debug, hash::Hash, sync::Arc};

use futures::StreamExt;
use kube::{
    Api, Resource,
    runtime::{WatchStreamExt, reflector, reflector::Store, watcher},
};
use serde::de::DeserializeOwned;
use tokio::sync::Notify;

/// What a mirror reports as it runs.
#[derive(Clone, Default)]
pub struct Signals {
    /// Woken after every change of any mirror.
    pub changed: Arc<Notify>,
}

/// A read-only, always-current copy of one collection.
pub struct Mirror<K: Resource + 'static>
where
    K::DynamicType: Eq + Hash + Clone,
{
    pub name: &'static str,
    pub store: Store<K>,
}

impl<K> Mirror<K>
where
    K: Resource + Clone + Debug + DeserializeOwned + Send + Sync + 'static,
    K::DynamicType: Eq + Hash + Clone + Default + Send + Sync,
{
    /// Starts watching; the store is ready once the first list is complete.
    pub fn start(name: &'static str, api: Api<K>, config: watcher::Config, signals: &Signals) -> Self {
        Self::start_with(name, api, config, Default::default(), signals)
    }
}

impl<K> Mirror<K>
where
    K: Resource + Clone + Debug + DeserializeOwned + Send + Sync + 'static,
    K::DynamicType: Eq + Hash + Clone + Send + Sync,
{
    /// As `start`, for dynamic types (custom resources without Rust types).
    pub fn start_with(name: &'static str, api: Api<K>, config: watcher::Config, dt: K::DynamicType, signals: &Signals) -> Self {
        let writer = reflector::store::Writer::new(dt);
        let store = writer.as_reader();
        let changed = signals.changed.clone();
        let stream = reflector(writer, watcher(api, config)).default_backoff();
        tokio::spawn(async move {
            let mut stream = std::pin::pin!(stream);
            let mut failing = false;
            while let Some(event) = stream.next().await {
                match event {
                    Ok(watcher::Event::Init | watcher::Event::InitApply(_)) => {}
                    Ok(_) => {
                        if failing {
                            tracing::info!(collection = name, "watch restored");
                            failing = false;
                        }
                        changed.notify_one();
                    }
                    Err(e) => {
                        // A missing CRD (404) lands here too: the store never
                        // becomes ready, so the agent never reports ready.
                        if !failing {
                            tracing::warn!(collection = name, error = %e, "watch failing; retrying with backoff, last known state stays");
                        }
                        failing = true;
                    }
                }
            }
        });
        Self { name, store }
    }

    /// Whether the first complete list has arrived.
    pub fn is_ready(&self) -> bool {
        // A store becomes ready with its first InitDone and stays so.
        futures::FutureExt::now_or_never(self.store.wait_until_ready()).is_some_and(|r| r.is_ok())
    }

    pub fn objects(&self) -> Vec<Arc<K>> {
        self.store.state()
    }
}
