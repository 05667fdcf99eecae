//! Workload certificates issued in the cluster: `gateway ca` approves and
//! signs the CertificateSigningRequests of node agents for the service
//! accounts of their own pods, and the node agent
//! (`--workload-certs-from-csr`) keeps those certificates and the trust
//! bundle as files. The stand-in API server fills each CSR's requester
//! (user name and `authentication.kubernetes.io/node-name`) from the token,
//! as kube-apiserver does; certificates are checked with openssl.

#[path = "workload_certificates_support/mod.rs"]
mod support;

use std::net::IpAddr;
use std::time::{Duration, Instant};

use gateway_tests::gateway_process::{Gateway, GatewayConfig};
use gateway_tests::kube_api::ApiServer;
use gateway_tests::kube_node::{NODE, PodSpec, agent_config, kubelet, namespace};
use gateway_tests::kubelet::Driver;
use gateway_tests::topology::Topology;
use gateway_tests::wait;
use gateway_userspace::kubernetes::rbac;

use support::{
    AGENT_NS, AGENT_SA, CA_SA, PATIENCE, WorkloadCa, assert_calls_within, condition, create_csr, openssl_check,
    pod_on,
};

const SHOP_APP: &str = "spiffe://cluster.local/ns/shop/sa/app";

#[test]
fn an_entitled_node_gets_a_certificate_that_carries_the_identity_and_chains_to_the_ca() {
    let api = ApiServer::start();
    api.apply(pod_on("shop", "app-1", "app", "node-1"));
    let ca = WorkloadCa::start(&api, None, &[]);
    let node_1 = api.kubeconfig_for_service_account(AGENT_NS, AGENT_SA, Some("node-1"));
    let started = Instant::now();
    create_csr(&node_1, "shop-app", SHOP_APP, support::SIGNER, Some(3600));
    let csr = ca.wait_concluded(&api, "shop-app");
    eprintln!("figure: CSR created to certificate issued: {} ms", started.elapsed().as_millis());
    assert_eq!(condition(&csr), Some(("Approved".into(), "Entitled".into())), "{csr}\n{}", ca.log());
    let chain = support::certificate(&csr).expect("status.certificate");
    openssl_check(&ca.ca_pem, &chain, SHOP_APP);
    // The body claimed another user and node-2: the API server wrote the token's.
    assert_eq!(csr["spec"]["username"], format!("system:serviceaccount:{AGENT_NS}:{AGENT_SA}"), "filled in by the API server");
    assert_eq!(csr["spec"]["extra"]["authentication.kubernetes.io/node-name"], serde_json::json!(["node-1"]), "{csr}");

    // The trust bundle is published in the CA's namespace.
    let bundle = wait::poll(PATIENCE, Duration::from_millis(100), || {
        api.list("v1", "ConfigMap").into_iter().find(|c| c["metadata"]["name"] == "gateway-ca-root")
    })
    .expect("the trust bundle ConfigMap");
    assert_eq!(bundle["metadata"]["namespace"], AGENT_NS);
    assert_eq!(bundle["data"]["ca.crt"].as_str(), Some(ca.ca_pem.as_str()));
    assert_calls_within(&api, CA_SA, &[rbac::WORKLOAD_CA, rbac::WORKLOAD_CA_IN_NAMESPACE]);
}

#[test]
fn a_node_cannot_obtain_a_certificate_for_a_service_account_without_a_pod_on_it() {
    let api = ApiServer::start();
    api.apply(pod_on("shop", "app-1", "app", "node-2"));
    api.apply(pod_on("shop", "db-1", "db", "node-1"));
    let ca = WorkloadCa::start(&api, None, &[]);
    let node_1 = api.kubeconfig_for_service_account(AGENT_NS, AGENT_SA, Some("node-1"));
    // node-1 runs a pod of shop/db, not of shop/app.
    create_csr(&node_1, "stolen", SHOP_APP, support::SIGNER, None);
    // A workload's own token, even on the right node, is not a node agent's.
    let workload = api.kubeconfig_for_service_account("shop", "app", Some("node-2"));
    create_csr(&workload, "self-made", SHOP_APP, support::SIGNER, None);
    // A node agent token without a node binding proves no node.
    let unbound = api.kubeconfig_for_service_account(AGENT_NS, AGENT_SA, None);
    create_csr(&unbound, "unbound", SHOP_APP, support::SIGNER, None);
    for (name, reason) in [("stolen", "NotEntitled"), ("self-made", "NotANodeAgent"), ("unbound", "NoNodeBinding")] {
        let csr = ca.wait_concluded(&api, name);
        assert_eq!(condition(&csr), Some(("Denied".into(), reason.into())), "{name}: {csr}\n{}", ca.log());
        assert!(support::certificate(&csr).is_none(), "{name}: never signed: {csr}");
    }
    // The CA signs nothing a test approves behind its back either.
    create_csr(&node_1, "approved-by-hand", SHOP_APP, support::SIGNER, None);
    api.approve_csr("approved-by-hand");
    let csr = ca.wait_concluded(&api, "approved-by-hand");
    assert!(support::certificate(&csr).is_none(), "an approval alone does not make the CA sign: {csr}");
    let conditions = csr["status"]["conditions"].as_array().cloned().unwrap_or_default();
    assert!(conditions.iter().any(|c| c["type"] == "Failed" && c["reason"] == "NotEntitled"), "{csr}");
}

#[test]
fn a_csr_naming_another_signer_is_left_alone() {
    let api = ApiServer::start();
    api.apply(pod_on("shop", "app-1", "app", "node-1"));
    let ca = WorkloadCa::start(&api, None, &[]);
    let node_1 = api.kubeconfig_for_service_account(AGENT_NS, AGENT_SA, Some("node-1"));
    create_csr(&node_1, "for-someone-else", SHOP_APP, "example.com/other", None);
    create_csr(&node_1, "ours", SHOP_APP, support::SIGNER, None);
    // Once the later CSR of its own signer is concluded, the CA has seen both.
    let ours = ca.wait_concluded(&api, "ours");
    assert!(support::certificate(&ours).is_some(), "{ours}");
    let other = api.csrs().into_iter().find(|c| c["metadata"]["name"] == "for-someone-else").expect("still there");
    assert!(other["status"].get("conditions").is_none() && support::certificate(&other).is_none(), "untouched: {other}");
    let touched: Vec<_> = api.requests().into_iter().filter(|r| r.name.as_deref() == Some("for-someone-else") && r.user.ends_with(CA_SA)).collect();
    assert!(touched.is_empty(), "the CA made no call about the other signer's CSR: {touched:?}");
}

#[test]
fn the_node_agent_obtains_renews_and_drops_its_pods_certificates() {
    let topo = Topology::build();
    let api = ApiServer::start_in(&topo.node);
    api.apply(namespace("shop", &[]));
    let tree = kubelet(&topo, Driver::Systemd);
    // Certificates of 60 s at most: the agent renews each at about 40 s.
    let ca = WorkloadCa::start(&api, Some(&topo.node), &["--max-lifetime-secs", "60"]);
    let certs = topo.temp.subdir("workload-certs");
    let mesh_ca = topo.temp.path().join("mesh-ca.crt");
    let extra = ["--workload-certs-from-csr", "--workload-certs", &certs.to_string_lossy(), "--mesh-ca", &mesh_ca.to_string_lossy()];
    let mut config = agent_config(&topo, &api, &tree, &extra);
    let agent_kubeconfig = api.kubeconfig_for_service_account(AGENT_NS, AGENT_SA, Some(NODE));
    let at = config.extra_args.iter().position(|a| a == "--kubeconfig").expect("--kubeconfig") + 1;
    config.extra_args[at] = agent_kubeconfig.to_string_lossy().into_owned();
    let gw = Gateway::start(&topo, config);

    let uid = "5e000000-0000-4000-8000-0000000000c1";
    let _cg = tree.add_pod(uid);
    let started = Instant::now();
    let pod = PodSpec { namespace: "shop", name: "app-1", uid, service_account: "app", labels: &[], ip: IpAddr::V4(topo.pod_a.v4) };
    api.apply(pod.object());
    let (crt, key) = (certs.join("shop-app.crt"), certs.join("shop-app.key"));
    let first = wait::poll(PATIENCE, Duration::from_millis(50), || std::fs::read_to_string(&crt).ok())
        .unwrap_or_else(|| panic!("no certificate written\nagent:\n{}\nCA:\n{}", gw.stderr_tail(), ca.log()));
    eprintln!("figure: pod announced to its certificate written: {} ms", started.elapsed().as_millis());
    openssl_check(&ca.ca_pem, &first, "spiffe://cluster.local/ns/shop/sa/app");
    support::assert_key_matches(&key, &first);
    support::assert_owner_only(&key);
    let bundle = wait::poll(PATIENCE, Duration::from_millis(100), || std::fs::read_to_string(&mesh_ca).ok()).expect("the trust bundle file");
    assert_eq!(bundle, ca.ca_pem, "--mesh-ca holds the published trust bundle");

    // Renewal: a new certificate, for a new key, before the first expires.
    let renewed = wait::poll(Duration::from_secs(90), Duration::from_millis(200), || {
        std::fs::read_to_string(&crt).ok().filter(|c| *c != first)
    })
    .unwrap_or_else(|| panic!("no renewal\nagent:\n{}", gw.stderr_tail()));
    openssl_check(&ca.ca_pem, &renewed, "spiffe://cluster.local/ns/shop/sa/app");
    support::assert_key_matches(&key, &renewed);

    // The pod leaves the node: its certificate goes too.
    api.delete("v1", "Pod", "shop", "app-1");
    wait::until("the certificate files removed", PATIENCE, || !crt.exists() && !key.exists());
    assert_calls_within(&api, AGENT_SA, &[rbac::NODE_AGENT, rbac::NODE_AGENT_WORKLOAD_CERTS, rbac::NODE_AGENT_WORKLOAD_CERTS_IN_NAMESPACE]);
    drop((gw, ca, tree));
    topo.teardown();
}

#[test]
fn a_gateway_obtains_its_own_identity_and_presents_the_renewed_one() {
    let topo = Topology::build();
    let api = ApiServer::start_in(&topo.node);
    api.apply(serde_json::json!({"apiVersion": "networking.istio.io/v1", "kind": "Gateway",
        "metadata": {"name": "mesh-in", "namespace": "default"},
        "spec": {"selector": {"istio": "ingressgateway"}, "servers": [
            {"port": {"number": 15443, "name": "tls", "protocol": "HTTPS"}, "hosts": ["api.test"], "tls": {"mode": "ISTIO_MUTUAL"}}]}}));
    let ca = WorkloadCa::start(&api, Some(&topo.node), &["--max-lifetime-secs", "60", "--gateway", "gateway-system/gateway"]);
    let dir = topo.temp.subdir("gateway-identity");
    let (cert, key, mesh_ca) = (dir.join("own/tls.crt"), dir.join("own/tls.key"), dir.join("mesh-ca.crt"));
    let kubeconfig = api.kubeconfig_for_service_account(AGENT_NS, "gateway", None);
    let path = |p: &std::path::Path| p.to_string_lossy().into_owned();
    let started = Instant::now();
    let extra = ["--kubernetes", "--kubeconfig", &path(&kubeconfig), "--cert-from-csr", "--service-account", "gateway-system/gateway",
        "--cert", &path(&cert), "--key", &path(&key), "--mesh-ca", &path(&mesh_ca)];
    let gw = Gateway::start(&topo, GatewayConfig::ingress(&topo, Vec::new(), &extra));
    eprintln!("figure: gateway start to ready with its certificate from a CSR: {} ms", started.elapsed().as_millis());
    let own = "spiffe://cluster.local/ns/gateway-system/sa/gateway";
    let first = std::fs::read_to_string(&cert).expect("the gateway's certificate");
    openssl_check(&ca.ca_pem, &first, own);

    // A mesh client (a workload certificate from the same CA) sees it.
    let client = gateway_userspace::tls::IssueRequest {
        name: "client".into(),
        spiffe: Some(gateway_userspace::tls::SpiffeId::new("cluster.local", "shop", "app").unwrap()),
        client: true,
        ..Default::default()
    };
    let client = gateway_userspace::tls::issue(&ca.files(), &dir, &client).expect("a client certificate");
    let presented = || {
        let script = format!(
            "openssl s_client -connect 198.18.1.1:15443 -servername api.test -CAfile {ca} -cert {c} -key {k} </dev/null 2>/dev/null | openssl x509 -noout -serial",
            ca = path(&ca.files().cert), c = path(&client.cert), k = path(&client.key)
        );
        let out = topo.pod_a.command_outside_cgroup("sh", &["-c", &script]).output().expect("openssl s_client runs");
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    assert_eq!(presented(), support::serial(&first), "the gateway presents its certificate\n{}", gw.stderr_tail());

    // Renewed on disk, presented from the next handshake on.
    let renewed = wait::poll(Duration::from_secs(90), Duration::from_millis(200), || {
        std::fs::read_to_string(&cert).ok().filter(|c| *c != first)
    })
    .unwrap_or_else(|| panic!("no renewal\n{}", gw.stderr_tail()));
    openssl_check(&ca.ca_pem, &renewed, own);
    let want = support::serial(&renewed);
    let seen = wait::poll(PATIENCE, Duration::from_millis(200), || Some(presented()).filter(|s| *s == want));
    assert_eq!(seen.as_deref(), Some(want.as_str()), "the renewed certificate is presented\n{}", gw.stderr_tail());
    assert_calls_within(&api, "gateway", &[rbac::GATEWAY, rbac::GATEWAY_WORKLOAD_CERTS, rbac::GATEWAY_WORKLOAD_CERTS_IN_NAMESPACE]);
    drop((gw, ca));
    topo.teardown();
}
