//! `fieldSelector` and `labelSelector`, parsed and matched as the real server does: field
//! selectors take `=`, `==` and `!=` on the field labels a resource allows; label selectors take
//! equality, `!=`, `in`, `notin`, `key` and `!key`. Terms are comma-joined and all must hold.

use std::collections::BTreeSet;

use serde_json::Value;

use super::resources::ResourceType;
use super::status::ApiError;

/// A parsed `fieldSelector`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct FieldSelector(Vec<FieldTerm>);

#[derive(Clone, Debug, PartialEq)]
struct FieldTerm {
    path: String,
    equal: bool,
    value: String,
}

impl FieldSelector {
    /// Parses `spec.nodeName=n1,metadata.namespace!=kube-system`; unknown labels are a 400.
    pub fn parse(text: &str, rt: &ResourceType) -> Result<FieldSelector, ApiError> {
        let mut terms = Vec::new();
        for term in split_unescaped(text, ',') {
            if term.trim().is_empty() {
                continue;
            }
            let (path, equal, value) = if let Some((p, v)) = split_once_unescaped(&term, "!=") {
                (p, false, v)
            } else if let Some((p, v)) = split_once_unescaped(&term, "==") {
                (p, true, v)
            } else if let Some((p, v)) = split_once_unescaped(&term, "=") {
                (p, true, v)
            } else {
                return Err(ApiError::bad_request(format!(
                    "invalid selector: '{text}'; can't understand '{term}'"
                )));
            };
            let path = path.trim().to_string();
            if !rt.selectable_field(&path) {
                return Err(ApiError::bad_request(format!(
                    "field label not supported: {path} (for {})",
                    rt.qualified()
                )));
            }
            terms.push(FieldTerm {
                path,
                equal,
                value: unescape(value.trim()),
            });
        }
        Ok(FieldSelector(terms))
    }

    /// `metadata.name=<name>`, as a watch on a single object uses.
    pub fn name(name: &str) -> FieldSelector {
        FieldSelector(vec![FieldTerm {
            path: "metadata.name".into(),
            equal: true,
            value: name.into(),
        }])
    }

    pub fn matches(&self, object: &Value) -> bool {
        self.0
            .iter()
            .all(|t| (field_value(object, &t.path) == t.value) == t.equal)
    }

    pub fn and(mut self, other: FieldSelector) -> FieldSelector {
        self.0.extend(other.0);
        self
    }
}

/// A field's value as a selector compares it: strings as they are, numbers and booleans in text,
/// a missing field as the empty string.
fn field_value(object: &Value, path: &str) -> String {
    let mut at = object;
    for part in path.split('.') {
        match at.get(part) {
            Some(v) => at = v,
            None => return String::new(),
        }
    }
    match at {
        Value::String(s) => s.clone(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        _ => String::new(),
    }
}

/// A parsed `labelSelector`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct LabelSelector(Vec<LabelTerm>);

#[derive(Clone, Debug, PartialEq)]
enum LabelTerm {
    In(String, BTreeSet<String>),
    NotIn(String, BTreeSet<String>),
    Exists(String),
    NotExists(String),
}

impl LabelSelector {
    pub fn parse(text: &str) -> Result<LabelSelector, ApiError> {
        let bad = |why: &str| {
            ApiError::bad_request(format!("unable to parse requirement: {why} in {text:?}"))
        };
        let mut terms = Vec::new();
        for term in split_outside_parens(text) {
            let term = term.trim();
            if term.is_empty() {
                continue;
            }
            let parsed = if let Some(key) = term.strip_prefix('!') {
                LabelTerm::NotExists(label_key(key).ok_or_else(|| bad("bad key"))?)
            } else if let Some(open) = term.find('(') {
                let close = term.strip_suffix(')').ok_or_else(|| bad("missing ')'"))?;
                let values: BTreeSet<String> = close[open + 1..]
                    .split(',')
                    .map(|v| v.trim().to_string())
                    .collect();
                let mut head = term[..open].split_whitespace();
                let (key, op) = (head.next(), head.next());
                let key = key.and_then(label_key).ok_or_else(|| bad("bad key"))?;
                match (op, head.next()) {
                    (Some("in"), None) => LabelTerm::In(key, values),
                    (Some("notin"), None) => LabelTerm::NotIn(key, values),
                    _ => return Err(bad("expected 'in' or 'notin'")),
                }
            } else if let Some((k, v)) = term.split_once("!=") {
                LabelTerm::NotIn(
                    label_key(k).ok_or_else(|| bad("bad key"))?,
                    [v.trim().to_string()].into(),
                )
            } else if let Some((k, v)) = term.split_once("==").or_else(|| term.split_once('=')) {
                LabelTerm::In(
                    label_key(k).ok_or_else(|| bad("bad key"))?,
                    [v.trim().to_string()].into(),
                )
            } else {
                LabelTerm::Exists(label_key(term).ok_or_else(|| bad("bad key"))?)
            };
            terms.push(parsed);
        }
        Ok(LabelSelector(terms))
    }

    pub fn matches(&self, object: &Value) -> bool {
        let labels = object.pointer("/metadata/labels");
        let label = |key: &str| labels.and_then(|l| l.get(key)).and_then(Value::as_str);
        self.0.iter().all(|term| match term {
            LabelTerm::In(k, set) => label(k).is_some_and(|v| set.contains(v)),
            LabelTerm::NotIn(k, set) => label(k).is_none_or(|v| !set.contains(v)),
            LabelTerm::Exists(k) => label(k).is_some(),
            LabelTerm::NotExists(k) => label(k).is_none(),
        })
    }
}

/// A label key: non-empty, no spaces or operator characters.
fn label_key(text: &str) -> Option<String> {
    let key = text.trim();
    let ok = !key.is_empty() && !key.contains(|c: char| c.is_whitespace() || "=!(),".contains(c));
    ok.then(|| key.to_string())
}

fn split_outside_parens(text: &str) -> Vec<String> {
    let (mut parts, mut current, mut depth) = (Vec::new(), String::new(), 0i32);
    for c in text.chars() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                parts.push(std::mem::take(&mut current));
                continue;
            }
            _ => {}
        }
        current.push(c);
    }
    parts.push(current);
    parts
}

/// Splits on `sep` not preceded by a backslash (field selector values escape `\,` `\=` `\\`).
fn split_unescaped(text: &str, sep: char) -> Vec<String> {
    let (mut parts, mut current, mut escaped) = (Vec::new(), String::new(), false);
    for c in text.chars() {
        if !escaped && c == sep {
            parts.push(std::mem::take(&mut current));
            continue;
        }
        escaped = !escaped && c == '\\';
        current.push(c);
    }
    parts.push(current);
    parts
}

fn split_once_unescaped<'a>(text: &'a str, op: &str) -> Option<(&'a str, &'a str)> {
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\' {
            i += 2;
            continue;
        }
        if text[i..].starts_with(op) {
            return Some((&text[..i], &text[i + op.len()..]));
        }
        i += 1;
    }
    None
}

fn unescape(text: &str) -> String {
    let (mut out, mut escaped) = (String::new(), false);
    for c in text.chars() {
        if escaped || c != '\\' {
            out.push(c);
            escaped = false;
        } else {
            escaped = true;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kube_api::resources::by_plural;
    use serde_json::json;

    fn pod(node: &str, labels: Value) -> Value {
        json!({ "metadata": { "name": "p", "namespace": "ns1", "labels": labels }, "spec": { "nodeName": node } })
    }

    #[test]
    fn field_selectors_compare_fields_and_refuse_unknown_labels() {
        let pods = by_plural("", "pods").unwrap();
        let on_n1 = FieldSelector::parse("spec.nodeName=n1", pods).unwrap();
        assert!(on_n1.matches(&pod("n1", json!({}))) && !on_n1.matches(&pod("n2", json!({}))));
        let both = FieldSelector::parse("spec.nodeName==n1,metadata.namespace!=ns1", pods).unwrap();
        assert!(!both.matches(&pod("n1", json!({}))));
        let unscheduled = FieldSelector::parse("spec.nodeName=", pods).unwrap();
        assert!(unscheduled.matches(&json!({ "metadata": { "name": "p" } })));
        let err = FieldSelector::parse("spec.containers=x", pods).unwrap_err();
        assert_eq!((err.code, err.reason), (400, "BadRequest"));
        assert!(FieldSelector::parse("spec.nodeName", pods).is_err());
        let escaped = FieldSelector::parse(r"metadata.name=a\,b", pods).unwrap();
        assert!(escaped.matches(&json!({ "metadata": { "name": "a,b" } })));
    }

    #[test]
    fn label_selectors_cover_every_operator() {
        let p = pod("n1", json!({ "app": "web", "tier": "front" }));
        let yes = [
            "app=web",
            "app==web",
            "app!=db",
            "app in (web, db)",
            "tier notin (back)",
            "app",
            "!missing",
            "app=web,tier",
        ];
        let no = [
            "app=db",
            "app!=web",
            "app in (db)",
            "tier notin (front,back)",
            "missing",
            "!app",
            "app=web,missing",
        ];
        for s in yes {
            assert!(
                LabelSelector::parse(s).unwrap().matches(&p),
                "{s} should match"
            );
        }
        for s in no {
            assert!(
                !LabelSelector::parse(s).unwrap().matches(&p),
                "{s} should not match"
            );
        }
        assert!(LabelSelector::parse("missing!=x").unwrap().matches(&p));
        assert!(LabelSelector::parse("").unwrap().matches(&p));
        for bad in ["app in web", "app in (web", "a b", "app within (x)"] {
            assert!(LabelSelector::parse(bad).is_err(), "{bad} should not parse");
        }
    }
}
