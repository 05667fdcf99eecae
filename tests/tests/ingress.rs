//! The ingress role: Istio's ingress task and the routing users expect
//! from Envoy, driven by curl from outside, backends in their own namespace.

use std::time::Duration;

use gateway_tests::addresses::*;
use gateway_tests::certs;
use gateway_tests::client::curl_status;
use gateway_tests::gateway_process::Gateway;
use gateway_tests::istio;
use gateway_tests::nginx::{BODY_PREFIX, Nginx};
use gateway_tests::topology::Topology;

fn config(cert: &str, key: &str) -> String {
    istio::static_service("hello", 80, "HTTP", &["203.0.113.10"])
        + &istio::static_service("hello-v2", 80, "HTTP", &["203.0.113.11"])
        + &format!(
            "apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {{name: hello-gateway, namespace: default}}
spec:
  selector: {{istio: ingressgateway}}
  servers:
  - port: {{number: 80, name: http, protocol: HTTP}}
    hosts: [hello.test]
  - port: {{number: 443, name: https, protocol: HTTPS}}
    hosts: [hello.test]
    tls: {{mode: SIMPLE, serverCertificate: {cert}, privateKey: {key}}}
  - port: {{number: 8080, name: http-redirect, protocol: HTTP}}
    hosts: [hello.test]
    tls: {{httpsRedirect: true}}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {{name: hello, namespace: default}}
spec:
  hosts: [hello.test]
  gateways: [hello-gateway]
  http:
  - match: [{{uri: {{prefix: /split}}}}]
    route:
    - {{destination: {{host: hello.default.svc.cluster.local, port: {{number: 80}}}}, weight: 80}}
    - {{destination: {{host: hello-v2.default.svc.cluster.local, port: {{number: 80}}}}, weight: 20}}
  - match: [{{uri: {{prefix: /old}}}}]
    redirect: {{uri: /new, redirectCode: 302}}
  - match: [{{uri: {{exact: /teapot}}}}]
    directResponse: {{status: 418, body: {{string: short and stout}}}}
  - match: [{{uri: {{prefix: /web}}}}]
    route: [{{destination: {{host: hello-v2.default.svc.cluster.local, port: {{number: 80}}}}}}]
  - route: [{{destination: {{host: hello.default.svc.cluster.local, port: {{number: 80}}}}}}]
"
        )
}

/// Writes `yaml` and starts an ingress gateway on it in the node namespace.
fn start_ingress(topo: &Topology, yaml: &str, extra: &[&str]) -> Gateway {
    Gateway::start_ingress(topo, yaml, extra)
}

struct Setup {
    topo: Topology,
    nginx: Nginx,
    gw: Gateway,
    ca: String,
}

fn setup() -> Setup {
    setup_with(&[])
}

fn setup_with(extra: &[&str]) -> Setup {
    let topo = Topology::build();
    let backend_certs = certs::generate(&topo.temp.subdir("backend-certs"), "backend.test");
    let nginx = Nginx::start(&topo.internet, topo.temp.path(), &backend_certs, INTERNET_V4.into());
    let certs = certs::generate(&topo.temp.subdir("certs"), "hello.test");
    let yaml = config(&certs.server_cert.to_string_lossy(), &certs.server_key.to_string_lossy());
    let gw = start_ingress(&topo, &yaml, extra);
    let ca = certs.ca_cert.to_string_lossy().into_owned();
    Setup { topo, nginx, gw, ca }
}

/// curl from pod-a, which here is an outside client (not intercepted).
fn curl(s: &Setup, args: &[&str]) -> (u16, String, String) {
    curl_status(|a| s.topo.pod_a.command_outside_cgroup("curl", a), args)
}

#[test]
fn the_ingress_task_routes_by_host_and_path_and_splits_by_weight() {
    let s = setup();
    let (code, body, err) = curl(&s, &["-H", "Host: hello.test", "http://198.18.1.1/"]);
    assert_eq!((code, body.as_str()), (200, format!("{BODY_PREFIX}hello.test\n").as_str()), "{err}\n{}", s.gw.stderr_tail());
    let (code, _, _) = curl(&s, &["-H", "Host: other.test", "http://198.18.1.1/"]);
    assert_eq!(code, 404, "another host has no route");
    let nr = s.gw.wait_json_line("request", "no route", |v| v["host"] == "other.test");
    assert_eq!((nr["status"].as_u64(), nr["flags"].as_str()), (Some(404), Some("NR")), "{nr}");
    let (code, _, _) = curl(&s, &["-H", "Host: hello.test", "http://198.18.1.1/web/page"]);
    assert_eq!(code, 200);
    let seen = s.nginx.wait_for_entries(2, Duration::from_secs(10));
    let addrs: Vec<String> = seen.iter().map(|e| e.server_addr.to_string()).collect();
    assert_eq!(addrs, ["203.0.113.10", "203.0.113.11"], "/ goes to hello, /web to hello-v2");
    let (_, metrics) = s.gw.admin_request("GET", "/metrics");
    assert!(
        metrics.contains("istio_requests_total{reporter=\"source\",source_workload=\"unknown\",destination_service=\"hello.default.svc.cluster.local\",response_code=\"200\",response_flags=\"-\",request_protocol=\"http\",connection_security_policy=\"none\"} 1"),
        "{metrics}"
    );
    assert!(metrics.contains("istio_request_duration_milliseconds_bucket{"), "{metrics}");
    let line = s.gw.wait_json_line("request", "routed", |v| v["path"] == "/web/page");
    assert_eq!((line["route"]["name"].as_str(), line["upstream"].as_str()), (Some("hello"), Some("203.0.113.11:80")), "{line}");

    // 2,000 requests on one connection (curl's URL globbing), split 80/20.
    let (code, _, err) = curl(&s, &["-o", "/dev/null", "-H", "Host: hello.test", "http://198.18.1.1/split/[1-2000]"]);
    assert_eq!(code, 200, "{err}");
    let entries = gateway_tests::wait::poll(Duration::from_secs(20), Duration::from_millis(100), || {
        let all = s.nginx.access_log();
        (all.len() >= 2002).then_some(all)
    })
    .expect("2,000 split requests reach the backends");
    let v2 = entries[2..].iter().filter(|e| e.server_addr.to_string() == "203.0.113.11").count();
    let share = v2 as f64 / 2000.0;
    assert!((0.15..=0.25).contains(&share), "hello-v2 got {v2} of 2000 ({share:.3}); 0.20 ± 0.05 expected");
    drop(s.gw);
    s.topo.teardown();
}

#[test]
fn redirects_direct_responses_https_redirect_and_tls_termination() {
    let s = setup();
    let (code, _, headers) = curl(&s, &["-H", "Host: hello.test", "http://198.18.1.1/old/x"]);
    assert_eq!(code, 302);
    assert!(headers.to_ascii_lowercase().contains("location: http://hello.test/new"), "{headers}");
    let (code, body, _) = curl(&s, &["-H", "Host: hello.test", "http://198.18.1.1/teapot"]);
    assert_eq!((code, body.as_str()), (418, "short and stout"));
    let (code, _, headers) = curl(&s, &["-H", "Host: hello.test", "http://198.18.1.1:8080/path?q=1"]);
    assert_eq!(code, 301);
    assert!(headers.to_ascii_lowercase().contains("location: https://hello.test/path?q=1"), "{headers}");
    let (code, body, err) = curl(&s, &["--cacert", &s.ca, "--resolve", "hello.test:443:198.18.1.1", "https://hello.test/"]);
    assert_eq!((code, body.as_str()), (200, format!("{BODY_PREFIX}hello.test\n").as_str()), "{err}");
    let line = s.gw.wait_json_line("request", "https", |v| v["path"] == "/" && v["status"] == 200);
    assert_eq!(line["decision"], "allow", "{line}");
    assert_eq!(s.nginx.access_log().len(), 1, "only the HTTPS request reached a backend");
    drop(s.gw);
    s.topo.teardown();
}

/// The api service (203.0.113.12:8080) behind `api-gateway` on port 80, and
/// its routes.
fn policies() -> String {
    istio::static_service("api", 8080, "HTTP", &["203.0.113.12"]) + &istio::ingress_gateway("api-gateway", 80, "HTTP", &["api.test"]) + POLICY_ROUTES
}

const POLICY_ROUTES: &str = "apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: api, namespace: default}
spec:
  hosts: [api.test]
  gateways: [api-gateway]
  http:
  - match: [{uri: {prefix: /flaky-retry}}]
    retries: {attempts: 3, retryOn: 5xx}
    route: [{destination: {host: api.default.svc.cluster.local, port: {number: 8080}}}]
  - match: [{uri: {prefix: /slow}}]
    timeout: 0.5s
    route: [{destination: {host: api.default.svc.cluster.local, port: {number: 8080}}}]
  - match: [{uri: {prefix: /abort}}]
    fault: {abort: {httpStatus: 503, percentage: {value: 50}}}
    route: [{destination: {host: api.default.svc.cluster.local, port: {number: 8080}}}]
  - match: [{uri: {prefix: /delay}}]
    fault: {delay: {fixedDelay: 0.3s, percentage: {value: 100}}}
    route: [{destination: {host: api.default.svc.cluster.local, port: {number: 8080}}}]
  - match: [{uri: {prefix: /halfdelay}}]
    fault: {delay: {fixedDelay: 0.1s, percentage: {value: 50}}}
    route: [{destination: {host: api.default.svc.cluster.local, port: {number: 8080}}}]
  - match: [{uri: {prefix: /api/}}]
    rewrite: {uri: /v1/}
    headers:
      request: {set: {x-added: 'yes'}}
      response: {set: {x-resp: done}}
    route: [{destination: {host: api.default.svc.cluster.local, port: {number: 8080}}}]
  - route: [{destination: {host: api.default.svc.cluster.local, port: {number: 8080}}}]
";

/// Status codes of `count` requests to `path_glob` on one curl connection.
fn codes(topo: &Topology, url: &str) -> Vec<u16> {
    let out = topo
        .pod_a
        .command_outside_cgroup("curl", &["-s", "--noproxy", "*", "--max-time", "60", "-o", "/dev/null", "-w", "%{http_code}\\n", "-H", "Host: api.test", url])
        .output()
        .expect("curl");
    String::from_utf8_lossy(&out.stdout).lines().filter_map(|l| l.trim().parse().ok()).collect()
}

#[test]
fn retries_timeouts_faults_rewrites_and_header_edits() {
    let topo = Topology::build();
    let backend = gateway_tests::http_backend::HttpBackend::start(&topo.internet, "203.0.113.12:8080".parse().unwrap());
    let gw = start_ingress(&topo, &policies(), &[]);

    // A backend failing every other request: retries make every request succeed…
    let retried = codes(&topo, "http://198.18.1.1/flaky-retry/[1-20]");
    assert_eq!(retried, vec![200; 20], "with retries");
    // …and without them about half fail.
    let plain = codes(&topo, "http://198.18.1.1/flaky/[1-20]");
    assert_eq!(plain.len(), 20);
    assert!(plain.iter().filter(|c| **c == 500).count() >= 8, "without retries: {plain:?}");

    // The route timeout answers 504 on time.
    let start = std::time::Instant::now();
    assert_eq!(codes(&topo, "http://198.18.1.1/slow"), vec![504]);
    assert!(start.elapsed() < Duration::from_millis(1800), "504 after {:?}", start.elapsed());
    let ut = gw.wait_json_line("request", "timeout", |v| v["path"] == "/slow");
    assert_eq!(ut["flags"], "UT", "{ut}");

    // Fault abort at 50 %, within tolerance over 200 requests; delay at 100 %.
    let aborted = codes(&topo, "http://198.18.1.1/abort/[1-200]");
    let n = aborted.iter().filter(|c| **c == 503).count();
    assert!((70..=130).contains(&n), "{n} of 200 aborted; 100 ± 30 expected");
    let fi = gw.wait_json_line("request", "fault", |v| v["status"] == 503 && v["path"].as_str().is_some_and(|p| p.starts_with("/abort")));
    assert_eq!(fi["flags"], "FI", "{fi}");
    let start = std::time::Instant::now();
    assert_eq!(codes(&topo, "http://198.18.1.1/delay"), vec![200]);
    assert!(start.elapsed() >= Duration::from_millis(300), "the delay was not applied");
    // Delay at 50 %: the delayed requests carry DI, and took their delay.
    let start = std::time::Instant::now();
    assert_eq!(codes(&topo, "http://198.18.1.1/halfdelay/[1-100]"), vec![200; 100]);
    let elapsed = start.elapsed();
    let is_half = |v: &serde_json::Value| v["path"].as_str().is_some_and(|p| p.starts_with("/halfdelay"));
    gateway_tests::wait::until("100 request lines", Duration::from_secs(10), || gw.json_lines("request").iter().filter(|v| is_half(v)).count() >= 100);
    let lines = gw.json_lines("request");
    let half: Vec<_> = lines.iter().filter(|v| is_half(v)).collect();
    assert_eq!(half.len(), 100);
    let delayed = half.iter().filter(|v| v["flags"] == "DI").count();
    assert!((30..=70).contains(&delayed), "{delayed} of 100 delayed; 50 ± 20 expected");
    assert!(elapsed >= Duration::from_millis(100) * delayed as u32, "{delayed} delays of 0.1 s in {elapsed:?}");

    // Rewrite and header edits, as the backend and the client see them.
    let (code, body, headers) = curl_status(|a| topo.pod_a.command_outside_cgroup("curl", a), &["-H", "Host: api.test", "http://198.18.1.1/api/users?id=7"]);
    assert_eq!((code, body.as_str()), (200, "path=/v1/users?id=7\nx-added=yes\n"));
    assert!(headers.to_ascii_lowercase().contains("x-resp: done"), "{headers}");
    let last = backend.seen().into_iter().rev().find(|r| r.path.starts_with("/v1/")).expect("the rewritten request");
    assert!(last.headers.iter().any(|(k, v)| k == "x-forwarded-for" && v == "198.18.1.2"), "{:?}", last.headers);
    assert!(last.headers.iter().any(|(k, _)| k == "x-request-id"), "{:?}", last.headers);
    drop(gw);
    topo.teardown();
}

/// Sends a request head slowly; prints how the connection ended and when.
const SLOW_HEADERS: &str = "import socket, sys, time
s = socket.create_connection(('198.18.1.1', 80), timeout=10)
s.sendall(b'GET / HTTP/1.1\\r\\nHost: hello.test\\r\\n')
start = time.time()
try:
    data = s.recv(100)
    print('closed' if not data else 'answered', round(time.time() - start, 1))
except OSError as e:
    print('error', e.errno, round(time.time() - start, 1))
";

/// Two requests on one keep-alive connection, 2.5 s apart: prints both
/// status lines.
const KEEPALIVE_PAUSE: &str = "import socket, time
s = socket.create_connection(('198.18.1.1', 80), timeout=10)
f = s.makefile('rb')
def ask():
    s.sendall(b'GET / HTTP/1.1\\r\\nHost: hello.test\\r\\n\\r\\n')
    return read_response(f)
first = ask()
time.sleep(2.5)
print(first, '|', ask())
";

/// Holds 2,000 idle connections open while curl runs, then says how many it held.
const IDLE_CROWD: &str = "import resource, socket, subprocess, sys
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
held = [socket.create_connection(('198.18.1.1', 80), timeout=5) for _ in range(2000)]
out = subprocess.run(['curl', '-s', '-o', '/dev/null', '-w', '%{http_code}', '--max-time', '10', '-H', 'Host: hello.test', 'http://198.18.1.1/'], capture_output=True, text=True)
print(len(held), out.stdout)
";

#[test]
fn abusive_clients_are_cut_off_and_do_not_starve_others() {
    let s = setup_with(&["--header-read-timeout-ms", "1000"]);
    // Oversized headers: 431.
    let big = format!("X-Big: {}", "a".repeat(70 * 1024));
    let (code, _, _) = curl(&s, &["-H", "Host: hello.test", "-H", &big, "http://198.18.1.1/"]);
    assert_eq!(code, 431);
    // At most 100 header fields: curl's Host, User-Agent and Accept and 97 more pass, 98 more get 431.
    for (extra, expected) in [(97, 200), (98, 431)] {
        let fields: Vec<String> = (0..extra).map(|i| format!("X-Field-{i}: v")).collect();
        let mut args = vec!["-H", "Host: hello.test"];
        fields.iter().for_each(|f| args.extend(["-H", f.as_str()]));
        args.push("http://198.18.1.1/");
        assert_eq!(curl(&s, &args).0, expected, "{extra} header fields beside curl's own three");
    }
    // A client trickling its headers is disconnected at the header timeout.
    let out = s.topo.pod_a.command_outside_cgroup("python3", &["-c", SLOW_HEADERS]).output().expect("python3");
    let said = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let (how, secs) = said.split_once(' ').unwrap_or((&said, "0"));
    let secs: f64 = secs.rsplit(' ').next().and_then(|x| x.parse().ok()).unwrap_or(99.0);
    assert!(how != "answered" && (0.5..3.0).contains(&secs), "slow client: {said}");
    // An idle keep-alive connection is not cut by the head timeout: it runs from a request's first byte.
    let out = s.topo.pod_a.command_outside_cgroup("python3", &["-c", &gateway_tests::script::with_read_response(KEEPALIVE_PAUSE)]).output().expect("python3");
    let said = String::from_utf8_lossy(&out.stdout).trim().to_string();
    assert_eq!(said, "HTTP/1.1 200 OK | HTTP/1.1 200 OK", "{}", String::from_utf8_lossy(&out.stderr));
    // 2,000 idle connections do not stop a new client from being served.
    let out = s.topo.pod_a.command_outside_cgroup("python3", &["-c", IDLE_CROWD]).output().expect("python3");
    let said = String::from_utf8_lossy(&out.stdout).trim().to_string();
    assert_eq!(said, "2000 200", "{said}\n{}", String::from_utf8_lossy(&out.stderr));
    drop(s.gw);
    s.topo.teardown();
}

fn gateway_certs(dir: &std::path::Path, workload: &str) {
    let out = std::process::Command::new(gateway_tests::gateway_process::gateway_bin())
        .args(["certs", "--out"])
        .arg(dir)
        .args(["--workload", workload])
        .output()
        .expect("gateway certs");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn tls_termination_by_sni_mutual_and_optional_mutual() {
    let topo = Topology::build();
    let backend_certs = certs::generate(&topo.temp.subdir("backend"), "backend.test");
    let nginx = Nginx::start(&topo.internet, topo.temp.path(), &backend_certs, INTERNET_V4.into());
    let hello = certs::generate(&topo.temp.subdir("hello"), "hello.test");
    let world = certs::generate(&topo.temp.subdir("world"), "world.test");
    let clients = topo.temp.subdir("clients");
    gateway_certs(&clients, "default/client");
    let rogue = topo.temp.subdir("rogue");
    gateway_certs(&rogue, "default/client");
    let p = |p: &std::path::Path| p.to_string_lossy().into_owned();
    let (hc, hk, wc, wk, ca) = (p(&hello.server_cert), p(&hello.server_key), p(&world.server_cert), p(&world.server_key), p(&clients.join("ca.crt")));
    let yaml = format!(
        "apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {{name: hello, namespace: default}}
spec:
  hosts: [hello.default.svc.cluster.local]
  ports: [{{number: 80, name: http, protocol: HTTP}}]
  location: MESH_INTERNAL
  resolution: STATIC
  endpoints: [{{address: 203.0.113.10}}]
---
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {{name: tls-gateway, namespace: default}}
spec:
  selector: {{istio: ingressgateway}}
  servers:
  - port: {{number: 443, name: https-hello, protocol: HTTPS}}
    hosts: [hello.test]
    tls: {{mode: SIMPLE, serverCertificate: {hc}, privateKey: {hk}}}
  - port: {{number: 443, name: https-world, protocol: HTTPS}}
    hosts: [world.test]
    tls: {{mode: SIMPLE, serverCertificate: {wc}, privateKey: {wk}}}
  - port: {{number: 8443, name: https-mutual, protocol: HTTPS}}
    hosts: [hello.test]
    tls: {{mode: MUTUAL, serverCertificate: {hc}, privateKey: {hk}, caCertificates: {ca}}}
  - port: {{number: 9443, name: https-optional, protocol: HTTPS}}
    hosts: [hello.test]
    tls: {{mode: OPTIONAL_MUTUAL, serverCertificate: {hc}, privateKey: {hk}, caCertificates: {ca}}}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {{name: hello, namespace: default}}
spec:
  hosts: [hello.test, world.test]
  gateways: [tls-gateway]
  http:
  - route: [{{destination: {{host: hello.default.svc.cluster.local, port: {{number: 80}}}}}}]
"
    );
    let gw = start_ingress(&topo, &yaml, &[]);
    let curl = |args: &[&str]| curl_status(|a| topo.pod_a.command_outside_cgroup("curl", a), args);
    let https = |host: &str, port: u16, ca: &str, extra: &[&str]| {
        let resolve = format!("{host}:{port}:198.18.1.1");
        let url = format!("https://{host}:{port}/");
        let mut args = vec!["--cacert", ca, "--resolve", &resolve];
        args.extend_from_slice(extra);
        args.push(&url);
        curl(&args).0
    };
    let (hello_ca, world_ca) = (p(&hello.ca_cert), p(&world.ca_cert));
    // Two hosts on 443, each verified against its own CA: SNI picked the certificate.
    assert_eq!(https("hello.test", 443, &hello_ca, &[]), 200);
    assert_eq!(https("world.test", 443, &world_ca, &[]), 200);
    assert_eq!(https("world.test", 443, &hello_ca, &[]), 0, "world.test must not get hello's certificate");
    // MUTUAL: no certificate, or one from another CA, is refused.
    let (cc, ck) = (p(&clients.join("default-client.crt")), p(&clients.join("default-client.key")));
    let (rc, rk) = (p(&rogue.join("default-client.crt")), p(&rogue.join("default-client.key")));
    assert_eq!(https("hello.test", 8443, &hello_ca, &[]), 0, "MUTUAL without a client certificate");
    assert_eq!(https("hello.test", 8443, &hello_ca, &["--cert", &rc, "--key", &rk]), 0, "MUTUAL with a foreign certificate");
    assert_eq!(https("hello.test", 8443, &hello_ca, &["--cert", &cc, "--key", &ck]), 200);
    // OPTIONAL_MUTUAL: both; a presented certificate's identity is logged.
    assert_eq!(https("hello.test", 9443, &hello_ca, &[]), 200);
    assert_eq!(https("hello.test", 9443, &hello_ca, &["--cert", &cc, "--key", &ck]), 200);
    let line = gw.wait_json_line("request", "optional mTLS", |v| v["peer_identity"].is_string());
    assert_eq!(line["peer_identity"], "spiffe://cluster.local/ns/default/sa/client", "{line}");
    assert_eq!(nginx.access_log().len(), 5, "the five accepted requests");
    drop(gw);
    topo.teardown();
}

#[test]
fn http2_by_prior_knowledge_and_by_alpn() {
    let s = setup();
    let run = |args: &[&str]| {
        let mut all = vec!["-s", "--noproxy", "*", "--max-time", "10", "-w", "\n%{http_code} %{http_version}"];
        all.extend_from_slice(args);
        let out = s.topo.pod_a.command_outside_cgroup("curl", &all).output().expect("curl");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let h2c = run(&["--http2-prior-knowledge", "-H", "Host: hello.test", "http://198.18.1.1/"]);
    assert_eq!(h2c, format!("{BODY_PREFIX}hello.test\n\n200 2"), "h2c");
    let h2 = run(&["--http2", "--cacert", &s.ca, "--resolve", "hello.test:443:198.18.1.1", "https://hello.test/web/x"]);
    assert_eq!(h2, format!("{BODY_PREFIX}hello.test\n\n200 2"), "h2 over TLS by ALPN");
    let h1 = run(&["--http1.1", "--cacert", &s.ca, "--resolve", "hello.test:443:198.18.1.1", "https://hello.test/"]);
    assert!(h1.ends_with("200 1.1"), "HTTP/1.1 still offered: {h1}");
    let seen = s.nginx.wait_for_entries(3, Duration::from_secs(10));
    assert!(seen.iter().all(|e| e.host == "hello.test"), "backends get a Host from :authority: {seen:?}");
    drop(s.gw);
    s.topo.teardown();
}

/// Two endpoints with outlier detection (`pair`), one with a pool limit
/// (`single`), behind `api-gateway`, and their routes.
fn upstream_policies() -> String {
    istio::static_service("pair", 8080, "HTTP", &["203.0.113.12", "203.0.113.13"])
        + &istio::static_service("single", 8080, "HTTP", &["203.0.113.12"])
        + &istio::destination_rule(
            "pair",
            "{loadBalancer: {simple: ROUND_ROBIN}, outlierDetection: {consecutive5xxErrors: 2, interval: 1s, baseEjectionTime: 3s, maxEjectionPercent: 100}}",
        )
        + &istio::destination_rule("single", "{connectionPool: {tcp: {maxConnections: 1}, http: {http1MaxPendingRequests: 1}}}")
        + &istio::ingress_gateway("api-gateway", 80, "HTTP", &["api.test"])
        + UPSTREAM_ROUTES
}

const UPSTREAM_ROUTES: &str = "apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: api, namespace: default}
spec:
  hosts: [api.test]
  gateways: [api-gateway]
  http:
  - match: [{uri: {prefix: /slow}}]
    route: [{destination: {host: single.default.svc.cluster.local, port: {number: 8080}}}]
  - route: [{destination: {host: pair.default.svc.cluster.local, port: {number: 8080}}}]
";

#[test]
fn outlier_detection_ejects_and_restores_and_the_pool_limit_overflows() {
    let topo = Topology::build();
    let _good = gateway_tests::http_backend::HttpBackend::start(&topo.internet, "203.0.113.12:8080".parse().unwrap());
    let _bad = gateway_tests::http_backend::HttpBackend::start_failing(&topo.internet, "203.0.113.13:8080".parse().unwrap());
    let gw = start_ingress(&topo, &upstream_policies(), &[]);
    // One connection per request, so each is balanced anew.
    let one = || codes(&topo, "http://198.18.1.1/x")[0];
    let first: Vec<u16> = (0..12).map(|_| one()).collect();
    assert!(first.iter().filter(|c| **c == 500).count() <= 2, "ejected after two errors: {first:?}");
    assert!(first[6..].iter().all(|c| *c == 200), "only the healthy endpoint after ejection: {first:?}");
    std::thread::sleep(Duration::from_millis(3500));
    let later: Vec<u16> = (0..6).map(|_| one()).collect();
    assert!(later.contains(&500), "the endpoint returns after its ejection time: {later:?}");

    // maxConnections 1 + http1MaxPendingRequests 1: two in flight, the rest overflow.
    let out = topo
        .pod_a
        .command_outside_cgroup("curl", &["-s", "--noproxy", "*", "--max-time", "20", "--parallel", "--parallel-max", "6", "-o", "/dev/null", "-w", "%{http_code}\\n", "-H", "Host: api.test", "http://198.18.1.1/slow/[1-6]"])
        .output()
        .expect("curl");
    let codes: Vec<u16> = String::from_utf8_lossy(&out.stdout).lines().filter_map(|l| l.parse().ok()).collect();
    assert_eq!(codes.len(), 6, "{codes:?}");
    assert!(codes.iter().filter(|c| **c == 503).count() >= 3 && codes.contains(&200), "{codes:?}");
    let uo = gw.wait_json_line("request", "overflow", |v| v["flags"] == "UO");
    assert_eq!(uo["status"], 503, "{uo}");
    drop(gw);
    topo.teardown();
}

#[test]
fn a_header_match_routes_to_a_subset() {
    let topo = Topology::build();
    let _v1 = gateway_tests::http_backend::HttpBackend::start(&topo.internet, "203.0.113.10:8080".parse().unwrap());
    let v2 = gateway_tests::http_backend::HttpBackend::start(&topo.internet, "203.0.113.11:8080".parse().unwrap());
    let yaml = "apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: reviews, namespace: default}
spec:
  hosts: [reviews.default.svc.cluster.local]
  ports: [{number: 8080, name: http, protocol: HTTP}]
  location: MESH_INTERNAL
  resolution: STATIC
  endpoints:
  - {address: 203.0.113.10, labels: {version: v1}}
  - {address: 203.0.113.11, labels: {version: v2}}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: reviews, namespace: default}
spec:
  host: reviews.default.svc.cluster.local
  subsets:
  - {name: v1, labels: {version: v1}}
  - {name: v2, labels: {version: v2}}
---
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: reviews-gateway, namespace: default}
spec:
  selector: {istio: ingressgateway}
  servers:
  - port: {number: 80, name: http, protocol: HTTP}
    hosts: [reviews.test]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews, namespace: default}
spec:
  hosts: [reviews.test]
  gateways: [reviews-gateway]
  http:
  - match: [{headers: {end-user: {exact: jason}}}]
    route: [{destination: {host: reviews.default.svc.cluster.local, subset: v2, port: {number: 8080}}}]
  - route: [{destination: {host: reviews.default.svc.cluster.local, subset: v1, port: {number: 8080}}}]
";
    let gw = start_ingress(&topo, yaml, &[]);
    let get = |extra: &[&str]| {
        let mut args = vec!["-H", "Host: reviews.test"];
        args.extend_from_slice(extra);
        args.push("http://198.18.1.1/reviews");
        curl_status(|a| topo.pod_a.command_outside_cgroup("curl", a), &args).0
    };
    for _ in 0..4 {
        assert_eq!(get(&["-H", "end-user: jason"]), 200);
        assert_eq!(get(&[]), 200);
    }
    assert_eq!(v2.seen().len(), 4, "jason's four requests, and only those, reach v2");
    let line = gw.wait_json_line("request", "subset", |v| v["upstream"] == "203.0.113.11:8080");
    assert_eq!(line["route"]["subset"], "v2", "{line}");
    drop(gw);
    topo.teardown();
}

const WS_SERVER: &str = "import asyncio, websockets
async def echo(ws, path=None):
    async for m in ws:
        await ws.send('echo:' + m)
async def main():
    async with websockets.serve(echo, '203.0.113.12', 8765):
        await asyncio.sleep(60)
asyncio.run(main())
";

const WS_CLIENT: &str = "import asyncio, websockets
async def main():
    async with websockets.connect('ws://198.18.1.1/chat', open_timeout=5) as ws:
        for i in range(3):
            await ws.send('hello %d' % i)
            print(await asyncio.wait_for(ws.recv(), 5))
asyncio.run(main())
";

#[test]
fn a_websocket_is_upgraded_through_the_gateway() {
    let topo = Topology::build();
    let mut server = topo.internet.command("/usr/bin/python3", &["-c", WS_SERVER]).spawn().expect("websocket server");
    let yaml = "apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: chat, namespace: default}
spec:
  hosts: [chat.default.svc.cluster.local]
  ports: [{number: 8765, name: http, protocol: HTTP}]
  location: MESH_INTERNAL
  resolution: STATIC
  endpoints: [{address: 203.0.113.12}]
---
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: chat-gateway, namespace: default}
spec:
  selector: {istio: ingressgateway}
  servers:
  - port: {number: 80, name: http, protocol: HTTP}
    hosts: ['*']
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: chat, namespace: default}
spec:
  hosts: ['*']
  gateways: [chat-gateway]
  http:
  - route: [{destination: {host: chat.default.svc.cluster.local, port: {number: 8765}}}]
";
    let gw = start_ingress(&topo, yaml, &[]);
    std::thread::sleep(Duration::from_millis(500));
    let out = topo.pod_a.command_outside_cgroup("/usr/bin/python3", &["-c", WS_CLIENT]).output().expect("websocket client");
    let _ = server.kill();
    let _ = server.wait();
    let said = String::from_utf8_lossy(&out.stdout);
    assert_eq!(said, "echo:hello 0\necho:hello 1\necho:hello 2\n", "{}\n{}", String::from_utf8_lossy(&out.stderr), gw.stderr_tail());
    let line = gw.wait_json_line("request", "upgrade", |v| v["path"] == "/chat");
    assert_eq!((line["status"].as_u64(), line["upstream"].as_str()), (Some(101), Some("203.0.113.12:8765")), "{line}");
    drop(gw);
    topo.teardown();
}

const GRPC_SERVER: &str = "import grpc, time
from concurrent import futures
def say(req, ctx):
    return b'echo:' + req
def count(req, ctx):
    for i in range(int(req)):
        yield str(i).encode()
def missing(req, ctx):
    ctx.abort(grpc.StatusCode.NOT_FOUND, 'no such thing')
handlers = {
    'Say': grpc.unary_unary_rpc_method_handler(say),
    'Count': grpc.unary_stream_rpc_method_handler(count),
    'Missing': grpc.unary_unary_rpc_method_handler(missing),
}
server = grpc.server(futures.ThreadPoolExecutor(4))
server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler('echo.Echo', handlers),))
server.add_insecure_port('203.0.113.12:50051')
server.start()
time.sleep(60)
";

const GRPC_CLIENT: &str = "import grpc
ch = grpc.insecure_channel('198.18.1.1:80', options=[('grpc.default_authority', 'grpc.test')])
print(ch.unary_unary('/echo.Echo/Say')(b'hi', timeout=5).decode())
print(','.join(x.decode() for x in ch.unary_stream('/echo.Echo/Count')(b'3', timeout=5)))
try:
    ch.unary_unary('/echo.Echo/Missing')(b'x', timeout=5)
except grpc.RpcError as e:
    print(e.code().name, e.details())
";

/// Checks the gRPC client's unary, streaming and error calls through a
/// gateway whose GRPC server on port 80 routes `grpc.test` to `echo`
/// (203.0.113.12:50051, served by `server`, reached as `destination_rule`
/// says); returns the gateway.
fn grpc_through_gateway(topo: &Topology, server: &str, destination_rule: &str) -> Gateway {
    let mut server = topo.internet.command("/usr/bin/python3", &["-c", server]).spawn().expect("gRPC server");
    let yaml = istio::static_service("echo", 50051, "GRPC", &["203.0.113.12"])
        + destination_rule
        + &istio::ingress_gateway("grpc-gateway", 80, "GRPC", &["grpc.test"])
        + "apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: echo, namespace: default}
spec:
  hosts: [grpc.test]
  gateways: [grpc-gateway]
  http:
  - route: [{destination: {host: echo.default.svc.cluster.local, port: {number: 50051}}}]
";
    let gw = start_ingress(topo, &yaml, &[]);
    std::thread::sleep(Duration::from_millis(800));
    let out = topo.pod_a.command_outside_cgroup("/usr/bin/python3", &["-c", GRPC_CLIENT]).output().expect("gRPC client");
    let _ = server.kill();
    let _ = server.wait();
    let said = String::from_utf8_lossy(&out.stdout);
    assert_eq!(said, "echo:hi\n0,1,2\nNOT_FOUND no such thing\n", "{}\n{}", String::from_utf8_lossy(&out.stderr), gw.stderr_tail());
    gw
}

#[test]
fn grpc_unary_and_server_streaming_calls_pass_with_their_trailers() {
    let topo = Topology::build();
    let gw = grpc_through_gateway(&topo, GRPC_SERVER, "");
    let line = gw.wait_json_line("request", "gRPC", |v| v["path"] == "/echo.Echo/Count");
    assert_eq!((line["status"].as_u64(), line["upstream"].as_str()), (Some(200), Some("203.0.113.12:50051")), "{line}");
    drop(gw);
    topo.teardown();
}

#[test]
fn grpc_reaches_a_tls_backend_over_http2_agreed_by_alpn() {
    let topo = Topology::build();
    let backend = certs::generate(&topo.temp.subdir("grpc-certs"), "echo.backend.test");
    let tls_server = GRPC_SERVER.replace(
        "server.add_insecure_port('203.0.113.12:50051')",
        &format!(
            "server.add_secure_port('203.0.113.12:50051', grpc.ssl_server_credentials([(open('{}', 'rb').read(), open('{}', 'rb').read())]))",
            backend.server_key.display(),
            backend.server_cert.display()
        ),
    );
    let rule = istio::destination_rule("echo", &format!("{{tls: {{mode: SIMPLE, caCertificates: {}, sni: echo.backend.test}}}}", backend.ca_cert.display()));
    let gw = grpc_through_gateway(&topo, &tls_server, &rule);
    let line = gw.wait_json_line("request", "gRPC", |v| v["path"] == "/echo.Echo/Say");
    assert_eq!(line["status"].as_u64(), Some(200), "{line}");
    drop(gw);
    topo.teardown();
}
