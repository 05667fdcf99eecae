//! Field-by-field reading of a YAML mapping: required and optional
//! fields, and unknown keys reported with a "did you mean" hint.

use super::decode::{Cx, IstioEnum, child};
use super::findings::{Code, Pos};
use super::values::edit_distance;
use super::yaml::{Node, Value};
use std::collections::BTreeMap;
use std::time::Duration;

/// A mapping being read field by field; keys never asked for are reported
/// as unknown by [`Fields::finish`].
pub(crate) struct Fields<'n> {
    entries: &'n [(Node, Node)],
    used: Vec<bool>,
    known: Vec<&'static str>,
    pub path: String,
    pub pos: Pos,
}

impl<'n> Fields<'n> {
    /// A view of `entries`; keys already flagged in `used` are not
    /// reported as unknown.
    pub fn new(entries: &'n [(Node, Node)], used: Vec<bool>, path: &str, pos: Pos) -> Fields<'n> {
        Fields {
            entries,
            used,
            known: Vec::new(),
            path: path.to_string(),
            pos,
        }
    }

    fn lookup(&mut self, cx: &mut Cx<'_>, key: &'static str) -> Option<(&'n Node, String)> {
        self.known.push(key);
        let i = self
            .entries
            .iter()
            .position(|(k, _)| matches!(&k.value, Value::Str(s) if s == key))?;
        self.used[i] = true;
        let (k, v) = &self.entries[i];
        let p = child(&self.path, key);
        cx.positions.insert(p.clone(), k.pos);
        if v.value == Value::Null {
            return None;
        }
        Some((v, p))
    }

    /// Reads an optional field (absent or null gives `None`).
    pub fn get<'a, T>(
        &mut self,
        cx: &mut Cx<'a>,
        key: &'static str,
        f: impl FnOnce(&mut Cx<'a>, &'n Node, &str) -> Option<T>,
    ) -> Option<T> {
        let (node, p) = self.lookup(cx, key)?;
        f(cx, node, &p)
    }

    /// Reads a required field, reporting it when absent.
    pub fn req<'a, T>(
        &mut self,
        cx: &mut Cx<'a>,
        key: &'static str,
        f: impl FnOnce(&mut Cx<'a>, &'n Node, &str) -> Option<T>,
    ) -> Option<T> {
        match self.lookup(cx, key) {
            Some((node, p)) => f(cx, node, &p),
            None => {
                let p = child(&self.path, key);
                let at = cx.positions.get(&p).copied().unwrap_or(self.pos);
                let where_ = if self.path.is_empty() {
                    "the document".to_string()
                } else {
                    format!("`{}`", self.path)
                };
                let msg = format!("required field `{key}` is missing; add it to {where_}");
                cx.report(Code::MissingField, at, &p, msg);
                None
            }
        }
    }

    /// Reads an optional list field; absent gives an empty list.
    pub fn list<'a, T>(
        &mut self,
        cx: &mut Cx<'a>,
        key: &'static str,
        each: impl FnMut(&mut Cx<'a>, &Node, &str) -> Option<T>,
    ) -> Vec<T> {
        self.get(cx, key, |cx, n, p| Some(cx.list(n, p, each)))
            .unwrap_or_default()
    }

    pub fn string(&mut self, cx: &mut Cx<'_>, key: &'static str) -> Option<String> {
        self.get(cx, key, |cx, n, p| cx.string(n, p))
    }

    pub fn strings(&mut self, cx: &mut Cx<'_>, key: &'static str) -> Vec<String> {
        self.get(cx, key, |cx, n, p| Some(cx.strings(n, p)))
            .unwrap_or_default()
    }

    pub fn string_map(&mut self, cx: &mut Cx<'_>, key: &'static str) -> BTreeMap<String, String> {
        self.get(cx, key, |cx, n, p| Some(cx.string_map(n, p)))
            .unwrap_or_default()
    }

    pub fn boolean(&mut self, cx: &mut Cx<'_>, key: &'static str) -> Option<bool> {
        self.get(cx, key, |cx, n, p| cx.boolean(n, p))
    }

    pub fn int(&mut self, cx: &mut Cx<'_>, key: &'static str, min: i64, max: i64) -> Option<i64> {
        self.get(cx, key, |cx, n, p| cx.int(n, p, min, max))
    }

    pub fn duration(&mut self, cx: &mut Cx<'_>, key: &'static str) -> Option<Duration> {
        self.get(cx, key, |cx, n, p| cx.duration(n, p))
    }

    pub fn enumeration<E: IstioEnum>(&mut self, cx: &mut Cx<'_>, key: &'static str) -> Option<E> {
        self.get(cx, key, |cx, n, p| cx.enumeration(n, p))
    }

    /// Whether the mapping has `key` with a non-null value.
    pub fn has(&self, key: &str) -> bool {
        self.entries
            .iter()
            .any(|(k, v)| matches!(&k.value, Value::Str(s) if s == key) && v.value != Value::Null)
    }

    /// Accepts fields that are allowed but not used by the gateway.
    pub fn ignore(&mut self, keys: &[&'static str]) {
        for key in keys {
            self.known.push(key);
            for (i, (k, _)) in self.entries.iter().enumerate() {
                if matches!(&k.value, Value::Str(s) if s == key) {
                    self.used[i] = true;
                }
            }
        }
    }

    /// Takes every entry not read yet (for free-form maps), with its path.
    pub fn rest(&mut self, cx: &mut Cx<'_>) -> Vec<(String, &'n Node, String)> {
        let mut out = Vec::new();
        for (i, (k, v)) in self.entries.iter().enumerate() {
            if self.used[i] {
                continue;
            }
            self.used[i] = true;
            let key = k.key_text().unwrap_or_default();
            let p = child(&self.path, &key);
            cx.positions.insert(p.clone(), k.pos);
            out.push((key, v, p));
        }
        out
    }

    /// Reports every key that no reader asked for.
    pub fn finish(self, cx: &mut Cx<'_>) {
        for (i, (k, _)) in self.entries.iter().enumerate() {
            if self.used[i] {
                continue;
            }
            let key = k.key_text().unwrap_or_default();
            let near = self
                .known
                .iter()
                .map(|c| (edit_distance(&key.to_lowercase(), &c.to_lowercase()), *c))
                .min();
            let hint = match near {
                Some((d, c)) if d <= 2 || c.eq_ignore_ascii_case(&key) => {
                    format!("did you mean `{c}`?")
                }
                _ => {
                    let mut all = self.known.clone();
                    all.sort_unstable();
                    all.dedup();
                    format!("known fields are: {}", all.join(", "))
                }
            };
            let where_ = if self.path.is_empty() {
                "the document".to_string()
            } else {
                format!("`{}`", self.path)
            };
            let msg = format!("unknown field `{key}` in {where_}; {hint}");
            cx.report(Code::UnknownField, k.pos, &child(&self.path, &key), msg);
        }
    }
}
