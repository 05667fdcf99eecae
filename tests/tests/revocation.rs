//! A reload that removes a destination reaches the connections already open to it: the next
//! request of a keep-alive HTTP connection gets 403 and the pooled upstream connection is closed;
//! a relayed stream is reset after `--revocation-drain-secs`, whichever relay carries it, with
//! `"reason":"revoked"` in its audit line. The node routes, and a capture in the internet
//! namespace checks that nothing from a pod's own address gets there.

use std::path::{Path, PathBuf};
use std::time::Duration;

use gateway_tests::addresses::*;
use gateway_tests::capture::Capture;
use gateway_tests::echo_server::EchoServer;
use gateway_tests::gateway_process::{Gateway, GatewayConfig};
use gateway_tests::script::Script;
use gateway_tests::topology::Topology;
use serde_json::Value;

const STEP: Duration = Duration::from_secs(20);
/// A port nothing in these tests listens on, for the oracle's own probe.
const PROBE_PORT: u16 = 7999;

const WEB: &str = "apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: web, namespace: default}
spec:
  hosts: [web.test]
  addresses: [203.0.113.10/32]
  ports: [{number: 80, name: http, protocol: HTTP}]
  location: MESH_EXTERNAL
  resolution: NONE
---
";

const ECHO: &str = "apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: echo, namespace: default}
spec:
  hosts: [echo.internet.test]
  addresses: [203.0.113.12/32]
  ports: [{number: 7, name: tcp-echo, protocol: TCP}]
  location: MESH_EXTERNAL
  resolution: NONE
---
";

/// An entry that stays, so that no configuration here is empty.
const OTHER: &str = "apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: other, namespace: default}
spec:
  hosts: [other.test]
  addresses: [203.0.113.13/32]
  ports: [{number: 8080, name: http, protocol: HTTP}]
  location: MESH_EXTERNAL
  resolution: NONE
";

fn generation(gw: &Gateway) -> u64 {
    gw.admin_json("/config_dump")["generation"].as_u64().expect("config_dump has a generation")
}

/// Replaces the registry with `yaml` and has it applied (by POST /reload, or by the file
/// watcher if it was first): the generation must become `want`.
fn reload(gw: &Gateway, dir: &Path, yaml: &str, want: u64) {
    std::fs::write(dir.join("registry.yaml"), yaml).unwrap();
    let (status, body) = gw.admin_request("POST", "/reload");
    assert_eq!(status, 200, "POST /reload: {body}\n{}", gw.stderr_tail());
    assert_eq!(generation(gw), want, "{body}");
}

struct Setup {
    topo: Topology,
    dir: PathBuf,
    gw: Gateway,
    capture: Capture,
}

/// REGISTRY_ONLY with `yaml`, `extra` arguments, and the oracle, first shown to see a bypass.
fn setup(yaml: &str, extra: &[&str]) -> Setup {
    let topo = Topology::build();
    let dir = topo.temp.subdir("istio");
    std::fs::write(dir.join("registry.yaml"), yaml).unwrap();
    let mut config = GatewayConfig::enforcing(&topo, vec![dir.clone()]);
    config.extra_args = ["--revocation-drain-secs", "1"].iter().chain(extra).map(|s| s.to_string()).collect();
    let gw = Gateway::start(&topo, config);
    let capture = Capture::from_pods(&topo.internet, topo.temp.path());
    capture.assert_sees_a_bypass(&topo.pod_a, sock(INTERNET_V4, PROBE_PORT));
    Setup { topo, dir, gw, capture }
}

/// In the internet namespace: HTTP/1.1 with keep-alive on [::]:80. Prints `open PEER` and
/// `closed PEER` for each connection and `request HOST PATH` for each request. Ends by itself
/// after two minutes.
const HTTP_SERVER: &str = r#"
import http.server, signal, socket, socketserver
signal.alarm(120)
def peer(h): return h.client_address[0].replace("::ffff:", "")
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def setup(self):
        super().setup(); print("open %s" % peer(self), flush=True)
    def finish(self):
        super().finish(); print("closed %s" % peer(self), flush=True)
    def do_GET(self):
        print("request %s %s" % (self.headers.get("host"), self.path), flush=True)
        body = b"hello\n"
        self.send_response(200); self.send_header("content-length", str(len(body))); self.end_headers(); self.wfile.write(body)
    def log_message(self, *args): pass
class S(socketserver.ThreadingMixIn, http.server.HTTPServer):
    address_family = socket.AF_INET6; allow_reuse_address = True; daemon_threads = True
s = S(("::", 80), H)
print("listening", flush=True)
s.serve_forever()
"#;

/// In the pod: one keep-alive connection to ARGV[1]:ARGV[2]; a request, then (once told on
/// stdin) another on the same connection, which it then keeps open until told again. Prints
/// `first STATUS LOCAL` and `second STATUS DENIED-HEADER LOCAL`.
const KEEP_ALIVE_CLIENT: &str = r#"
import http.client, sys
c = http.client.HTTPConnection(sys.argv[1], int(sys.argv[2]), timeout=20)
c.request("GET", "/one", headers={"Host": "web.test"})
r = c.getresponse(); r.read()
print("first %d %s:%d" % ((r.status,) + c.sock.getsockname()[:2]), flush=True)
sys.stdin.readline()
local = "%s:%d" % c.sock.getsockname()[:2]
c.request("GET", "/two", headers={"Host": "web.test"})
r = c.getresponse(); r.read()
print("second %d %s %s" % (r.status, r.getheader("x-gateway-denied"), local), flush=True)
sys.stdin.readline()
"#;

#[test]
fn a_keep_alive_connection_gets_403_once_its_host_is_removed_and_the_pooled_upstream_closes() {
    let s = setup(&format!("{WEB}{OTHER}"), &[]);
    let server = Script::spawn(s.topo.internet.command("/usr/bin/python3", &["-c", HTTP_SERVER]));
    server.wait_line(STEP, "listening", |l| l == "listening");
    let mut client = Script::spawn(s.topo.pod_a.command("/usr/bin/python3", &["-c", KEEP_ALIVE_CLIENT, "203.0.113.10", "80"]));
    let first = client.wait_line(STEP, "its first answer", |l| l.starts_with("first "));
    assert!(first.starts_with("first 200 "), "{first}\n{}", s.gw.stderr_tail());
    let node = NODE_INTERNET_V4.to_string();
    server.wait_line(STEP, "the first request", |l| l == "request web.test /one");
    assert_eq!(server.lines().iter().filter(|l| l.starts_with("open ")).collect::<Vec<_>>(), [&format!("open {node}")], "one upstream connection, from the node");

    reload(&s.gw, &s.dir, OTHER, 2);
    client.say("go");
    let second = client.wait_line(STEP, "its second answer", |l| l.starts_with("second "));
    let local = first.rsplit(' ').next().unwrap();
    assert_eq!(second, format!("second 403 not-registered {local}"), "the same connection, decided again\n{}", s.gw.stderr_tail());
    // The kept upstream connection to the removed host is closed by the reload, while the
    // client's connection is still open.
    server.wait_line(STEP, "the pooled connection's close", |l| l == format!("closed {node}"));
    client.say("bye");
    assert!(!server.lines().iter().any(|l| l.contains("/two")), "the denied request reached the server: {:?}", server.lines());

    let two = s.gw.wait_json_line("request", "the second request", |v| v["path"] == "/two");
    assert_eq!((two["status"].as_u64(), two["reason"].as_str()), (Some(403), Some("not-registered")), "{two}");
    let one = s.gw.wait_json_line("request", "the first request", |v| v["path"] == "/one");
    assert_eq!((one["status"].as_u64(), one["decision"].as_str()), (Some(200), Some("allow")), "{one}");
    s.capture.assert_no_bypass_to(&[80]);
    drop((client, server, s.gw, s.capture));
    s.topo.teardown();
}

/// In the pod: an opaque stream to 203.0.113.12:7; a line echoed; then (once told on stdin)
/// waits for the stream to end. Prints the local address, `echoed`, then `reset`, `eof` or
/// `still open`.
const LASTING_CLIENT: &str = r#"
import socket, sys
c = socket.create_connection(("203.0.113.12", 7), timeout=30)
print("%s:%d" % c.getsockname()[:2], flush=True)
line = b"gwt-token revoked %s\n" % sys.argv[1].encode()
c.sendall(line); got = b""
while len(got) < len(line): got += c.recv(100)
print("echoed", flush=True)
sys.stdin.readline()
try:
    b = c.recv(100)
    print("got %r" % b if b else "eof", flush=True)
except ConnectionResetError:
    print("reset", flush=True)
except socket.timeout:
    print("still open", flush=True)
"#;

fn a_relayed_stream_is_reset_after_the_drain_once_revoked(mode: &str) {
    let s = setup(&format!("{ECHO}{OTHER}"), &["--relay", mode]);
    let echo = EchoServer::start(&s.topo.internet, &[7]);
    let mut client = Script::spawn(s.topo.pod_a.command("/usr/bin/python3", &["-c", LASTING_CLIENT, mode]));
    let local = client.wait_line(STEP, "its address", |_| true);
    client.wait_line(STEP, "the echo", |l| l == "echoed");

    reload(&s.gw, &s.dir, OTHER, 2);
    client.say("go");
    let end = client.wait_line(STEP, "how the stream ended", |l| l != local && l != "echoed");
    assert_eq!(end, "reset", "--relay {mode}: the revoked stream must be reset\n{}", s.gw.stderr_tail());

    let line: Value = s.gw.wait_json_line("connection", "the revoked stream", |v| v["src"] == local.as_str());
    assert_eq!(
        (line["decision"].as_str(), line["reason"].as_str(), line["outcome"].as_str(), line["revoked_by"].as_u64()),
        (Some("allow"), Some("revoked"), Some("revoked"), Some(2)),
        "--relay {mode}: {line}"
    );
    let relay = line["relay"].as_str().unwrap_or_default();
    let expected: &[&str] = match mode {
        "auto" => &["copy", "sockmap"],
        other => &[other],
    };
    assert!(expected.contains(&relay), "--relay {mode} carried it by {relay}: {line}");
    let token = format!("gwt-token revoked {mode}");
    gateway_tests::wait::until("the server to see the stream end", STEP, || echo.accepted().iter().all(|a| a.ended));
    let seen = echo.accepted();
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert_eq!((seen[0].first_line.as_str(), seen[0].bytes), (token.as_str(), token.len() as u64 + 1), "{seen:?}");
    assert_eq!((seen[0].peer.ip(), seen[0].finished), (std::net::IpAddr::V4(NODE_INTERNET_V4), false), "reached from the node, then reset, not closed cleanly: {seen:?}");

    // A new stream to the removed address is refused.
    let out = gateway_tests::command::run(
        &mut s.topo.pod_a.command("/usr/bin/python3", &["-c", NEW_STREAM_CLIENT]),
        STEP,
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "reset", "a new stream after the reload");
    s.capture.assert_no_bypass_to(&[7]);
    drop((client, echo, s.gw, s.capture));
    s.topo.teardown();
}

#[test]
fn revocation_resets_a_copied_stream() {
    a_relayed_stream_is_reset_after_the_drain_once_revoked("copy");
}

#[test]
fn revocation_resets_a_spliced_stream() {
    a_relayed_stream_is_reset_after_the_drain_once_revoked("splice");
}

#[test]
fn revocation_resets_a_stream_relayed_in_the_kernel() {
    a_relayed_stream_is_reset_after_the_drain_once_revoked("sockmap");
}

#[test]
fn revocation_resets_a_stream_under_relay_auto() {
    a_relayed_stream_is_reset_after_the_drain_once_revoked("auto");
}

/// A gateway TCP server (`tcp` route to a STATIC entry on `endpoint`), relayed by sockmap.
fn tcp_gateway_yaml(endpoint: &str) -> String {
    gateway_tests::istio::static_service("echo", 7, "TCP", &[endpoint])
        + &gateway_tests::istio::ingress_gateway("tcp-gateway", 31400, "TCP", &["'*'"])
        + "apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: echo, namespace: default}
spec:
  hosts: ['*']
  gateways: [tcp-gateway]
  tcp:
  - route: [{destination: {host: echo.default.svc.cluster.local, port: {number: 7}}}]
"
}

/// The gateway role's relays are revoked too: the route's entry moves to another endpoint, so the
/// open stream no longer goes where the registry says; it is reset after the drain.
#[test]
fn revocation_resets_a_gateway_tcp_route_whose_endpoint_is_gone() {
    let topo = Topology::build();
    let echo = EchoServer::start(&topo.internet, &[7]);
    let gw = Gateway::start_ingress(&topo, &tcp_gateway_yaml("203.0.113.10"), &["--idle-timeout-secs", "0", "--relay", "sockmap", "--revocation-drain-secs", "1"]);
    let client_script = LASTING_CLIENT.replace("(\"203.0.113.12\", 7)", "(\"198.18.1.1\", 31400)");
    let mut client = Script::spawn(topo.pod_a.command_outside_cgroup("/usr/bin/python3", &["-c", &client_script, "gateway"]));
    let local = client.wait_line(STEP, "its address", |_| true);
    client.wait_line(STEP, "the echo", |l| l == "echoed");

    let dir = topo.temp.path().join("istio");
    std::fs::write(dir.join("gateway.yaml"), tcp_gateway_yaml("203.0.113.11")).unwrap();
    let (status, body) = gw.admin_request("POST", "/reload");
    assert_eq!(status, 200, "{body}");
    assert_eq!(generation(&gw), 2);
    client.say("go");
    let end = client.wait_line(STEP, "how the stream ended", |l| l != local && l != "echoed");
    assert_eq!(end, "reset", "{}", gw.stderr_tail());
    let line = gw.wait_json_line("connection", "the revoked gateway stream", |v| v["protocol"] == "tcp");
    assert_eq!(
        (line["reason"].as_str(), line["outcome"].as_str(), line["relay"].as_str(), line["role"].as_str()),
        (Some("revoked"), Some("revoked"), Some("sockmap"), Some("ingress-gateway")),
        "{line}"
    );
    gateway_tests::wait::until("the server to see the stream end", STEP, || echo.accepted().first().is_some_and(|a| a.ended));
    let seen = echo.accepted();
    assert_eq!((seen.len(), seen[0].bytes, seen[0].finished), (1, "gwt-token revoked gateway\n".len() as u64, false), "reset, not closed cleanly: {seen:?}");
    drop((client, echo, gw));
    topo.teardown();
}

/// An ingress gateway's HTTP route to a STATIC entry `web` (203.0.113.10:80), with or without
/// the entry.
fn http_gateway_yaml(registered: bool) -> String {
    let entry = if registered { gateway_tests::istio::static_service("web", 80, "HTTP", &["203.0.113.10"]) } else { String::new() };
    entry
        + &gateway_tests::istio::ingress_gateway("web-gateway", 8080, "HTTP", &["'*'"])
        + "apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: web, namespace: default}
spec:
  hosts: ['*']
  gateways: [web-gateway]
  http:
  - route: [{destination: {host: web.default.svc.cluster.local, port: {number: 80}}}]
"
}

/// The gateway role decides each request against the current configuration too, and its shared
/// pool closes the upstream connection the reload no longer allows.
#[test]
fn a_gateway_keep_alive_connection_is_refused_once_its_destination_is_removed() {
    let topo = Topology::build();
    let server = Script::spawn(topo.internet.command("/usr/bin/python3", &["-c", HTTP_SERVER]));
    server.wait_line(STEP, "listening", |l| l == "listening");
    let gw = Gateway::start_ingress(&topo, &http_gateway_yaml(true), &["--revocation-drain-secs", "1"]);
    let mut client = Script::spawn(topo.pod_a.command_outside_cgroup("/usr/bin/python3", &["-c", KEEP_ALIVE_CLIENT, "198.18.1.1", "8080"]));
    let first = client.wait_line(STEP, "its first answer", |l| l.starts_with("first "));
    assert!(first.starts_with("first 200 "), "{first}\n{}", gw.stderr_tail());
    let node = NODE_INTERNET_V4.to_string();
    server.wait_line(STEP, "the first request", |l| l == "request web.test /one");

    std::fs::write(topo.temp.path().join("istio").join("gateway.yaml"), http_gateway_yaml(false)).unwrap();
    let (status, body) = gw.admin_request("POST", "/reload");
    assert_eq!((status, generation(&gw)), (200, 2), "{body}");
    server.wait_line(STEP, "the pooled connection's close", |l| l == format!("closed {node}"));
    client.say("go");
    let second = client.wait_line(STEP, "its second answer", |l| l.starts_with("second "));
    let local = first.rsplit(' ').next().unwrap();
    assert_eq!(second, format!("second 403 not-registered {local}"), "the same connection, decided again\n{}", gw.stderr_tail());
    assert!(!server.lines().iter().any(|l| l.contains("/two")), "the refused request reached the server: {:?}", server.lines());
    client.say("bye");
    drop((client, server, gw));
    topo.teardown();
}

/// A new stream to the echo entry: prints `reset` when it is refused (a
/// stream decided at accept may be reset before its connect returns or
/// before its first write), else what came back.
const NEW_STREAM_CLIENT: &str = "import socket
try:
    c = socket.create_connection(('203.0.113.12', 7), timeout=10)
    c.sendall(b'x\\n'); print(c.recv(10) or 'eof')
except (ConnectionResetError, BrokenPipeError):
    print('reset')
";

/// A DENY policy attached to the echo entry, for pod-a's address.
const DENY_ECHO_FOR_POD_A: &str = "apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: no-echo-for-a, namespace: default}
spec:
  targetRef: {group: networking.istio.io, kind: ServiceEntry, name: echo}
  action: DENY
  rules: [{from: [{source: {ipBlocks: [198.18.1.2/32]}}]}]
---
";

#[test]
fn a_relayed_stream_is_reset_once_an_authorization_policy_denies_it() {
    let s = setup(&format!("{ECHO}{OTHER}"), &["--relay", "auto"]);
    let echo = EchoServer::start(&s.topo.internet, &[7]);
    let mut client = Script::spawn(s.topo.pod_a.command("/usr/bin/python3", &["-c", LASTING_CLIENT, "authz"]));
    let local = client.wait_line(STEP, "its address", |_| true);
    client.wait_line(STEP, "the echo", |l| l == "echoed");

    // The entry stays; a policy now denies pod-a.
    reload(&s.gw, &s.dir, &format!("{ECHO}{DENY_ECHO_FOR_POD_A}{OTHER}"), 2);
    client.say("go");
    let end = client.wait_line(STEP, "how the stream ended", |l| l != local && l != "echoed");
    assert_eq!(end, "reset", "the stream the policy denies must be reset\n{}", s.gw.stderr_tail());
    let line: Value = s.gw.wait_json_line("connection", "the revoked stream", |v| v["src"] == local.as_str());
    assert_eq!(
        (line["reason"].as_str(), line["outcome"].as_str(), line["revoked_by"].as_u64()),
        (Some("revoked"), Some("revoked"), Some(2)),
        "{line}"
    );

    // A new stream is refused by the policy, which its line names.
    let out = gateway_tests::command::run(
        &mut s.topo.pod_a.command("/usr/bin/python3", &["-c", NEW_STREAM_CLIENT]),
        STEP,
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "reset",
        "a new stream after the reload: {}\n{}",
        String::from_utf8_lossy(&out.stderr),
        s.gw.stderr_tail()
    );
    let refused = s.gw.wait_json_line("connection", "the refused stream", |v| v["reason"] == "authz-denied");
    assert_eq!((refused["authz"]["policy"].as_str(), refused["authz"]["action"].as_str()), (Some("default/no-echo-for-a"), Some("DENY")), "{refused}");
    assert_eq!(echo.accepted().len(), 1, "only the first stream reached the server");
    s.capture.assert_no_bypass_to(&[7]);
    drop((client, echo, s.gw, s.capture));
    s.topo.teardown();
}
