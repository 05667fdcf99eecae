//! The object store: current objects per resource type, one global `resourceVersion` counter as
//! etcd keeps it, and the history of changes that watches replay and that `compact` drops.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::resources::{self, ResourceType};
use super::status::ApiError;

/// (namespace, or `""` for a cluster-scoped object; name).
pub type ObjKey = (String, String);

/// One write, as watches see it.
#[derive(Clone, Debug)]
pub struct Change {
    pub rv: u64,
    pub rt: &'static ResourceType,
    pub old: Option<Value>,
    /// `None` for a deletion.
    pub new: Option<Value>,
}

/// Which part of the stored object a write may change.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Part {
    /// The object itself; a resource with a `status` subresource keeps its stored status.
    Main,
    /// The `status` subresource: only `status` changes.
    Status,
    /// A CSR's `approval` subresource: only `status.conditions` changes.
    Approval,
    /// Everything, as the test side writes (it plays kubelet and controllers).
    Whole,
}

pub struct Store {
    rv: u64,
    /// History at or before this version is gone; watches and lists from older versions get 410.
    compacted: u64,
    objects: BTreeMap<(&'static str, &'static str), BTreeMap<ObjKey, Value>>,
    history: VecDeque<Change>,
    served: BTreeSet<(&'static str, &'static str)>,
    uid_seed: u64,
    /// Bumped to make every open watch send a bookmark now.
    pub bookmark_epoch: u64,
    /// Bumped to end every open watch.
    pub watch_epoch: u64,
}

impl Store {
    pub fn new() -> Store {
        let nanos = OffsetDateTime::now_utc().unix_timestamp_nanos() as u64;
        Store {
            rv: 1,
            compacted: 0,
            objects: BTreeMap::new(),
            history: VecDeque::new(),
            served: resources::ALL
                .iter()
                .map(|rt| (rt.group, rt.plural))
                .collect(),
            uid_seed: nanos ^ (u64::from(std::process::id()) << 32),
            bookmark_epoch: 0,
            watch_epoch: 0,
        }
    }

    /// The latest resourceVersion.
    pub fn rv(&self) -> u64 {
        self.rv
    }

    pub fn compacted(&self) -> u64 {
        self.compacted
    }

    /// The served row for (group, version, plural).
    pub fn served(
        &self,
        group: &str,
        version: &str,
        plural: &str,
    ) -> Option<&'static ResourceType> {
        resources::by_plural(group, plural).filter(|rt| rt.version == version && self.serves(rt))
    }

    pub fn serves(&self, rt: &ResourceType) -> bool {
        self.served.contains(&(rt.group, rt.plural))
    }

    /// Every served row.
    pub fn served_types(&self) -> Vec<&'static ResourceType> {
        resources::ALL.iter().filter(|rt| self.serves(rt)).collect()
    }

    /// Stops serving `rt`: its objects and their history go, as when a CRD is deleted.
    pub fn remove_resource(&mut self, rt: &'static ResourceType) {
        self.served.remove(&(rt.group, rt.plural));
        self.objects.remove(&(rt.group, rt.plural));
        self.history.retain(|c| !std::ptr::eq(c.rt, rt));
    }

    pub fn add_resource(&mut self, rt: &'static ResourceType) {
        self.served.insert((rt.group, rt.plural));
    }

    pub fn get(&self, rt: &ResourceType, ns: &str, name: &str) -> Option<&Value> {
        self.objects
            .get(&(rt.group, rt.plural))?
            .get(&(ns.to_string(), name.to_string()))
    }

    /// The objects of `rt` now (`at == None`) or as they were at version `at`, in key order.
    pub fn snapshot(
        &self,
        rt: &'static ResourceType,
        at: Option<u64>,
    ) -> Result<Vec<Value>, ApiError> {
        let mut objects = self
            .objects
            .get(&(rt.group, rt.plural))
            .cloned()
            .unwrap_or_default();
        if let Some(at) = at {
            if at < self.compacted {
                return Err(ApiError::expired(at, self.compacted));
            }
            if at > self.rv {
                return Err(ApiError::too_large_resource_version(at, self.rv));
            }
            for change in self.history.iter().rev().take_while(|c| c.rv > at) {
                if !std::ptr::eq(change.rt, rt) {
                    continue;
                }
                let key = object_key(
                    change
                        .old
                        .as_ref()
                        .or(change.new.as_ref())
                        .expect("a change has an object"),
                );
                match &change.old {
                    Some(old) => objects.insert(key, old.clone()),
                    None => objects.remove(&key),
                };
            }
        }
        Ok(objects.into_values().collect())
    }

    /// The changes to `rt` after version `after`, or 410 when some were compacted.
    pub fn changes_after(
        &self,
        rt: &'static ResourceType,
        after: u64,
    ) -> Result<Vec<Change>, ApiError> {
        if after < self.compacted {
            return Err(ApiError::expired(after, self.compacted));
        }
        let start = self.history.partition_point(|c| c.rv <= after);
        Ok(self
            .history
            .range(start..)
            .filter(|c| std::ptr::eq(c.rt, rt))
            .cloned()
            .collect())
    }

    /// Drops all history: a watch or list from any earlier version now gets 410 Expired.
    pub fn compact(&mut self) {
        self.history.clear();
        self.compacted = self.rv;
    }

    /// Stores a new object; `object` carries its name and namespace already.
    /// Its uid is assigned here, as the real server does.
    pub fn create(&mut self, rt: &'static ResourceType, object: Value) -> Result<Value, ApiError> {
        let uid = self.uid();
        self.create_with_uid(rt, object, uid)
    }

    /// As `create`, with the uid chosen by the caller: the test side uses it
    /// to make a kubelet cgroup tree for a pod before the pod is announced.
    pub fn create_with_uid(&mut self, rt: &'static ResourceType, mut object: Value, uid: String) -> Result<Value, ApiError> {
        let key = object_key(&object);
        if self.get(rt, &key.0, &key.1).is_some() {
            return Err(ApiError::already_exists(rt, &key.1));
        }
        self.rv += 1;
        let meta = object["metadata"]
            .as_object_mut()
            .expect("metadata was checked");
        meta.insert("uid".into(), json!(uid));
        meta.insert("creationTimestamp".into(), json!(now_rfc3339()));
        meta.insert("generation".into(), json!(1));
        meta.insert("resourceVersion".into(), json!(self.rv.to_string()));
        meta.remove("deletionTimestamp");
        object["apiVersion"] = json!(rt.api_version());
        object["kind"] = json!(rt.kind);
        self.record(rt, key, None, Some(object.clone()));
        Ok(object)
    }

    /// Replaces `part` of a stored object. A `metadata.resourceVersion` in `object` must be the
    /// stored one (409 otherwise). A write that changes nothing keeps the version, as the real
    /// server does.
    pub fn update(
        &mut self,
        rt: &'static ResourceType,
        object: Value,
        part: Part,
    ) -> Result<Value, ApiError> {
        let key = object_key(&object);
        let Some(old) = self.get(rt, &key.0, &key.1).cloned() else {
            return Err(ApiError::not_found(rt, &key.1));
        };
        let wanted_rv = object
            .pointer("/metadata/resourceVersion")
            .and_then(Value::as_str)
            .unwrap_or("");
        if !wanted_rv.is_empty()
            && Some(wanted_rv)
                != old
                    .pointer("/metadata/resourceVersion")
                    .and_then(Value::as_str)
        {
            return Err(ApiError::conflict(rt, &key.1));
        }
        let mut new = match part {
            Part::Whole => object,
            Part::Main if rt.has_status() => with_field(object, "status", old.get("status")),
            Part::Main => object,
            Part::Status => with_field(old.clone(), "status", object.get("status")),
            Part::Approval => {
                let mut new = old.clone();
                let conditions = object.pointer("/status/conditions").cloned();
                if !new.get("status").is_some_and(Value::is_object) {
                    new["status"] = json!({});
                }
                new["status"] = with_field(new["status"].take(), "conditions", conditions.as_ref());
                new
            }
        };
        for field in ["uid", "creationTimestamp", "generation", "resourceVersion"] {
            let kept = old["metadata"].get(field).cloned();
            new["metadata"] = with_field(new["metadata"].take(), field, kept.as_ref());
        }
        new["apiVersion"] = json!(rt.api_version());
        new["kind"] = json!(rt.kind);
        if new == old {
            return Ok(old);
        }
        if spec_of(&new) != spec_of(&old) {
            let generation = old
                .pointer("/metadata/generation")
                .and_then(Value::as_i64)
                .unwrap_or(0);
            new["metadata"]["generation"] = json!(generation + 1);
        }
        self.rv += 1;
        new["metadata"]["resourceVersion"] = json!(self.rv.to_string());
        self.record(rt, key, Some(old), Some(new.clone()));
        Ok(new)
    }

    /// Removes an object; returns it as the deletion left it (with the deletion's version).
    pub fn delete(
        &mut self,
        rt: &'static ResourceType,
        ns: &str,
        name: &str,
    ) -> Result<Value, ApiError> {
        let Some(old) = self.get(rt, ns, name).cloned() else {
            return Err(ApiError::not_found(rt, name));
        };
        self.rv += 1;
        let mut gone = old.clone();
        gone["metadata"]["resourceVersion"] = json!(self.rv.to_string());
        self.record(rt, (ns.to_string(), name.to_string()), Some(old), None);
        Ok(gone)
    }

    fn record(
        &mut self,
        rt: &'static ResourceType,
        key: ObjKey,
        old: Option<Value>,
        new: Option<Value>,
    ) {
        let objects = self.objects.entry((rt.group, rt.plural)).or_default();
        match &new {
            Some(object) => objects.insert(key, object.clone()),
            None => objects.remove(&key),
        };
        self.history.push_back(Change {
            rv: self.rv,
            rt,
            old,
            new,
        });
    }

    /// A version-4-shaped UUID, unique within this server.
    fn uid(&self) -> String {
        let a = self.uid_seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ self.rv;
        let b = self.uid_seed.rotate_left(17) ^ self.rv.wrapping_mul(0xff51_afd7_ed55_8ccd);
        format!(
            "{:08x}-{:04x}-4{:03x}-8{:03x}-{:012x}",
            a >> 32,
            (a >> 16) & 0xffff,
            a & 0xfff,
            b >> 52,
            b & 0xffff_ffff_ffff
        )
    }
}

/// The store key of an object: (namespace or `""`, name).
pub fn object_key(object: &Value) -> ObjKey {
    let text = |field: &str| object["metadata"][field].as_str().unwrap_or("").to_string();
    (text("namespace"), text("name"))
}

/// The object without metadata and status: what `generation` counts changes of.
fn spec_of(object: &Value) -> Value {
    let mut rest = object.clone();
    if let Some(map) = rest.as_object_mut() {
        map.remove("metadata");
        map.remove("status");
    }
    rest
}

/// `object` with `field` set to `value` (or removed when `None`).
fn with_field(mut object: Value, field: &str, value: Option<&Value>) -> Value {
    if let Some(map) = object.as_object_mut() {
        match value {
            Some(v) => map.insert(field.to_string(), v.clone()),
            None => map.remove(field),
        };
    }
    object
}

/// Now, as Kubernetes writes timestamps: `2026-01-02T03:04:05Z`.
pub fn now_rfc3339() -> String {
    let now = OffsetDateTime::now_utc();
    now.replace_nanosecond(0)
        .unwrap_or(now)
        .format(&Rfc3339)
        .unwrap_or_default()
}

#[cfg(test)]
#[path = "store_tests.rs"]
mod tests;
