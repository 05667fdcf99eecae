//! Checks an object must pass before it is stored, as the real server makes them: type, namespace
//! and name agree with the URL, names are DNS names, and the few required fields of Events and
//! CertificateSigningRequests are there.

use serde_json::{Value, json};

use super::resources::ResourceType;
use super::status::ApiError;
use super::tls;

/// Where an object is written: the URL's namespace and name, if any.
pub struct Target<'a> {
    pub namespace: Option<&'a str>,
    pub name: Option<&'a str>,
}

/// Normalises `object` for `rt` at `target`: fills in apiVersion, kind, namespace and name, makes
/// a name from `generateName` when `generate` is set, and validates.
pub fn prepare(
    rt: &ResourceType,
    target: &Target,
    mut object: Value,
    generate: bool,
) -> Result<Value, ApiError> {
    let Some(map) = object.as_object_mut() else {
        return Err(ApiError::bad_request("the body must be a JSON object"));
    };
    let api_version = rt.api_version();
    match map.get("apiVersion").and_then(Value::as_str) {
        Some(v) if v != api_version => {
            return Err(ApiError::bad_request(format!(
                "the API version in the data ({v}) does not match the expected API version ({api_version})"
            )));
        }
        _ => {}
    }
    match map.get("kind").and_then(Value::as_str) {
        Some(k) if k != rt.kind => {
            return Err(ApiError::bad_request(format!(
                "the kind in the data ({k}) does not match the expected kind ({})",
                rt.kind
            )));
        }
        _ => {}
    }
    map.insert("apiVersion".into(), json!(api_version));
    map.insert("kind".into(), json!(rt.kind));
    let meta = map.entry("metadata").or_insert_with(|| json!({}));
    let Some(meta) = meta.as_object_mut() else {
        return Err(ApiError::bad_request("metadata must be an object"));
    };

    let body_ns = meta
        .get("namespace")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    if rt.namespaced {
        let ns = match (target.namespace, body_ns.as_str()) {
            (Some(url), "") => url.to_string(),
            (Some(url), body) if url != body => {
                return Err(ApiError::bad_request(
                    "the namespace of the provided object does not match the namespace sent on the request",
                ));
            }
            (_, body) => body.to_string(),
        };
        if ns.is_empty() {
            return Err(ApiError::bad_request(
                "a namespaced object needs a namespace",
            ));
        }
        check_dns_label(rt, &ns, "metadata.namespace")?;
        meta.insert("namespace".into(), json!(ns));
    } else {
        meta.remove("namespace");
    }

    let mut name = meta
        .get("name")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    if let Some(url_name) = target.name {
        if name.is_empty() {
            name = url_name.to_string();
        } else if name != url_name {
            return Err(ApiError::bad_request(format!(
                "the name of the object ({name}) does not match the name on the URL ({url_name})"
            )));
        }
    }
    if name.is_empty()
        && generate
        && let Some(prefix) = meta.get("generateName").and_then(Value::as_str)
    {
        name = format!("{prefix}{}", &tls::random_token()[..5]);
    }
    if name.is_empty() {
        return Err(ApiError::invalid(
            rt,
            "",
            "metadata.name: Required value: name or generateName is required",
        ));
    }
    check_name(rt, &name)?;
    meta.insert("name".into(), json!(name));
    validate_kind(rt, &object, &name)?;
    Ok(object)
}

fn check_name(rt: &ResourceType, name: &str) -> Result<(), ApiError> {
    if rt.label_names {
        return check_dns_label(rt, name, "metadata.name");
    }
    let ok = name.len() <= 253 && name.split('.').all(is_dns_label);
    if ok {
        Ok(())
    } else {
        Err(ApiError::invalid(
            rt,
            name,
            format!(
                "metadata.name: Invalid value: {name:?}: a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character"
            ),
        ))
    }
}

fn check_dns_label(rt: &ResourceType, value: &str, field: &str) -> Result<(), ApiError> {
    if is_dns_label(value) {
        Ok(())
    } else {
        Err(ApiError::invalid(
            rt,
            value,
            format!(
                "{field}: Invalid value: {value:?}: a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character"
            ),
        ))
    }
}

fn is_dns_label(s: &str) -> bool {
    let alnum = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit();
    !s.is_empty()
        && s.len() <= 63
        && s.chars().all(|c| alnum(c) || c == '-')
        && s.starts_with(alnum)
        && s.ends_with(alnum)
}

/// The required fields the real server checks for the kinds the agent writes.
fn validate_kind(rt: &ResourceType, object: &Value, name: &str) -> Result<(), ApiError> {
    let missing = |field: &str| ApiError::invalid(rt, name, format!("{field}: Required value"));
    let has = |pointer: &str| {
        object
            .pointer(pointer)
            .is_some_and(|v| !v.is_null() && v != "")
    };
    match (rt.group, rt.kind) {
        ("events.k8s.io", "Event") => {
            for field in [
                "eventTime",
                "reportingController",
                "reportingInstance",
                "action",
                "reason",
            ] {
                if !has(&format!("/{field}")) {
                    return Err(missing(field));
                }
            }
            if let Some(t) = object.get("type").and_then(Value::as_str)
                && t != "Normal"
                && t != "Warning"
            {
                return Err(ApiError::invalid(
                    rt,
                    name,
                    format!("type: Unsupported value: {t:?}"),
                ));
            }
        }
        ("certificates.k8s.io", "CertificateSigningRequest") => {
            for field in ["spec.signerName", "spec.request"] {
                if !has(&format!("/{}", field.replace('.', "/"))) {
                    return Err(missing(field));
                }
            }
            let request = object
                .pointer("/spec/request")
                .and_then(Value::as_str)
                .and_then(tls::base64_decode);
            let is_csr = request.is_some_and(|pem| {
                String::from_utf8_lossy(&pem).contains("-----BEGIN CERTIFICATE REQUEST-----")
            });
            if !is_csr {
                return Err(ApiError::invalid(
                    rt,
                    name,
                    "spec.request: Invalid value: []byte{...}: PEM block type must be CERTIFICATE REQUEST",
                ));
            }
        }
        _ => {}
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kube_api::resources::by_plural;

    #[test]
    fn fills_and_checks_namespace_and_name() {
        let pods = by_plural("", "pods").unwrap();
        let at = Target {
            namespace: Some("ns1"),
            name: None,
        };
        let pod = prepare(pods, &at, json!({ "metadata": { "name": "p1" } }), true).unwrap();
        assert_eq!(
            (pod["metadata"]["namespace"].as_str(), pod["kind"].as_str()),
            (Some("ns1"), Some("Pod"))
        );
        let generated = prepare(
            pods,
            &at,
            json!({ "metadata": { "generateName": "web-" } }),
            true,
        )
        .unwrap();
        assert!(
            generated["metadata"]["name"]
                .as_str()
                .unwrap()
                .starts_with("web-")
        );
        let other_ns = prepare(
            pods,
            &at,
            json!({ "metadata": { "name": "p", "namespace": "ns2" } }),
            true,
        );
        assert_eq!(other_ns.unwrap_err().code, 400);
        assert_eq!(
            prepare(
                pods,
                &at,
                json!({ "apiVersion": "apps/v1", "metadata": { "name": "p" } }),
                true
            )
            .unwrap_err()
            .code,
            400
        );
        assert_eq!(
            prepare(
                pods,
                &at,
                json!({ "metadata": { "name": "Bad_Name" } }),
                true
            )
            .unwrap_err()
            .code,
            422
        );
        assert_eq!(
            prepare(pods, &at, json!({ "metadata": {} }), true)
                .unwrap_err()
                .code,
            422
        );
        let named = Target {
            namespace: Some("ns1"),
            name: Some("p1"),
        };
        assert_eq!(
            prepare(pods, &named, json!({ "metadata": { "name": "p2" } }), false)
                .unwrap_err()
                .code,
            400
        );
        let nodes = by_plural("", "nodes").unwrap();
        let node = prepare(
            nodes,
            &Target {
                namespace: None,
                name: None,
            },
            json!({ "metadata": { "name": "n1", "namespace": "x" } }),
            true,
        )
        .unwrap();
        assert!(node["metadata"].get("namespace").is_none());
    }

    #[test]
    fn events_and_csrs_need_their_fields() {
        let events = by_plural("events.k8s.io", "events").unwrap();
        let at = Target {
            namespace: Some("ns1"),
            name: None,
        };
        let partial = json!({ "metadata": { "name": "e" }, "reason": "R" });
        assert_eq!(prepare(events, &at, partial, true).unwrap_err().code, 422);
        let csrs = by_plural("certificates.k8s.io", "certificatesigningrequests").unwrap();
        let bad = json!({ "metadata": { "name": "c" }, "spec": { "signerName": "x/y", "request": "bm90IGEgY3Ny" } });
        assert_eq!(
            prepare(
                csrs,
                &Target {
                    namespace: None,
                    name: None
                },
                bad,
                true
            )
            .unwrap_err()
            .code,
            422
        );
    }
}
