//! The node agent's configuration from the API server: resources take
//! effect as they change, a broken one is reported on itself and spares the
//! rest, restarts leave no gap, and the agent's footprint at scale.

use std::net::IpAddr;
use std::time::{Duration, Instant};

use gateway_tests::addresses::*;
use gateway_tests::capture::Capture;
use gateway_tests::echo_server::EchoServer;
use gateway_tests::gateway_process::Gateway;
use gateway_tests::kube_api::ApiServer;
use gateway_tests::kube_node::{NODE, PodSpec, agent_config, kubelet, probe};
use gateway_tests::kubelet::Driver;
use gateway_tests::topology::Topology;
use gateway_tests::wait;
use serde_json::{Value, json};

fn service_entry(ns: &str, name: &str, address: &str, port: u16) -> Value {
    json!({"apiVersion": "networking.istio.io/v1", "kind": "ServiceEntry",
           "metadata": {"name": name, "namespace": ns},
           "spec": {"hosts": [format!("{name}.example.com")], "addresses": [format!("{address}/32")],
                    "ports": [{"number": port, "name": "tcp", "protocol": "TCP"}], "resolution": "NONE"}})
}

fn pod_object(name: &str, uid: &str, ip: IpAddr) -> Value {
    PodSpec { namespace: "shop", name, uid, service_account: "sa-app", labels: &[], ip }.object()
}

#[test]
fn resources_from_the_api_take_effect_and_a_broken_one_is_reported_on_itself() {
    let topo = Topology::build();
    let _server = EchoServer::start(&topo.internet, &[7]);
    let api = ApiServer::start_in(&topo.node);
    let tree = kubelet(&topo, Driver::Systemd);
    let cg = tree.add_pod("b1000000-0000-4000-8000-000000000001");
    api.apply(pod_object("client", "b1000000-0000-4000-8000-000000000001", IpAddr::V4(topo.pod_a.v4)));
    let gw = Gateway::start(&topo, agent_config(&topo, &api, &tree, &[]));
    let netns = topo.pod_a.netns.path();
    let first = INTERNET_V4.to_string();
    assert!(probe(&cg, &netns, &first, 7).starts_with("refused"), "nothing is registered yet");

    // A ServiceEntry created through the API.
    let started = Instant::now();
    api.apply(service_entry("shop", "first", &first, 7));
    let took = wait::poll(Duration::from_secs(10), Duration::from_millis(50), || {
        (probe(&cg, &netns, &first, 7) == "ok ping").then(|| started.elapsed())
    });
    let took = took.expect("a ServiceEntry created through the API takes effect");
    eprintln!("figure: ServiceEntry applied through the API to an allowed connection: {} ms", took.as_millis());

    // A VirtualService whose weights do not add up: an Event on it, the rest keeps working.
    api.apply(json!({"apiVersion": "networking.istio.io/v1", "kind": "VirtualService",
        "metadata": {"name": "broken", "namespace": "shop"},
        "spec": {"hosts": ["first.example.com"], "tcp": [{"route": [
            {"destination": {"host": "first.example.com"}, "weight": 30},
            {"destination": {"host": "first.example.com"}, "weight": 30}]}]}}));
    let second = internet_v4(1).to_string();
    api.apply(service_entry("shop", "second", &second, 7));
    let event = wait::poll(Duration::from_secs(10), Duration::from_millis(100), || {
        api.events().into_iter().find(|e| e.pointer("/regarding/name").and_then(Value::as_str) == Some("broken"))
    });
    let event = event.unwrap_or_else(|| panic!("an Event on the broken VirtualService: {:?}", api.events()));
    assert_eq!(event["reason"], "GW1009", "{event}");
    assert_eq!(event["type"], "Warning", "{event}");
    assert_eq!(event.pointer("/regarding/kind").and_then(Value::as_str), Some("VirtualService"), "{event}");
    let both = wait::poll(Duration::from_secs(10), Duration::from_millis(50), || {
        (probe(&cg, &netns, &second, 7) == "ok ping").then_some(())
    });
    assert!(both.is_some(), "a resource created after the broken one still takes effect");
    assert_eq!(probe(&cg, &netns, &first, 7), "ok ping", "and the earlier one stays");
    let (_, metrics) = gw.admin_request("GET", "/metrics");
    assert!(metrics.contains("gateway_config_rejected_resources 1"), "the rejection is counted:\n{metrics}");
    assert_calls_granted(&api);
    drop((gw, tree));
    topo.teardown();
}

/// Every call the agent made (watches, lists, Events) is one its
/// ClusterRole grants: the table in `kubernetes::rbac` that `deploy/`
/// renders, and that `deploy_manifests` checks against the manifests.
fn assert_calls_granted(api: &ApiServer) {
    let calls = api.requests();
    assert!(calls.iter().any(|c| c.verb == "watch" && c.resource == "pods"), "the agent watched pods: {calls:?}");
    assert!(calls.iter().any(|c| c.verb == "create" && c.resource == "events"), "the agent wrote an Event: {calls:?}");
    for call in calls.iter().filter(|c| !c.resource.is_empty()) {
        let granted = gateway_userspace::kubernetes::rbac::NODE_AGENT
            .iter()
            .any(|g| g.group == call.group && g.resource == call.resource && g.verbs.contains(&call.verb.as_str()));
        assert!(granted, "the node agent's ClusterRole does not grant {} {}/{}", call.verb, call.group, call.resource);
    }
}

#[test]
fn after_kill_9_nothing_leaks_until_the_agent_is_back() {
    let topo = Topology::build();
    let server = EchoServer::start(&topo.internet, &[7]);
    let api = ApiServer::start_in(&topo.node);
    api.apply(service_entry("shop", "echo", &INTERNET_V4.to_string(), 7));
    let tree = kubelet(&topo, Driver::Cgroupfs);
    let cg = tree.add_pod("c2000000-0000-4000-8000-000000000001");
    api.apply(pod_object("client", "c2000000-0000-4000-8000-000000000001", IpAddr::V4(topo.pod_a.v4)));
    let capture = Capture::from_pods(&topo.internet, &topo.temp.subdir("capture"));
    capture.assert_sees_a_bypass(&topo.pod_a, std::net::SocketAddr::new(internet_v4(3).into(), 9999));
    let mut gw = Gateway::start(&topo, agent_config(&topo, &api, &tree, &[]));
    let netns = topo.pod_a.netns.path();
    let target = INTERNET_V4.to_string();
    assert_eq!(probe(&cg, &netns, &target, 7), "ok ping");

    gw.kill9();
    let mut refused = 0;
    for _ in 0..5 {
        let answer = probe(&cg, &netns, &target, 7);
        assert!(answer.starts_with("refused"), "with the agent gone, connections are refused: {answer}");
        refused += 1;
    }
    let before_restart = server.count();
    gw.restart();
    assert_eq!(probe(&cg, &netns, &target, 7), "ok ping", "served again after the restart");
    eprintln!("figure: {refused} connections during the gap, all refused");
    std::thread::sleep(Duration::from_millis(300));
    capture.assert_no_bypass_to(&[7]);
    assert_eq!(before_restart, 1, "nothing reached the server while the agent was down");
    drop((gw, tree));
    topo.teardown();
}

#[test]
fn the_agents_memory_with_a_hundred_pods_and_a_thousand_services() {
    let topo = Topology::build();
    let _server = EchoServer::start(&topo.internet, &[7]);
    let api = ApiServer::start_in(&topo.node);
    let tree = kubelet(&topo, Driver::Systemd);
    for i in 0..1000u32 {
        let ip = format!("198.51.{}.{}", i / 250, i % 250 + 1);
        api.apply(json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": format!("svc-{i}"), "namespace": format!("ns-{}", i % 20)},
            "spec": {"clusterIP": ip, "clusterIPs": [ip], "ports": [{"port": 8080, "name": "http"}]}}));
    }
    let mut pods = Vec::new();
    for i in 0..100u32 {
        let uid = format!("d3000000-0000-4000-8000-{i:012}");
        pods.push(tree.add_pod(&uid));
        let ip = IpAddr::V4(std::net::Ipv4Addr::new(198, 18, 100 + (i / 200) as u8, (i % 200 + 2) as u8));
        api.apply(PodSpec { namespace: "shop", name: &format!("pod-{i}"), uid: &uid, service_account: "sa", labels: &[], ip }.object());
    }
    api.apply(service_entry("shop", "echo", &INTERNET_V4.to_string(), 7));
    let started = Instant::now();
    let gw = Gateway::start(&topo, agent_config(&topo, &api, &tree, &[]));
    let ready = started.elapsed();
    assert_eq!(probe(&pods[99], &topo.pod_a.netns.path(), &INTERNET_V4.to_string(), 7), "ok ping", "the last pod is served");
    let status = std::fs::read_to_string(format!("/proc/{}/status", gw.pid())).expect("the agent's /proc status");
    let rss = status.lines().find(|l| l.starts_with("VmRSS:")).expect("VmRSS").to_string();
    eprintln!("figure: node agent with 100 pods on {NODE} and 1000 Services: {rss} (ready {} ms after start)", ready.as_millis());
    drop((gw, tree, pods));
    topo.teardown();
}

#[test]
fn a_missing_crd_keeps_the_agent_not_ready_until_it_is_installed() {
    let topo = Topology::build();
    let api = ApiServer::start_in(&topo.node);
    api.remove_resource("networking.istio.io", "sidecars");
    let tree = kubelet(&topo, Driver::Systemd);
    let mut gw = Gateway::start_alive(&topo, agent_config(&topo, &api, &tree, &[]));
    std::thread::sleep(Duration::from_secs(2));
    assert_ne!(gw.admin_status("/ready"), Some(200), "without the Sidecar CRD the configuration is incomplete, so not ready");
    api.add_resource("networking.istio.io", "sidecars");
    gw.wait_ready();
    drop((gw, tree));
    topo.teardown();
}

#[test]
fn at_sigterm_the_interception_stays_while_the_daemonset_exists_and_goes_with_it() {
    let topo = Topology::build();
    let api = ApiServer::start_in(&topo.node);
    let daemonset = json!({"apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": {"name": "gateway-node", "namespace": "gateway-system"},
        "spec": {"selector": {"matchLabels": {"app": "gw"}}, "template": {"metadata": {"labels": {"app": "gw"}},
                 "spec": {"containers": [{"name": "agent", "image": "gateway"}]}}}});
    api.apply(daemonset);
    let tree = kubelet(&topo, Driver::Systemd);
    let config = agent_config(&topo, &api, &tree, &["--daemonset", "gateway-system/gateway-node"]);
    let links = topo.bpffs.join("links");
    let mut gw = Gateway::start(&topo, config);
    gw.stop();
    assert!(std::fs::read_dir(&links).map(|mut d| d.next().is_some()).unwrap_or(false), "an upgrade or drain keeps the links pinned");

    api.delete("apps/v1", "DaemonSet", "gateway-system", "gateway-node");
    gw.restart();
    gw.stop();
    assert!(!topo.bpffs.exists(), "an uninstall removes everything pinned: {:?}", std::fs::read_dir(&topo.bpffs).map(|d| d.count()));
    let granted = api.requests().iter().any(|c| c.verb == "get" && c.resource == "daemonsets");
    assert!(granted, "the agent asked for its DaemonSet");
    drop((gw, tree));
    topo.teardown();
}

#[test]
fn validate_analyzes_the_live_clusters_resources() {
    let api = ApiServer::start();
    api.apply(service_entry("shop", "fine", "203.0.113.10", 7));
    api.apply(json!({"apiVersion": "networking.istio.io/v1", "kind": "VirtualService",
        "metadata": {"name": "broken", "namespace": "shop"},
        "spec": {"hosts": ["fine.example.com"], "tcp": [{"route": [{"destination": {"host": "fine.example.com"}, "weight": 30}]}]}}));
    let bin = gateway_tests::gateway_process::gateway_bin();
    let kubeconfig = api.kubeconfig();
    let out = std::process::Command::new(&bin)
        .args(["validate", "--kubernetes", "--kubeconfig"])
        .arg(&kubeconfig)
        .output()
        .expect("gateway validate runs");
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "errors exit 1:\n{text}{}", String::from_utf8_lossy(&out.stderr));
    assert!(text.contains("kubernetes:VirtualService/shop/broken") && text.contains("GW1009"), "the finding names the resource and its code:\n{text}");
    api.delete("networking.istio.io/v1", "VirtualService", "shop", "broken");
    let out = std::process::Command::new(&bin).args(["validate", "--kubernetes", "--kubeconfig"]).arg(&kubeconfig).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stdout));
    api.remove_resource("networking.istio.io", "sidecars");
    let out = std::process::Command::new(&bin).args(["validate", "--kubernetes", "--kubeconfig"]).arg(&kubeconfig).output().unwrap();
    assert_eq!(out.status.code(), Some(2), "a missing CRD cannot be analyzed: {}", String::from_utf8_lossy(&out.stderr));
}
