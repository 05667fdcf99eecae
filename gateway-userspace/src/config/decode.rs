//! Typed reading of positioned YAML trees. Every problem is recorded as a
//! finding and decoding goes on, so one pass reports all of them.

use super::findings::{Code, Finding, Pos, ResourceRef, finding};
use super::values::parse_duration;
use super::yaml::{Node, Value};
use std::collections::BTreeMap;
use std::path::Path;

pub(crate) use super::fields::Fields;
use std::time::Duration;

/// Decoding state for one document.
pub(crate) struct Cx<'a> {
    pub file: &'a Path,
    /// Namespace of the resource being decoded (for short host names).
    pub namespace: String,
    pub resource: Option<ResourceRef>,
    pub findings: &'a mut Vec<Finding>,
    /// Position of every field read so far, by field path.
    pub positions: BTreeMap<String, Pos>,
    /// Position of the document itself.
    pub doc_pos: Pos,
}

/// `path.key`, or `path["key"]` when the key is not a plain word.
pub(crate) fn child(path: &str, key: &str) -> String {
    let plain = !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    match (path.is_empty(), plain) {
        (true, true) => key.to_string(),
        (false, true) => format!("{path}.{key}"),
        (_, false) => format!("{path}[{key:?}]"),
    }
}

/// `path[i]`.
pub(crate) fn index(path: &str, i: usize) -> String {
    format!("{path}[{i}]")
}

impl<'a> Cx<'a> {
    pub fn report(&mut self, code: Code, pos: Pos, field: &str, message: impl Into<String>) {
        let f = finding(code, self.file, pos, self.resource.as_ref(), field, message);
        self.findings.push(f);
    }

    /// Position recorded for `field`, or for its closest recorded parent.
    pub fn pos_of(&self, field: &str) -> Pos {
        let mut f = field;
        loop {
            if let Some(p) = self.positions.get(f) {
                return *p;
            }
            match f.rfind(['.', '[']) {
                Some(i) => f = &f[..i],
                None => return self.doc_pos,
            }
        }
    }

    fn wrong_type(&mut self, node: &Node, path: &str, expected: &str) {
        let msg = format!("expected {expected} but found {}", node.type_name());
        self.report(Code::WrongType, node.pos, path, msg);
    }

    /// Opens a mapping for field-by-field reading.
    pub fn map<'n>(&mut self, node: &'n Node, path: &str) -> Option<Fields<'n>> {
        let Value::Map(entries) = &node.value else {
            self.wrong_type(node, path, "a mapping");
            return None;
        };
        let mut seen: BTreeMap<String, Pos> = BTreeMap::new();
        let mut used = vec![false; entries.len()];
        for (i, (k, _)) in entries.iter().enumerate() {
            match k.key_text() {
                Some(key) => {
                    if let Some(first) = seen.get(&key) {
                        let msg = format!(
                            "key `{key}` is given again (first at line {}); keep only one",
                            first.line
                        );
                        self.report(Code::DuplicateKey, k.pos, &child(path, &key), msg);
                        used[i] = true;
                    } else {
                        seen.insert(key, k.pos);
                    }
                }
                None => {
                    self.report(
                        Code::WrongType,
                        k.pos,
                        path,
                        "mapping keys must be plain scalars",
                    );
                    used[i] = true;
                }
            }
        }
        Some(Fields::new(entries, used, path, node.pos))
    }

    /// Reads a list, calling `each` on every element with its path.
    pub fn list<T>(
        &mut self,
        node: &Node,
        path: &str,
        mut each: impl FnMut(&mut Cx<'a>, &Node, &str) -> Option<T>,
    ) -> Vec<T> {
        let Value::Seq(items) = &node.value else {
            self.wrong_type(node, path, "a list");
            return Vec::new();
        };
        let mut out = Vec::with_capacity(items.len());
        for (i, item) in items.iter().enumerate() {
            let p = index(path, i);
            self.positions.insert(p.clone(), item.pos);
            if let Some(v) = each(self, item, &p) {
                out.push(v);
            }
        }
        out
    }

    /// Like [`Cx::list`], but an empty list is reported as a missing value.
    pub fn nonempty_list<T>(
        &mut self,
        node: &Node,
        path: &str,
        what: &str,
        each: impl FnMut(&mut Cx<'a>, &Node, &str) -> Option<T>,
    ) -> Vec<T> {
        if matches!(&node.value, Value::Seq(items) if items.is_empty()) {
            let msg = format!("the list is empty; give at least one {what}");
            self.report(Code::MissingField, node.pos, path, msg);
        }
        self.list(node, path, each)
    }

    pub fn string(&mut self, node: &Node, path: &str) -> Option<String> {
        match &node.value {
            Value::Str(s) => Some(s.clone()),
            _ => {
                self.wrong_type(node, path, "a string");
                None
            }
        }
    }

    pub fn boolean(&mut self, node: &Node, path: &str) -> Option<bool> {
        match node.value {
            Value::Bool(b) => Some(b),
            _ => {
                self.wrong_type(node, path, "true or false");
                None
            }
        }
    }

    /// An integer within `min..=max`.
    pub fn int(&mut self, node: &Node, path: &str, min: i64, max: i64) -> Option<i64> {
        match node.value {
            Value::Int(i) if (min..=max).contains(&i) => Some(i),
            Value::Int(i) => {
                let msg = format!("{i} is out of range; use a value from {min} to {max}");
                self.report(Code::InvalidValue, node.pos, path, msg);
                None
            }
            _ => {
                self.wrong_type(node, path, "an integer");
                None
            }
        }
    }

    /// A port number, 1..=65535 (or 0..=65535 when `allow_zero`).
    pub fn port(&mut self, node: &Node, path: &str, allow_zero: bool) -> Option<u16> {
        let min = if allow_zero { 0 } else { 1 };
        match node.value {
            Value::Int(i) if (min..=65535).contains(&i) => u16::try_from(i).ok(),
            Value::Int(i) => {
                let msg = format!("port {i} is out of range; use a number from {min} to 65535");
                self.report(Code::PortOutOfRange, node.pos, path, msg);
                None
            }
            _ => {
                self.wrong_type(node, path, "a port number");
                None
            }
        }
    }

    /// A number (integer or decimal) within `min..=max`.
    pub fn number(&mut self, node: &Node, path: &str, min: f64, max: f64) -> Option<f64> {
        let v = match node.value {
            Value::Int(i) => i as f64,
            Value::Float(f) => f,
            _ => {
                self.wrong_type(node, path, "a number");
                return None;
            }
        };
        if v.is_nan() || v < min || v > max {
            let msg = format!("{v} is out of range; use a value from {min} to {max}");
            self.report(Code::InvalidValue, node.pos, path, msg);
            return None;
        }
        Some(v)
    }

    pub fn strings(&mut self, node: &Node, path: &str) -> Vec<String> {
        self.list(node, path, |cx, n, p| cx.string(n, p))
    }

    /// A string-to-string mapping (labels, selectors, header values).
    pub fn string_map(&mut self, node: &Node, path: &str) -> BTreeMap<String, String> {
        let mut out = BTreeMap::new();
        let Value::Map(entries) = &node.value else {
            self.wrong_type(node, path, "a mapping of strings");
            return out;
        };
        for (k, v) in entries {
            let Some(key) = k.key_text() else { continue };
            let p = child(path, &key);
            self.positions.insert(p.clone(), k.pos);
            if out.contains_key(&key) {
                self.report(
                    Code::DuplicateKey,
                    k.pos,
                    &p,
                    format!("key `{key}` is given twice; keep only one"),
                );
                continue;
            }
            if let Some(s) = self.string(v, &p) {
                out.insert(key, s);
            }
        }
        out
    }

    /// A string that must be one of an enum's names.
    pub fn enumeration<E: IstioEnum>(&mut self, node: &Node, path: &str) -> Option<E> {
        let s = self.string(node, path)?;
        if let Some((_, v)) = E::NAMES.iter().find(|(n, _)| *n == s) {
            return Some(*v);
        }
        let names: Vec<&str> = E::NAMES.iter().map(|(n, _)| *n).collect();
        let msg = format!("`{s}` is not allowed; use one of {}", names.join(", "));
        self.report(Code::BadEnum, node.pos, path, msg);
        None
    }

    pub fn duration(&mut self, node: &Node, path: &str) -> Option<Duration> {
        let s = self.string(node, path)?;
        let d = parse_duration(&s);
        if d.is_none() {
            let msg =
                format!("`{s}` is not a duration; write it like `10s`, `1.5s`, `250ms` or `1m`");
            self.report(Code::InvalidDuration, node.pos, path, msg);
        }
        d
    }
}

/// An enum written as a string in Istio resources.
pub(crate) trait IstioEnum: Sized + Copy + 'static {
    const NAMES: &'static [(&'static str, Self)];
}

/// Declares a public enum whose values are read and serialised by their
/// Istio names. The calling module must import `IstioEnum`.
macro_rules! istio_enum {
    ($(#[$m:meta])* $name:ident { $($variant:ident = $text:literal),* $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub enum $name { $($variant,)* }

        impl $name {
            /// The name as written in Istio resources.
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text,)* }
            }
        }

        impl IstioEnum for $name {
            const NAMES: &'static [(&'static str, Self)] = &[$(($text, $name::$variant),)*];
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }
    };
}
pub(crate) use istio_enum;
