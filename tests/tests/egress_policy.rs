//! Egress enforcement end to end: REGISTRY_ONLY by default, ServiceEntries
//! by host, wildcard and CIDR, names checked against addresses, Sidecar
//! scoping, per-request HTTP decisions. Each case checks what the client
//! got, what the internet server saw, the audit line and the metric.

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use gateway_tests::addresses::*;
use gateway_tests::certs;
use gateway_tests::client::{EchoRun, curl_status, run_echo_client};
use gateway_tests::echo_server::EchoServer;
use gateway_tests::gateway_process::{Gateway, GatewayConfig};
use gateway_tests::nginx::{BODY_PREFIX, FRAMING_PREFIX, FRAMING_TEXT, Nginx};
use gateway_tests::topology::{Pod, Topology};
use serde_json::Value;

const CLIENT: &str = env!("CARGO_BIN_EXE_gw-test-client");
const EVENT_TIMEOUT: Duration = Duration::from_secs(10);

const REGISTRY: &str = "apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: web, namespace: default}
spec:
  hosts: [web.test]
  addresses: [203.0.113.10/32, '2001:db8:113::10/128']
  ports:
  - {number: 80, name: http, protocol: HTTP}
  - {number: 443, name: https, protocol: HTTPS}
  location: MESH_EXTERNAL
  resolution: NONE
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: wild, namespace: default}
spec:
  hosts: ['*.example.test']
  addresses: [203.0.113.10/32]
  ports: [{number: 80, name: http, protocol: HTTP}]
  location: MESH_EXTERNAL
  resolution: NONE
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: echo-range, namespace: default}
spec:
  hosts: [echo.internet.test]
  addresses: [203.0.113.12/31, '2001:db8:113::12/127']
  ports: [{number: 7, name: tcp-echo, protocol: TCP}]
  location: MESH_EXTERNAL
  resolution: NONE
";

struct Setup {
    topo: Topology,
    nginx: Nginx,
    gw: Gateway,
    ca: String,
}

fn setup(extra_yaml: &str, extra_args: &[&str]) -> Setup {
    let topo = Topology::build();
    let certs = certs::generate(&topo.temp.subdir("certs"), "web.test");
    let nginx = Nginx::start(&topo.internet, topo.temp.path(), &certs, INTERNET_V4.into());
    let dir = topo.temp.subdir("istio");
    std::fs::write(dir.join("registry.yaml"), format!("{REGISTRY}{extra_yaml}")).unwrap();
    let mut config = GatewayConfig::enforcing(&topo, vec![PathBuf::from(&dir)]);
    config.extra_args = extra_args.iter().map(|s| s.to_string()).collect();
    let gw = Gateway::start(&topo, config);
    let ca = certs.ca_cert.to_string_lossy().into_owned();
    Setup { topo, nginx, gw, ca }
}

/// curl in the pod; (HTTP status or 0, body, curl's stderr).
fn curl(pod: &Pod, args: &[&str]) -> (u16, String, String) {
    curl_status(|a| pod.command("curl", a), args)
}

fn wait_line(gw: &Gateway, event: &str, what: &str, pred: impl Fn(&Value) -> bool) -> Value {
    gw.wait_json_line(event, what, pred)
}

fn nginx_saw(s: &Setup, server_addr: &str) -> usize {
    s.nginx.access_log().iter().filter(|e| e.server_addr.to_string() == server_addr).count()
}

#[test]
fn registered_hosts_pass_over_http_and_https_and_unregistered_ones_are_refused() {
    let s = setup("", &[]);
    let pod = &s.topo.pod_a;
    let (code, body, err) = curl(pod, &["-H", "Host: web.test", "http://203.0.113.10/"]);
    assert_eq!((code, body.as_str()), (200, format!("{BODY_PREFIX}web.test\n").as_str()), "{err}\n{}", s.gw.stderr_tail());
    let (code, body, err) = curl(pod, &["--cacert", &s.ca, "--resolve", "web.test:443:203.0.113.10", "https://web.test/"]);
    assert_eq!((code, body.as_str()), (200, format!("{BODY_PREFIX}web.test\n").as_str()), "{err}");

    // Unregistered name, HTTP: a 403 naming the reason, in body and header.
    let (code, body, err) = curl(pod, &["-H", "Host: other.test", "http://203.0.113.10/"]);
    assert_eq!(code, 403, "{body}{err}");
    assert_eq!(body, "egress to other.test denied: not-registered\n");
    assert!(err.to_ascii_lowercase().contains("x-gateway-denied: not-registered"), "{err}");
    // Unregistered name, TLS: an access_denied alert.
    let (code, _, err) = curl(pod, &["--cacert", &s.ca, "--resolve", "other.test:443:203.0.113.10", "https://other.test/"]);
    assert_eq!(code, 0);
    assert!(err.contains("alert access denied") || err.contains("access denied"), "curl should report the TLS alert: {err}");

    let seen = s.nginx.wait_for_entries(2, EVENT_TIMEOUT);
    assert_eq!(seen.len(), 2, "nginx must see only the two allowed requests: {seen:?}");
    assert!(seen.iter().all(|e| e.host == "web.test"), "{seen:?}");

    let allowed_tls = wait_line(&s.gw, "connection", "allowed TLS", |v| v["sni"] == "web.test");
    assert_eq!((allowed_tls["decision"].as_str(), allowed_tls["reason"].as_str()), (Some("allow"), Some("registered-host")), "{allowed_tls}");
    assert_eq!(allowed_tls["matched"]["name"], "web", "{allowed_tls}");
    assert_eq!(allowed_tls["protocol"], "tls", "{allowed_tls}");
    assert_eq!(allowed_tls["workload"]["namespace"], "default", "{allowed_tls}");
    let denied_tls = wait_line(&s.gw, "connection", "denied TLS", |v| v["sni"] == "other.test");
    assert_eq!((denied_tls["decision"].as_str(), denied_tls["reason"].as_str()), (Some("deny"), Some("not-registered")), "{denied_tls}");
    assert!(denied_tls["upstream"].is_null(), "{denied_tls}");
    let denied_http = wait_line(&s.gw, "request", "denied HTTP", |v| v["host"] == "other.test");
    assert_eq!((denied_http["status"].as_u64(), denied_http["reason"].as_str()), (Some(403), Some("not-registered")), "{denied_http}");

    assert!(s.gw.metric("gateway_connections_total{decision=\"deny\",reason=\"not-registered\",workload=\"default/unknown\",host=\"unknown\"") >= 1);
    assert!(s.gw.metric("gateway_connections_total{decision=\"allow\",reason=\"registered-host\",workload=\"default/unknown\",host=\"web.test\"") >= 1);
    drop(s.gw);
    s.topo.teardown();
}

#[test]
fn a_wildcard_entry_admits_subdomains_only() {
    let s = setup("", &[]);
    let pod = &s.topo.pod_a;
    let (code, body, _) = curl(pod, &["-H", "Host: a.example.test", "http://203.0.113.10/"]);
    assert_eq!((code, body.as_str()), (200, format!("{BODY_PREFIX}a.example.test\n").as_str()));
    for host in ["example.test", "a.example.test.evil.test"] {
        let (code, body, _) = curl(pod, &["-H", &format!("Host: {host}"), "http://203.0.113.10/"]);
        assert_eq!((code, body.clone()), (403, format!("egress to {host} denied: not-registered\n")), "{host}");
    }
    let seen = s.nginx.wait_for_entries(1, EVENT_TIMEOUT);
    assert_eq!(seen.iter().map(|e| e.host.as_str()).collect::<Vec<_>>(), ["a.example.test"]);
    let line = wait_line(&s.gw, "request", "wildcard allow", |v| v["host"] == "a.example.test");
    assert_eq!((line["matched"]["name"].as_str(), line["matched"]["host"].as_str()), (Some("wild"), Some("*.example.test")), "{line}");
    assert_eq!(s.gw.metric("gateway_requests_total{decision=\"allow\",reason=\"registered-host\",workload=\"default/unknown\",host=\"*.example.test\""), 1);
    assert_eq!(s.gw.metric("gateway_requests_total{decision=\"deny\",reason=\"not-registered\",workload=\"default/unknown\",host=\"unknown\""), 2);
    drop(s.gw);
    s.topo.teardown();
}

#[test]
fn a_registered_name_sent_to_an_unregistered_ip_goes_nowhere() {
    let s = setup("", &[]);
    let pod = &s.topo.pod_a;
    for (ip, url_ip) in [("203.0.113.11", "203.0.113.11"), ("2001:db8:113::11", "[2001:db8:113::11]")] {
        let (code, body, _) = curl(pod, &["-g", "-H", "Host: web.test", &format!("http://{url_ip}/")]);
        assert_eq!((code, body.as_str()), (403, "egress to web.test denied: ip-name-mismatch\n"), "{ip}");
        let resolve = format!("web.test:443:{url_ip}");
        let (code, _, err) = curl(pod, &["--cacert", &s.ca, "--resolve", &resolve, "https://web.test/"]);
        assert_eq!(code, 0, "TLS to {ip} must fail: {err}");
        let line = wait_line(&s.gw, "connection", "TLS mismatch", |v| {
            v["sni"] == "web.test" && v["orig_dst"].as_str().is_some_and(|d| d.contains(ip))
        });
        assert_eq!(line["reason"], "ip-name-mismatch", "{line}");
        assert_eq!(nginx_saw(&s, ip), 0, "the unregistered server {ip} must see nothing");
    }
    let mismatch = "{decision=\"deny\",reason=\"ip-name-mismatch\",workload=\"default/unknown\",host=\"web.test\"";
    assert_eq!(s.gw.metric(&format!("gateway_connections_total{mismatch}")), 4, "two TLS and two HTTP connections");
    assert_eq!(s.gw.metric(&format!("gateway_requests_total{mismatch}")), 2, "the two HTTP requests");
    drop(s.gw);
    s.topo.teardown();
}

#[test]
fn opaque_tcp_passes_to_a_registered_cidr_and_is_reset_elsewhere() {
    let s = setup("", &[]);
    let echo = EchoServer::start(&s.topo.internet, &[7]);
    let ok = [sock(internet_v4(2), 7), sock(internet_v4(3), 7), sock(internet_v6(2), 7)];
    let summary = run_echo_client(|a| s.topo.pod_a.command(CLIENT, a), &EchoRun::to(&ok));
    summary.assert_all_intact("echo to the registered range");
    let refused = [sock(internet_v4(1), 7), sock(internet_v6(1), 7)];
    let summary = run_echo_client(|a| s.topo.pod_a.command(CLIENT, a), &EchoRun { timeout: Duration::from_secs(5), ..EchoRun::to(&refused) });
    for r in &summary.results {
        assert!(!r.intact && r.received == 0, "{} must be refused: {}", r.target, summary.raw);
    }
    std::thread::sleep(Duration::from_millis(300));
    let seen = echo.accepted();
    assert!(seen.iter().all(|a| ok.iter().any(|o| canonical(*o).ip() == a.local.ip())), "the echo server saw an unregistered address: {seen:?}");
    let line = wait_line(&s.gw, "connection", "reset", |v| v["orig_dst"] == "203.0.113.11:7");
    assert_eq!((line["decision"].as_str(), line["reason"].as_str(), line["protocol"].as_str()), (Some("deny"), Some("not-registered"), Some("tcp")), "{line}");
    let ok_line = wait_line(&s.gw, "connection", "allowed echo", |v| v["orig_dst"] == "203.0.113.12:7");
    assert_eq!((ok_line["reason"].as_str(), ok_line["matched"]["name"].as_str()), (Some("registered-address"), Some("echo-range")), "{ok_line}");
    assert_eq!(s.gw.metric("gateway_connections_total{decision=\"allow\",reason=\"registered-address\",workload=\"default/unknown\",host=\"echo.internet.test\""), 3);
    assert_eq!(s.gw.metric("gateway_connections_total{decision=\"deny\",reason=\"not-registered\",workload=\"default/unknown\",host=\"unknown\""), 2);
    drop(s.gw);
    s.topo.teardown();
}

#[test]
fn a_sidecar_scopes_each_workload_and_allow_any_lets_unknown_hosts_through() {
    let scoped = "---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: pod-a, namespace: default}
spec: {address: 198.18.1.2, labels: {app: a}, serviceAccount: a}
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: pod-b, namespace: default}
spec: {address: 198.18.2.2, labels: {app: b}, serviceAccount: b}
---
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: {name: pod-b-narrow, namespace: default}
spec:
  workloadSelector: {labels: {app: b}}
  egress: [{hosts: ['./echo.internet.test']}]
";
    let s = setup(scoped, &[]);
    let (code, _, _) = curl(&s.topo.pod_a, &["-H", "Host: web.test", "http://203.0.113.10/"]);
    assert_eq!(code, 200);
    let (code, body, _) = curl(&s.topo.pod_b, &["-H", "Host: web.test", "http://203.0.113.10/"]);
    assert_eq!((code, body.as_str()), (403, "egress to web.test denied: not-in-sidecar-scope\n"));
    let line = wait_line(&s.gw, "request", "pod-b denied", |v| v["workload"]["name"] == "pod-b");
    assert_eq!((line["workload"]["service_account"].as_str(), line["decision"].as_str()), (Some("b"), Some("deny")), "{line}");
    assert_eq!(s.gw.metric("gateway_requests_total{decision=\"deny\",reason=\"not-in-sidecar-scope\",workload=\"default/pod-b\",host=\"web.test\""), 1);
    assert_eq!(s.gw.metric("gateway_requests_total{decision=\"allow\",reason=\"registered-host\",workload=\"default/pod-a\",host=\"web.test\""), 1);
    drop(s.gw);
    s.topo.teardown();

    // Node default ALLOW_ANY: an unregistered host goes through, logged as such.
    let s = setup("", &["--outbound-policy", "ALLOW_ANY"]);
    let (code, _, _) = curl(&s.topo.pod_a, &["-H", "Host: unknown.test", "http://203.0.113.11/"]);
    assert_eq!(code, 200);
    let line = wait_line(&s.gw, "request", "allow-any", |v| v["host"] == "unknown.test");
    assert_eq!((line["decision"].as_str(), line["reason"].as_str()), (Some("allow"), Some("allow-any")), "{line}");
    assert!(line["matched"].is_null(), "{line}");
    assert_eq!(nginx_saw(&s, "203.0.113.11"), 1);
    assert_eq!(s.gw.metric("gateway_requests_total{decision=\"allow\",reason=\"allow-any\",workload=\"default/unknown\",host=\"unknown\""), 1);
    drop(s.gw);
    s.topo.teardown();
}

#[test]
fn each_request_on_a_keep_alive_connection_is_decided_on_its_own() {
    let s = setup("", &[]);
    let requests = "GET /first HTTP/1.1\r\nHost: web.test\r\n\r\nGET /second HTTP/1.1\r\nHost: other.test\r\nConnection: close\r\n\r\n";
    let out = s
        .topo
        .pod_a
        .command("sh", &["-c", &format!("printf '{}' | socat -t 5 - TCP:203.0.113.10:80", requests.replace('\r', "\\r").replace('\n', "\\n"))])
        .output()
        .expect("socat");
    let text = String::from_utf8_lossy(&out.stdout);
    let first = text.find("HTTP/1.1 200").unwrap_or_else(|| panic!("first response not 200:\n{text}"));
    let second = text.find("HTTP/1.1 403").unwrap_or_else(|| panic!("second response not 403:\n{text}"));
    assert!(first < second, "{text}");
    let seen = s.nginx.wait_for_entries(1, EVENT_TIMEOUT);
    assert_eq!(seen.len(), 1, "only the allowed request reaches the server: {seen:?}");
    let conn = wait_line(&s.gw, "connection", "keep-alive connection", |v| v["protocol"] == "http");
    assert_eq!((conn["requests"].as_u64(), conn["denied_requests"].as_u64()), (Some(2), Some(1)), "{conn}");
    let denied = wait_line(&s.gw, "request", "second request", |v| v["path"] == "/second");
    assert_eq!((denied["status"].as_u64(), denied["host"].as_str()), (Some(403), Some("other.test")), "{denied}");
    assert_eq!(s.gw.metric("gateway_requests_total{decision=\"deny\",reason=\"not-registered\",workload=\"default/unknown\",host=\"unknown\""), 1);
    assert_eq!(s.gw.metric("gateway_requests_total{decision=\"allow\",reason=\"registered-host\",workload=\"default/unknown\",host=\"web.test\""), 1);
    drop(s.gw);
    s.topo.teardown();
}

/// One keep-alive connection asking nginx for each framing in turn; prints a line per answer.
const FRAMING_CLIENT: &str = "import gzip, http.client, sys, time
conn = http.client.HTTPConnection(sys.argv[1], 80, timeout=10)
prefix = sys.argv[2]
def ask(method, path, **headers):
    conn.request(method, prefix + path, headers={'Host': 'web.test', **headers})
    r = conn.getresponse()
    return r, r.read()
r, b = ask('GET', 'gzip', **{'Accept-Encoding': 'gzip'})
print('gzip', r.status, r.getheader('Transfer-Encoding'), gzip.decompress(b).decode())
r, b = ask('HEAD', 'file.txt')
etag = r.getheader('ETag')
print('head', r.status, r.getheader('Content-Length'), len(b))
r, b = ask('GET', 'file.txt', **{'If-None-Match': etag})
print('not-modified', r.status, len(b))
r, b = ask('GET', 'empty')
print('empty', r.status, len(b))
r, b = ask('GET', 'short-keepalive')
print('short', r.status, b.decode().strip())
time.sleep(2.5)
r, b = ask('GET', 'file.txt')
print('after-idle-close', r.status, b.decode())
r, b = ask('GET', 'close-after')
print('close-after', r.status, b.decode().strip())
r, b = ask('GET', 'file.txt')
print('after-close', r.status, b.decode())
";

/// Each framing an upstream's HTTP/1.1 answer may have reaches the pod intact: chunked with a
/// trailer (compressed on the fly), HEAD, 304, 204, each leaving the upstream connection for the
/// next request; and a pooled connection the upstream closed while idle, or said it would close,
/// costs a connection, not a request.
#[test]
fn every_response_framing_reaches_the_pod_intact_and_closed_upstream_connections_cost_no_request() {
    let s = setup("", &[]);
    let out = s.topo.pod_a.command("python3", &["-c", FRAMING_CLIENT, "203.0.113.10", FRAMING_PREFIX]).output().expect("python3");
    let (text, err) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    let length = FRAMING_TEXT.len();
    let expected = format!(
        "gzip 200 chunked {FRAMING_TEXT}\nhead 200 {length} 0\nnot-modified 304 0\nempty 204 0\nshort 200 short\n\
         after-idle-close 200 {FRAMING_TEXT}\nclose-after 200 closing\nafter-close 200 {FRAMING_TEXT}\n"
    );
    assert_eq!(text, expected, "{err}");
    let seen = s.nginx.wait_for_entries(8, EVENT_TIMEOUT);
    let answered: Vec<(&str, u16)> = seen.iter().map(|e| (e.uri.trim_start_matches(FRAMING_PREFIX), e.status)).collect();
    let asked = [("gzip", 200), ("file.txt", 200), ("file.txt", 304), ("empty", 204), ("short-keepalive", 200), ("file.txt", 200), ("close-after", 200), ("file.txt", 200)];
    assert_eq!(answered, asked, "nginx answered each request once");
    // The first five share one upstream connection; nginx closed it while idle, so the sixth
    // came on another, and the last on a third after nginx said close.
    let conns: Vec<u64> = seen.iter().map(|e| e.connection).collect();
    assert!(conns[..5].iter().all(|c| *c == conns[0]), "one pooled connection for the first five: {conns:?}");
    assert!(conns[5] != conns[0] && conns[6] == conns[5] && conns[7] != conns[6], "{conns:?}");
    drop(s.gw);
    s.topo.teardown();
}

#[test]
fn ipv6_clients_get_the_same_policy() {
    let s = setup("", &[]);
    let pod = &s.topo.pod_a;
    let (code, _, err) = curl(pod, &["-g", "-H", "Host: web.test", "http://[2001:db8:113::10]/"]);
    assert_eq!(code, 200, "{err}");
    let (code, _, err) = curl(pod, &["--cacert", &s.ca, "--resolve", "web.test:443:[2001:db8:113::10]", "https://web.test/"]);
    assert_eq!(code, 200, "{err}");
    let (code, _, _) = curl(pod, &["-g", "-H", "Host: other.test", "http://[2001:db8:113::10]/"]);
    assert_eq!(code, 403);
    let line = wait_line(&s.gw, "connection", "v6 TLS", |v| v["sni"] == "web.test");
    assert!(line["orig_dst"].as_str().unwrap().starts_with("[2001:db8:113::10]"), "{line}");
    let v6_seen: Vec<IpAddr> = s.nginx.wait_for_entries(2, EVENT_TIMEOUT).iter().map(|e| e.remote_addr).collect();
    assert!(v6_seen.iter().all(|a| *a == IpAddr::V6(NODE_INTERNET_V6)), "{v6_seen:?}");
    drop(s.gw);
    s.topo.teardown();
}

/// Connects, stays silent past the sniff timeout, then talks; says what came back.
const SILENT_CLIENT: &str = "import socket, sys, time
s = socket.create_connection((sys.argv[1], 7), timeout=5)
time.sleep(1.5)
try:
    s.sendall(b'late hello\\n')
    print(s.recv(100).decode().strip() or 'closed')
except OSError as e:
    print('error', e.errno)
";

#[test]
fn a_silent_client_is_decided_by_address_and_the_audit_log_can_go_to_a_file() {
    let topo = Topology::build();
    let echo = EchoServer::start(&topo.internet, &[7]);
    let dir = topo.temp.subdir("istio");
    std::fs::write(dir.join("registry.yaml"), REGISTRY).unwrap();
    let log = topo.temp.subdir("audit").join("audit.jsonl");
    let mut config = GatewayConfig::enforcing(&topo, vec![PathBuf::from(&dir)]);
    config.extra_args = vec!["--access-log".into(), log.to_string_lossy().into_owned(), "--sniff-timeout-ms".into(), "1000".into()];
    let gw = Gateway::start(&topo, config);
    let run = |ip: &str| {
        let out = topo.pod_a.command("python3", &["-c", SILENT_CLIENT, ip]).output().expect("python3");
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    assert_eq!(run("203.0.113.12"), "late hello", "registered range, declared TCP: decided by address at accept");
    let refused = run("203.0.113.11");
    assert!(refused == "closed" || refused.starts_with("error"), "unregistered: {refused}");
    let lines = wait_for_file_lines(&log, 2);
    let by_dst = |d: &str| lines.iter().find(|v| v["orig_dst"] == d).cloned().unwrap_or_else(|| panic!("no line for {d}: {lines:?}"));
    let ok = by_dst("203.0.113.12:7");
    assert_eq!((ok["protocol"].as_str(), ok["reason"].as_str(), ok["detection"].as_str()), (Some("tcp"), Some("registered-address"), Some("declared")), "{ok}");
    assert!(ok["duration_ms"].as_u64().unwrap() >= 1000, "{ok}");
    assert_eq!(by_dst("203.0.113.11:7")["reason"], "not-registered");
    assert!(gw.json_lines("connection").is_empty(), "with --access-log nothing goes to stdout");
    assert_eq!(echo.accepted().len(), 1);
    drop(gw);
    topo.teardown();
}

fn wait_for_file_lines(path: &std::path::Path, n: usize) -> Vec<Value> {
    gateway_tests::wait::poll(EVENT_TIMEOUT, Duration::from_millis(50), || {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        let lines: Vec<Value> = text.lines().filter_map(|l| serde_json::from_str(l).ok()).collect();
        (lines.len() >= n).then_some(lines)
    })
    .unwrap_or_else(|| panic!("fewer than {n} lines in {}", path.display()))
}

#[test]
fn a_host_network_workload_is_known_by_its_cgroup() {
    let agent = "---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: node-agent, namespace: default}
spec: {address: 198.18.0.1, labels: {app: agent}, serviceAccount: agent}
---
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: {name: agent-narrow, namespace: default}
spec:
  workloadSelector: {labels: {app: agent}}
  egress: [{hosts: ['./web.test']}]
";
    let topo = Topology::build();
    let certs = certs::generate(&topo.temp.subdir("certs"), "web.test");
    let nginx = Nginx::start(&topo.internet, topo.temp.path(), &certs, INTERNET_V4.into());
    let dir = topo.temp.subdir("istio");
    std::fs::write(dir.join("registry.yaml"), format!("{REGISTRY}{agent}")).unwrap();
    let mut config = GatewayConfig::enforcing(&topo, vec![PathBuf::from(&dir)]);
    config.intercept_cgroups.push(PathBuf::from(format!("{}=default/node-agent", topo.node_cgroup.path().display())));
    let gw = Gateway::start(&topo, config);
    let node_curl = |host: &str| curl_status(|a| topo.node_workload_command("curl", a), &["-H", &format!("Host: {host}"), "http://203.0.113.10/"]);
    assert_eq!(node_curl("web.test").0, 200);
    let (code, body, _) = node_curl("a.example.test");
    assert_eq!((code, body.as_str()), (403, "egress to a.example.test denied: not-in-sidecar-scope\n"));
    // A pod, known by its address, is not narrowed by the agent's Sidecar.
    assert_eq!(curl(&topo.pod_a, &["-H", "Host: a.example.test", "http://203.0.113.10/"]).0, 200);
    let line = gw.wait_json_line("request", "agent", |v| v["host"] == "a.example.test" && v["decision"] == "deny");
    assert_eq!((line["workload"]["name"].as_str(), line["workload"]["service_account"].as_str()), (Some("node-agent"), Some("agent")), "{line}");
    assert_eq!(nginx.access_log().len(), 2);
    drop(gw);
    topo.teardown();
}

#[test]
fn explicit_listeners_and_iptables_redirects_follow_the_same_policy() {
    let topo = Topology::build();
    let echo = EchoServer::start(&topo.internet, &[7]);
    let dir = topo.temp.subdir("istio");
    std::fs::write(dir.join("registry.yaml"), REGISTRY).unwrap();
    let mut config = GatewayConfig::enforcing(&topo, vec![PathBuf::from(&dir)]);
    config.intercept_cgroups.clear(); // no kernel interception here
    config.extra_args = ["--forward", "198.18.0.1:16000=203.0.113.12:7", "--forward", "198.18.0.1:16001=203.0.113.11:7", "--iptables-original-dst"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let gw = Gateway::start(&topo, config);
    let from_pod = |targets: &[std::net::SocketAddr]| {
        run_echo_client(|a| topo.pod_a.command_outside_cgroup(CLIENT, a), &EchoRun { timeout: Duration::from_secs(5), ..EchoRun::to(targets) })
    };
    // Explicit listeners: the registry decides as for intercepted traffic.
    let explicit = from_pod(&[sock(PROXY_V4, 16000), sock(PROXY_V4, 16001)]);
    assert!(explicit.results[0].intact && !explicit.results[1].intact, "{}", explicit.raw);
    // iptables DNAT in the node namespace, as Istio's sidecar capture does.
    let nat = ["-t", "nat", "-A", "PREROUTING", "-i", "pa", "-p", "tcp", "-d", "203.0.113.0/24", "-j", "DNAT", "--to-destination", "198.18.0.1:15001"];
    let out = topo.node.command("iptables", &nat).output().expect("iptables");
    assert!(out.status.success(), "iptables: {}", String::from_utf8_lossy(&out.stderr));
    let redirected = from_pod(&[sock(internet_v4(3), 7), sock(internet_v4(1), 7)]);
    assert!(redirected.results[0].intact && !redirected.results[1].intact, "{}", redirected.raw);
    let line = gw.wait_json_line("connection", "iptables", |v| v["orig_dst"] == "203.0.113.13:7");
    assert_eq!((line["reason"].as_str(), line["cgroup_id"].is_null()), (Some("registered-address"), true), "{line}");
    let refused = gw.wait_json_line("connection", "iptables refused", |v| v["orig_dst"] == "203.0.113.11:7" && v["decision"] == "deny");
    assert_eq!(refused["reason"], "not-registered");
    let arrived: Vec<String> = echo.accepted().iter().map(|a| a.local.ip().to_string()).collect();
    assert_eq!(arrived.len(), 2, "only the two allowed connections arrive: {arrived:?}");
    drop(gw);
    topo.teardown();
}
