//! The relays of decided streams (`--relay copy|splice|sockmap`), end to end: the real gateway
//! intercepting real pods, each mode carrying 1 MiB both ways, a half-close, resets from either
//! side, and the audit line's byte counts; and an accelerated connection still going only where
//! the registry allows.

use std::net::IpAddr;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use gateway_tests::addresses::*;
use gateway_tests::checks::{assert_allowed_event, event_from};
use gateway_tests::client::{EchoRun, run_echo_client};
use gateway_tests::echo_server::EchoServer;
use gateway_tests::gateway_process::{Gateway, GatewayConfig};
use gateway_tests::topology::Topology;
use serde_json::Value;

const CLIENT: &str = env!("CARGO_BIN_EXE_gw-test-client");
const EVENT_TIMEOUT: Duration = Duration::from_secs(10);

fn with_relay(mut config: GatewayConfig, mode: &str) -> GatewayConfig {
    config.extra_args.extend(["--relay".to_owned(), mode.to_owned()]);
    config
}

/// Whether the line's `relay` is `mode`; under `auto`, any of the three.
fn carried_by(line: &Value, mode: &str) -> bool {
    let relay = line["relay"].as_str().unwrap_or_default();
    relay == mode || (mode == "auto" && ["copy", "splice", "sockmap"].contains(&relay))
}

/// The audit line of the connection from `src`, as JSON.
fn line_from(gw: &Gateway, src: std::net::SocketAddr) -> Value {
    gw.wait_json_line("connection", &format!("the line for {src}"), |v| v["src"] == src.to_string())
}

fn echo_mebibyte_with_half_close(mode: &str) {
    let topo = Topology::build();
    let server = EchoServer::start(&topo.internet, &[7]);
    let gw = Gateway::start(&topo, with_relay(GatewayConfig::for_pods(&topo), mode));
    // The kernel relay takes a stream as its first bytes are decided. Its two sockets join one
    // after the other, the client's first, as the side that spoke and waits for an answer; a
    // client still sending in that instant is reset, never corrupted (README, "Costs and limits
    // of `sockmap`"). So its client waits for the first line's echo before the bulk, as a
    // request waits for its answer; the copy and splice relays take the client sending straight
    // on.
    let token_first = mode == "sockmap";
    let base = EchoRun { bytes: 1024 * 1024, timeout: Duration::from_secs(30), token_first, ..EchoRun::to(&[sock(INTERNET_V4, 7)]) };
    let full = run_echo_client(|a| topo.pod_a.command(CLIENT, a), &base);
    full.assert_all_intact(&format!("1 MiB echo, --relay {mode}"));
    let half = EchoRun { half_close: true, targets: vec![sock(INTERNET_V6, 7)], ..base };
    let half = run_echo_client(|a| topo.pod_a.command(CLIENT, a), &half);
    half.assert_all_intact(&format!("1 MiB echo with half-close, --relay {mode}"));

    let seen = server.wait_finished(2, EVENT_TIMEOUT);
    let events = gw.wait_for_events(2, EVENT_TIMEOUT);
    for (summary, pod_ip) in [(&full, IpAddr::V4(POD_A_V4)), (&half, IpAddr::V6(POD_A_V6))] {
        let r = &summary.results[0];
        let at_server = seen.iter().find(|a| a.first_line == r.token).unwrap_or_else(|| panic!("server never saw {}: {seen:?}", r.token));
        assert_eq!(at_server.bytes, r.sent, "bytes the server received for {}", r.token);
        assert!(at_server.finished, "the server should have seen the client's FIN: {at_server:?}");
        let local = r.local.expect("local address");
        assert_allowed_event(&event_from(&events, local, &gw), r.target, &[pod_ip], topo.pod_a.cgroup.id(), r.sent, &gw);
        let line = line_from(&gw, local);
        assert_eq!((carried_by(&line, mode), line["outcome"].as_str()), (true, Some("closed")), "{line}");
    }
    drop((gw, server));
    topo.teardown();
}

#[test]
fn relay_copy_echoes_a_mebibyte_and_a_half_close() {
    echo_mebibyte_with_half_close("copy");
}

#[test]
fn relay_splice_echoes_a_mebibyte_and_a_half_close() {
    echo_mebibyte_with_half_close("splice");
}

#[test]
fn relay_sockmap_echoes_a_mebibyte_and_a_half_close() {
    echo_mebibyte_with_half_close("sockmap");
}

/// In the internet namespace: on port 9, echoes one line per connection, then either waits for
/// the client's reset (first connection) or resets the connection itself (second). Prints what
/// the first saw.
const RESET_SERVER: &str = r#"
import socket, struct, sys
s = socket.socket(socket.AF_INET6); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("::", 9)); s.listen(4); s.settimeout(20)
print("listening", flush=True)
c, _ = s.accept(); c.settimeout(20)
c.sendall(c.recv(100))
try:
    rest = c.recv(100)
    print("client-reset: no, got %r" % rest, flush=True)
except ConnectionResetError:
    print("client-reset: yes", flush=True)
c, _ = s.accept(); c.settimeout(20)
c.sendall(c.recv(100))
c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)); c.close()
"#;

/// In the pod: the two connections RESET_SERVER expects; prints what the second saw.
const RESET_CLIENT: &str = r#"
import socket, struct, sys, time
c = socket.create_connection(("203.0.113.10", 9), timeout=10)
c.sendall(b"first\n"); assert c.recv(100) == b"first\n"
c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)); c.close()
time.sleep(0.5)
c = socket.create_connection(("203.0.113.10", 9), timeout=10)
c.sendall(b"second\n"); assert c.recv(100) == b"second\n"
try:
    rest = c.recv(100)
    print("server-reset: no, got %r" % rest, flush=True)
except ConnectionResetError:
    print("server-reset: yes", flush=True)
"#;

fn resets_cross_both_ways(mode: &str) {
    let topo = Topology::build();
    let gw = Gateway::start(&topo, with_relay(GatewayConfig::for_pods(&topo), mode));
    let mut server = topo.internet.command("/usr/bin/python3", &["-c", RESET_SERVER]).stdout(Stdio::piped()).spawn().expect("python3 server");
    let mut first = String::new();
    {
        use std::io::BufRead;
        let mut out = std::io::BufReader::new(server.stdout.take().unwrap());
        out.read_line(&mut first).expect("server output");
        assert_eq!(first.trim(), "listening");
        let client = topo.pod_a.command("/usr/bin/python3", &["-c", RESET_CLIENT]).output().expect("python3 client");
        let said = String::from_utf8_lossy(&client.stdout);
        assert!(said.contains("server-reset: yes"), "--relay {mode}: the client should see the server's reset: {said} {}\n{}", String::from_utf8_lossy(&client.stderr), gw.stderr_tail());
        first.clear();
        out.read_line(&mut first).expect("server output");
    }
    let _ = server.wait();
    assert_eq!(first.trim(), "client-reset: yes", "--relay {mode}: the server should see the client's reset\n{}", gw.stderr_tail());
    gateway_tests::wait::until("two connection lines", EVENT_TIMEOUT, || gw.json_lines("connection").len() >= 2);
    let lines = gw.json_lines("connection");
    for line in &lines {
        assert_eq!((carried_by(line, mode), line["outcome"].as_str()), (true, Some("reset")), "{line}");
    }
    // Each side got its line back before the reset; the counts say so.
    let mut counts: Vec<(u64, u64)> = lines.iter().map(|l| (l["bytes_up"].as_u64().unwrap(), l["bytes_down"].as_u64().unwrap())).collect();
    counts.sort();
    assert_eq!(counts, [(6, 6), (7, 7)], "--relay {mode}: bytes_up/bytes_down of {lines:?}");
    drop(gw);
    topo.teardown();
}

#[test]
fn relay_copy_carries_resets_both_ways() {
    resets_cross_both_ways("copy");
}

#[test]
fn relay_splice_carries_resets_both_ways() {
    resets_cross_both_ways("splice");
}

#[test]
fn relay_sockmap_carries_resets_both_ways() {
    resets_cross_both_ways("sockmap");
}

const REGISTRY: &str = "apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: echo-range, namespace: default}
spec:
  hosts: [echo.internet.test]
  addresses: [203.0.113.12/32]
  ports: [{number: 7, name: tcp-echo, protocol: TCP}]
  location: MESH_EXTERNAL
  resolution: NONE
";

/// REGISTRY_ONLY: a relayed connection reaches the registered address; one to another address
/// of the same host, made after it and while it is open, is refused and reaches nothing.
fn accelerated_connections_go_only_where_allowed(mode: &str) {
    let topo = Topology::build();
    let dir = topo.temp.subdir("istio");
    std::fs::write(dir.join("registry.yaml"), REGISTRY).unwrap();
    let gw = Gateway::start(&topo, with_relay(GatewayConfig::enforcing(&topo, vec![PathBuf::from(&dir)]), mode));
    let server = EchoServer::start(&topo.internet, &[7]);
    let allowed = sock(internet_v4(2), 7);
    let denied = sock(internet_v4(1), 7);
    // Many connections at once, allowed and denied mixed, so relayed ones are open while the
    // others are decided.
    let run = EchoRun { per_target: 20, bytes: 64 * 1024, timeout: Duration::from_secs(20), ..EchoRun::to(&[allowed, denied]) };
    let summary = run_echo_client(|a| topo.pod_a.command(CLIENT, a), &run);
    for r in &summary.results {
        if r.target == allowed {
            assert!(r.intact, "--relay {mode}: {} should echo: {:?}\n{}", r.token, r.error, gw.stderr_tail());
        } else {
            assert!(!r.intact && r.received == 0, "--relay {mode}: {} must be refused: {}", r.token, summary.raw);
        }
    }
    let seen = server.wait_finished(20, EVENT_TIMEOUT);
    assert!(seen.iter().all(|a| a.local.ip() == canonical(allowed).ip()), "the server was reached at an unregistered address: {seen:?}");
    assert_eq!(seen.len(), 20, "only the allowed connections reach the server: {seen:?}");
    gateway_tests::wait::until("40 connection lines", EVENT_TIMEOUT, || gw.json_lines("connection").len() >= 40);
    for line in gw.json_lines("connection") {
        if line["orig_dst"] == allowed.to_string() {
            assert_eq!((line["decision"].as_str(), carried_by(&line, mode)), (Some("allow"), true), "{line}");
            assert_eq!(line["bytes_up"].as_u64(), line["bytes_down"].as_u64(), "{line}");
        } else {
            assert_eq!((line["decision"].as_str(), line["reason"].as_str()), (Some("deny"), Some("not-registered")), "{line}");
            assert!(line.get("relay").is_none(), "a denied connection is relayed by nothing: {line}");
        }
    }
    drop((gw, server));
    topo.teardown();
}

#[test]
fn relay_copy_sends_connections_only_where_allowed() {
    accelerated_connections_go_only_where_allowed("copy");
}

#[test]
fn relay_splice_sends_connections_only_where_allowed() {
    accelerated_connections_go_only_where_allowed("splice");
}

#[test]
fn relay_sockmap_sends_connections_only_where_allowed() {
    accelerated_connections_go_only_where_allowed("sockmap");
}

#[test]
fn relay_auto_echoes_a_mebibyte_and_a_half_close() {
    echo_mebibyte_with_half_close("auto");
}

#[test]
fn relay_auto_carries_resets_both_ways() {
    resets_cross_both_ways("auto");
}

#[test]
fn relay_auto_sends_connections_only_where_allowed() {
    accelerated_connections_go_only_where_allowed("auto");
}

/// In the pod: a short exchange, a pause (the stream is then moved), then `MIB` random MiB sent
/// while the echo is read back, then a half-close. Prints the local address and the outcome.
const PAUSED_THEN_BULK: &str = r#"
import os, socket, sys, threading, time
mib = int(sys.argv[1])
c = socket.create_connection(("203.0.113.10", 7), timeout=20)
print(c.getsockname()[0] + ":" + str(c.getsockname()[1]), flush=True)
c.sendall(b"gwt-token paused\n"); got = b""
while len(got) < 17: got += c.recv(100)
time.sleep(0.3)
data = os.urandom(mib << 20)
def send():
    c.sendall(data); c.shutdown(socket.SHUT_WR)
t = threading.Thread(target=send); t.start()
back = []
while True:
    b = c.recv(1 << 16)
    if not b: break
    back.append(b)
t.join()
print("intact" if b"".join(back) == data else "differs: %d bytes" % len(b"".join(back)), flush=True)
"#;

/// Under `auto`, a stream that is quiet for a moment is moved to the kernel relay half-way:
/// what was copied before and what the kernel carries after arrive in order, the half-close
/// follows, and the audit line counts both parts.
#[test]
fn relay_auto_moves_a_quiet_stream_to_the_kernel_relay_intact() {
    let topo = Topology::build();
    let server = EchoServer::start(&topo.internet, &[7]);
    let gw = Gateway::start(&topo, with_relay(GatewayConfig::for_pods(&topo), "auto"));
    let out = topo.pod_a.command("/usr/bin/python3", &["-c", PAUSED_THEN_BULK, "4"]).output().expect("python3 client");
    let said = String::from_utf8_lossy(&out.stdout);
    let mut said_lines = said.lines();
    let local: std::net::SocketAddr = said_lines.next().unwrap_or_default().parse().unwrap_or_else(|_| panic!("client said {said} {}", String::from_utf8_lossy(&out.stderr)));
    assert_eq!(said_lines.next(), Some("intact"), "client: {said} {}
{}", String::from_utf8_lossy(&out.stderr), gw.stderr_tail());
    let seen = server.wait_finished(1, EVENT_TIMEOUT);
    let total = 17 + (4 << 20);
    assert_eq!((seen[0].bytes, seen[0].finished), (total, true), "{seen:?}");
    let line = line_from(&gw, local);
    assert_eq!((line["relay"].as_str(), line["outcome"].as_str()), (Some("sockmap"), Some("closed")), "{line}");
    assert_eq!((line["bytes_up"].as_u64(), line["bytes_down"].as_u64()), (Some(total), Some(total)), "{line}");
    drop((gw, server));
    topo.teardown();
}

/// In the pod: 64-byte request/response exchanges back to back for 400 ms, each reply checked.
/// Prints the local address, the number of exchanges and the outcome.
const PING_PONG: &str = r#"
import os, socket, time
c = socket.create_connection(("203.0.113.10", 7), timeout=20)
c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
print(c.getsockname()[0] + ":" + str(c.getsockname()[1]), flush=True)
c.sendall(b"gwt-token ping-pong\n"); got = b""
while len(got) < 20: got += c.recv(100)
n, bad, end = 0, 0, time.time() + 0.4
while time.time() < end:
    msg = os.urandom(64)
    c.sendall(msg); back = b""
    while len(back) < 64:
        b = c.recv(64 - len(back))
        if not b: raise SystemExit("closed early")
        back += b
    n += 1; bad += back != msg
c.shutdown(socket.SHUT_WR)
assert c.recv(100) == b""
print(n, flush=True)
print("intact" if bad == 0 else "%d replies differ" % bad, flush=True)
"#;

/// Under `auto`, a stream busy with request/response traffic is moved to the kernel relay while
/// exchanges are in flight: every reply still matches its request, and the counts add up.
#[test]
fn relay_auto_moves_a_busy_request_response_stream_intact() {
    let topo = Topology::build();
    let server = EchoServer::start(&topo.internet, &[7]);
    let gw = Gateway::start(&topo, with_relay(GatewayConfig::for_pods(&topo), "auto"));
    for _ in 0..3 {
        let out = topo.pod_a.command("/usr/bin/python3", &["-c", PING_PONG]).output().expect("python3 client");
        let said = String::from_utf8_lossy(&out.stdout);
        let lines: Vec<&str> = said.lines().collect();
        let context = || format!("client: {said} {}\n{}", String::from_utf8_lossy(&out.stderr), gw.stderr_tail());
        assert_eq!(lines.get(2), Some(&"intact"), "{}", context());
        let exchanges: u64 = lines[1].parse().unwrap_or_else(|_| panic!("{}", context()));
        let local: std::net::SocketAddr = lines[0].parse().unwrap_or_else(|_| panic!("{}", context()));
        let total = 20 + 64 * exchanges;
        let line = line_from(&gw, local);
        assert_eq!((line["relay"].as_str(), line["outcome"].as_str()), (Some("sockmap"), Some("closed")), "{line}");
        assert_eq!((line["bytes_up"].as_u64(), line["bytes_down"].as_u64()), (Some(total), Some(total)), "{line}");
    }
    let seen = server.wait_finished(3, EVENT_TIMEOUT);
    assert!(seen.iter().all(|a| a.finished && a.first_line == "gwt-token ping-pong"), "{seen:?}");
    drop((gw, server));
    topo.teardown();
}

/// A gateway TCP server (`tcp` route to a STATIC entry) with no idle timeout.
fn tcp_gateway_yaml() -> String {
    gateway_tests::istio::static_service("echo", 9000, "TCP", &["203.0.113.10"])
        + &gateway_tests::istio::ingress_gateway("tcp-gateway", 31400, "TCP", &["'*'"])
        + "apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: echo, namespace: default}
spec:
  hosts: ['*']
  gateways: [tcp-gateway]
  tcp:
  - route: [{destination: {host: echo.default.svc.cluster.local, port: {number: 9000}}}]
"
}

/// The gateway role's routed TCP streams take the configured relay too (when no idle timeout
/// has to watch their bytes): 1 MiB each way intact, half-close, counts.
#[test]
fn relay_sockmap_carries_a_gateway_tcp_route() {
    let topo = Topology::build();
    let echo = EchoServer::start(&topo.internet, &[9000]);
    let gw = Gateway::start_ingress(&topo, &tcp_gateway_yaml(), &["--idle-timeout-secs", "0", "--relay", "sockmap"]);
    let run = EchoRun { bytes: 1024 * 1024, half_close: true, timeout: Duration::from_secs(30), ..EchoRun::to(&["198.18.1.1:31400".parse().unwrap()]) };
    let summary = run_echo_client(|a| topo.pod_a.command_outside_cgroup(CLIENT, a), &run);
    summary.assert_all_intact("1 MiB through a gateway tcp route, --relay sockmap");
    let seen = echo.wait_finished(1, EVENT_TIMEOUT);
    let sent = summary.results[0].sent;
    assert_eq!((seen[0].bytes, seen[0].finished), (sent, true), "{seen:?}");
    let line = gw.wait_json_line("connection", "the tcp connection", |v| v["protocol"] == "tcp");
    assert_eq!((line["decision"].as_str(), line["relay"].as_str(), line["outcome"].as_str()), (Some("allow"), Some("sockmap"), Some("closed")), "{line}");
    assert_eq!((line["bytes_up"].as_u64(), line["bytes_down"].as_u64()), (Some(sent), Some(sent)), "{line}");
    drop((gw, echo));
    topo.teardown();
}
