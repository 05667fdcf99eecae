//! Shapes shared by several Istio kinds: string matches, destinations,
//! header operations, percentages, workload selectors, `exportTo`.

use crate::config::decode::{Cx, Fields};
use crate::config::findings::Code;
use crate::config::hosts::{expand_host, host_problem, is_ip};
use crate::config::values::{is_dns_label, is_label_key, is_label_value};
use crate::config::yaml::Node;
use serde::Serialize;
use std::collections::BTreeMap;

/// Labels or a label selector: every pair must be present to match.
pub type Labels = BTreeMap<String, String>;

/// Whether `labels` has every pair of `selector` (an empty selector matches
/// everything).
pub fn selector_matches(selector: &Labels, labels: &Labels) -> bool {
    selector.iter().all(|(k, v)| labels.get(k) == Some(v))
}

/// Name, namespace and labels of a resource.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Meta {
    pub name: String,
    pub namespace: String,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: Labels,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

/// Whether a resource of `own_namespace` with this `exportTo` is visible
/// from `namespace`. An empty list exports everywhere.
pub fn exported_to(export_to: &[String], own_namespace: &str, namespace: &str) -> bool {
    export_to.is_empty()
        || export_to.iter().any(|e| match e.as_str() {
            "*" => true,
            "." => own_namespace == namespace,
            "~" => false,
            ns => ns == namespace,
        })
}

/// Reads `exportTo`: `.`, `*`, `~` or namespace names.
pub(crate) fn export_to(cx: &mut Cx<'_>, f: &mut Fields<'_>) -> Vec<String> {
    f.list(cx, "exportTo", |cx, n, p| {
        let s = cx.string(n, p)?;
        if matches!(s.as_str(), "." | "*" | "~") || is_dns_label(&s) {
            Some(s)
        } else {
            let msg = format!("`{s}` is not `.`, `*`, `~` or a namespace name");
            cx.report(Code::InvalidName, n.pos, p, msg);
            None
        }
    })
}

/// Reads a label map and checks keys and values are valid Kubernetes labels.
pub(crate) fn labels(cx: &mut Cx<'_>, n: &Node, p: &str) -> Option<Labels> {
    let map = cx.string_map(n, p);
    for (k, v) in &map {
        let kp = crate::config::decode::child(p, k);
        let at = cx.pos_of(&kp);
        if !is_label_key(k) {
            cx.report(
                Code::InvalidValue,
                at,
                &kp,
                format!("`{k}` is not a valid label key"),
            );
        } else if !is_label_value(v) {
            cx.report(
                Code::InvalidValue,
                at,
                &kp,
                format!("`{v}` is not a valid label value"),
            );
        }
    }
    Some(map)
}

/// Reads `{labels: {...}}` (a WorkloadSelector).
pub(crate) fn workload_selector(cx: &mut Cx<'_>, n: &Node, p: &str) -> Option<Labels> {
    let mut f = cx.map(n, p)?;
    let out = f.get(cx, "labels", labels).unwrap_or_default();
    f.finish(cx);
    Some(out)
}

/// Reads a host, reporting an invalid one; expands short names when asked.
pub(crate) fn host(cx: &mut Cx<'_>, n: &Node, p: &str, expand: bool) -> Option<String> {
    let h = cx.string(n, p)?;
    if is_ip(&h) {
        return Some(h);
    }
    if let Some(problem) = host_problem(&h) {
        cx.report(Code::InvalidHost, n.pos, p, problem);
        return None;
    }
    Some(if expand {
        expand_host(&h, &cx.namespace)
    } else {
        h.to_ascii_lowercase()
    })
}

/// How a string is matched.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StringMatch {
    Exact(String),
    Prefix(String),
    /// An RE2 regular expression, compiled when the configuration is read;
    /// it must match the whole string.
    Regex(Pattern),
}

impl StringMatch {
    /// Whether `value` matches; with `ignore_case`, an exact or prefix
    /// match compares lowercase (the caller lowercases `value`).
    pub fn matches(&self, value: &str, ignore_case: bool) -> bool {
        match self {
            StringMatch::Exact(s) if ignore_case => s.to_ascii_lowercase() == value,
            StringMatch::Exact(s) => s == value,
            StringMatch::Prefix(s) if ignore_case => value.starts_with(&s.to_ascii_lowercase()),
            StringMatch::Prefix(s) => value.starts_with(s.as_str()),
            StringMatch::Regex(p) => p.is_match(value),
        }
    }
}

/// A regular expression as written, and compiled once. Equal, and
/// serialised, by its source.
#[derive(Clone, Debug)]
pub struct Pattern {
    source: String,
    compiled: regex::Regex,
}

impl Pattern {
    /// `source` matching a whole string. The source must compile on its
    /// own: wrapped, `a)(?:b` would.
    pub fn whole(source: &str) -> Result<Self, regex::Error> {
        regex::Regex::new(source)?;
        Ok(Self { source: source.to_string(), compiled: regex::Regex::new(&format!("^(?:{source})$"))? })
    }

    /// `source` matching anywhere in a string (for substitutions).
    pub fn anywhere(source: &str) -> Result<Self, regex::Error> {
        Ok(Self { source: source.to_string(), compiled: regex::Regex::new(source)? })
    }

    pub fn as_str(&self) -> &str {
        &self.source
    }

    pub fn is_match(&self, value: &str) -> bool {
        self.compiled.is_match(value)
    }

    pub fn regex(&self) -> &regex::Regex {
        &self.compiled
    }
}

impl PartialEq for Pattern {
    fn eq(&self, other: &Self) -> bool {
        self.source == other.source && self.compiled.as_str() == other.compiled.as_str()
    }
}

impl Eq for Pattern {}

impl Serialize for Pattern {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.source)
    }
}

/// Reads `{exact|prefix|regex: ...}` (exactly one).
pub(crate) fn string_match(cx: &mut Cx<'_>, n: &Node, p: &str) -> Option<StringMatch> {
    let mut f = cx.map(n, p)?;
    let exact = f.string(cx, "exact").map(StringMatch::Exact);
    let prefix = f.string(cx, "prefix").map(StringMatch::Prefix);
    let regex = f.get(cx, "regex", |cx, n, p| regex(cx, n, p, Pattern::whole)).map(StringMatch::Regex);
    let set = [f.has("exact"), f.has("prefix"), f.has("regex")]
        .iter()
        .filter(|b| **b)
        .count();
    let pos = f.pos;
    f.finish(cx);
    match set {
        0 => {
            cx.report(
                Code::MissingField,
                pos,
                p,
                "a string match needs one of `exact`, `prefix` or `regex`",
            );
            None
        }
        1 => exact.or(prefix).or(regex),
        _ => {
            cx.report(
                Code::ConflictingFields,
                pos,
                p,
                "give only one of `exact`, `prefix` or `regex`",
            );
            None
        }
    }
}

/// Reads a regular expression and compiles it (RE2 syntax) with `compile`:
/// [`Pattern::whole`] or [`Pattern::anywhere`].
pub(crate) fn regex(
    cx: &mut Cx<'_>,
    n: &Node,
    p: &str,
    compile: fn(&str) -> Result<Pattern, regex::Error>,
) -> Option<Pattern> {
    let s = cx.string(n, p)?;
    match compile(&s) {
        Ok(pattern) => Some(pattern),
        Err(e) => {
            let detail = e.to_string();
            let last = detail
                .lines()
                .rev()
                .find(|l| !l.trim().is_empty())
                .unwrap_or("")
                .trim();
            let msg = format!("regex `{s}` does not compile ({last}); write an RE2 expression");
            cx.report(Code::InvalidRegex, n.pos, p, msg);
            None
        }
    }
}

/// Reads a map of header name to string match.
pub(crate) fn string_match_map(
    cx: &mut Cx<'_>,
    n: &Node,
    p: &str,
) -> Option<BTreeMap<String, StringMatch>> {
    let mut f = cx.map(n, p)?;
    let mut out = BTreeMap::new();
    for (key, v, kp) in f.rest(cx) {
        if let Some(m) = string_match(cx, v, &kp) {
            out.insert(key, m);
        }
    }
    Some(out)
}

/// Where traffic goes: a host (expanded), optional subset and port.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Destination {
    pub host: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subset: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
}

pub(crate) fn destination(cx: &mut Cx<'_>, n: &Node, p: &str) -> Option<Destination> {
    let mut f = cx.map(n, p)?;
    let host = f.req(cx, "host", |cx, n, p| host(cx, n, p, true));
    let subset = f.string(cx, "subset");
    let port = f.get(cx, "port", port_selector);
    f.finish(cx);
    Some(Destination {
        host: host?,
        subset,
        port,
    })
}

/// Reads `{number: N}`.
pub(crate) fn port_selector(cx: &mut Cx<'_>, n: &Node, p: &str) -> Option<u16> {
    let mut f = cx.map(n, p)?;
    let number = f.req(cx, "number", |cx, n, p| cx.port(n, p, false));
    f.finish(cx);
    number
}

/// Reads a `Percent` (`{value: 0..100}`).
pub(crate) fn percent(cx: &mut Cx<'_>, n: &Node, p: &str) -> Option<f64> {
    let mut f = cx.map(n, p)?;
    let v = f.get(cx, "value", |cx, n, p| cx.number(n, p, 0.0, 100.0));
    f.finish(cx);
    Some(v.unwrap_or(0.0))
}

/// Header edits for one direction.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct HeaderOps {
    pub set: BTreeMap<String, String>,
    pub add: BTreeMap<String, String>,
    pub remove: Vec<String>,
}

/// Header edits for requests and responses.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Headers {
    pub request: HeaderOps,
    pub response: HeaderOps,
}

fn header_ops(cx: &mut Cx<'_>, n: &Node, p: &str) -> Option<HeaderOps> {
    let mut f = cx.map(n, p)?;
    let ops = HeaderOps {
        set: f.string_map(cx, "set"),
        add: f.string_map(cx, "add"),
        remove: f.strings(cx, "remove"),
    };
    f.finish(cx);
    Some(ops)
}

pub(crate) fn headers(cx: &mut Cx<'_>, n: &Node, p: &str) -> Option<Headers> {
    let mut f = cx.map(n, p)?;
    let h = Headers {
        request: f.get(cx, "request", header_ops).unwrap_or_default(),
        response: f.get(cx, "response", header_ops).unwrap_or_default(),
    };
    f.finish(cx);
    Some(h)
}
