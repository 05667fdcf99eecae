//! Which pinned maps a new build may keep: those whose definition (type, key
//! size, value size, max entries, flags) is the one its object declares. aya
//! opens a map at a pin path without comparing anything, so the comparison
//! is made here, against what the kernel says of the pinned map.

use std::collections::BTreeMap;

use aya::{Ebpf, maps::MapInfo};
use gateway_common::map_names;

use super::{InterceptorError, PinLayout};

/// Maps that are kept or replaced together: the relay's verdict program,
/// attached to `RELAY_SOCKS`, reads `RELAY_PEERS`, which a proxy still running
/// fills; a new verdict on the old socket map reading a new peer map would
/// find no peers and strand that proxy's relayed streams.
const TOGETHER: &[&[&str]] = &[&[map_names::RELAY_SOCKS, map_names::RELAY_PEERS]];

/// A map's definition, as an object declares it or the kernel reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MapShape {
    pub map_type: u32,
    pub key_size: u32,
    pub value_size: u32,
    pub max_entries: u32,
    pub flags: u32,
}

impl MapShape {
    fn of_object(m: &aya_obj::Map) -> Self {
        Self {
            map_type: m.map_type(),
            key_size: m.key_size(),
            value_size: m.value_size(),
            max_entries: m.max_entries(),
            flags: m.map_flags(),
        }
    }

    fn of_kernel(info: &MapInfo) -> Option<Self> {
        Some(Self {
            map_type: info.map_type().ok()? as u32,
            key_size: info.key_size(),
            value_size: info.value_size(),
            max_entries: info.max_entries(),
            flags: info.map_flags(),
        })
    }
}

/// For each map of the object: the id of the pinned map to keep, or why a
/// fresh one is made.
#[derive(Debug, Default)]
pub struct ReusePlan {
    pub kept: BTreeMap<String, u32>,
    pub fresh: BTreeMap<String, &'static str>,
}

impl ReusePlan {
    pub fn new(layout: &PinLayout, object: &[u8]) -> Result<Self, InterceptorError> {
        let parsed = aya_obj::Object::parse(object).map_err(|e| InterceptorError::Object(e.to_string()))?;
        let mut plan = Self::default();
        for (name, def) in &parsed.maps {
            if name.starts_with('.') {
                // Global data (`.rodata`): set at each load, held by the
                // programs, never pinned (bpffs takes no dot in a name).
                continue;
            }
            let fresh = match pinned_shape(layout, name) {
                None => "not pinned",
                Some((_, shape)) if shape != MapShape::of_object(def) => "definition changed",
                Some((id, _)) => {
                    plan.kept.insert(name.clone(), id);
                    continue;
                }
            };
            plan.fresh.insert(name.clone(), fresh);
        }
        for group in TOGETHER {
            if group.iter().any(|m| plan.fresh.contains_key(*m)) {
                for m in *group {
                    if plan.kept.remove(*m).is_some() {
                        plan.fresh.insert((*m).to_string(), "replaced with its group");
                    }
                }
            }
        }
        Ok(plan)
    }

    /// Checks that every kept map is the one compared: a pin replaced in
    /// between would otherwise go unnoticed.
    pub fn verify(&self, ebpf: &Ebpf) -> Result<(), InterceptorError> {
        for (name, id) in &self.kept {
            let loaded = ebpf.map(name).and_then(|m| map_data(m)?.info().ok()).map(|i| i.id());
            if loaded != Some(*id) {
                return Err(InterceptorError::Object(format!("pinned map {name} changed while loading (id {id}, now {loaded:?})")));
            }
        }
        Ok(())
    }
}

fn pinned_shape(layout: &PinLayout, name: &str) -> Option<(u32, MapShape)> {
    let info = MapInfo::from_pin(layout.map(name)).ok()?;
    Some((info.id(), MapShape::of_kernel(&info)?))
}

fn map_data(map: &aya::maps::Map) -> Option<&aya::maps::MapData> {
    use aya::maps::Map;
    Some(match map {
        Map::Array(d) | Map::HashMap(d) | Map::PerCpuArray(d) | Map::SockHash(d) | Map::SkStorage(d) | Map::RingBuf(d) => d,
        _ => return None,
    })
}
