//! The ingress role's TCP listeners: `tcp` routes by port, TLS passthrough
//! by SNI to a backend that terminates TLS itself, and the listener limits
//! users expect from Envoy (connection limit, idle timeout). Clients are
//! outside the gateway's namespace, backends in the internet namespace.

use std::time::Duration;

use gateway_tests::addresses::*;
use gateway_tests::certs;
use gateway_tests::client::{EchoRun, curl_status, run_echo_client};
use gateway_tests::echo_server::EchoServer;
use gateway_tests::gateway_process::Gateway;
use gateway_tests::istio::{ingress_gateway, static_service};
use gateway_tests::nginx::{BODY_PREFIX, Nginx};
use gateway_tests::topology::Topology;

const CLIENT: &str = env!("CARGO_BIN_EXE_gw-test-client");

/// The gateway's address as pod-a (an outside client here) reaches it.
const GATEWAY: &str = "198.18.1.1";

/// Two echo backends (203.0.113.10 and .11, port 9000) and TCP servers:
/// 31400 to v1, 31401 split 80/20 between v1 and v2, 31402 with no route.
fn tcp_config() -> String {
    static_service("echo-v1", 9000, "TCP", &["203.0.113.10"])
        + &static_service("echo-v2", 9000, "TCP", &["203.0.113.11"])
        + "apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: tcp-gateway, namespace: default}
spec:
  selector: {istio: ingressgateway}
  servers:
  - port: {number: 31400, name: tcp, protocol: TCP}
    hosts: ['*']
  - port: {number: 31401, name: tcp-split, protocol: TCP}
    hosts: ['*']
  - port: {number: 31402, name: tcp-none, protocol: TCP}
    hosts: ['*']
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: echo, namespace: default}
spec:
  hosts: ['*']
  gateways: [tcp-gateway]
  tcp:
  - match: [{port: 31400}]
    route: [{destination: {host: echo-v1.default.svc.cluster.local, port: {number: 9000}}}]
  - match: [{port: 31401}]
    route:
    - {destination: {host: echo-v1.default.svc.cluster.local, port: {number: 9000}}, weight: 80}
    - {destination: {host: echo-v2.default.svc.cluster.local, port: {number: 9000}}, weight: 20}
---
"
}

/// Runs a python3 script in pod-a (outside its cgroup); its stdout, trimmed.
fn python(topo: &Topology, script: &str) -> String {
    let out = topo.pod_a.command_outside_cgroup("/usr/bin/python3", &["-c", script]).output().expect("python3");
    let said = String::from_utf8_lossy(&out.stdout).trim().to_string();
    assert!(out.status.success(), "python3 failed: {said}\n{}", String::from_utf8_lossy(&out.stderr));
    said
}

/// Connects to `port`, sends a line and says how the connection ended.
fn refused_script(port: u16) -> String {
    format!(
        "import socket
try:
    s = socket.create_connection(('{GATEWAY}', {port}), timeout=5)
    s.sendall(b'hello\\n')
    print('closed' if s.recv(100) == b'' else 'answered')
except (ConnectionResetError, BrokenPipeError):
    print('reset')
except socket.timeout:
    print('open')
"
    )
}

#[test]
fn ingress_tcp_routes_by_port_split_by_weight_and_refuse_without_a_route() {
    let topo = Topology::build();
    let echo = EchoServer::start(&topo.internet, &[9000]);
    let gw = Gateway::start_ingress(&topo, &tcp_config(), &[]);
    let target = |port: u16| vec![format!("{GATEWAY}:{port}").parse().unwrap()];

    // 100 kB each way, intact, to v1 only.
    let run = EchoRun { bytes: 100_000, half_close: true, ..EchoRun::to(&target(31400)) };
    run_echo_client(|a| topo.pod_a.command_outside_cgroup(CLIENT, a), &run).assert_all_intact("tcp route by port");
    let seen = echo.wait_finished(1, Duration::from_secs(10));
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert_eq!((seen[0].local, seen[0].peer.ip()), (sock(INTERNET_V4, 9000), NODE_INTERNET_V4.into()), "{seen:?}");
    let line = gw.wait_json_line("connection", "the tcp connection", |v| v["protocol"] == "tcp");
    assert_eq!((line["decision"].as_str(), line["reason"].as_str()), (Some("allow"), Some("registered-host")), "{line}");
    assert_eq!((line["upstream"].as_str(), line["route"]["name"].as_str()), (Some("203.0.113.10:9000"), Some("echo")), "{line}");
    assert_eq!((line["outcome"].as_str(), line["bytes_up"].as_u64()), (Some("closed"), Some(seen[0].bytes)), "{line}");

    // 200 connections on the split port: about 20 % reach v2.
    let run = EchoRun { per_target: 200, ..EchoRun::to(&target(31401)) };
    run_echo_client(|a| topo.pod_a.command_outside_cgroup(CLIENT, a), &run).assert_all_intact("weighted tcp route");
    let seen = echo.wait_finished(201, Duration::from_secs(20));
    let v2 = seen[1..].iter().filter(|a| a.local.ip() == std::net::IpAddr::from(internet_v4(1))).count();
    let share = v2 as f64 / 200.0;
    eprintln!("tcp split: echo-v2 got {v2} of 200 ({share:.3})");
    assert!((0.10..=0.30).contains(&share), "echo-v2 got {v2} of 200 ({share:.3}); 0.20 ± 0.10 expected");

    // No tcp route fits 31402: the client is reset, no backend is reached.
    let said = python(&topo, &refused_script(31402));
    assert!(said == "reset" || said == "closed", "no route: {said}");
    let nr = gw.wait_json_line("connection", "no route", |v| v["reason"] == "no-route");
    assert_eq!((nr["protocol"].as_str(), nr["decision"].as_str(), nr["upstream"].as_str()), (Some("tcp"), Some("deny"), None), "{nr}");
    assert_eq!(echo.count(), 201, "nothing reached a backend");
    drop(gw);
    topo.teardown();
}

#[test]
fn ingress_passthrough_by_sni_reaches_a_backend_that_presents_its_own_certificate() {
    let topo = Topology::build();
    let backend = certs::generate(&topo.temp.subdir("backend"), "secure.test");
    let nginx = Nginx::start(&topo.internet, topo.temp.path(), &backend, INTERNET_V4.into());
    let yaml = static_service("secure", 443, "TLS", &["203.0.113.10"])
        + "apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: tls-gateway, namespace: default}
spec:
  selector: {istio: ingressgateway}
  servers:
  - port: {number: 443, name: tls, protocol: TLS}
    hosts: [secure.test]
    tls: {mode: PASSTHROUGH}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: secure, namespace: default}
spec:
  hosts: [secure.test]
  gateways: [tls-gateway]
  tls:
  - match: [{port: 443, sniHosts: [secure.test]}]
    route: [{destination: {host: secure.default.svc.cluster.local, port: {number: 443}}}]
";
    let gw = Gateway::start_ingress(&topo, &yaml, &[]);
    let ca = backend.ca_cert.to_string_lossy().into_owned();
    let curl = |args: &[&str]| curl_status(|a| topo.pod_a.command_outside_cgroup("curl", a), args);
    // Verified against the backend's own CA: the certificate is the backend's, end to end.
    let (code, body, err) = curl(&["-v", "--cacert", &ca, "--resolve", "secure.test:443:198.18.1.1", "https://secure.test/"]);
    assert_eq!((code, body.as_str()), (200, format!("{BODY_PREFIX}secure.test\n").as_str()), "{err}\n{}", gw.stderr_tail());
    assert!(err.contains("subject: CN=secure.test") && err.contains("issuer: CN=gateway test CA"), "{err}");
    let seen = nginx.wait_for_entries(1, Duration::from_secs(10));
    assert_eq!((seen[0].sni.as_str(), seen[0].remote_addr), ("secure.test", NODE_INTERNET_V4.into()), "{seen:?}");
    let line = gw.wait_json_line("connection", "passthrough", |v| v["sni"] == "secure.test");
    assert_eq!((line["decision"].as_str(), line["upstream"].as_str()), (Some("allow"), Some("203.0.113.10:443")), "{line}");

    // An SNI no route names: no TLS session at all.
    let (code, _, err) = curl(&["-k", "--resolve", "other.test:443:198.18.1.1", "https://other.test/"]);
    assert_eq!(code, 0, "{err}");
    let nr = gw.wait_json_line("connection", "unknown SNI", |v| v["sni"] == "other.test");
    assert_eq!((nr["decision"].as_str(), nr["reason"].as_str()), (Some("deny"), Some("no-route")), "{nr}");
    assert_eq!(nginx.access_log().len(), 1, "the unknown SNI reached no backend");
    drop(gw);
    topo.teardown();
}

/// TLS to the gateway (verified against `ca`, SNI tcp.test), a line, its
/// echo, then a clean close (`close_notify`).
fn tls_echo_script(ca: &str) -> String {
    format!(
        "import socket, ssl
ctx = ssl.create_default_context(cafile='{ca}')
with socket.create_connection(('{GATEWAY}', 31443), timeout=5) as raw:
    with ctx.wrap_socket(raw, server_hostname='tcp.test') as s:
        s.sendall(b'over tls\\n')
        print(s.recv(100).decode().strip(), s.version())
        s.unwrap()
"
    )
}

#[test]
fn ingress_tls_server_terminated_at_the_gateway_then_routed_as_tcp() {
    let topo = Topology::build();
    let echo = EchoServer::start(&topo.internet, &[9000]);
    let cert = certs::generate(&topo.temp.subdir("certs"), "tcp.test");
    let p = |p: &std::path::Path| p.to_string_lossy().into_owned();
    let yaml = tcp_config()
        + &format!(
            "apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {{name: tls-tcp-gateway, namespace: default}}
spec:
  selector: {{istio: ingressgateway}}
  servers:
  - port: {{number: 31443, name: tls, protocol: TLS}}
    hosts: [tcp.test]
    tls: {{mode: SIMPLE, serverCertificate: {}, privateKey: {}}}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {{name: tls-tcp, namespace: default}}
spec:
  hosts: [tcp.test]
  gateways: [tls-tcp-gateway]
  tcp: [{{route: [{{destination: {{host: echo-v2.default.svc.cluster.local, port: {{number: 9000}}}}}}]}}]
",
            p(&cert.server_cert),
            p(&cert.server_key)
        );
    let gw = Gateway::start_ingress(&topo, &yaml, &[]);
    let said = python(&topo, &tls_echo_script(&p(&cert.ca_cert)));
    assert!(said.starts_with("over tls TLS"), "{said}");
    // The backend got the plain bytes: TLS ended at the gateway.
    let seen = echo.wait_finished(1, Duration::from_secs(10));
    assert_eq!((seen[0].first_line.as_str(), seen[0].local), ("over tls", sock(internet_v4(1), 9000)), "{seen:?}");
    let line = gw.wait_json_line("connection", "the terminated connection", |v| v["sni"] == "tcp.test");
    assert_eq!((line["protocol"].as_str(), line["upstream"].as_str()), (Some("tcp"), Some("203.0.113.11:9000")), "{line}");
    drop(gw);
    topo.teardown();
}

/// Holds 5 echoing connections, tries a 6th, closes one, tries again.
const FIVE_AND_ONE: &str = "import socket, time
def connect():
    s = socket.create_connection(('198.18.1.1', 31400), timeout=5)
    s.sendall(b'ping\\n')
    return s, s.recv(100)
held = [connect() for _ in range(5)]
print('held', sum(1 for _, got in held if got == b'ping\\n'))
start = time.time()
try:
    extra, got = connect()
    print('sixth', 'closed' if got == b'' else 'answered', round(time.time() - start, 1))
except (ConnectionResetError, BrokenPipeError):
    print('sixth', 'reset', round(time.time() - start, 1))
except socket.timeout:
    print('sixth', 'waited', round(time.time() - start, 1))
held[0][0].close()
time.sleep(0.5)
s, got = connect()
print('after', 'answered' if got == b'ping\\n' else repr(got))
";

#[test]
fn ingress_over_the_connection_limit_a_connection_is_closed_at_once_and_counted() {
    let topo = Topology::build();
    let _echo = EchoServer::start(&topo.internet, &[9000]);
    let gw = Gateway::start_ingress(&topo, &tcp_config(), &["--max-connections-per-listener", "5"]);
    let said = python(&topo, FIVE_AND_ONE);
    eprintln!("connection limit 5: {said:?}");
    let lines: Vec<&str> = said.lines().collect();
    assert_eq!(lines.first(), Some(&"held 5"), "{said}");
    let sixth: Vec<&str> = lines.get(1).map(|l| l.split(' ').collect()).unwrap_or_default();
    assert!(matches!(sixth.get(1), Some(&"closed") | Some(&"reset")), "the sixth connection: {said}");
    let secs: f64 = sixth.get(2).and_then(|s| s.parse().ok()).unwrap_or(99.0);
    assert!(secs < 1.0, "the sixth was closed after {secs} s: {said}");
    assert_eq!(lines.get(2), Some(&"after answered"), "a slot freed is usable again: {said}");
    assert_eq!(gw.metric("gateway_listener_overflow_total{port=\"31400\"}"), 1);
    assert_eq!(gw.metric("gateway_listener_overflow_total{port=\"31401\"}"), 0);
    let drained = gateway_tests::wait::poll(Duration::from_secs(10), Duration::from_millis(100), || {
        (gw.metric("gateway_listener_connections{port=\"31400\"}") == 0).then_some(())
    });
    assert!(drained.is_some(), "every closed connection gives its place back");
    drop(gw);
    topo.teardown();
}

/// An HTTP keep-alive connection and a TCP relay, each idle after one
/// exchange, and a TCP relay that keeps talking: when each one is closed.
const IDLE: &str = "import http.client, socket, threading, time
out = {}
def http_idle():
    c = http.client.HTTPConnection('198.18.1.1', 80, timeout=15)
    c.request('GET', '/idle', headers={'Host': 'idle.test'})
    r = c.getresponse(); r.read()
    start = time.time()
    try:
        got = c.sock.recv(100)
        out['http'] = ('closed' if got == b'' else 'data', round(time.time() - start, 1))
    except OSError as e:
        out['http'] = ('error', round(time.time() - start, 1))
def tcp_idle():
    s = socket.create_connection(('198.18.1.1', 31400), timeout=15)
    s.sendall(b'ping\\n'); s.recv(100)
    start = time.time()
    try:
        got = s.recv(100)
        out['tcp'] = ('closed' if got == b'' else 'data', round(time.time() - start, 1))
    except OSError as e:
        out['tcp'] = ('error', round(time.time() - start, 1))
def tcp_busy():
    s = socket.create_connection(('198.18.1.1', 31400), timeout=15)
    ok = 0
    for _ in range(8):
        s.sendall(b'x'); ok += s.recv(10) == b'x'; time.sleep(0.6)
    out['busy'] = ('echoed', ok)
ts = [threading.Thread(target=f) for f in (http_idle, tcp_idle, tcp_busy)]
[t.start() for t in ts]; [t.join() for t in ts]
for k in ('http', 'tcp', 'busy'):
    print(k, *out.get(k, ('missing', 0)))
";

#[test]
fn ingress_idle_http_and_tcp_connections_are_closed_after_the_idle_timeout() {
    let topo = Topology::build();
    let _echo = EchoServer::start(&topo.internet, &[9000]);
    let _web = gateway_tests::http_backend::HttpBackend::start(&topo.internet, "203.0.113.12:8080".parse().unwrap());
    let yaml = tcp_config()
        + &static_service("web", 8080, "HTTP", &["203.0.113.12"])
        + &ingress_gateway("web-gateway", 80, "HTTP", &["idle.test"])
        + "apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: web, namespace: default}
spec:
  hosts: [idle.test]
  gateways: [web-gateway]
  http: [{route: [{destination: {host: web.default.svc.cluster.local, port: {number: 8080}}}]}]
";
    let gw = Gateway::start_ingress(&topo, &yaml, &["--idle-timeout-secs", "2"]);
    let said = python(&topo, IDLE);
    eprintln!("idle timeout 2 s: {said:?}");
    let when = |kind: &str| -> (String, f64) {
        let line = said.lines().find(|l| l.starts_with(kind)).unwrap_or_else(|| panic!("no {kind} in {said}"));
        let parts: Vec<&str> = line.split(' ').collect();
        (parts.get(1).unwrap_or(&"").to_string(), parts.get(2).and_then(|s| s.parse().ok()).unwrap_or(-1.0))
    };
    for kind in ["http", "tcp"] {
        let (how, secs) = when(kind);
        assert_eq!(how, "closed", "{kind}: {said}");
        assert!((1.0..10.0).contains(&secs), "{kind} idle connection closed after {secs} s (2 s timeout): {said}");
    }
    assert_eq!(when("busy"), ("echoed".to_string(), 8.0), "a relay that keeps talking for 4.8 s stays open: {said}");
    let idle = gw.wait_json_line("connection", "the idle relay", |v| v["outcome"] == "idle-timeout");
    assert_eq!((idle["protocol"].as_str(), idle["bytes_up"].as_u64()), (Some("tcp"), Some(5)), "{idle}");
    drop(gw);
    topo.teardown();
}
