//! AuthorizationPolicy, enforced: Istio's egress authorization task at the
//! egress gateway (the source principal from the node's mutual TLS), node
//! policies attached to a ServiceEntry (the source from the interceptor),
//! a DENY on a path against its normalisation variants, and ingress by
//! client address, method and header. Every denial is checked on the far
//! side: the server never sees it.

use std::time::Duration;

use gateway_tests::addresses::*;
use gateway_tests::capture::Capture;
use gateway_tests::certs;
use gateway_tests::client::curl_status;
use gateway_tests::dnsmasq::Dnsmasq;
use gateway_tests::gateway_process::{Gateway, GatewayConfig};
use gateway_tests::istio;
use gateway_tests::nginx::{BODY_PREFIX, Nginx};
use gateway_tests::topology::Topology;

/// pod-a runs `sleep` in namespace `a`, pod-b `sleep` in namespace `b`.
const WORKLOADS: &str = "apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: sleep, namespace: a}
spec: {address: 198.18.1.2, serviceAccount: sleep, labels: {app: sleep}}
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: sleep, namespace: b}
spec: {address: 198.18.2.2, serviceAccount: sleep, labels: {app: sleep}}
";

/// Istio's egress authorization task: HTTP to httpbin.test leaves through
/// the egress gateway inside the workload's mutual TLS; a policy at the
/// gateway lets only namespace `a`'s service account reach the host.
fn egress_task() -> String {
    format!("{}{}", istio::MUTUAL_EGRESS_GATEWAY, "apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: httpbin, namespace: default}
spec:
  hosts: [httpbin.test]
  ports: [{number: 80, name: http, protocol: HTTP}]
  location: MESH_EXTERNAL
  resolution: DNS
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: direct-httpbin-through-egress-gateway, namespace: default}
spec:
  hosts: [httpbin.test]
  gateways: [istio-egressgateway, mesh]
  http:
  - match: [{gateways: [mesh], port: 80}]
    route: [{destination: {host: istio-egressgateway.istio-system.svc.cluster.local, subset: httpbin, port: {number: 443}}}]
  - match: [{gateways: [istio-egressgateway], port: 443}]
    route: [{destination: {host: httpbin.test, port: {number: 80}}}]
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: allow-httpbin-from-a, namespace: istio-system}
spec:
  selector: {matchLabels: {istio: egressgateway}}
  action: ALLOW
  rules:
  - from: [{source: {principals: [cluster.local/ns/a/sa/sleep]}}]
    to: [{operation: {hosts: [httpbin.test]}}]
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: audit-b, namespace: istio-system}
spec:
  selector: {matchLabels: {istio: egressgateway}}
  action: AUDIT
  rules: [{from: [{source: {namespaces: [b]}}]}]
")
}

#[test]
fn istios_egress_authorization_task_lets_only_namespace_a_reach_the_host() {
    let topo = Topology::build_with_egress_gateway();
    let certs = certs::generate(&topo.temp.subdir("certs"), "httpbin.test");
    let nginx = Nginx::start(&topo.internet, topo.temp.path(), &certs, INTERNET_V4.into());
    let _dns = Dnsmasq::start(&topo.internet, topo.temp.path(), "203.0.113.10", &[("httpbin.test", "203.0.113.10")]);
    let mesh = topo.temp.subdir("mesh");
    certs::mesh_certs(&mesh, &["a/sleep", "b/sleep", "istio-system/istio-egressgateway"]);
    let dir = topo.temp.subdir("config");
    std::fs::write(dir.join("egress.yaml"), format!("{}---\n{WORKLOADS}", egress_task())).unwrap();

    let egress_ns = topo.egress.as_ref().expect("egress namespace");
    let gw_config = GatewayConfig::egress_gateway(&topo, vec![dir.clone()], "203.0.113.10:53").with_mesh_identity(&mesh, "istio-system-istio-egressgateway");
    let egress = Gateway::start_in(&topo, egress_ns, gw_config);
    let node = Gateway::start(&topo, GatewayConfig::enforcing(&topo, vec![dir]).with_workload_certs(&mesh));
    let get = |pod: &gateway_tests::topology::Pod| {
        curl_status(|a| pod.command("curl", a), &["--resolve", "httpbin.test:80:203.0.113.10", "http://httpbin.test/get"])
    };

    let (code, body, err) = get(&topo.pod_a);
    assert_eq!((code, body.as_str()), (200, format!("{BODY_PREFIX}httpbin.test\n").as_str()), "{err}\nnode:\n{}\ngateway:\n{}", node.stderr_tail(), egress.stderr_tail());
    let (code, body, err) = get(&topo.pod_b);
    assert_eq!((code, body.as_str()), (403, "RBAC: access denied"), "{err}\ngateway:\n{}", egress.stderr_tail());

    // The internet server saw a's request only.
    std::thread::sleep(Duration::from_millis(300));
    let seen = nginx.access_log();
    assert_eq!(seen.len(), 1, "only namespace a reaches httpbin.test: {seen:?}");
    assert_eq!(seen[0].remote_addr.to_string(), NODE_INTERNET_V4.to_string());

    // The gateway's lines name the policy, its rule and the audit.
    let allowed = egress.wait_json_line("request", "a's request", |v| v["peer_identity"] == "spiffe://cluster.local/ns/a/sa/sleep");
    assert_eq!((allowed["decision"].as_str(), allowed["status"].as_u64()), (Some("allow"), Some(200)), "{allowed}");
    assert_eq!(allowed["authz"]["policy"], "istio-system/allow-httpbin-from-a", "{allowed}");
    assert_eq!(allowed["authz"]["rule"], 0, "{allowed}");
    assert!(allowed.get("audited").is_none(), "{allowed}");
    let denied = egress.wait_json_line("request", "b's request", |v| v["peer_identity"] == "spiffe://cluster.local/ns/b/sa/sleep");
    assert_eq!((denied["decision"].as_str(), denied["reason"].as_str(), denied["status"].as_u64()), (Some("deny"), Some("authz-denied"), Some(403)), "{denied}");
    assert_eq!((denied["authz"]["action"].as_str(), denied["authz"]["allowed"].as_bool()), (Some("ALLOW"), Some(false)), "{denied}");
    assert_eq!(denied["audited"], "istio-system/audit-b", "{denied}");
    drop((node, egress));
    topo.teardown();
}

/// httpbin.test on the internet server, registered by address; the policy
/// attached to its ServiceEntry admits namespace `a` only.
const NODE_POLICY: &str = "apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: httpbin, namespace: default}
spec:
  hosts: [httpbin.test]
  addresses: [203.0.113.10/32]
  ports:
  - {number: 80, name: http, protocol: HTTP}
  - {number: 443, name: tls, protocol: TLS}
  location: MESH_EXTERNAL
  resolution: NONE
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: only-a, namespace: default}
spec:
  targetRef: {group: networking.istio.io, kind: ServiceEntry, name: httpbin}
  action: ALLOW
  rules: [{from: [{source: {namespaces: [a]}}]}]
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: no-admin, namespace: default}
spec:
  targetRef: {group: networking.istio.io, kind: ServiceEntry, name: httpbin}
  action: DENY
  # Scoped to the HTTP port: on a TLS stream paths cannot be read, and a
  # DENY rule ignores what it cannot read, as Istio does.
  rules: [{to: [{operation: {ports: ['80'], paths: ['/admin*']}}]}]
";

struct NodeSetup {
    topo: Topology,
    nginx: Nginx,
    node: Gateway,
    capture: Capture,
    ca: String,
}

fn node_setup() -> NodeSetup {
    let topo = Topology::build();
    let certs = certs::generate(&topo.temp.subdir("certs"), "httpbin.test");
    let nginx = Nginx::start(&topo.internet, topo.temp.path(), &certs, INTERNET_V4.into());
    let dir = topo.temp.subdir("config");
    std::fs::write(dir.join("policy.yaml"), format!("{NODE_POLICY}---\n{WORKLOADS}")).unwrap();
    let node = Gateway::start(&topo, GatewayConfig::enforcing(&topo, vec![dir]));
    let capture = Capture::from_pods(&topo.internet, topo.temp.path());
    capture.assert_sees_a_bypass(&topo.pod_a, std::net::SocketAddr::new(INTERNET_V4.into(), 9));
    NodeSetup { ca: certs.ca_cert.to_string_lossy().into_owned(), topo, nginx, node, capture }
}

#[test]
fn a_policy_on_a_service_entry_admits_one_namespace_and_denies_another() {
    let s = node_setup();
    let https = |pod: &gateway_tests::topology::Pod| {
        curl_status(|a| pod.command("curl", a), &["--cacert", &s.ca, "--resolve", "httpbin.test:443:203.0.113.10", "https://httpbin.test/"])
    };
    let http = |pod: &gateway_tests::topology::Pod| curl_status(|a| pod.command("curl", a), &["--resolve", "httpbin.test:80:203.0.113.10", "http://httpbin.test/"]);
    let (code, _, err) = https(&s.topo.pod_a);
    assert_eq!(code, 200, "{err}\n{}", s.node.stderr_tail());
    assert_eq!(http(&s.topo.pod_a).0, 200);
    let (code, _, err) = https(&s.topo.pod_b);
    assert_eq!(code, 0, "pod-b's TLS must be refused: {err}");
    let (code, body, _) = http(&s.topo.pod_b);
    assert_eq!((code, body.as_str()), (403, "RBAC: access denied"));

    std::thread::sleep(Duration::from_millis(300));
    let seen = s.nginx.access_log();
    assert_eq!(seen.len(), 2, "only pod-a's two requests reach the server: {seen:?}");
    s.capture.assert_no_bypass_to(&[80, 443]);

    let tls = s.node.wait_json_line("connection", "pod-b's TLS", |v| v["sni"] == "httpbin.test" && v["workload"]["namespace"] == "b");
    assert_eq!((tls["decision"].as_str(), tls["reason"].as_str()), (Some("deny"), Some("authz-denied")), "{tls}");
    assert_eq!(tls["matched"]["name"], "httpbin", "{tls}");
    let ok = s.node.wait_json_line("connection", "pod-a's TLS", |v| v["sni"] == "httpbin.test" && v["workload"]["namespace"] == "a");
    assert_eq!((ok["decision"].as_str(), ok["authz"]["policy"].as_str()), (Some("allow"), Some("default/only-a")), "{ok}");
    drop(s.node);
    s.topo.teardown();
}

/// Ways to write `/admin` that some server reads as `/admin` (shared with the unit tests).
fn admin_variants() -> Vec<&'static str> {
    include_str!("../fixtures/authz/admin-variants.txt").lines().filter(|l| !l.starts_with('#') && !l.is_empty()).collect()
}

/// Sends each path as it is, in its own raw HTTP/1.1 request from the pod,
/// and prints the status code of each answer (0: none).
const RAW_REQUESTS: &str = r#"
import socket, sys
for path in sys.argv[1:]:
    s = socket.create_connection(("203.0.113.10", 80), timeout=10)
    s.sendall(("GET " + path + " HTTP/1.1\r\nHost: httpbin.test\r\nConnection: close\r\n\r\n").encode())
    data = b""
    try:
        while True:
            chunk = s.recv(4096)
            if not chunk:
                break
            data += chunk
    except OSError:
        pass
    s.close()
    head = data.split(b"\r\n", 1)[0].split()
    print(head[1].decode() if len(head) > 1 else "0")
"#;

#[test]
fn a_deny_on_admin_blocks_every_normalisation_variant_before_the_server() {
    let s = node_setup();
    let variants = admin_variants();
    assert!(variants.len() >= 20, "the corpus holds at least 20 variants");
    let mut args = vec!["-c", RAW_REQUESTS];
    args.extend(&variants);
    args.push("/public/page");
    let out = s.topo.pod_a.command("python3", &args).output().expect("python3");
    let codes: Vec<String> = String::from_utf8_lossy(&out.stdout).lines().map(str::to_string).collect();
    assert_eq!(codes.len(), variants.len() + 1, "{}", String::from_utf8_lossy(&out.stderr));
    for (variant, code) in variants.iter().zip(&codes) {
        assert!(code == "403" || code == "400", "{variant} got {code}, not a refusal");
    }
    assert_eq!(codes.last().map(String::as_str), Some("200"), "the control request is served");
    std::thread::sleep(Duration::from_millis(300));
    let seen = s.nginx.access_log();
    assert_eq!(seen.len(), 1, "only the control request reaches the server: {seen:?}");
    let denied = s.node.json_lines("request").into_iter().filter(|v| v["reason"] == "authz-denied").count();
    let refused = codes.iter().filter(|c| *c == "403").count();
    assert_eq!(denied, refused, "every 403 is the DENY policy's");
    let line = s.node.wait_json_line("request", "a denial", |v| v["reason"] == "authz-denied");
    assert_eq!((line["authz"]["policy"].as_str(), line["authz"]["rule"].as_u64(), line["authz"]["action"].as_str()), (Some("default/no-admin"), Some(0), Some("DENY")), "{line}");
    s.capture.assert_no_bypass_to(&[80]);
    drop(s.node);
    s.topo.teardown();
}

fn ingress_yaml() -> String {
    istio::static_service("hello", 80, "HTTP", &["203.0.113.10"])
        + "apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: hello-gateway, namespace: default}
spec:
  selector: {istio: ingressgateway}
  servers:
  - port: {number: 80, name: http, protocol: HTTP}
    hosts: [hello.test]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: hello, namespace: default}
spec:
  hosts: [hello.test]
  gateways: [hello-gateway]
  http:
  - route: [{destination: {host: hello.default.svc.cluster.local, port: {number: 80}}}]
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: ingress, namespace: istio-system}
spec:
  selector: {matchLabels: {istio: ingressgateway}}
  action: ALLOW
  rules:
  - from: [{source: {remoteIpBlocks: [192.0.2.0/24]}}]
    to: [{operation: {methods: [GET, HEAD]}}]
  - to: [{operation: {methods: [POST], paths: [/submit]}}]
    when: [{key: 'request.headers[x-token]', values: [letmein]}]
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: block-one, namespace: default}
spec:
  targetRefs: [{group: networking.istio.io, kind: Gateway, name: hello-gateway}]
  action: DENY
  rules: [{from: [{source: {remoteIpBlocks: [192.0.2.66]}}]}]
"
}

#[test]
fn ingress_by_forwarded_client_address_method_and_header() {
    let topo = Topology::build();
    let backend_certs = certs::generate(&topo.temp.subdir("backend-certs"), "backend.test");
    let nginx = Nginx::start(&topo.internet, topo.temp.path(), &backend_certs, INTERNET_V4.into());
    let gw = Gateway::start_ingress(&topo, &ingress_yaml(), &["--num-trusted-proxies", "1"]);
    let ask = |extra: &[&str]| {
        let mut args = vec!["-H", "Host: hello.test"];
        args.extend_from_slice(extra);
        args.push("http://198.18.1.1/submit");
        curl_status(|a| topo.pod_a.command_outside_cgroup("curl", a), &args).0
    };
    // One trusted proxy: the rightmost X-Forwarded-For entry is the client.
    assert_eq!(ask(&["-H", "X-Forwarded-For: 192.0.2.10"]), 200, "{}", gw.stderr_tail());
    assert_eq!(ask(&[]), 403, "the peer itself is not in the block");
    assert_eq!(ask(&["-H", "X-Forwarded-For: 192.0.2.10, 198.51.100.7"]), 403, "an entry left of the trusted one is not believed");
    assert_eq!(ask(&["-X", "DELETE", "-H", "X-Forwarded-For: 192.0.2.10"]), 403, "DELETE is not allowed");
    assert_eq!(ask(&["-X", "POST", "-H", "x-token: letmein"]), 200, "POST /submit with the token");
    assert_eq!(ask(&["-X", "POST", "-H", "x-token: wrong"]), 403);
    assert_eq!(ask(&["-H", "X-Forwarded-For: 192.0.2.66"]), 403, "the Gateway's DENY policy");
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(nginx.access_log().len(), 2, "only the two allowed requests reach the backend");
    let blocked = gw.wait_json_line("request", "the DENY", |v| v["authz"]["action"] == "DENY");
    assert_eq!((blocked["authz"]["policy"].as_str(), blocked["status"].as_u64()), (Some("default/block-one"), Some(403)), "{blocked}");
    drop(gw);
    topo.teardown();
}
