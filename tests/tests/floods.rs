//! Floods against the real binary, each by a real client while a legitimate
//! one keeps being served, with the gateway's CPU time and resident memory
//! read from /proc before and after and held to generous bounds (resource
//! bounds, not latencies):
//! - one pod opening far more idle connections than
//!   `--max-connections-per-workload`: the excess reset, counted by workload,
//!   audited as `connection-limit`, logged once; another pod served;
//! - on the node's egress HTTP path, a slowloris after a first request (cut
//!   by the head timeout, `--header-read-timeout-ms`) and a CONTINUATION
//!   flood while sniffing (reset once the peek buffer is full); a quiet
//!   keep-alive connection outlives the head timeout and is closed at
//!   `--idle-timeout-secs`;
//! - on an ingress listener, HTTP/2 rapid reset and CONTINUATION floods
//!   (GOAWAY), idle connections over `--max-connections-per-listener` and
//!   slowloris heads (closed at accept, then at `--idle-timeout-secs` and
//!   `--header-read-timeout-ms`).

mod floods_support;

use std::path::PathBuf;
use std::time::Duration;

use floods_support::{IDLE_CONNECTIONS, SLOWLORIS, Usage, continuation_flood, field, number, rapid_reset};
use gateway_tests::client::curl_status;
use gateway_tests::command;
use gateway_tests::echo_server::EchoServer;
use gateway_tests::gateway_process::{Gateway, GatewayConfig};
use gateway_tests::http_backend::HttpBackend;
use gateway_tests::istio;
use gateway_tests::script::Script;
use gateway_tests::topology::{Pod, Topology};
use gateway_tests::wait;

const STEP: Duration = Duration::from_secs(30);
/// The backend every HTTP test reaches, and the echo server's address.
const BACKEND: &str = "203.0.113.12";

/// The registry of the egress tests: echo (TCP 7) and api (HTTP 8080) on
/// the backend's address, and the two pods as WorkloadEntries.
const EGRESS_REGISTRY: &str = "apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: echo, namespace: default}
spec:
  hosts: [echo.internet.test]
  addresses: [203.0.113.12/32]
  ports: [{number: 7, name: tcp-echo, protocol: TCP}]
  location: MESH_EXTERNAL
  resolution: NONE
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: api, namespace: default}
spec:
  hosts: [api.internet.test]
  addresses: [203.0.113.12/32]
  ports: [{number: 8080, name: http, protocol: HTTP}]
  location: MESH_EXTERNAL
  resolution: NONE
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: pod-a, namespace: default}
spec: {address: 198.18.1.2}
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: pod-b, namespace: default}
spec: {address: 198.18.2.2}
";

fn egress_gateway(topo: &Topology, args: &[&str]) -> Gateway {
    let dir = topo.temp.subdir("istio");
    std::fs::write(dir.join("registry.yaml"), EGRESS_REGISTRY).unwrap();
    let mut config = GatewayConfig::enforcing(topo, vec![PathBuf::from(&dir)]);
    config.extra_args = args.iter().map(|s| s.to_string()).collect();
    Gateway::start(topo, config)
}

/// An intercepted request from `pod` to the api backend: the HTTP status, 0 if refused.
fn egress_get(pod: &Pod, path: &str) -> u16 {
    let url = format!("http://{BACKEND}:8080{path}");
    curl_status(|a| pod.command("curl", a), &["-H", "Host: api.internet.test", &url]).0
}

fn python(pod_command: std::process::Command) -> Script {
    Script::spawn(pod_command)
}

#[test]
fn a_pod_over_its_connection_limit_is_refused_counted_and_logged_once_while_another_pod_is_served() {
    const LIMIT: u64 = 200;
    const EXCESS: u64 = 2000;
    let topo = Topology::build();
    let _echo = EchoServer::start(&topo.internet, &[7]);
    let _backend = HttpBackend::start(&topo.internet, format!("{BACKEND}:8080").parse().unwrap());
    let gw = egress_gateway(&topo, &["--max-connections-per-workload", &LIMIT.to_string()]);
    assert_eq!((egress_get(&topo.pod_a, "/warm-a"), egress_get(&topo.pod_b, "/warm-b")), (200, 200), "{}", gw.stderr_tail());
    let before = Usage::of(gw.pid());

    let total = (LIMIT + EXCESS).to_string();
    let idle = python(topo.pod_a.command("/usr/bin/python3", &["-c", IDLE_CONNECTIONS, BACKEND, "7", &total]));
    let opened = idle.wait_line(STEP, "connections opened", |l| l.starts_with("opened "));
    assert_eq!(number(&opened, "failed"), 0, "{opened}");
    let state = idle.wait_line(STEP, "their state", |l| l.starts_with("state "));
    let after = Usage::of(gw.pid());
    let (cpu, rss) = after.since(&before);
    println!("{} idle connections from one pod: {state}; gateway CPU {cpu:.2} s, RSS {rss:+.1} MiB", LIMIT + EXCESS);
    assert_eq!((number(&state, "open"), number(&state, "closed")), (LIMIT, EXCESS), "exactly the limit stays open");
    assert!(rss < 64.0, "RSS grew by {rss:.1} MiB under {} connections", LIMIT + EXCESS);
    assert!(cpu < 5.0, "{cpu:.2} s of CPU for {} connections", LIMIT + EXCESS);

    // The pod is refused while it holds its limit; the other pod is served.
    assert_eq!(egress_get(&topo.pod_a, "/over"), 0, "pod-a is over its limit");
    assert_eq!(egress_get(&topo.pod_b, "/other"), 200, "pod-b is unaffected\n{}", gw.stderr_tail());
    let refusals = "gateway_workload_connection_refusals_total{workload=\"default/pod-a\"}";
    assert_eq!(gw.metric(refusals), EXCESS + 1, "counted by workload");
    assert_eq!(gw.metric("gateway_workload_connection_refusals_total{workload=\"default/pod-b\"}"), 0);
    wait::until("every refusal's audit line", STEP, || {
        gw.json_lines("connection").iter().filter(|l| l["reason"] == "connection-limit").count() as u64 > EXCESS
    });
    let line = gw.wait_json_line("connection", "a refusal", |l| l["reason"] == "connection-limit");
    assert_eq!((line["decision"].as_str(), line["workload"]["name"].as_str()), (Some("deny"), Some("pod-a")), "{line}");
    let logged = gw.stderr().matches("over --max-connections-per-workload refused").count();
    assert!((1..=3).contains(&logged), "{} refusals make {logged} log lines", EXCESS + 1);

    // Its connections closed, the pod is served again.
    drop(idle);
    wait::until("pod-a served again", STEP, || egress_get(&topo.pod_a, "/again") == 200);
    drop(gw);
    topo.teardown();
}

#[test]
fn egress_http_slowloris_and_continuation_flood_are_cut_while_another_pod_is_served() {
    let topo = Topology::build();
    let backend = HttpBackend::start(&topo.internet, format!("{BACKEND}:8080").parse().unwrap());
    let gw = egress_gateway(&topo, &[]);
    assert_eq!(egress_get(&topo.pod_b, "/warm"), 200, "{}", gw.stderr_tail());
    let before = Usage::of(gw.pid());

    // Ten keep-alive connections: a whole first request, then a head one byte every 0.5 s.
    let slow = python(topo.pod_a.command("/usr/bin/python3", &["-c", SLOWLORIS, BACKEND, "8080", "api.internet.test", "10", "1", "160"]));
    let first = slow.wait_line(STEP, "the first answers", |l| l.starts_with("first "));
    assert_eq!(field(&first, "first"), "200");

    // While they dribble: a CONTINUATION flood in the first bytes, then another pod.
    let flood = continuation_flood();
    let mut cmd = topo.pod_a.command("/usr/bin/python3", &["-c", &flood, BACKEND, "8080", "api.internet.test", "1000000", "20"]);
    let out = String::from_utf8_lossy(&command::run(&mut cmd, Duration::from_secs(60)).stdout).trim().to_string();
    println!("egress CONTINUATION flood: {out}");
    assert!(field(&out, "ending") == "reset" || field(&out, "ending") == "eof", "the proxy ends the flood: {out}");
    // Reset once the 17 KiB peek buffer is full (about 1,900 empty frames), not buffered on.
    assert!(number(&out, "frames") <= 4000, "{out}");
    let line = gw.wait_json_line("connection", "the flood", |l| l["reason"] == "malformed-request");
    assert_eq!(line["workload"]["name"].as_str(), Some("pod-a"), "{line}");
    assert_eq!(egress_get(&topo.pod_b, "/served"), 200, "{}", gw.stderr_tail());

    let cut = slow.wait_line(Duration::from_secs(120), "the slowloris end", |l| l.starts_with("cut "));
    let (cpu, rss) = Usage::of(gw.pid()).since(&before);
    println!("egress slowloris: {cut}; gateway CPU {cpu:.2} s, RSS {rss:+.1} MiB");
    assert_eq!(number(&cut, "cut"), 10, "every slow head is cut before 160 bytes: {cut}");
    assert!(rss < 32.0 && cpu < 10.0, "CPU {cpu:.2} s, RSS {rss:+.1} MiB");
    assert_eq!(backend.seen_under("/slow"), 0, "no slow head reached the backend");
    assert_eq!(egress_get(&topo.pod_b, "/after"), 200);
    drop(gw);
    topo.teardown();
}

/// Two requests on one keep-alive connection 2.5 s apart, then how long
/// the quiet connection stays open: `200 | 200 | closed after S`.
const KEEPALIVE_THEN_IDLE: &str = "import socket, sys, time
s = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=30)
f = s.makefile('rb')
def ask(path):
    s.sendall(b'GET ' + path + b' HTTP/1.1\\r\\nHost: api.internet.test\\r\\n\\r\\n')
    return read_response(f).split(' ')[1]
first = ask(b'/first')
time.sleep(2.5)
second = ask(b'/second')
quiet = time.monotonic()
rest = f.read()
print(first, '|', second, '|', 'closed after %.1f' % (time.monotonic() - quiet), len(rest), flush=True)
";

#[test]
fn egress_http_keep_alive_outlives_the_head_timeout_and_closes_when_idle() {
    let topo = Topology::build();
    let backend = HttpBackend::start(&topo.internet, format!("{BACKEND}:8080").parse().unwrap());
    let gw = egress_gateway(&topo, &["--header-read-timeout-ms", "1000", "--idle-timeout-secs", "4"]);
    let mut cmd = topo.pod_a.command("/usr/bin/python3", &["-c", &gateway_tests::script::with_read_response(KEEPALIVE_THEN_IDLE), BACKEND, "8080"]);
    let out = command::run(&mut cmd, Duration::from_secs(60));
    let said = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let (answers, closed) = said.rsplit_once(" | ").unwrap_or((&said, ""));
    assert_eq!(answers, "200 | 200", "the head timeout runs from a request's first byte, not between requests: {said}\n{}", String::from_utf8_lossy(&out.stderr));
    // Closed by the idle timeout (4 s), cleanly, with nothing sent.
    let secs: f64 = closed.strip_prefix("closed after ").and_then(|r| r.split(' ').next()).and_then(|s| s.parse().ok()).unwrap_or(-1.0);
    assert!((3.5..20.0).contains(&secs) && closed.ends_with(" 0"), "{said}");
    assert_eq!((backend.seen_under("/first"), backend.seen_under("/second")), (1, 1));
    let line = gw.wait_json_line("connection", "the connection's line", |l| l["requests"] == 2);
    assert_eq!(line["workload"]["name"].as_str(), Some("pod-a"), "{line}");
    drop(gw);
    topo.teardown();
}

/// The api backend (203.0.113.12:8080) behind the Gateway `edge` on port 80, host `api.test`.
fn ingress_config() -> String {
    istio::static_service("api", 8080, "HTTP", &[BACKEND])
        + "apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: api, namespace: default}
spec:
  hosts: [api.test]
  gateways: [edge]
  http:
  - route: [{destination: {host: api.default.svc.cluster.local, port: {number: 8080}}}]
---
"
        + &istio::ingress_gateway("edge", 80, "HTTP", &["api.test"])
}

/// The node as pod-a and pod-b (here outside clients) reach it.
const NODE_FROM_A: &str = "198.18.1.1";
const NODE_FROM_B: &str = "198.18.2.1";

/// A request from pod-b (not intercepted) to the ingress listener: the HTTP status, 0 if refused.
fn ingress_get(topo: &Topology, path: &str, h2: bool) -> u16 {
    let url = format!("http://{NODE_FROM_B}:80{path}");
    let mut args = vec!["-H", "Host: api.test", url.as_str()];
    if h2 {
        args.insert(0, "--http2-prior-knowledge");
    }
    curl_status(|a| topo.pod_b.command_outside_cgroup("curl", a), &args).0
}

#[test]
fn ingress_http2_rapid_reset_and_continuation_floods_end_in_goaway_while_others_are_served() {
    let topo = Topology::build();
    let backend = HttpBackend::start(&topo.internet, format!("{BACKEND}:8080").parse().unwrap());
    let gw = Gateway::start_ingress(&topo, &ingress_config(), &[]);
    assert_eq!((ingress_get(&topo, "/warm", false), ingress_get(&topo, "/warm2", true)), (200, 200), "{}", gw.stderr_tail());
    let before = Usage::of(gw.pid());

    // Ten seconds of requests reset as soon as sent, while pod-b's requests keep being answered.
    let flood = rapid_reset();
    let attack = python(topo.pod_a.command_outside_cgroup("/usr/bin/python3", &["-c", &flood, NODE_FROM_A, "80", "api.test", "10", "2000000"]));
    let mut served = 0;
    for n in 0..5 {
        std::thread::sleep(Duration::from_secs(1));
        served += u32::from(ingress_get(&topo, &format!("/during{n}"), n % 2 == 0) == 200);
    }
    let out = attack.wait_line(STEP, "the rapid reset flood's end", |l| l.starts_with("connections "));
    let (cpu, rss) = Usage::of(gw.pid()).since(&before);
    let reached = backend.seen_under("/");
    println!("rapid reset: {out}; {reached} requests reached the backend; gateway CPU {cpu:.2} s, RSS {rss:+.1} MiB");
    assert_eq!(served, 5, "pod-b is served during the flood\n{}", gw.stderr_tail());
    assert!(field(&out, "endings").contains("goaway_11"), "the server answers ENHANCE_YOUR_CALM: {out}");
    // h2 takes 20 streams reset before they were served, then GOAWAY (http2_limits.rs).
    let last = number(&out, "last");
    assert!(last > 0 && last < 400, "GOAWAY names the last stream taken, a bounded number: {out}");
    assert!(cpu < 10.0, "{cpu:.2} s of CPU for 10 s of rapid reset");
    assert!(rss < 64.0, "RSS grew by {rss:.1} MiB");

    // A header block that never ends.
    let before = Usage::of(gw.pid());
    let flood = continuation_flood();
    let mut cmd = topo.pod_a.command_outside_cgroup("/usr/bin/python3", &["-c", &flood, NODE_FROM_A, "80", "api.test", "1000000", "20"]);
    let out = String::from_utf8_lossy(&command::run(&mut cmd, Duration::from_secs(60)).stdout).trim().to_string();
    let (cpu, rss) = Usage::of(gw.pid()).since(&before);
    println!("ingress CONTINUATION flood: {out}; gateway CPU {cpu:.2} s, RSS {rss:+.1} MiB");
    // h2 takes a handful of CONTINUATION frames for a header block this size, then GOAWAY.
    assert_eq!(field(&out, "ending"), "goaway_11", "ENHANCE_YOUR_CALM: {out}");
    assert!(number(&out, "frames") <= 100, "{out}");
    assert!(rss < 16.0, "RSS grew by {rss:.1} MiB");
    assert_eq!(ingress_get(&topo, "/after", true), 200);
    drop(gw);
    topo.teardown();
}

#[test]
fn ingress_idle_connections_over_the_listener_limit_and_slow_heads_are_closed_then_others_are_served() {
    const LIMIT: u64 = 200;
    let topo = Topology::build();
    let _backend = HttpBackend::start(&topo.internet, format!("{BACKEND}:8080").parse().unwrap());
    let gw = Gateway::start_ingress(&topo, &ingress_config(), &["--max-connections-per-listener", &LIMIT.to_string(), "--header-read-timeout-ms", "5000", "--idle-timeout-secs", "5"]);
    assert_eq!(ingress_get(&topo, "/warm", false), 200, "{}", gw.stderr_tail());
    let before = Usage::of(gw.pid());

    // 2000 connections that send nothing: the limit held open, the rest closed at accept.
    let mut idle = python(topo.pod_a.command_outside_cgroup("/usr/bin/python3", &["-c", IDLE_CONNECTIONS, NODE_FROM_A, "80", "2000"]));
    let state = idle.wait_line(STEP, "their state", |l| l.starts_with("state "));
    let (cpu, rss) = Usage::of(gw.pid()).since(&before);
    println!("2000 idle connections on a listener of {LIMIT}: {state}; gateway CPU {cpu:.2} s, RSS {rss:+.1} MiB");
    assert_eq!(number(&state, "open") + number(&state, "closed"), 2000, "{state}");
    assert!(number(&state, "open") <= LIMIT, "{state}");
    assert!(gw.metric("gateway_listener_overflow_total{port=\"80\"}") >= 2000 - LIMIT, "counted");
    assert!(rss < 64.0 && cpu < 20.0, "CPU {cpu:.2} s, RSS {rss:+.1} MiB");
    // The idle timeout frees the listener, and others are served again.
    wait::until("the idle connections closed", STEP, || {
        idle.say("state");
        idle.lines().last().is_some_and(|l| l.starts_with("state open 0 "))
    });
    assert_eq!(ingress_get(&topo, "/freed", false), 200, "{}", gw.stderr_tail());

    // Fifty slow heads, a byte every 0.5 s: each closed at the head timeout, others served meanwhile.
    let slow = python(topo.pod_a.command_outside_cgroup("/usr/bin/python3", &["-c", SLOWLORIS, NODE_FROM_A, "80", "api.test", "50", "0", "60"]));
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(ingress_get(&topo, "/during", false), 200);
    let cut = slow.wait_line(Duration::from_secs(60), "the slowloris end", |l| l.starts_with("cut "));
    println!("ingress slowloris: {cut}");
    assert_eq!(number(&cut, "cut"), 50, "{cut}");
    assert!(number(&cut, "bytes") < 60, "cut before the client gave up: {cut}");
    drop((idle, slow, gw));
    topo.teardown();
}
