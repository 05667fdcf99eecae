//! `PartialObjectMetadata`: what a client gets when its `Accept` header asks for metadata only
//! (`as=PartialObjectMetadata[List];g=meta.k8s.io;v=v1`, kube-rs' `metadata_watcher` and
//! `Api::get_metadata`): each object reduced to its type and `metadata`.

use serde_json::{Value, json};

/// Does this `Accept` header ask for metadata only?
pub fn wanted(accept: Option<&str>) -> bool {
    accept.is_some_and(|a| {
        a.split(',').any(|t| {
            let params: Vec<&str> = t.split(';').map(str::trim).collect();
            params.contains(&"g=meta.k8s.io")
                && params.iter().any(|p| {
                    *p == "as=PartialObjectMetadata" || *p == "as=PartialObjectMetadataList"
                })
        })
    })
}

/// One object (or a list of them) as `PartialObjectMetadata`; a `Status` is left alone.
pub fn reduce(body: Value) -> Value {
    match body["kind"].as_str() {
        Some("Status") => body,
        Some(kind) if kind.ends_with("List") && body["items"].is_array() => {
            let items: Vec<Value> = body["items"]
                .as_array()
                .into_iter()
                .flatten()
                .map(object)
                .collect();
            json!({
                "kind": "PartialObjectMetadataList", "apiVersion": "meta.k8s.io/v1",
                "metadata": body["metadata"], "items": items,
            })
        }
        _ => object(&body),
    }
}

fn object(o: &Value) -> Value {
    json!({ "kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": o["metadata"] })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reduces_objects_and_lists() {
        assert!(wanted(Some(
            "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1"
        )));
        assert!(!wanted(Some("application/json")));
        let pod =
            json!({ "kind": "Pod", "apiVersion": "v1", "metadata": { "name": "p" }, "spec": {} });
        assert_eq!(
            reduce(pod.clone()),
            json!({ "kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": { "name": "p" } })
        );
        let list = reduce(
            json!({ "kind": "PodList", "metadata": { "resourceVersion": "5" }, "items": [pod] }),
        );
        assert_eq!(
            (
                list["kind"].as_str(),
                list["items"][0]["metadata"]["name"].as_str()
            ),
            (Some("PartialObjectMetadataList"), Some("p"))
        );
        assert_eq!(list["metadata"]["resourceVersion"], "5");
    }
}
