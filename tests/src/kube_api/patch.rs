//! PATCH bodies by content type: JSON merge patch (strategic merge is served as a merge patch),
//! JSON patch, and server-side apply (a YAML or JSON object merged into the stored one; creates the
//! object when absent).

use serde_json::{Map, Number, Value};
use yaml_rust2::{Yaml, YamlLoader};

use super::status::ApiError;

/// The kinds of PATCH a client can send.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PatchKind {
    Merge,
    Json,
    Apply,
}

impl PatchKind {
    /// From the request's `Content-Type` (parameters after `;` ignored).
    pub fn from_content_type(content_type: &str) -> Result<PatchKind, ApiError> {
        match content_type.split(';').next().unwrap_or("").trim() {
            "application/merge-patch+json" | "application/strategic-merge-patch+json" => {
                Ok(PatchKind::Merge)
            }
            "application/json-patch+json" => Ok(PatchKind::Json),
            "application/apply-patch+yaml" => Ok(PatchKind::Apply),
            _ => Err(ApiError::unsupported_media_type(content_type)),
        }
    }
}

/// The object after applying `body` to `current` (`None` only for apply, which then creates).
pub fn apply(kind: PatchKind, current: Option<&Value>, body: &[u8]) -> Result<Value, ApiError> {
    let bad =
        |e: &dyn std::fmt::Display| ApiError::bad_request(format!("error decoding patch: {e}"));
    match kind {
        PatchKind::Merge => {
            let patch: Value = serde_json::from_slice(body).map_err(|e| bad(&e))?;
            if !patch.is_object() {
                return Err(ApiError::bad_request("a merge patch must be a JSON object"));
            }
            let mut doc = current.cloned().unwrap_or(Value::Null);
            json_patch::merge(&mut doc, &patch);
            Ok(doc)
        }
        PatchKind::Json => {
            let patch: json_patch::Patch = serde_json::from_slice(body).map_err(|e| bad(&e))?;
            let mut doc = current.cloned().unwrap_or(Value::Null);
            json_patch::patch(&mut doc, &patch).map_err(|e| ApiError {
                code: 422,
                reason: "Invalid",
                message: format!("the JSON patch could not be applied: {e}"),
                details: None,
            })?;
            Ok(doc)
        }
        PatchKind::Apply => {
            let config = parse_json_or_yaml(body)?;
            if !config.is_object() {
                return Err(ApiError::bad_request("an apply patch must be an object"));
            }
            let mut doc = current
                .cloned()
                .unwrap_or_else(|| Value::Object(Map::new()));
            json_patch::merge(&mut doc, &config);
            Ok(doc)
        }
    }
}

/// A request body in JSON, or in YAML (as `kubectl apply --server-side` may send it).
pub fn parse_json_or_yaml(body: &[u8]) -> Result<Value, ApiError> {
    if let Ok(value) = serde_json::from_slice(body) {
        return Ok(value);
    }
    let text = std::str::from_utf8(body)
        .map_err(|_| ApiError::bad_request("the body is neither JSON nor UTF-8 YAML"))?;
    let docs = YamlLoader::load_from_str(text)
        .map_err(|e| ApiError::bad_request(format!("error decoding YAML: {e}")))?;
    match docs.as_slice() {
        [doc] => yaml_to_json(doc),
        _ => Err(ApiError::bad_request(format!(
            "expected one YAML document, got {}",
            docs.len()
        ))),
    }
}

fn yaml_to_json(yaml: &Yaml) -> Result<Value, ApiError> {
    Ok(match yaml {
        Yaml::Null => Value::Null,
        Yaml::Boolean(b) => Value::Bool(*b),
        Yaml::Integer(i) => Value::Number((*i).into()),
        Yaml::Real(text) => text
            .parse::<f64>()
            .ok()
            .and_then(Number::from_f64)
            .map(Value::Number)
            .ok_or_else(|| ApiError::bad_request(format!("bad YAML number {text:?}")))?,
        Yaml::String(s) => Value::String(s.clone()),
        Yaml::Array(items) => {
            Value::Array(items.iter().map(yaml_to_json).collect::<Result<_, _>>()?)
        }
        Yaml::Hash(hash) => {
            let mut map = Map::new();
            for (k, v) in hash {
                let key = match k {
                    Yaml::String(s) => s.clone(),
                    Yaml::Integer(i) => i.to_string(),
                    Yaml::Boolean(b) => b.to_string(),
                    other => {
                        return Err(ApiError::bad_request(format!(
                            "unsupported YAML key {other:?}"
                        )));
                    }
                };
                map.insert(key, yaml_to_json(v)?);
            }
            Value::Object(map)
        }
        other => {
            return Err(ApiError::bad_request(format!(
                "unsupported YAML value {other:?}"
            )));
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn merge_patch_sets_and_removes_fields() {
        let current = json!({ "metadata": { "name": "a", "labels": { "x": "1", "y": "2" } }, "spec": { "n": 1 } });
        let body = br#"{"metadata":{"labels":{"y":null,"z":"3"}},"spec":{"n":2}}"#;
        let out = apply(PatchKind::Merge, Some(&current), body).unwrap();
        assert_eq!(out["metadata"]["labels"], json!({ "x": "1", "z": "3" }));
        assert_eq!(out["spec"]["n"], 2);
        assert_eq!(
            PatchKind::from_content_type("application/strategic-merge-patch+json").unwrap(),
            PatchKind::Merge
        );
        assert_eq!(
            PatchKind::from_content_type("text/plain").unwrap_err().code,
            415
        );
    }

    #[test]
    fn json_patch_and_apply() {
        let current = json!({ "status": { "conditions": [] } });
        let body = br#"[{"op":"add","path":"/status/conditions/-","value":{"type":"Approved"}}]"#;
        let out = apply(PatchKind::Json, Some(&current), body).unwrap();
        assert_eq!(out["status"]["conditions"][0]["type"], "Approved");
        let failing = br#"[{"op":"test","path":"/status","value":1}]"#;
        assert_eq!(
            apply(PatchKind::Json, Some(&current), failing)
                .unwrap_err()
                .code,
            422
        );
        let yaml =
            b"apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\n  labels: {a: b}\nspec:\n  n: 1.5\n";
        let created = apply(PatchKind::Apply, None, yaml).unwrap();
        assert_eq!(
            created,
            json!({ "apiVersion": "v1", "kind": "Pod", "metadata": { "name": "p", "labels": { "a": "b" } }, "spec": { "n": 1.5 } })
        );
        assert_eq!(
            apply(PatchKind::Apply, None, b"- a\n- b\n")
                .unwrap_err()
                .code,
            400
        );
        assert_eq!(
            apply(PatchKind::Merge, None, b"{not json")
                .unwrap_err()
                .code,
            400
        );
    }
}
