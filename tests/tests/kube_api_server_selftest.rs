//! The stand-in Kubernetes API server as a server: the bearer token, CSRs approved through the API
//! and signed by its CA, stop/resume on a reserved port, and listening inside a network namespace
//! (where the gateway runs), each checked with kube-rs.

#[path = "kube_api_support/mod.rs"]
mod support;

mod kube_api {
    use std::net::TcpStream;
    use std::process::Command;

    use gateway_tests::kube_api::ApiServer;
    use gateway_tests::names;
    use gateway_tests::netns::NetNs;
    use k8s_openapi::api::certificates::v1::CertificateSigningRequest;
    use k8s_openapi::api::core::v1::Pod;
    use kube::api::{ListParams, Patch, PatchParams, PostParams};
    use kube::{Api, ResourceExt};
    use serde_json::json;

    use crate::support::{api_code, client, client_from, pod};

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn csrs_are_approved_through_the_api_and_signed() {
        let server = ApiServer::start();
        let csrs: Api<CertificateSigningRequest> = Api::all(client(&server).await);
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(vec!["node-1.example".to_string()]).unwrap();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "system:node:node-1");
        let request = params.serialize_request(&key).unwrap().pem().unwrap();
        let csr: CertificateSigningRequest = serde_json::from_value(json!({
            "metadata": { "name": "node-1-serving" },
            "spec": { "request": base64_of(&request), "signerName": "example.com/serving", "usages": ["digital signature", "server auth"] }
        }))
        .unwrap();
        csrs.create(&PostParams::default(), &csr).await.unwrap();
        let approval = json!({ "status": { "conditions": [{ "type": "Approved", "status": "True", "reason": "Test", "message": "ok" }] } });
        csrs.patch_approval(
            "node-1-serving",
            &PatchParams::default(),
            &Patch::Merge(&approval),
        )
        .await
        .unwrap();
        assert_eq!(
            server.csrs()[0]["status"]["conditions"][0]["type"],
            "Approved"
        );
        let approval_call = server
            .requests()
            .into_iter()
            .find(|r| r.verb == "patch")
            .unwrap();
        assert_eq!(
            (
                approval_call.group.as_str(),
                approval_call.rbac_resource().as_str()
            ),
            ("certificates.k8s.io", "certificatesigningrequests/approval")
        );
        let cert = server.sign_csr("node-1-serving");
        let fetched = csrs.get("node-1-serving").await.unwrap();
        let issued = fetched
            .status
            .and_then(|s| s.certificate)
            .expect("status.certificate");
        assert_eq!(String::from_utf8(issued.0).unwrap(), cert);

        let dir = std::env::temp_dir().join(format!("{}-csr", gateway_tests::names::unique_tag()));
        std::fs::create_dir(&dir).unwrap();
        std::fs::write(dir.join("ca.pem"), server.ca_pem()).unwrap();
        std::fs::write(dir.join("cert.pem"), &cert).unwrap();
        let verify = Command::new("openssl")
            .args([
                "verify",
                "-CAfile",
                "ca.pem",
                "-purpose",
                "sslserver",
                "cert.pem",
            ])
            .current_dir(&dir)
            .output()
            .unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        assert!(
            verify.status.success(),
            "openssl verify: {}",
            String::from_utf8_lossy(&verify.stderr)
        );
        let missing = json!({ "metadata": { "name": "bad" }, "spec": { "request": "", "signerName": "x/y" } });
        assert_eq!(
            api_code(
                csrs.create(
                    &PostParams::default(),
                    &serde_json::from_value(missing).unwrap()
                )
                .await
            ),
            422
        );
    }

    fn base64_of(text: &str) -> String {
        use base64::Engine;
        base64::engine::general_purpose::STANDARD.encode(text)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_wrong_token_gets_401_and_stop_keeps_the_port() {
        let server = ApiServer::start();
        server.apply(pod("default", "p1", "node-1", json!({})));
        let intruder: Api<Pod> =
            Api::all(client_from(&server.kubeconfig_with_token("not-the-token")).await);
        assert_eq!(api_code(intruder.list(&ListParams::default()).await), 401);
        assert_eq!(server.requests().last().unwrap().code, 401);

        let pods: Api<Pod> = Api::all(client(&server).await);
        assert_eq!(
            pods.list(&ListParams::default()).await.unwrap().items.len(),
            1
        );
        server.stop();
        let address = server.url().trim_start_matches("https://").to_string();
        let refused = TcpStream::connect(&address).unwrap_err();
        assert_eq!(refused.kind(), std::io::ErrorKind::ConnectionRefused);
        let taken = std::net::TcpListener::bind(&address).unwrap_err();
        assert_eq!(
            taken.kind(),
            std::io::ErrorKind::AddrInUse,
            "the port is reserved while stopped"
        );
        assert!(pods.list(&ListParams::default()).await.is_err());
        server.resume();
        assert_eq!(
            pods.list(&ListParams::default()).await.unwrap().items.len(),
            1,
            "same port, same state"
        );
    }

    /// The gateway runs in the topology's node namespace: the server can listen on that loopback.
    #[test]
    fn serves_on_the_loopback_of_a_network_namespace() {
        // SAFETY: geteuid has no preconditions.
        assert_eq!(
            unsafe { libc::geteuid() },
            0,
            "this test needs root to create a network namespace"
        );
        let node = NetNs::create(&format!("{}-kapi", names::unique_tag()));
        let server = ApiServer::start_in(&node);
        server.apply(pod("default", "p1", "node-1", json!({})));
        let kubeconfig = server.kubeconfig();
        let listed = node.run_in(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async move {
                let pods: Api<Pod> = Api::all(client_from(&kubeconfig).await);
                let list = pods
                    .list(&ListParams::default())
                    .await
                    .map_err(|e| e.to_string())?;
                Ok::<_, String>(list.items.iter().map(|p| p.name_any()).collect::<Vec<_>>())
            })
        });
        assert_eq!(
            listed,
            Ok(vec!["p1".to_string()]),
            "kube-rs inside the namespace"
        );
        let address = server.url().trim_start_matches("https://").to_string();
        let outside = TcpStream::connect(&address).unwrap_err();
        assert_eq!(
            outside.kind(),
            std::io::ErrorKind::ConnectionRefused,
            "not on the runner's loopback"
        );
    }
}
