//! LIST: a consistent snapshot at one resourceVersion, filtered by namespace and selectors, paged
//! with `limit` and `continue` (a continue token pins the snapshot's version, so later pages are
//! served from the same version, and expire with 410 once it is compacted).

use serde_json::{Value, json};

use super::resources::ResourceType;
use super::selectors::{FieldSelector, LabelSelector};
use super::status::ApiError;
use super::store::{Store, object_key};
use super::tls;
use super::wire::Request;

/// The selectors of a list or watch request.
pub struct Selection {
    pub namespace: Option<String>,
    pub fields: FieldSelector,
    pub labels: LabelSelector,
}

impl Selection {
    pub fn parse(
        rt: &ResourceType,
        namespace: Option<&str>,
        req: &Request,
    ) -> Result<Selection, ApiError> {
        Ok(Selection {
            namespace: namespace.map(str::to_string),
            fields: FieldSelector::parse(req.param("fieldSelector").unwrap_or(""), rt)?,
            labels: LabelSelector::parse(req.param("labelSelector").unwrap_or(""))?,
        })
    }

    pub fn matches(&self, object: &Value) -> bool {
        let in_namespace = self
            .namespace
            .as_deref()
            .is_none_or(|ns| object["metadata"]["namespace"] == ns);
        in_namespace && self.fields.matches(object) && self.labels.matches(object)
    }
}

/// A `resourceVersion` query parameter as a number.
pub fn parse_rv(text: &str) -> Result<u64, ApiError> {
    text.parse().map_err(|_| {
        ApiError::bad_request(format!(
            "resourceVersion: Invalid value: {text:?}: must be a non-negative integer"
        ))
    })
}

/// Answers a list request from `store`.
pub fn list(
    store: &Store,
    rt: &'static ResourceType,
    selection: &Selection,
    req: &Request,
) -> Result<Value, ApiError> {
    let rv_param = req.param("resourceVersion").filter(|v| !v.is_empty());
    let version_match = req.param("resourceVersionMatch").filter(|v| !v.is_empty());
    let limit = match req.param("limit") {
        Some(l) => Some(
            l.parse::<usize>()
                .map_err(|_| ApiError::bad_request(format!("limit: Invalid value: {l:?}")))?,
        ),
        None => None,
    }
    .filter(|l| *l > 0);

    let (at, after) = if let Some(token) = req.param("continue").filter(|t| !t.is_empty()) {
        if rv_param.is_some() {
            return Err(ApiError::bad_request(
                "specifying resource version is not allowed when using continue",
            ));
        }
        let (rv, after) = decode_continue(token)?;
        if rv < store.compacted() {
            return Err(ApiError {
                code: 410,
                reason: "Expired",
                message: "The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter, or use the continue value from the response to get a consistent list result.".into(),
                details: None,
            });
        }
        (rv, Some(after))
    } else {
        match (rv_param, version_match) {
            (None, Some(_)) => {
                return Err(ApiError::bad_request(
                    "resourceVersionMatch: Forbidden: resourceVersionMatch is forbidden unless resourceVersion is provided",
                ));
            }
            (Some("0"), Some("Exact")) => {
                return Err(ApiError::bad_request(
                    "resourceVersionMatch: Forbidden: resourceVersionMatch \"exact\" is forbidden for resourceVersion \"0\"",
                ));
            }
            (None | Some("0"), None | Some("NotOlderThan")) => (store.rv(), None),
            (Some(rv), Some("Exact")) => (parse_rv(rv)?, None),
            (Some(rv), None | Some("NotOlderThan")) => {
                let rv = parse_rv(rv)?;
                if rv > store.rv() {
                    return Err(ApiError::too_large_resource_version(rv, store.rv()));
                }
                (store.rv(), None)
            }
            (_, Some(other)) => {
                return Err(ApiError::bad_request(format!(
                    "resourceVersionMatch: Unsupported value: {other:?}"
                )));
            }
        }
    };

    let snapshot = store.snapshot(rt, (at != store.rv()).then_some(at))?;
    let mut items: Vec<Value> = snapshot
        .into_iter()
        .filter(|o| after.as_ref().is_none_or(|a| object_key(o) > *a))
        .filter(|o| selection.matches(o))
        .collect();
    let mut metadata = json!({ "resourceVersion": at.to_string() });
    if let Some(limit) = limit
        && items.len() > limit
    {
        let remaining = items.len() - limit;
        items.truncate(limit);
        let last = object_key(items.last().expect("limit > 0"));
        metadata["continue"] = json!(encode_continue(at, &last));
        metadata["remainingItemCount"] = json!(remaining);
    }
    Ok(
        json!({ "kind": format!("{}List", rt.kind), "apiVersion": rt.api_version(), "metadata": metadata, "items": items }),
    )
}

fn encode_continue(rv: u64, last: &(String, String)) -> String {
    tls::base64_encode(
        json!({ "rv": rv, "ns": last.0, "name": last.1 })
            .to_string()
            .as_bytes(),
    )
}

fn decode_continue(token: &str) -> Result<(u64, (String, String)), ApiError> {
    let bad = || ApiError::bad_request(format!("continue key is not valid: {token:?}"));
    let decoded: Value = tls::base64_decode(token)
        .and_then(|b| serde_json::from_slice(&b).ok())
        .ok_or_else(bad)?;
    let rv = decoded["rv"].as_u64().ok_or_else(bad)?;
    let text = |f: &str| decoded[f].as_str().map(str::to_string).ok_or_else(bad);
    Ok((rv, (text("ns")?, text("name")?)))
}
