//! The stand-in Kubernetes API server under kube-runtime's watcher: the initial listing, field and
//! label selectors with objects leaving the selection, resuming from a bookmark without a relist,
//! reconnecting after stop/resume with history replayed, the 410 relist after compaction, raw
//! BOOKMARK events, and watches ended by a removed CRD.

#[path = "kube_api_support/mod.rs"]
mod support;

mod kube_api {
    use futures::StreamExt;
    use gateway_tests::kube_api::{ApiRequest, ApiServer};
    use k8s_openapi::api::core::v1::Pod;
    use kube::api::ListParams;
    use kube::api::{WatchEvent, WatchParams};
    use kube::core::PartialObjectMeta;
    use kube::core::{ApiResource, DynamicObject, GroupVersionKind};
    use kube::runtime::watcher;
    use kube::{Api, ResourceExt};
    use serde_json::json;

    use crate::support::{
        PATIENCE, PodWatch, Seen, client, pod, pod_list, pod_watch, wait_for_request,
    };

    fn web(ns: &str, name: &str, node: &str) -> serde_json::Value {
        pod(ns, name, node, json!({ "app": "web" }))
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn watcher_follows_one_node_and_resumes_from_a_bookmark() {
        let server = ApiServer::start();
        server.apply(web("a", "p1", "node-1"));
        server.apply(web("a", "p2", "node-2"));
        server.apply(pod("a", "p0", "node-1", json!({ "app": "db" })));
        let api: Api<Pod> = Api::all(client(&server).await);
        let mut watch = PodWatch::start(
            api,
            watcher::Config::default()
                .fields("spec.nodeName=node-1")
                .labels("app=web"),
        );
        watch.expect_init(&["p1"]).await;

        server.apply(web("b", "p3", "node-1"));
        server.apply(pod(
            "a",
            "p2",
            "node-2",
            json!({ "app": "web", "touched": "yes" }),
        )); // not ours
        server.apply(pod("a", "p1", "node-1", json!({ "app": "moved" }))); // leaves the selection
        server.delete("v1", "Pod", "b", "p3");
        watch
            .expect(&[
                Seen::Apply("p3".into()),
                Seen::Delete("p1".into()),
                Seen::Delete("p3".into()),
            ])
            .await;
        server.apply(web("a", "p5", "")); // pending, not scheduled yet: not ours
        server.apply(web("a", "p5", "node-1")); // bound to this node: enters the selection
        watch.expect(&[Seen::Apply("p5".into())]).await;

        // Writes the watcher does not see move the version on; a bookmark carries it.
        let watches_before = server.requests().len();
        for i in 0..3 {
            server.apply(web("c", &format!("other-{i}"), "node-2"));
        }
        let bookmarked = server.resource_version();
        server.bookmark_now();
        server.end_watches();
        let resumed = wait_for_request(&server, watches_before, "a resumed watch", pod_watch).await;
        let request = &server.requests()[resumed];
        assert_eq!(
            request.param("resourceVersion"),
            Some(bookmarked.to_string()),
            "resumed from the bookmark"
        );
        assert_eq!(
            request.param("fieldSelector").as_deref(),
            Some("spec.nodeName=node-1")
        );
        assert!(
            !server.requests()[watches_before..].iter().any(pod_list),
            "no relist after a bookmark"
        );

        server.apply(web("a", "p4", "node-1"));
        watch.expect(&[Seen::Apply("p4".into())]).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn watcher_reconnects_after_stop_and_replays_what_it_missed() {
        let server = ApiServer::start();
        server.apply(web("a", "p1", "node-1"));
        server.apply(web("a", "p2", "node-1"));
        let api: Api<Pod> = Api::all(client(&server).await);
        let mut watch = PodWatch::start(api, watcher::Config::default().disable_bookmarks());
        watch.expect_init(&["p1", "p2"]).await;
        let listed_at = server.resource_version();

        server.stop();
        let seen_before = server.requests().len();
        server.apply(web("a", "p3", "node-1"));
        server.delete("v1", "Pod", "a", "p1");
        server.resume();
        watch
            .expect(&[Seen::Apply("p3".into()), Seen::Delete("p1".into())])
            .await;
        let resumed =
            wait_for_request(&server, seen_before, "a watch after resume", pod_watch).await;
        assert_eq!(
            server.requests()[resumed].param("resourceVersion"),
            Some(listed_at.to_string())
        );
        assert!(
            !server.requests()[seen_before..].iter().any(pod_list),
            "history replayed, no relist"
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn watcher_relists_after_compaction_and_converges() {
        let server = ApiServer::start();
        server.apply(web("a", "p1", "node-1"));
        server.apply(web("a", "p2", "node-1"));
        let api: Api<Pod> = Api::all(client(&server).await);
        let mut watch = PodWatch::start(api, watcher::Config::default().disable_bookmarks());
        watch.expect_init(&["p1", "p2"]).await;

        server.stop(); // the stream drops while history moves on and is compacted
        let seen_before = server.requests().len();
        server.apply(web("a", "p3", "node-1"));
        server.delete("v1", "Pod", "a", "p1");
        server.compact();
        server.resume();
        watch.expect(&[Seen::WatchError(410)]).await;
        watch.expect_init(&["p2", "p3"]).await;
        let gone = wait_for_request(&server, seen_before, "the expired watch", pod_watch).await;
        let relist = wait_for_request(&server, gone, "the relist", pod_list).await;
        assert!(relist > gone);

        server.apply(web("a", "p5", "node-1"));
        watch.expect(&[Seen::Apply("p5".into())]).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn raw_watch_gets_bookmarks_only_when_allowed() {
        let server = ApiServer::start();
        let api: Api<Pod> = Api::namespaced(client(&server).await, "a");
        let rv = server.resource_version().to_string();

        let mut plain = api
            .watch(&WatchParams::default().disable_bookmarks(), &rv)
            .await
            .unwrap()
            .boxed();
        server.bookmark_now();
        server.apply(web("a", "p1", "node-1"));
        match tokio::time::timeout(PATIENCE, plain.next()).await.unwrap() {
            Some(Ok(WatchEvent::Added(p))) => assert_eq!(p.name_any(), "p1"),
            other => panic!("wanted ADDED p1 first, got {other:?}"),
        }

        // The periodic bookmark (every second by default) arrives without any write.
        let mut marked = api
            .watch(
                &WatchParams::default(),
                &server.resource_version().to_string(),
            )
            .await
            .unwrap()
            .boxed();
        match tokio::time::timeout(PATIENCE, marked.next()).await.unwrap() {
            Some(Ok(WatchEvent::Bookmark(b))) => assert_eq!(
                b.metadata.resource_version,
                server.resource_version().to_string()
            ),
            other => panic!("wanted a BOOKMARK, got {other:?}"),
        }

        // A version from before the last compaction: the stream is one ERROR event, 410 Expired.
        server.compact();
        let mut stale = api
            .watch(&WatchParams::default(), "1")
            .await
            .unwrap()
            .boxed();
        match tokio::time::timeout(PATIENCE, stale.next()).await.unwrap() {
            Some(Ok(WatchEvent::Error(e))) => {
                assert_eq!((e.code, e.reason.as_str()), (410, "Expired"))
            }
            other => panic!("wanted a 410 ERROR event, got {other:?}"),
        }
        assert!(
            tokio::time::timeout(PATIENCE, stale.next())
                .await
                .unwrap()
                .is_none(),
            "the expired watch ends"
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn removing_a_crd_ends_its_watches() {
        let server = ApiServer::start();
        let gvk = GroupVersionKind::gvk("networking.istio.io", "v1", "Sidecar");
        let api: Api<DynamicObject> = Api::all_with(
            client(&server).await,
            &ApiResource::from_gvk_with_plural(&gvk, "sidecars"),
        );
        let mut stream = api
            .watch(&WatchParams::default().disable_bookmarks(), "0")
            .await
            .unwrap()
            .boxed();
        server.apply(json!({ "apiVersion": "networking.istio.io/v1", "kind": "Sidecar", "metadata": { "name": "default", "namespace": "a" }, "spec": {} }));
        assert!(matches!(
            tokio::time::timeout(PATIENCE, stream.next()).await.unwrap(),
            Some(Ok(WatchEvent::Added(_)))
        ));
        server.remove_resource("networking.istio.io", "sidecars");
        assert!(
            tokio::time::timeout(PATIENCE, stream.next())
                .await
                .unwrap()
                .is_none(),
            "the watch ends with its CRD"
        );
        assert!(server.requests().iter().any(|r| r.verb == "watch"
            && r.resource == "sidecars"
            && r.group == "networking.istio.io"));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn streaming_lists_and_metadata_only_watches() {
        let server = ApiServer::start();
        server.apply(web("a", "p1", "node-1"));
        server.apply(web("a", "p2", "node-2"));
        let client = client(&server).await;
        let config = watcher::Config::default()
            .streaming_lists()
            .fields("spec.nodeName=node-1");
        let mut watch = PodWatch::start(Api::all(client.clone()), config);
        watch.expect_init(&["p1"]).await;
        server.apply(web("a", "p3", "node-1"));
        watch.expect(&[Seen::Apply("p3".into())]).await;
        let initial = |r: &ApiRequest| {
            pod_watch(r) && r.param("sendInitialEvents").as_deref() == Some("true")
        };
        assert!(
            server.requests().iter().any(initial),
            "the first watch asked for initial events"
        );
        assert!(
            !server.requests().iter().any(pod_list),
            "a streaming list makes no LIST"
        );

        // An Api of PartialObjectMeta asks for metadata only (the Accept header says so).
        let pods: Api<PartialObjectMeta<Pod>> = Api::all(client);
        let metas = pods.list(&ListParams::default()).await.unwrap();
        let kinds: Vec<_> = metas
            .items
            .iter()
            .map(|m| m.types.as_ref().map(|t| t.kind.clone()))
            .collect();
        assert_eq!(kinds, vec![Some("PartialObjectMetadata".to_string()); 3]);
        let mut stream = std::pin::pin!(watcher(pods, watcher::Config::default()));
        let mut listed = Vec::new();
        loop {
            match tokio::time::timeout(PATIENCE, stream.next()).await.unwrap() {
                Some(Ok(watcher::Event::Init)) => {}
                Some(Ok(watcher::Event::InitApply(m))) => listed.push(m.name_any()),
                Some(Ok(watcher::Event::InitDone)) => break,
                other => panic!("unexpected {other:?} from the metadata watcher"),
            }
        }
        assert_eq!(listed, ["p1", "p2", "p3"]);
    }
}
