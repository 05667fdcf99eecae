//! The VirtualServices bound to each Gateway, found once per configuration
//! generation rather than on every request: a gateway's HTTP requests look
//! their routes up here instead of scanning every VirtualService.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
};

use crate::config::{GatewayRef, Snapshot, VirtualService};

/// For one snapshot: each Gateway (namespace, name) and the VirtualServices
/// bound to it, in the snapshot's order.
pub struct BoundRoutes {
    snapshot: Arc<Snapshot>,
    by_gateway: HashMap<(String, String), Vec<usize>>,
}

impl BoundRoutes {
    pub fn new(snapshot: Arc<Snapshot>) -> Self {
        let mut by_gateway: HashMap<(String, String), Vec<usize>> = HashMap::new();
        for (i, vs) in snapshot.virtual_services.iter().enumerate() {
            for g in &vs.gateways {
                if let GatewayRef::Gateway { namespace, name } = g {
                    let bound = by_gateway.entry((namespace.clone(), name.clone())).or_default();
                    // A VirtualService naming a Gateway twice is bound once.
                    if bound.last() != Some(&i) {
                        bound.push(i);
                    }
                }
            }
        }
        BoundRoutes { snapshot, by_gateway }
    }

    /// The VirtualServices bound to `gateway`, as
    /// `Snapshot::virtual_services_for_gateway` lists them.
    pub fn bound_to<'a>(&'a self, gateway: &(String, String)) -> impl Iterator<Item = &'a VirtualService> + 'a {
        let found = self.by_gateway.get(gateway).map(Vec::as_slice).unwrap_or_default();
        found.iter().filter_map(|i| self.snapshot.virtual_services.get(*i))
    }
}

/// The [`BoundRoutes`] of the newest snapshot asked for, shared by every
/// connection of the role.
#[derive(Default)]
pub struct BoundRoutesCache {
    latest: Mutex<Option<Arc<BoundRoutes>>>,
}

impl BoundRoutesCache {
    /// Those of `snapshot`: kept from an earlier request of the same
    /// snapshot, or found now.
    pub fn get(&self, snapshot: &Arc<Snapshot>) -> Arc<BoundRoutes> {
        if let Some(kept) = self.latest.lock().expect("bound routes lock").as_ref().filter(|b| Arc::ptr_eq(&b.snapshot, snapshot)) {
            return kept.clone();
        }
        let found = Arc::new(BoundRoutes::new(snapshot.clone()));
        *self.latest.lock().expect("bound routes lock") = Some(found.clone());
        found
    }
}
