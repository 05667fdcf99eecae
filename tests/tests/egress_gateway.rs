//! Istio's egress-gateway tasks, unchanged resources, in a topology where
//! the node has no route to the internet: only the egress gateway does.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use gateway_tests::addresses::*;
use gateway_tests::certs;
use gateway_tests::client::{EchoRun, curl_status, run_echo_client};
use gateway_tests::dnsmasq::Dnsmasq;
use gateway_tests::gateway_process::{Gateway, GatewayConfig};
use gateway_tests::istio;
use gateway_tests::nginx::{BODY_PREFIX, Nginx};
use gateway_tests::topology::Topology;

const CLIENT: &str = env!("CARGO_BIN_EXE_gw-test-client");

/// httpbin.test stands for the task's external host.
const SERVICE_ENTRY: &str = "apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: httpbin, namespace: default}
spec:
  hosts: [httpbin.test]
  ports:
  - {number: 80, name: http-port, protocol: HTTP}
  - {number: 443, name: tls, protocol: TLS}
  location: MESH_EXTERNAL
  resolution: DNS
";

const EGRESS_GATEWAY: &str = "apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: istio-egressgateway, namespace: istio-system}
spec:
  hosts: [istio-egressgateway.istio-system.svc.cluster.local]
  ports:
  - {number: 80, name: http, protocol: HTTP}
  - {number: 443, name: tls, protocol: TLS}
  location: MESH_INTERNAL
  resolution: STATIC
  endpoints: [{address: 198.18.10.2, labels: {istio: egressgateway}}]
---
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: istio-egressgateway, namespace: default}
spec:
  selector: {istio: egressgateway}
  servers:
  - port: {number: 443, name: tls, protocol: TLS}
    hosts: [httpbin.test]
    tls: {mode: PASSTHROUGH}
  - port: {number: 80, name: http, protocol: HTTP}
    hosts: [httpbin.test]
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: egressgateway-for-httpbin, namespace: default}
spec:
  host: istio-egressgateway.istio-system.svc.cluster.local
  subsets: [{name: httpbin}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: direct-httpbin-through-egress-gateway, namespace: default}
spec:
  hosts: [httpbin.test]
  gateways: [istio-egressgateway, mesh]
  tls:
  - match:
    - gateways: [mesh]
      port: 443
      sniHosts: [httpbin.test]
    route:
    - destination: {host: istio-egressgateway.istio-system.svc.cluster.local, subset: httpbin, port: {number: 443}}
  - match:
    - gateways: [istio-egressgateway]
      port: 443
      sniHosts: [httpbin.test]
    route:
    - destination: {host: httpbin.test, port: {number: 443}}
      weight: 100
  http:
  - match:
    - gateways: [mesh]
      port: 80
    route:
    - destination: {host: istio-egressgateway.istio-system.svc.cluster.local, subset: httpbin, port: {number: 80}}
      weight: 100
  - match:
    - gateways: [istio-egressgateway]
      port: 80
    route:
    - destination: {host: httpbin.test, port: {number: 80}}
      weight: 100
";

struct Setup {
    topo: Topology,
    nginx: Nginx,
    _dns: Dnsmasq,
    node: Gateway,
    egress: Gateway,
    ca: String,
}

/// `gateway_registers_httpbin`: whether the egress gateway's own config has
/// the ServiceEntry (the node's always has).
fn setup(gateway_registers_httpbin: bool) -> Setup {
    let topo = Topology::build_with_egress_gateway();
    let certs = certs::generate(&topo.temp.subdir("certs"), "httpbin.test");
    let nginx = Nginx::start(&topo.internet, topo.temp.path(), &certs, INTERNET_V4.into());
    let dns = Dnsmasq::start(&topo.internet, topo.temp.path(), "203.0.113.10", &[("httpbin.test", "203.0.113.10")]);
    let node_dir = topo.temp.subdir("node-config");
    std::fs::write(node_dir.join("egress.yaml"), format!("{SERVICE_ENTRY}---\n{EGRESS_GATEWAY}")).unwrap();
    let gw_dir = topo.temp.subdir("gateway-config");
    let gw_yaml = if gateway_registers_httpbin { format!("{SERVICE_ENTRY}---\n{EGRESS_GATEWAY}") } else { EGRESS_GATEWAY.to_string() };
    std::fs::write(gw_dir.join("egress.yaml"), gw_yaml).unwrap();
    let egress_ns = topo.egress.as_ref().expect("egress namespace");
    let egress = Gateway::start_in(&topo, egress_ns, GatewayConfig::egress_gateway(&topo, vec![gw_dir], "203.0.113.10:53"));
    let node = Gateway::start(&topo, GatewayConfig::enforcing(&topo, vec![PathBuf::from(&node_dir)]));
    let ca = certs.ca_cert.to_string_lossy().into_owned();
    Setup { topo, nginx, _dns: dns, node, egress, ca }
}

fn https(s: &Setup) -> (u16, String, String) {
    curl_status(|a| s.topo.pod_a.command("curl", a), &["--cacert", &s.ca, "--resolve", "httpbin.test:443:203.0.113.10", "https://httpbin.test/"])
}

#[test]
fn the_https_task_goes_through_the_egress_gateway_with_its_sni() {
    let s = setup(true);
    let (code, body, err) = https(&s);
    assert_eq!((code, body.as_str()), (200, format!("{BODY_PREFIX}httpbin.test\n").as_str()), "{err}\nnode:\n{}\ngateway:\n{}", s.node.stderr_tail(), s.egress.stderr_tail());
    let seen = s.nginx.wait_for_entries(1, Duration::from_secs(10));
    assert_eq!((seen[0].remote_addr.to_string(), seen[0].sni.as_str()), (NODE_INTERNET_V4.to_string(), "httpbin.test"), "the internet sees the gateway's address and the original SNI");
    let node = s.node.wait_json_line("connection", "steered TLS", |v| v["sni"] == "httpbin.test");
    assert_eq!((node["decision"].as_str(), node["upstream"].as_str()), (Some("steer"), Some("198.18.10.2:443")), "{node}");
    assert_eq!(node["route"]["name"], "direct-httpbin-through-egress-gateway", "{node}");
    let gw = s.egress.wait_json_line("connection", "gateway TLS", |v| v["sni"] == "httpbin.test");
    assert_eq!((gw["role"].as_str(), gw["decision"].as_str(), gw["upstream"].as_str()), (Some("egress-gateway"), Some("allow"), Some("203.0.113.10:443")), "{gw}");
    assert_eq!(gw["src"].as_str().map(|a| a.starts_with("198.18.10.1")), Some(true), "{gw}");
    drop((s.node, s.egress));
    s.topo.teardown();
}

#[test]
fn the_http_task_goes_through_the_egress_gateway_with_its_host() {
    let s = setup(true);
    let (code, body, err) = curl_status(|a| s.topo.pod_a.command("curl", a), &["--resolve", "httpbin.test:80:203.0.113.10", "http://httpbin.test/"]);
    assert_eq!((code, body.as_str()), (200, format!("{BODY_PREFIX}httpbin.test\n").as_str()), "{err}");
    let seen = s.nginx.wait_for_entries(1, Duration::from_secs(10));
    assert_eq!((seen[0].remote_addr.to_string(), seen[0].host.as_str()), (NODE_INTERNET_V4.to_string(), "httpbin.test"));
    let node = s.node.wait_json_line("request", "steered HTTP", |v| v["host"] == "httpbin.test");
    assert_eq!((node["decision"].as_str(), node["upstream"].as_str()), (Some("steer"), Some("198.18.10.2:80")), "{node}");
    let gw = s.egress.wait_json_line("request", "gateway HTTP", |v| v["host"] == "httpbin.test");
    assert_eq!((gw["role"].as_str(), gw["decision"].as_str(), gw["status"].as_u64()), (Some("egress-gateway"), Some("allow"), Some(200)), "{gw}");
    assert!(s.egress.metric("gateway_requests_total{decision=\"allow\",reason=\"registered-host\",workload=\"default/unknown\",host=\"httpbin.test\",role=\"egress-gateway\"") >= 1);
    drop((s.node, s.egress));
    s.topo.teardown();
}

#[test]
fn a_stopped_gateway_fails_fast_and_nothing_goes_direct() {
    let mut s = setup(true);
    s.egress.stop();
    let start = Instant::now();
    let (code, _, err) = https(&s);
    let took = start.elapsed();
    assert_eq!(code, 0, "{err}");
    assert!(took < Duration::from_secs(2), "the request should fail fast, took {took:?}");
    std::thread::sleep(Duration::from_millis(300));
    assert!(s.nginx.access_log().is_empty(), "nothing reaches the internet");
    let node = s.node.wait_json_line("connection", "gateway down", |v| v["sni"] == "httpbin.test");
    assert_eq!((node["decision"].as_str(), node["outcome"].as_str()), (Some("steer"), Some("upstream-unreachable")), "{node}");
    drop((s.node, s.egress));
    s.topo.teardown();
}

#[test]
fn the_gateway_applies_its_own_registry_and_the_node_refuses_direct_addresses() {
    let s = setup(false);
    let (code, _, err) = https(&s);
    assert_eq!(code, 0, "the gateway must refuse a host it does not register: {err}");
    let gw = s.egress.wait_json_line("connection", "gateway denial", |v| v["sni"] == "httpbin.test");
    assert_eq!((gw["decision"].as_str(), gw["reason"].as_str()), (Some("deny"), Some("not-registered")), "{gw}");
    // Dialling the internet server's IP directly: denied on the node.
    let summary = run_echo_client(|a| s.topo.pod_a.command(CLIENT, a), &EchoRun { timeout: Duration::from_secs(5), ..EchoRun::to(&[sock(INTERNET_V4, 7)]) });
    assert!(!summary.results[0].intact, "{}", summary.raw);
    let node = s.node.wait_json_line("connection", "direct dial", |v| v["orig_dst"] == "203.0.113.10:7");
    assert_eq!((node["decision"].as_str(), node["reason"].as_str()), (Some("deny"), Some("not-registered")), "{node}");
    assert!(s.nginx.access_log().is_empty());
    drop((s.node, s.egress));
    s.topo.teardown();
}

/// Istio's "egress gateway with TLS origination" task: the pod sends plain
/// HTTP; the gateway originates TLS, verified against `rule_ca`.
fn origination_yaml(rule_ca: &str) -> String {
    format!(
        "apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {{name: secure, namespace: default}}
spec:
  hosts: [secure.test]
  ports:
  - {{number: 80, name: http-port, protocol: HTTP}}
  - {{number: 443, name: https-port, protocol: HTTPS}}
  location: MESH_EXTERNAL
  resolution: DNS
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {{name: istio-egressgateway, namespace: istio-system}}
spec:
  hosts: [istio-egressgateway.istio-system.svc.cluster.local]
  ports: [{{number: 80, name: http, protocol: HTTP}}]
  location: MESH_INTERNAL
  resolution: STATIC
  endpoints: [{{address: 198.18.10.2}}]
---
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {{name: istio-egressgateway, namespace: default}}
spec:
  selector: {{istio: egressgateway}}
  servers:
  - port: {{number: 80, name: http, protocol: HTTP}}
    hosts: [secure.test]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {{name: direct-secure-through-egress-gateway, namespace: default}}
spec:
  hosts: [secure.test]
  gateways: [istio-egressgateway, mesh]
  http:
  - match: [{{gateways: [mesh], port: 80}}]
    route: [{{destination: {{host: istio-egressgateway.istio-system.svc.cluster.local, port: {{number: 80}}}}}}]
  - match: [{{gateways: [istio-egressgateway], port: 80}}]
    route: [{{destination: {{host: secure.test, port: {{number: 443}}}}}}]
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {{name: originate-tls-for-secure, namespace: default}}
spec:
  host: secure.test
  trafficPolicy:
    portLevelSettings:
    - port: {{number: 443}}
      tls: {{mode: SIMPLE, caCertificates: {rule_ca}, sni: secure.test}}
"
    )
}

fn origination_run(right_ca: bool) -> (u16, String, Vec<gateway_tests::nginx::AccessLogEntry>, Gateway, Gateway, Topology) {
    let topo = Topology::build_with_egress_gateway();
    let certs = certs::generate(&topo.temp.subdir("certs"), "secure.test");
    let other = certs::generate(&topo.temp.subdir("other-ca"), "secure.test");
    let nginx = Nginx::start(&topo.internet, topo.temp.path(), &certs, INTERNET_V4.into());
    let dns = Dnsmasq::start(&topo.internet, topo.temp.path(), "203.0.113.10", &[("secure.test", "203.0.113.10")]);
    let ca = if right_ca { &certs.ca_cert } else { &other.ca_cert };
    let dir = topo.temp.subdir("config");
    std::fs::write(dir.join("egress.yaml"), origination_yaml(&ca.to_string_lossy())).unwrap();
    let egress_ns = topo.egress.as_ref().expect("egress namespace");
    let egress = Gateway::start_in(&topo, egress_ns, GatewayConfig::egress_gateway(&topo, vec![dir.clone()], "203.0.113.10:53"));
    let node = Gateway::start(&topo, GatewayConfig::enforcing(&topo, vec![dir]));
    let (code, body, _) = curl_status(|a| topo.pod_a.command("curl", a), &["--resolve", "secure.test:80:203.0.113.10", "http://secure.test/"]);
    std::thread::sleep(Duration::from_millis(200));
    let seen = nginx.access_log();
    drop((nginx, dns));
    (code, body, seen, node, egress, topo)
}

#[test]
fn the_gateway_originates_tls_for_plain_http_and_a_wrong_ca_fails_with_503() {
    let (code, body, seen, node, egress, topo) = origination_run(true);
    assert_eq!((code, body.as_str()), (200, format!("{BODY_PREFIX}secure.test\n").as_str()), "gateway:\n{}", egress.stderr_tail());
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert_eq!((seen[0].server_port, seen[0].sni.as_str(), seen[0].remote_addr.to_string()), (443, "secure.test", NODE_INTERNET_V4.to_string()), "the internet sees TLS from the gateway");
    let line = egress.wait_json_line("request", "originated", |v| v["host"] == "secure.test");
    assert_eq!((line["upstream"].as_str(), line["status"].as_u64()), (Some("203.0.113.10:443"), Some(200)), "{line}");
    drop((node, egress));
    topo.teardown();

    let (code, _, seen, node, egress, topo) = origination_run(false);
    assert_eq!(code, 503, "a CA that does not sign the server's certificate");
    assert!(seen.iter().all(|e| e.status != 200), "no request completes: {seen:?}");
    drop((node, egress));
    topo.teardown();
}

/// The mutual-TLS egress task: `sleep` in `default`, TLS to httpbin.test steered into its mutual
/// TLS to the egress gateway.
fn mutual_yaml() -> String {
    format!("{}{}", istio::MUTUAL_EGRESS_GATEWAY, "apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: httpbin, namespace: default}
spec:
  hosts: [httpbin.test]
  ports: [{number: 443, name: tls, protocol: TLS}]
  location: MESH_EXTERNAL
  resolution: DNS
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: sleep, namespace: default}
spec: {address: 198.18.1.2, serviceAccount: sleep, labels: {app: sleep}}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: direct-httpbin-through-egress-gateway, namespace: default}
spec:
  hosts: [httpbin.test]
  gateways: [istio-egressgateway, mesh]
  tls:
  - match: [{gateways: [mesh], port: 443, sniHosts: [httpbin.test]}]
    route: [{destination: {host: istio-egressgateway.istio-system.svc.cluster.local, subset: httpbin, port: {number: 443}}}]
  - match: [{gateways: [istio-egressgateway], port: 443, sniHosts: [httpbin.test]}]
    route: [{destination: {host: httpbin.test, port: {number: 443}}}]
")
}

#[test]
fn node_and_gateway_speak_mutual_tls_and_the_exit_records_the_workload_identity() {
    let topo = Topology::build_with_egress_gateway();
    let certs = certs::generate(&topo.temp.subdir("certs"), "httpbin.test");
    let nginx = Nginx::start(&topo.internet, topo.temp.path(), &certs, INTERNET_V4.into());
    let _dns = Dnsmasq::start(&topo.internet, topo.temp.path(), "203.0.113.10", &[("httpbin.test", "203.0.113.10")]);
    let mesh = topo.temp.subdir("mesh");
    certs::mesh_certs(&mesh, &["default/sleep", "istio-system/istio-egressgateway"]);
    let rogue = topo.temp.subdir("rogue");
    certs::mesh_certs(&rogue, &["default/sleep"]);
    let dir = topo.temp.subdir("config");
    std::fs::write(dir.join("egress.yaml"), mutual_yaml()).unwrap();
    let path = |p: PathBuf| p.to_string_lossy().into_owned();

    let egress_ns = topo.egress.as_ref().expect("egress namespace");
    let gw_config = GatewayConfig::egress_gateway(&topo, vec![dir.clone()], "203.0.113.10:53").with_mesh_identity(&mesh, "istio-system-istio-egressgateway");
    let egress = Gateway::start_in(&topo, egress_ns, gw_config);
    let node = Gateway::start(&topo, GatewayConfig::enforcing(&topo, vec![dir]).with_workload_certs(&mesh));
    let ca = certs.ca_cert.to_string_lossy().into_owned();

    // pod-a is `sleep`: its TLS travels inside its own mutual TLS to the gateway.
    let (code, body, err) = curl_status(|a| topo.pod_a.command("curl", a), &["--cacert", &ca, "--resolve", "httpbin.test:443:203.0.113.10", "https://httpbin.test/"]);
    assert_eq!((code, body.as_str()), (200, format!("{BODY_PREFIX}httpbin.test\n").as_str()), "{err}\nnode:\n{}\ngateway:\n{}", node.stderr_tail(), egress.stderr_tail());
    let seen = nginx.wait_for_entries(1, Duration::from_secs(10));
    assert_eq!((seen[0].remote_addr.to_string(), seen[0].sni.as_str()), (NODE_INTERNET_V4.to_string(), "httpbin.test"));
    let gw = egress.wait_json_line("connection", "mutual TLS exit", |v| v["sni"] == "httpbin.test");
    assert_eq!(gw["peer_identity"], "spiffe://cluster.local/ns/default/sa/sleep", "{gw}");
    assert_eq!((gw["decision"].as_str(), gw["upstream"].as_str()), (Some("allow"), Some("203.0.113.10:443")), "{gw}");
    let n = node.wait_json_line("connection", "steered", |v| v["sni"] == "httpbin.test");
    assert_eq!((n["decision"].as_str(), n["workload"]["service_account"].as_str()), (Some("steer"), Some("sleep")), "{n}");

    // A client certificate from another CA is refused by the gateway.
    // stdin stays open a moment, so the server's alert (sent after a TLS 1.3
    // client thinks it is done) reaches s_client.
    let s_client = format!(
        "sleep 1 | openssl s_client -connect 198.18.10.2:443 -cert {} -key {} -CAfile {} -servername httpbin.test",
        path(rogue.join("default-sleep.crt")),
        path(rogue.join("default-sleep.key")),
        path(mesh.join("ca.crt"))
    );
    let out = topo.node.command("sh", &["-c", &s_client]).output().expect("openssl");
    let text = String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(text.contains("alert"), "the gateway must refuse a foreign client certificate with an alert:\n{text}");
    let refused = egress.wait_json_line("connection", "refused handshake", |v| v["reason"] == "mesh-handshake-failed");
    assert_eq!(refused["decision"], "deny", "{refused}");

    // pod-b has no identity: the node refuses rather than send it unidentified.
    let (code, _, _) = curl_status(|a| topo.pod_b.command("curl", a), &["--cacert", &ca, "--resolve", "httpbin.test:443:203.0.113.10", "https://httpbin.test/"]);
    assert_eq!(code, 0);
    assert_eq!(nginx.access_log().len(), 1, "only pod-a's request reached the internet");
    drop((node, egress));
    topo.teardown();
}

#[test]
fn an_unprivileged_egress_gateway_on_a_read_only_root_serves_the_task_without_bpffs() {
    let topo = Topology::build_with_egress_gateway();
    let certs = certs::generate(&topo.temp.subdir("certs"), "httpbin.test");
    let nginx = Nginx::start(&topo.internet, topo.temp.path(), &certs, INTERNET_V4.into());
    let _dns = Dnsmasq::start(&topo.internet, topo.temp.path(), "203.0.113.10", &[("httpbin.test", "203.0.113.10")]);
    let config_dir = topo.temp.subdir("config");
    std::fs::write(config_dir.join("egress.yaml"), format!("{SERVICE_ENTRY}---\n{EGRESS_GATEWAY}")).unwrap();
    let egress_ns = topo.egress.as_ref().expect("egress namespace");
    let mut config = GatewayConfig::egress_gateway(&topo, vec![config_dir.clone()], "203.0.113.10:53");
    config.run_as = Some(65534);
    config.read_only_root = true;
    let egress = Gateway::start_in(&topo, egress_ns, config);
    let status = std::fs::read_to_string(format!("/proc/{}/status", egress.pid())).unwrap_or_default();
    assert!(status.lines().any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(1) == Some("65534")), "the gateway runs as nobody:\n{status}");
    // Every filesystem it sees is read-only, its root and the test's files alike.
    let mounts = std::fs::read_to_string(format!("/proc/{}/mountinfo", egress.pid())).unwrap_or_default();
    let writable: Vec<&str> = mounts
        .lines()
        .filter(|l| l.split(' ').nth(5).is_some_and(|o| o.split(',').any(|f| f == "rw")))
        .filter(|l| { let m = l.split(' ').nth(4).unwrap_or(""); m == "/" || config_dir.starts_with(m) })
        .collect();
    assert!(writable.is_empty() && mounts.contains(" / "), "writable mounts under the gateway:\n{writable:?}\n{mounts}");
    assert!(!topo.egress_bpffs.exists(), "an instance that intercepts nothing leaves bpffs alone");
    let node = Gateway::start(&topo, GatewayConfig::enforcing(&topo, vec![config_dir]));
    let ca = certs.ca_cert.to_string_lossy().into_owned();
    let (code, body, err) =
        curl_status(|a| topo.pod_a.command("curl", a), &["--cacert", &ca, "--resolve", "httpbin.test:443:203.0.113.10", "https://httpbin.test/"]);
    assert_eq!((code, body.as_str()), (200, format!("{BODY_PREFIX}httpbin.test\n").as_str()), "{err}\ngateway:\n{}", egress.stderr_tail());
    let (code, _, err) = curl_status(|a| topo.pod_a.command("curl", a), &["--resolve", "httpbin.test:80:203.0.113.10", "http://httpbin.test/"]);
    assert_eq!(code, 200, "{err}");
    let seen = nginx.wait_for_entries(2, Duration::from_secs(10));
    assert!(seen.iter().all(|e| e.remote_addr.to_string() == NODE_INTERNET_V4.to_string()), "the internet sees the gateway: {seen:?}");
    let line = egress.wait_json_line("connection", "gateway TLS", |v| v["sni"] == "httpbin.test");
    assert_eq!((line["role"].as_str(), line["decision"].as_str(), line["relay"].as_str()), (Some("egress-gateway"), Some("allow"), Some("copy")), "{line}");
    drop((node, egress));
    topo.teardown();
}
