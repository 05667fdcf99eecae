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
use std::time::Duration;

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

/// The Service `ingress` in front of the gateway's pod `ingress-0`: port 80 to the named
/// target port `http`, which the pod's EndpointSlice resolves to `target`.
fn ingress_service(target: u16) -> [Value; 2] {
    [
        json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "ingress", "namespace": "default"},
               "spec": {"clusterIP": "10.96.0.80", "selector": {"istio": "ingressgateway"},
                        "ports": [{"name": "http", "port": 80, "targetPort": "http", "protocol": "TCP"}]}}),
        json!({"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
               "metadata": {"name": "ingress-abcde", "namespace": "default", "labels": {"kubernetes.io/service-name": "ingress"}},
               "addressType": "IPv4",
               "endpoints": [{"addresses": ["198.18.1.1"], "conditions": {"ready": true},
                              "targetRef": {"kind": "Pod", "name": "ingress-0", "namespace": "default"}}],
               "ports": [{"name": "http", "port": target, "protocol": "TCP"}]}),
    ]
}

#[test]
fn a_gateway_port_is_its_services_port_and_listens_on_the_target_port() {
    let topo = Topology::build();
    let _backend = HttpBackend::start(&topo.internet, "203.0.113.12:8080".parse().unwrap());
    let api = ApiServer::start_in(&topo.node);
    for object in api_objects().into_iter().chain(ingress_service(8080)) {
        api.apply(object);
    }
    // Istio's YAML unchanged: the server says 80, the Service's port.
    api.apply(edge(&[80]));
    let kubeconfig = api.kubeconfig().to_string_lossy().into_owned();
    let gw = Gateway::start(
        &topo,
        GatewayConfig::ingress(&topo, Vec::new(), &["--kubernetes", "--kubeconfig", &kubeconfig, "--pod-name", "ingress-0"]),
    );
    let first = generation(&gw);
    let ports = caught_up(&gw, first);
    let served = port(&ports, 8080).unwrap_or_else(|| panic!("nothing listens on 8080: {ports:?}\n{}", gw.stderr_tail()));
    assert_eq!((served["port"].clone(), served["state"].clone()), (json!(80), json!("listening")), "{served}");
    assert_eq!(get(&topo, 8080, "/mapped"), (200, "path=/mapped\nx-added=\n".into()), "{}", gw.stderr_tail());
    let probe = |p: u16| connect(|a| topo.pod_a.command_outside_cgroup("python3", a), NODE, p);
    assert_eq!(probe(80), "refused", "the declared port is not bound");

    // The pod's named port now resolves elsewhere: the listener follows, with no new
    // configuration generation.
    api.apply(ingress_service(8081)[1].clone());
    let moved = gateway_tests::wait::poll(Duration::from_secs(20), Duration::from_millis(50), || {
        let ports = gw.admin_json("/config_dump")["listeners"]["ports"].as_array().cloned().unwrap_or_default();
        port(&ports, 8081).filter(|p| p["state"] == "listening").cloned()
    });
    assert!(moved.is_some(), "the listener did not move to 8081\n{}", gw.stderr_tail());
    assert_eq!(get(&topo, 8081, "/moved"), (200, "path=/moved\nx-added=\n".into()), "{}", gw.stderr_tail());
    assert_eq!(probe(8080), "refused", "the old target port is closed");

    // Without the Service, the server's port is bound as declared.
    assert!(api.delete("v1", "Service", "default", "ingress"));
    assert!(api.delete("discovery.k8s.io/v1", "EndpointSlice", "default", "ingress-abcde"));
    let back = gateway_tests::wait::poll(Duration::from_secs(20), Duration::from_millis(50), || {
        let ports = gw.admin_json("/config_dump")["listeners"]["ports"].as_array().cloned().unwrap_or_default();
        port(&ports, 80).filter(|p| p["state"] == "listening").cloned()
    });
    assert!(back.is_some(), "the server did not go back to port 80\n{}", gw.stderr_tail());
    assert_eq!(get(&topo, 80, "/declared"), (200, "path=/declared\nx-added=\n".into()), "{}", gw.stderr_tail());
    assert_eq!(probe(8081), "refused");
    drop(gw);
    topo.teardown();
}

/// The Secret `api-cred` (type `kubernetes.io/tls`) holding `cert` and `key`.
fn tls_secret(cert: &std::path::Path, key: &std::path::Path) -> Value {
    use base64::Engine;
    let b64 = |p: &std::path::Path| base64::engine::general_purpose::STANDARD.encode(std::fs::read(p).unwrap());
    json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "api-cred", "namespace": "default"},
           "type": "kubernetes.io/tls", "data": {"tls.crt": b64(cert), "tls.key": b64(key)}})
}

/// The serial of the certificate a new TLS connection to NODE:8443 for `api.test` is shown,
/// verified against `ca`.
fn served_serial(topo: &Topology, ca: &std::path::Path) -> String {
    let script = format!(
        "openssl s_client -connect {NODE}:8443 -servername api.test -CAfile {} -verify_return_error </dev/null 2>/dev/null \
         | openssl x509 -noout -serial",
        ca.display()
    );
    let out = topo.pod_a.command_outside_cgroup("sh", &["-c", &script]).output().expect("openssl s_client");
    String::from_utf8_lossy(&out.stdout).trim().trim_start_matches("serial=").trim_start_matches('0').to_ascii_uppercase()
}

#[test]
fn a_servers_credential_name_is_read_from_a_secret_and_follows_its_rotation() {
    use gateway_tests::certs;
    let topo = Topology::build();
    let _backend = HttpBackend::start(&topo.internet, "203.0.113.12:8080".parse().unwrap());
    let pki = topo.temp.subdir("pki");
    let first = certs::generate(&pki, "api.test");
    let api = ApiServer::start_in(&topo.node);
    for object in api_objects() {
        api.apply(object);
    }
    api.apply(tls_secret(&first.server_cert, &first.server_key));
    api.apply(json!({"apiVersion": "networking.istio.io/v1", "kind": "Gateway", "metadata": {"name": "edge", "namespace": "default"},
                     "spec": {"selector": {"istio": "ingressgateway"}, "servers": [{
                         "port": {"number": 8443, "name": "https", "protocol": "HTTPS"}, "hosts": ["api.test"],
                         "tls": {"mode": "SIMPLE", "credentialName": "api-cred"}}]}}));
    let kubeconfig = api.kubeconfig().to_string_lossy().into_owned();
    let credentials = topo.temp.subdir("credentials");
    let credentials = credentials.to_string_lossy().into_owned();
    let gw = Gateway::start(
        &topo,
        GatewayConfig::ingress(
            &topo,
            Vec::new(),
            &["--kubernetes", "--kubeconfig", &kubeconfig, "--credential-dir", &credentials, "--credential-secrets"],
        ),
    );
    let ports = caught_up(&gw, generation(&gw));
    assert_eq!(port(&ports, 8443).map(|p| p["state"].clone()), Some("listening".into()), "{ports:?}\n{}", gw.stderr_tail());
    let want = |cert: &std::path::Path| certs::serial(cert).trim_start_matches('0').to_ascii_uppercase();
    assert_eq!(served_serial(&topo, &first.ca_cert), want(&first.server_cert), "{}", gw.stderr_tail());
    let ca = first.ca_cert.to_string_lossy().into_owned();
    let url = "https://api.test:8443/tls";
    let resolve = format!("api.test:8443:{NODE}");
    let (code, body, _) = curl_status(|a| topo.pod_a.command_outside_cgroup("curl", a), &["--cacert", &ca, "--resolve", &resolve, url]);
    assert_eq!((code, body.as_str()), (200, "path=/tls\nx-added=\n"), "{}", gw.stderr_tail());
    let key = std::fs::metadata(std::path::Path::new(&credentials).join("api-cred/tls.key")).expect("the key is written");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(key.permissions().mode() & 0o777, 0o600);

    // The Secret rotated through the API: new connections get the new certificate.
    let (cert, key) = certs::reissue(&pki, "rotated", "api.test", "/CN=api.test/O=rotated");
    api.apply(tls_secret(&cert, &key));
    let rotated = gateway_tests::wait::poll(Duration::from_secs(20), Duration::from_millis(200), || {
        (served_serial(&topo, &first.ca_cert) == want(&cert)).then_some(())
    });
    assert!(rotated.is_some(), "the rotated Secret is not served\n{}", gw.stderr_tail());
    // Every call was one the gateways' roles grant, the Secrets within their namespace.
    use gateway_userspace::kubernetes::rbac::{GATEWAY, GATEWAY_IN_NAMESPACE, ApiCall};
    let grants = |table: &[ApiCall], call: &gateway_tests::kube_api::ApiRequest| {
        table.iter().any(|g| g.group == call.group && g.resource == call.resource && g.verbs.contains(&call.verb.as_str()))
    };
    for call in api.requests().iter().filter(|c| !c.resource.is_empty()) {
        let granted = grants(GATEWAY, call) || (grants(GATEWAY_IN_NAMESPACE, call) && call.namespace.as_deref() == Some("default"));
        assert!(granted, "the gateways' roles do not grant {call:?}");
    }
    drop(gw);
    topo.teardown();
}
