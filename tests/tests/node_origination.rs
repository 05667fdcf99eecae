//! TLS origination on the node, where a VirtualService route chooses a
//! DestinationRule subset: the subset's `trafficPolicy.tls` applies although
//! the rule's own level says DISABLE. The pod speaks plain HTTP; the real
//! HTTPS server, under a CA generated for the test, sees TLS from the node.
//! Port-level settings name the Service's port, as in Istio's TLS origination task.

use std::path::PathBuf;
use std::time::Duration;

use gateway_tests::addresses::*;
use gateway_tests::certs;
use gateway_tests::client::curl_status;
use gateway_tests::dnsmasq::Dnsmasq;
use gateway_tests::gateway_process::{Gateway, GatewayConfig};
use gateway_tests::nginx::{AccessLogEntry, BODY_PREFIX, Nginx};
use gateway_tests::topology::Topology;

/// secure.test on port 80 (HTTP), reached at its port 443; the route picks
/// the subset `subset` (none when empty).
fn config(rule_ca: &str, subset: &str) -> String {
    let subset = if subset.is_empty() { String::new() } else { format!(", subset: {subset}") };
    format!(
        "apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {{name: secure, namespace: default}}
spec:
  hosts: [secure.test]
  ports: [{{number: 80, name: http-port, protocol: HTTP, targetPort: 443}}]
  location: MESH_EXTERNAL
  resolution: DNS
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {{name: secure, namespace: default}}
spec:
  host: secure.test
  trafficPolicy:
    tls: {{mode: DISABLE}}
  subsets:
  - name: originate
    trafficPolicy:
      tls: {{mode: SIMPLE, caCertificates: {rule_ca}, sni: secure.test}}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {{name: secure, namespace: default}}
spec:
  hosts: [secure.test]
  gateways: [mesh]
  http:
  - route: [{{destination: {{host: secure.test{subset}, port: {{number: 80}}}}}}]
"
    )
}

struct Run {
    code: u16,
    body: String,
    seen: Vec<AccessLogEntry>,
    node: Gateway,
    topo: Topology,
}

fn run(subset: &str) -> Run {
    run_with(|ca| config(ca, subset))
}

/// Istio's egress TLS origination task as written: the ServiceEntry's port 80 reaches port
/// 443, and the DestinationRule's `portLevelSettings` for port 80 (the Service's port, not
/// the target port) ask for SIMPLE TLS.
fn task_config(ca: &str) -> String {
    format!(
        "apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {{name: secure, namespace: default}}
spec:
  hosts: [secure.test]
  ports:
  - {{number: 80, name: http-port, protocol: HTTP, targetPort: 443}}
  - {{number: 443, name: https-port, protocol: HTTPS}}
  location: MESH_EXTERNAL
  resolution: DNS
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {{name: secure, namespace: default}}
spec:
  host: secure.test
  trafficPolicy:
    portLevelSettings:
    - port: {{number: 80}}
      tls: {{mode: SIMPLE, caCertificates: {ca}, sni: secure.test}}
"
    )
}

fn run_with(config: impl Fn(&str) -> String) -> Run {
    let topo = Topology::build();
    let certs = certs::generate(&topo.temp.subdir("certs"), "secure.test");
    let nginx = Nginx::start(&topo.internet, topo.temp.path(), &certs, INTERNET_V4.into());
    let dns = Dnsmasq::start(&topo.internet, topo.temp.path(), "203.0.113.10", &[("secure.test", "203.0.113.10")]);
    let dir = topo.temp.subdir("config");
    std::fs::write(dir.join("secure.yaml"), config(&certs.ca_cert.to_string_lossy())).unwrap();
    let mut gw = GatewayConfig::enforcing(&topo, vec![PathBuf::from(&dir)]);
    gw.extra_args = ["--dns-upstream", "203.0.113.10:53"].iter().map(|s| s.to_string()).collect();
    let node = Gateway::start(&topo, gw);
    let (code, body, _) = curl_status(|a| topo.pod_a.command("curl", a), &["--resolve", "secure.test:80:203.0.113.10", "http://secure.test/"]);
    std::thread::sleep(Duration::from_millis(200));
    let seen = nginx.access_log();
    drop((nginx, dns));
    Run { code, body, seen, node, topo }
}

#[test]
fn a_route_to_a_subset_with_tls_makes_the_node_originate_tls() {
    let r = run("originate");
    assert_eq!((r.code, r.body.as_str()), (200, format!("{BODY_PREFIX}secure.test\n").as_str()), "node:\n{}", r.node.stderr_tail());
    assert_eq!(r.seen.len(), 1, "{:?}", r.seen);
    let e = &r.seen[0];
    assert_eq!((e.server_port, e.sni.as_str(), e.remote_addr.to_string()), (443, "secure.test", NODE_INTERNET_V4.to_string()), "the server sees TLS from the node");
    let line = r.node.wait_json_line("request", "originated", |v| v["host"] == "secure.test");
    assert_eq!((line["upstream"].as_str(), line["status"].as_u64()), (Some("203.0.113.10:443"), Some(200)), "{line}");
    drop(r.node);
    r.topo.teardown();
}

/// The oracle can fail: without the subset the rule's DISABLE applies, the
/// request reaches port 443 in the clear, and the HTTPS server refuses it.
#[test]
fn without_the_subset_the_request_goes_out_in_the_clear() {
    let r = run("");
    assert_eq!(r.code, 400, "nginx refuses plain HTTP on its HTTPS port; node:\n{}", r.node.stderr_tail());
    assert!(r.seen.iter().all(|e| e.sni.is_empty() && e.status != 200), "no TLS reached the server: {:?}", r.seen);
    drop(r.node);
    r.topo.teardown();
}

#[test]
fn port_level_tls_on_the_service_port_originates_as_in_istios_task() {
    let r = run_with(task_config);
    assert_eq!((r.code, r.body.as_str()), (200, format!("{BODY_PREFIX}secure.test\n").as_str()), "node:\n{}", r.node.stderr_tail());
    let e = r.seen.first().unwrap_or_else(|| panic!("nothing reached the server\n{}", r.node.stderr_tail()));
    assert_eq!((e.server_port, e.sni.as_str()), (443, "secure.test"), "the server sees TLS from the node: {:?}", r.seen);
    drop(r.node);
    r.topo.teardown();
}
