//! Pods that opted out of interception, exempted in the kernel by their pod
//! cgroup: their connects and packets are left alone before any other check.

use std::sync::Mutex;

use aya::maps::{HashMap, Map, MapData};
use gateway_common::map_names;

use super::{InterceptorError, PinLayout, open_map};

pub struct ExemptCgroups {
    map: Mutex<HashMap<MapData, u64, u32>>,
}

impl ExemptCgroups {
    pub fn open(layout: &PinLayout) -> Result<Self, InterceptorError> {
        let name = map_names::EXEMPT_CGROUPS;
        let map = HashMap::try_from(Map::HashMap(open_map(layout, name)?))
            .map_err(|source| InterceptorError::Map { name, source })?;
        Ok(Self { map: Mutex::new(map) })
    }

    /// Makes the kernel's set exactly `wanted`.
    pub fn set_exactly(&self, wanted: &std::collections::BTreeSet<u64>) -> Result<(), InterceptorError> {
        let name = map_names::EXEMPT_CGROUPS;
        let err = |source| InterceptorError::Map { name, source };
        let mut map = self.map.lock().expect("exempt map lock");
        let present: Vec<u64> = map.keys().filter_map(Result::ok).collect();
        for id in wanted {
            if !present.contains(id) {
                map.insert(id, 1, 0).map_err(err)?;
            }
        }
        for id in present.iter().filter(|id| !wanted.contains(id)) {
            map.remove(id).map_err(err)?;
        }
        Ok(())
    }

    pub fn ids(&self) -> Vec<u64> {
        self.map.lock().expect("exempt map lock").keys().filter_map(Result::ok).collect()
    }
}
