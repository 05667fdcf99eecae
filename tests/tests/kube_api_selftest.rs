//! The stand-in Kubernetes API server driven by kube-rs itself: typed and dynamic APIs, pages and
//! expired versions, a missing CRD, discovery, and Events from kube-runtime's Recorder. The
//! watcher is exercised in `kube_api_watch_selftest.rs`; the token, CSRs, stop/resume and network
//! namespaces in `kube_api_server_selftest.rs`.

#[path = "kube_api_support/mod.rs"]
mod support;

mod kube_api {
    use gateway_tests::kube_api::ApiServer;
    use k8s_openapi::api::core::v1::Pod;
    use kube::api::{DeleteParams, ListParams, Patch, PatchParams, PostParams};
    use kube::core::{ApiResource, DynamicObject, GroupVersionKind};
    use kube::discovery::{self, Discovery};
    use kube::runtime::events::{Event, EventType, Recorder, Reporter};
    use kube::{Api, Resource, ResourceExt};
    use serde_json::json;

    use crate::support::{api_code, client, pod};

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn typed_pods_create_list_get_patch_delete() {
        let server = ApiServer::start();
        let pods: Api<Pod> = Api::namespaced(client(&server).await, "default");
        let created = pods
            .create(
                &PostParams::default(),
                &serde_json::from_value(pod("default", "p1", "node-1", json!({}))).unwrap(),
            )
            .await
            .unwrap();
        let meta = &created.metadata;
        assert!(
            meta.uid.is_some() && meta.creation_timestamp.is_some() && meta.generation == Some(1)
        );
        let rv: u64 = meta.resource_version.as_deref().unwrap().parse().unwrap();
        assert_eq!(rv, server.resource_version());

        let list = pods.list(&ListParams::default()).await.unwrap();
        assert_eq!(
            list.items.iter().map(|p| p.name_any()).collect::<Vec<_>>(),
            ["p1"]
        );
        assert_eq!(list.metadata.resource_version, Some(rv.to_string()));
        assert_eq!(pods.get("p1").await.unwrap().uid(), created.uid());
        assert_eq!(
            api_code(pods.create(&PostParams::default(), &created).await),
            409
        );
        assert_eq!(api_code(pods.get("nope").await), 404);

        let patch = json!({ "metadata": { "labels": { "app": "web" } } });
        let patched = pods
            .patch("p1", &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .unwrap();
        assert_eq!(patched.labels().get("app").map(String::as_str), Some("web"));
        assert_eq!(
            patched.metadata.generation,
            Some(1),
            "a label is no spec change"
        );
        let stale = created.clone();
        assert_eq!(
            api_code(pods.replace("p1", &PostParams::default(), &stale).await),
            409
        );
        let mut current = pods.get("p1").await.unwrap();
        current.spec.as_mut().unwrap().node_name = Some("node-2".into());
        let replaced = pods
            .replace("p1", &PostParams::default(), &current)
            .await
            .unwrap();
        assert_eq!(replaced.metadata.generation, Some(2));
        assert_eq!(
            server.get("v1", "Pod", "default", "p1").unwrap()["spec"]["nodeName"],
            "node-2"
        );

        let apply = json!({ "apiVersion": "v1", "kind": "Pod", "metadata": { "name": "p2" }, "spec": { "nodeName": "node-1", "containers": [] } });
        let applied = pods
            .patch("p2", &PatchParams::apply("selftest"), &Patch::Apply(&apply))
            .await
            .unwrap();
        assert_eq!(
            applied.metadata.namespace.as_deref(),
            Some("default"),
            "apply creates"
        );
        pods.delete("p1", &DeleteParams::default()).await.unwrap();
        assert!(server.get("v1", "Pod", "default", "p1").is_none());

        let verbs: Vec<(String, String)> = server
            .requests()
            .iter()
            .filter(|r| r.is_resource())
            .map(|r| (r.verb.clone(), r.resource.clone()))
            .collect();
        for verb in ["create", "list", "get", "patch", "update", "delete"] {
            assert!(
                verbs.contains(&(verb.to_string(), "pods".to_string())),
                "no {verb} logged: {verbs:?}"
            );
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn pages_and_exact_lists_expire_with_410_after_compaction() {
        let server = ApiServer::start();
        for name in ["a", "b", "c"] {
            server.apply(pod("ns1", name, "node-1", json!({})));
        }
        let pods: Api<Pod> = Api::all(client(&server).await);
        let first = pods.list(&ListParams::default().limit(2)).await.unwrap();
        assert_eq!(first.items.len(), 2);
        let token = first.metadata.continue_.clone().expect("a continue token");
        server.apply(pod("ns1", "d", "node-1", json!({})));
        let second = pods
            .list(&ListParams::default().limit(2).continue_token(&token))
            .await
            .unwrap();
        let names: Vec<String> = first
            .items
            .iter()
            .chain(&second.items)
            .map(|p| p.name_any())
            .collect();
        assert_eq!(names, ["a", "b", "c"], "pages come from one snapshot");
        assert_eq!(
            second.metadata.resource_version,
            first.metadata.resource_version
        );

        let old = first.metadata.resource_version.clone().unwrap();
        let exact = pods
            .list(
                &ListParams::default()
                    .at(&old)
                    .matching(kube::api::VersionMatch::Exact),
            )
            .await
            .unwrap();
        assert_eq!(exact.items.len(), 3, "an exact list shows the past");
        server.compact();
        assert_eq!(
            api_code(
                pods.list(
                    &ListParams::default()
                        .at(&old)
                        .matching(kube::api::VersionMatch::Exact)
                )
                .await
            ),
            410
        );
        assert_eq!(
            api_code(
                pods.list(&ListParams::default().limit(2).continue_token(&token))
                    .await
            ),
            410
        );
        assert_eq!(
            pods.list(&ListParams::default()).await.unwrap().items.len(),
            4
        );
        let by_node = pods
            .list(&ListParams::default().fields("spec.nodeName=node-1,metadata.name!=a"))
            .await
            .unwrap();
        assert_eq!(by_node.items.len(), 3);
        assert_eq!(
            api_code(
                pods.list(&ListParams::default().fields("spec.image=x"))
                    .await
            ),
            400
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn dynamic_service_entries_and_a_missing_crd() {
        let server = ApiServer::start();
        server.remove_resource("networking.istio.io", "sidecars");
        let client = client(&server).await;
        let gvk = GroupVersionKind::gvk("networking.istio.io", "v1", "ServiceEntry");
        let se_api: Api<DynamicObject> = Api::namespaced_with(
            client.clone(),
            "mesh",
            &ApiResource::from_gvk_with_plural(&gvk, "serviceentries"),
        );
        let se: DynamicObject = serde_json::from_value(json!({
            "apiVersion": "networking.istio.io/v1", "kind": "ServiceEntry", "metadata": { "name": "ext" },
            "spec": { "hosts": ["api.example.com"], "ports": [{ "number": 443, "name": "tls", "protocol": "TLS" }], "resolution": "DNS" }
        }))
        .unwrap();
        se_api.create(&PostParams::default(), &se).await.unwrap();
        let listed = se_api.list(&ListParams::default()).await.unwrap();
        assert_eq!(listed.items[0].data["spec"]["hosts"][0], "api.example.com");
        assert_eq!(
            server.list("networking.istio.io/v1", "ServiceEntry").len(),
            1
        );

        let sidecar_gvk = GroupVersionKind::gvk("networking.istio.io", "v1", "Sidecar");
        let sidecars: Api<DynamicObject> = Api::all_with(
            client.clone(),
            &ApiResource::from_gvk_with_plural(&sidecar_gvk, "sidecars"),
        );
        assert_eq!(api_code(sidecars.list(&ListParams::default()).await), 404);
        assert!(
            discovery::pinned_kind(&client, &sidecar_gvk).await.is_err(),
            "discovery still shows the removed CRD"
        );
        let (found, caps) = discovery::pinned_kind(&client, &gvk).await.unwrap();
        assert_eq!(
            (found.plural.as_str(), caps.scope),
            ("serviceentries", kube::discovery::Scope::Namespaced)
        );
        server.add_resource("networking.istio.io", "sidecars");
        assert!(
            sidecars
                .list(&ListParams::default())
                .await
                .unwrap()
                .items
                .is_empty()
        );

        for discovery in [
            Discovery::new(client.clone()).run().await.unwrap(),
            Discovery::new(client.clone())
                .run_aggregated()
                .await
                .unwrap(),
        ] {
            assert!(
                discovery.has_group("security.istio.io")
                    && discovery.has_group("certificates.k8s.io")
            );
            let core = discovery.get("").expect("the core group");
            assert!(
                core.recommended_resources()
                    .iter()
                    .any(|(ar, caps)| ar.plural == "nodes"
                        && caps.scope == kube::discovery::Scope::Cluster)
            );
        }
        assert_eq!(client.apiserver_version().await.unwrap().minor, "33");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn recorder_events_are_created_then_patched() {
        let server = ApiServer::start();
        let stored = server.apply(pod("app", "web-1", "node-1", json!({})));
        let pod: Pod = serde_json::from_value(stored).unwrap();
        let reporter = Reporter {
            controller: "gateway-node-agent".into(),
            instance: Some("node-1".into()),
        };
        let recorder = Recorder::new(client(&server).await, reporter);
        let event = Event {
            type_: EventType::Warning,
            reason: "PolicyRejected".into(),
            note: Some("no route".into()),
            action: "Intercept".into(),
            secondary: None,
        };
        recorder
            .publish(&event, &pod.object_ref(&()))
            .await
            .unwrap();
        recorder
            .publish(&event, &pod.object_ref(&()))
            .await
            .unwrap();
        let events = server.events();
        assert_eq!(events.len(), 1, "{events:#?}");
        let e = &events[0];
        assert_eq!(
            (
                e["reason"].as_str(),
                e["note"].as_str(),
                e["regarding"]["name"].as_str()
            ),
            (Some("PolicyRejected"), Some("no route"), Some("web-1"))
        );
        assert_eq!(e["series"]["count"], 2, "the repeat is a patch");
        assert_eq!(e["metadata"]["namespace"], "app");
        let calls: Vec<(String, String)> = server
            .requests()
            .iter()
            .filter(|r| r.resource == "events")
            .map(|r| (r.verb.clone(), r.group.clone()))
            .collect();
        assert_eq!(
            calls,
            [
                ("create".into(), "events.k8s.io".into()),
                ("patch".into(), "events.k8s.io".into())
            ]
        );
    }
}
