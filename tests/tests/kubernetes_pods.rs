//! The node agent in a cluster: pods found through the API server (the
//! stand-in in `kube_api`), intercepted through the kubelet's cgroup tree,
//! known by their identity, and the registry read from Services and
//! ServiceEntries. Real kernel programs, real processes in pod namespaces,
//! real cgroups shaped as the kubelet makes them.

use std::net::IpAddr;
use std::time::{Duration, Instant};

use gateway_tests::addresses::*;
use gateway_tests::checks::node_address_towards;
use gateway_tests::echo_server::EchoServer;
use gateway_tests::gateway_log::ConnectionEvent;
use gateway_tests::gateway_process::Gateway;
use gateway_tests::kube_api::ApiServer;
use gateway_tests::kube_node::{PodSpec, agent_config, kubelet, namespace, probe, probe_command};
use gateway_tests::kubelet::Driver;
use gateway_tests::topology::Topology;
use gateway_tests::wait;
use serde_json::{Value, json};

const EVENT_TIMEOUT: Duration = Duration::from_secs(10);

fn service_entry(ns: &str, name: &str, address: &str, port: u16) -> Value {
    json!({"apiVersion": "networking.istio.io/v1", "kind": "ServiceEntry",
           "metadata": {"name": name, "namespace": ns},
           "spec": {"hosts": [format!("{name}.example.com")], "addresses": [format!("{address}/32")],
                    "ports": [{"number": port, "name": "tcp", "protocol": "TCP"}], "resolution": "NONE",
                    "location": "MESH_EXTERNAL"}})
}

fn pod<'a>(ns: &'a str, name: &'a str, uid: &'a str, labels: &'a [(&'a str, &'a str)], ip: IpAddr) -> PodSpec<'a> {
    PodSpec { namespace: ns, name, uid, service_account: "sa-app", labels, ip }
}

/// The JSON of the connection line from `src`'s address to `port`.
fn line_from(events: &[ConnectionEvent], src: IpAddr, port: u16) -> Option<Value> {
    events
        .iter()
        .rev()
        .find(|e| e.src.ip().to_canonical() == src && e.orig_dst.is_some_and(|d| d.port() == port))
        .map(|e| serde_json::from_str(&e.raw).expect("JSON line"))
}

#[test]
fn a_pod_created_after_start_is_intercepted_as_itself_and_its_sidecar_applies() {
    let topo = Topology::build();
    let server = EchoServer::start(&topo.internet, &[7]);
    let api = ApiServer::start_in(&topo.node);
    api.apply(namespace("shop", &[]));
    api.apply(service_entry("shop", "echo", &INTERNET_V4.to_string(), 7));
    // Workloads labelled app=locked may only reach istio-system's hosts.
    api.apply(json!({"apiVersion": "networking.istio.io/v1", "kind": "Sidecar",
        "metadata": {"name": "locked", "namespace": "shop"},
        "spec": {"workloadSelector": {"labels": {"app": "locked"}}, "egress": [{"hosts": ["istio-system/*"]}]}}));
    let tree = kubelet(&topo, Driver::Systemd);
    let gw = Gateway::start(&topo, agent_config(&topo, &api, &tree, &[]));

    let uid = "6b1f2c3d-0000-4000-8000-00000000000a";
    let cg = tree.add_pod(uid);
    let started = Instant::now();
    api.apply(pod("shop", "client", uid, &[("app", "client")], IpAddr::V4(topo.pod_a.v4)).object());
    let answer = probe(&cg, &topo.pod_a.netns.path(), &INTERNET_V4.to_string(), 7);
    let elapsed = started.elapsed();
    assert_eq!(answer, "ok ping", "the new pod reaches its registered host; gateway said:\n{}\n{}", gw.stdout(), gw.stderr_tail());
    eprintln!("figure: pod announced to its first intercepted, attributed connection answered: {} ms", elapsed.as_millis());

    let events = gw.wait_for_events(1, EVENT_TIMEOUT);
    let line = line_from(&events, IpAddr::V4(topo.pod_a.v4), 7).expect("a line for the pod's connection");
    assert_eq!(line["decision"], "allow", "{line}");
    let w = &line["workload"];
    assert_eq!((w["namespace"].as_str(), w["name"].as_str(), w["service_account"].as_str()), (Some("shop"), Some("client"), Some("sa-app")), "{line}");
    assert_eq!(w["labels"]["app"], "client", "{line}");
    let seen = server.wait_finished(1, EVENT_TIMEOUT);
    assert_eq!(seen[0].peer.ip(), node_address_towards(seen[0].local), "the server sees the proxy, not the pod");

    // The same pod shape, labelled for the Sidecar, is held to istio-system.
    let uid = "6b1f2c3d-0000-4000-8000-00000000000b";
    let cg = tree.add_pod(uid);
    api.apply(pod("shop", "locked", uid, &[("app", "locked")], IpAddr::V4(topo.pod_b.v4)).object());
    let answer = probe(&cg, &topo.pod_b.netns.path(), &INTERNET_V4.to_string(), 7);
    assert!(answer.starts_with("refused"), "the Sidecar narrows the locked pod's egress: {answer}");
    let events = gw.wait_for_events(2, EVENT_TIMEOUT);
    let line = line_from(&events, IpAddr::V4(topo.pod_b.v4), 7).expect("a line for the locked pod");
    assert_eq!((line["decision"].as_str(), line["workload"]["name"].as_str()), (Some("deny"), Some("locked")), "{line}");
    assert_eq!(server.count(), 1, "only the allowed connection reached the server");
    drop((gw, tree));
    topo.teardown();
}

#[test]
fn kube_system_and_opted_out_pods_connect_directly_without_a_proxy_record() {
    let topo = Topology::build();
    let server = EchoServer::start(&topo.internet, &[7]);
    let api = ApiServer::start_in(&topo.node);
    api.apply(namespace("kube-system", &[]));
    api.apply(namespace("shop", &[]));
    let tree = kubelet(&topo, Driver::Cgroupfs);
    // Both exist before the agent starts: exempted before anything is attached.
    let system = tree.add_pod("7c000000-0000-4000-8000-000000000001");
    api.apply(pod("kube-system", "dns", "7c000000-0000-4000-8000-000000000001", &[], IpAddr::V4(topo.pod_a.v4)).object());
    let quiet = tree.add_pod("7c000000-0000-4000-8000-000000000002");
    let none = [("istio.io/dataplane-mode", "none")];
    api.apply(pod("shop", "quiet", "7c000000-0000-4000-8000-000000000002", &none, IpAddr::V4(topo.pod_b.v4)).object());
    let gw = Gateway::start(&topo, agent_config(&topo, &api, &tree, &[]));

    let target = INTERNET_V4.to_string();
    assert_eq!(probe(&system, &topo.pod_a.netns.path(), &target, 7), "ok ping", "a kube-system pod is left alone");
    assert_eq!(probe(&quiet, &topo.pod_b.netns.path(), &target, 7), "ok ping", "an opted-out pod is left alone");
    let seen = server.wait_finished(2, EVENT_TIMEOUT);
    let mut sources: Vec<IpAddr> = seen.iter().map(|a| a.peer.ip()).collect();
    sources.sort();
    assert_eq!(sources, [IpAddr::V4(topo.pod_a.v4), IpAddr::V4(topo.pod_b.v4)], "direct connections carry the pods' own addresses");
    std::thread::sleep(Duration::from_millis(300));
    assert!(gw.events().is_empty(), "no proxy record for exempted pods: {:?}", gw.events());
    drop((gw, tree));
    topo.teardown();
}

#[test]
fn a_pod_not_yet_announced_is_held_then_allowed_or_refused() {
    let topo = Topology::build();
    let server = EchoServer::start(&topo.internet, &[7]);
    let api = ApiServer::start_in(&topo.node);
    api.apply(service_entry("shop", "echo", &INTERNET_V4.to_string(), 7));
    let tree = kubelet(&topo, Driver::Systemd);
    let gw = Gateway::start(&topo, agent_config(&topo, &api, &tree, &["--unknown-workload-wait-ms", "3000"]));
    let target = INTERNET_V4.to_string();

    // Announced while its first connection waits: allowed.
    let late = tree.add_pod("8d000000-0000-4000-8000-000000000001");
    let mut client = probe_command(&late, &topo.pod_a.netns.path(), &target, 7);
    let waiting = std::thread::spawn(move || client.output());
    std::thread::sleep(Duration::from_millis(800));
    api.apply(pod("shop", "late", "8d000000-0000-4000-8000-000000000001", &[], IpAddr::V4(topo.pod_a.v4)).object());
    let out = waiting.join().unwrap().expect("probe runs");
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "ok ping", "held, then allowed once the pod is known");

    // Never announced: refused after the wait, never allowed.
    let ghost = tree.add_pod("8d000000-0000-4000-8000-000000000002");
    let answer = probe(&ghost, &topo.pod_b.netns.path(), &target, 7);
    assert!(answer.starts_with("refused"), "an unknown workload is refused: {answer}");
    let events = gw.wait_for_events(2, EVENT_TIMEOUT);
    let line = line_from(&events, IpAddr::V4(topo.pod_b.v4), 7).expect("a line for the unknown pod");
    assert_eq!((line["decision"].as_str(), line["reason"].as_str()), (Some("deny"), Some("unknown-workload")), "{line}");
    assert_eq!(server.count(), 1, "only the announced pod's connection arrived");
    drop((gw, tree));
    topo.teardown();
}

#[test]
fn service_cluster_ips_and_the_api_server_are_registered_and_nothing_else_is() {
    let topo = Topology::build();
    let server = EchoServer::start(&topo.internet, &[7, 443]);
    let api = ApiServer::start_in(&topo.node);
    let cluster_ip = |i: u8| internet_v4(i).to_string();
    api.apply(json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "reviews", "namespace": "bookinfo"},
        "spec": {"clusterIP": cluster_ip(1), "clusterIPs": [cluster_ip(1)], "ports": [{"port": 7, "name": "tcp-echo"}]}}));
    api.apply(json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "kubernetes", "namespace": "default"},
        "spec": {"clusterIP": cluster_ip(2), "clusterIPs": [cluster_ip(2)], "ports": [{"port": 443, "name": "https"}]}}));
    let tree = kubelet(&topo, Driver::Systemd);
    let cg = tree.add_pod("9e000000-0000-4000-8000-000000000001");
    api.apply(pod("bookinfo", "productpage", "9e000000-0000-4000-8000-000000000001", &[], IpAddr::V4(topo.pod_a.v4)).object());
    let gw = Gateway::start(&topo, agent_config(&topo, &api, &tree, &[]));
    let netns = topo.pod_a.netns.path();

    assert_eq!(probe(&cg, &netns, &cluster_ip(1), 7), "ok ping", "a Service's ClusterIP is registered");
    // The API server, by its ClusterIP, over TLS with the name pods use.
    let tls = cg
        .command(&netns, "python3", &["-c", TLS_HELLO, &cluster_ip(2), "443", "kubernetes.default.svc"])
        .output()
        .expect("TLS probe runs");
    let tls_said = String::from_utf8_lossy(&tls.stdout).to_string();
    assert!(probe(&cg, &netns, &cluster_ip(3), 7).starts_with("refused"), "an unregistered address is refused");
    let events = gw.wait_for_events(3, EVENT_TIMEOUT);
    let line = line_from(&events, IpAddr::V4(topo.pod_a.v4), 443).expect("a line for the API server connection");
    assert_eq!(line["decision"], "allow", "kubernetes.default.svc is reachable: {line}; probe said {tls_said}");
    let reached: Vec<_> = server.accepted().iter().map(|a| a.local.ip()).collect();
    assert!(reached.contains(&IpAddr::V4(internet_v4(2))), "the API server's address was reached: {reached:?}");
    assert!(!reached.contains(&IpAddr::V4(internet_v4(3))), "the unregistered address was not: {reached:?}");
    drop((gw, tree));
    topo.teardown();
}

/// Sends a TLS ClientHello with the given SNI; the echo server answers
/// garbage, so the handshake fails either way: what matters is where the
/// hello went.
const TLS_HELLO: &str = r#"
import socket, ssl, sys
ctx = ssl.create_default_context()
try:
    s = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=5)
    ctx.wrap_socket(s, server_hostname=sys.argv[3])
    print("handshake")
except Exception as e:
    print("ended", type(e).__name__, e)
"#;

#[test]
fn with_the_api_server_down_the_last_state_holds_and_new_pods_are_refused() {
    let topo = Topology::build();
    let _server = EchoServer::start(&topo.internet, &[7]);
    let api = ApiServer::start_in(&topo.node);
    api.apply(service_entry("shop", "echo", &INTERNET_V4.to_string(), 7));
    let tree = kubelet(&topo, Driver::Systemd);
    let known = tree.add_pod("af000000-0000-4000-8000-000000000001");
    api.apply(pod("shop", "known", "af000000-0000-4000-8000-000000000001", &[], IpAddr::V4(topo.pod_a.v4)).object());
    let gw = Gateway::start(&topo, agent_config(&topo, &api, &tree, &["--unknown-workload-wait-ms", "1000"]));
    let target = INTERNET_V4.to_string();
    assert_eq!(probe(&known, &topo.pod_a.netns.path(), &target, 7), "ok ping");

    api.stop();
    assert_eq!(probe(&known, &topo.pod_a.netns.path(), &target, 7), "ok ping", "the last known state keeps being enforced");
    assert!(probe(&known, &topo.pod_a.netns.path(), &internet_v4(1).to_string(), 7).starts_with("refused"), "and still denies");
    let fresh = tree.add_pod("af000000-0000-4000-8000-000000000002");
    assert!(probe(&fresh, &topo.pod_b.netns.path(), &target, 7).starts_with("refused"), "a pod the agent cannot learn about is refused");

    api.resume();
    api.apply(pod("shop", "fresh", "af000000-0000-4000-8000-000000000002", &[], IpAddr::V4(topo.pod_b.v4)).object());
    let back = wait::poll(Duration::from_secs(40), Duration::from_millis(200), || {
        (probe(&fresh, &topo.pod_b.netns.path(), &target, 7) == "ok ping").then_some(())
    });
    assert!(back.is_some(), "once the API server is back, the new pod is known and allowed");
    drop((gw, tree));
    topo.teardown();
}
