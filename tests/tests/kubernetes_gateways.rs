//! An ingress gateway in a cluster: no interception, its Istio resources read from the API
//! server (the stand-in in `kube_api`). A Gateway changed through the API opens its new port,
//! and one deleted closes its ports, without a restart.

use gateway_tests::client::curl_status;
use gateway_tests::gateway_listeners::{caught_up, connect, port};
use gateway_tests::gateway_process::{Gateway, GatewayConfig};
use gateway_tests::http_backend::HttpBackend;
use gateway_tests::kube_api::ApiServer;
use gateway_tests::topology::Topology;
use serde_json::{Value, json};

/// The node as pod-a (here an outside client) reaches it.
const NODE: &str = "198.18.1.1";

/// The Gateway `edge` for `istio: ingressgateway`, one HTTP server for `api.test` per port.
fn edge(ports: &[u16]) -> Value {
    let servers: Vec<Value> =
        ports.iter().map(|p| json!({"port": {"number": p, "name": format!("http-{p}"), "protocol": "HTTP"}, "hosts": ["api.test"]})).collect();
    json!({"apiVersion": "networking.istio.io/v1", "kind": "Gateway", "metadata": {"name": "edge", "namespace": "default"},
           "spec": {"selector": {"istio": "ingressgateway"}, "servers": servers}})
}

/// The api backend (203.0.113.12:8080) and its route through `edge`.
fn api_objects() -> [Value; 2] {
    [
        json!({"apiVersion": "networking.istio.io/v1", "kind": "ServiceEntry", "metadata": {"name": "api", "namespace": "default"},
               "spec": {"hosts": ["api.default.svc.cluster.local"], "ports": [{"number": 8080, "name": "http", "protocol": "HTTP"}],
                        "location": "MESH_INTERNAL", "resolution": "STATIC", "endpoints": [{"address": "203.0.113.12"}]}}),
        json!({"apiVersion": "networking.istio.io/v1", "kind": "VirtualService", "metadata": {"name": "api", "namespace": "default"},
               "spec": {"hosts": ["api.test"], "gateways": ["edge"],
                        "http": [{"route": [{"destination": {"host": "api.default.svc.cluster.local", "port": {"number": 8080}}}]}]}}),
    ]
}

fn get(topo: &Topology, port: u16, path: &str) -> (u16, String) {
    let url = format!("http://{NODE}:{port}{path}");
    let (code, body, _) = curl_status(|a| topo.pod_a.command_outside_cgroup("curl", a), &["-H", "Host: api.test", &url]);
    (code, body)
}

fn generation(gw: &Gateway) -> u64 {
    gw.admin_json("/config_dump")["generation"].as_u64().expect("config_dump has a generation")
}

#[test]
fn a_gateway_changed_through_the_api_opens_its_new_port_without_a_restart() {
    let topo = Topology::build();
    let _backend = HttpBackend::start(&topo.internet, "203.0.113.12:8080".parse().unwrap());
    let api = ApiServer::start_in(&topo.node);
    for object in api_objects() {
        api.apply(object);
    }
    api.apply(edge(&[80]));
    let kubeconfig = api.kubeconfig().to_string_lossy().into_owned();
    // No configuration files: everything comes from the API server.
    let gw = Gateway::start(&topo, GatewayConfig::ingress(&topo, Vec::new(), &["--kubernetes", "--kubeconfig", &kubeconfig]));
    let pid = gw.pid();
    let first = generation(&gw);
    let ports = caught_up(&gw, first);
    assert_eq!(port(&ports, 80).map(|p| p["state"].clone()), Some("listening".into()), "{ports:?}\n{}", gw.stderr_tail());
    assert_eq!(get(&topo, 80, "/one"), (200, "path=/one\nx-added=\n".into()), "{}", gw.stderr_tail());
    let probe = |p: u16| connect(|a| topo.pod_a.command_outside_cgroup("python3", a), NODE, p);
    assert_eq!(probe(8081), "refused");

    api.apply(edge(&[80, 8081]));
    let ports = caught_up(&gw, first + 1);
    let added = port(&ports, 8081).unwrap_or_else(|| panic!("8081 is not reported: {ports:?}\n{}", gw.stderr_tail()));
    assert_eq!(added["state"], "listening", "{added}");
    assert_eq!(added["gateways"], json!(["default/edge"]), "{added}");
    assert_eq!(get(&topo, 8081, "/two"), (200, "path=/two\nx-added=\n".into()), "{}", gw.stderr_tail());
    assert_eq!(gw.pid(), pid, "the same process");

    // Deleted, its ports stop accepting.
    assert!(api.delete("networking.istio.io/v1", "Gateway", "default", "edge"));
    let ports = caught_up(&gw, first + 2);
    assert!(ports.is_empty(), "{ports:?}");
    assert_eq!((probe(80), probe(8081)), ("refused".into(), "refused".into()));
    assert_eq!(gw.pid(), pid);
    // Every call the gateway made is one its ClusterRole (`deploy/`) grants.
    for call in api.requests().iter().filter(|c| !c.resource.is_empty()) {
        let granted = gateway_userspace::kubernetes::rbac::GATEWAY
            .iter()
            .any(|g| g.group == call.group && g.resource == call.resource && g.verbs.contains(&call.verb.as_str()));
        assert!(granted, "the gateways' ClusterRole does not grant {} {}/{}", call.verb, call.group, call.resource);
    }
    drop(gw);
    topo.teardown();
}
