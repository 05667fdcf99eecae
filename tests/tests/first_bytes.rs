//! What a connection's first bytes decide, end to end: a short first write that could still
//! become a ClientHello or a request head (one byte, `HE`) is relayed as opaque TCP once the
//! sniff timeout passes; a destination the registry declares opaque TCP is decided at accept, so
//! a server that speaks first reaches a silent client; bytes that begin TLS or HTTP and then
//! break its grammar are still refused as malformed. The node routes, and a capture in the
//! internet namespace checks that nothing from a pod's own address gets there.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use gateway_tests::addresses::*;
use gateway_tests::capture::Capture;
use gateway_tests::echo_server::EchoServer;
use gateway_tests::gateway_process::{Gateway, GatewayConfig};
use gateway_tests::topology::Topology;
use serde_json::Value;

const EVENT_TIMEOUT: Duration = Duration::from_secs(10);
/// A port nothing in these tests listens on, for the oracle's own probe.
const PROBE_PORT: u16 = 7999;

/// 203.0.113.12:7 has no declared protocol (auto-detected); 203.0.113.13 declares its ports
/// opaque TCP (`tcp-echo`, `MYSQL`).
const REGISTRY: &str = "apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: sniffed, namespace: default}
spec:
  hosts: [sniffed.internet.test]
  addresses: [203.0.113.12/32]
  ports: [{number: 7, name: echo}]
  location: MESH_EXTERNAL
  resolution: NONE
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: declared, namespace: default}
spec:
  hosts: [declared.internet.test]
  addresses: [203.0.113.13/32]
  ports:
  - {number: 7, name: tcp-echo, protocol: TCP}
  - {number: 3306, name: db, protocol: MYSQL}
  location: MESH_EXTERNAL
  resolution: NONE
";

/// In the pod: connects to ARGV[1]:ARGV[2], writes the bytes ARGV[3] (hex), reads them back,
/// writes ARGV[4] (hex), half-closes and reads to the end; with no first bytes, it stays silent
/// for 3 s first. Prints the local address, then `intact`, `differs …` or `reset after …`.
const SHORT_FIRST_WRITE: &str = r#"
import socket, sys, time
first, rest = bytes.fromhex(sys.argv[3]), bytes.fromhex(sys.argv[4])
c = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=20)
print("%s:%d" % c.getsockname()[:2], flush=True)
got = b""
try:
    if not first: time.sleep(3)
    c.sendall(first)
    while len(got) < len(first):
        b = c.recv(100)
        if not b: break
        got += b
    c.sendall(rest); c.shutdown(socket.SHUT_WR)
    while True:
        b = c.recv(100)
        if not b: break
        got += b
    print("intact" if got == first + rest else "differs: %r" % got, flush=True)
except ConnectionResetError:
    print("reset after %r" % got, flush=True)
"#;

/// In the pod: connects to ARGV[1]:ARGV[2] and writes ARGV[3] (hex); prints the local address,
/// then `reset`, `eof` or what came back.
const SEND_AND_LISTEN: &str = r#"
import socket, sys
c = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=20)
print("%s:%d" % c.getsockname()[:2], flush=True)
try:
    c.sendall(bytes.fromhex(sys.argv[3]))
    b = c.recv(100)
    print("got %r" % b if b else "eof", flush=True)
except ConnectionResetError:
    print("reset", flush=True)
"#;

/// In the internet namespace: on [::]:3306, writes a banner to one connection as soon as it
/// accepts it, then echoes until the client's end of stream.
const BANNER_SERVER: &str = r#"
import socket
s = socket.socket(socket.AF_INET6); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("::", 3306)); s.listen(4); s.settimeout(60)
print("listening", flush=True)
for _ in range(1):  # bounded: one connection
    c, peer = s.accept(); c.settimeout(30)
    c.sendall(b"220 declared.internet.test ready\r\n")
    n = 0
    while True:
        b = c.recv(100)
        if not b: break
        n += len(b); c.sendall(b)
    c.close()
    print("served %s %d" % (peer[0].replace("::ffff:", ""), n), flush=True)
"#;

/// In the pod: connects to ARGV[1]:ARGV[2] and, writing nothing, reads one line (the banner);
/// then says `QUIT`, half-closes and reads the echo. Prints the local address, the banner and
/// the echo.
const SILENT_CLIENT: &str = r#"
import socket, sys
c = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=20)
print("%s:%d" % c.getsockname()[:2], flush=True)
banner = b""
while not banner.endswith(b"\r\n"):
    b = c.recv(100)
    if not b: break
    banner += b
print("banner %r" % banner, flush=True)
c.sendall(b"QUIT\r\n"); c.shutdown(socket.SHUT_WR)
echo = b""
while True:
    b = c.recv(100)
    if not b: break
    echo += b
print("echo %r" % echo, flush=True)
"#;

struct Setup {
    topo: Topology,
    gw: Gateway,
    echo: EchoServer,
    capture: Capture,
}

/// REGISTRY_ONLY with the registry above, an echo server on port 7, and the oracle, which is
/// first shown to see a bypass.
fn setup(extra_args: &[&str]) -> Setup {
    let topo = Topology::build();
    let dir = topo.temp.subdir("istio");
    std::fs::write(dir.join("registry.yaml"), REGISTRY).unwrap();
    let mut config = GatewayConfig::enforcing(&topo, vec![PathBuf::from(&dir)]);
    config.extra_args = extra_args.iter().map(|s| s.to_string()).collect();
    let gw = Gateway::start(&topo, config);
    let echo = EchoServer::start(&topo.internet, &[7]);
    let capture = Capture::from_pods(&topo.internet, topo.temp.path());
    capture.assert_sees_a_bypass(&topo.pod_a, sock(INTERNET_V4, PROBE_PORT));
    Setup { topo, gw, echo, capture }
}

/// Runs a python script in pod-a; its stdout lines (bounded in time by the script's own timeouts).
fn in_pod(s: &Setup, script: &str, args: &[&str]) -> Vec<String> {
    let mut argv = vec!["-c", script];
    argv.extend_from_slice(args);
    let out = gateway_tests::command::run(&mut s.topo.pod_a.command("/usr/bin/python3", &argv), Duration::from_secs(40));
    let said = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "client failed: {said}{}\n{}", String::from_utf8_lossy(&out.stderr), s.gw.stderr_tail());
    said.lines().map(str::to_owned).collect()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn line_from(gw: &Gateway, local: &str) -> Value {
    let src: SocketAddr = local.parse().unwrap_or_else(|_| panic!("not an address: {local}"));
    gw.wait_json_line("connection", &format!("the line for {src}"), |v| v["src"] == src.to_string())
}

/// Writes `first`, reads it back, writes `rest`: everything must come back intact, and the
/// echo server must have been reached from the node's address with all of it.
fn short_first_write_is_relayed(s: &Setup, dst: &str, first: &[u8], rest: &[u8], detection: &str) {
    let said = in_pod(s, SHORT_FIRST_WRITE, &[dst, "7", &hex(first), &hex(rest)]);
    let what = format!("{first:?} then {rest:?} to {dst}:7");
    assert_eq!(said.get(1).map(String::as_str), Some("intact"), "{what}: {said:?}\n{}", s.gw.stderr_tail());
    let line = line_from(&s.gw, &said[0]);
    let total = (first.len() + rest.len()) as u64;
    assert_eq!(
        (line["protocol"].as_str(), line["decision"].as_str(), line["reason"].as_str(), line["detection"].as_str()),
        (Some("tcp"), Some("allow"), Some("registered-address"), Some(detection)),
        "{what}: {line}"
    );
    assert_eq!((line["outcome"].as_str(), line["bytes_up"].as_u64(), line["bytes_down"].as_u64()), (Some("closed"), Some(total), Some(total)), "{what}: {line}");
    let whole = String::from_utf8_lossy(&[first, rest].concat()).trim_end().to_owned();
    gateway_tests::wait::until(&format!("the echo server to finish {what}"), EVENT_TIMEOUT, || {
        s.echo.accepted().iter().any(|a| a.first_line == whole && a.finished)
    });
    let at_server = s.echo.accepted().into_iter().find(|a| a.first_line == whole).unwrap();
    assert_eq!((at_server.bytes, at_server.peer.ip()), (total, std::net::IpAddr::V4(NODE_INTERNET_V4)), "{what}: {at_server:?}");
}

#[test]
fn short_first_writes_to_an_auto_detected_port_are_relayed_as_opaque_after_the_sniff_timeout() {
    let s = setup(&["--sniff-timeout-ms", "300"]);
    // One byte that begins a TLS record, two letters that begin `HEAD`, and silence.
    short_first_write_is_relayed(&s, "203.0.113.12", b"\x16", b" one byte first\n", "timeout");
    short_first_write_is_relayed(&s, "203.0.113.12", b"HE", b"LLO two letters first\n", "timeout");
    short_first_write_is_relayed(&s, "203.0.113.12", b"", b"silent first\n", "timeout");
    s.capture.assert_no_bypass_to(&[7]);
    drop((s.gw, s.echo, s.capture));
    s.topo.teardown();
}

#[test]
fn bytes_that_begin_tls_or_http_and_break_its_grammar_are_malformed() {
    let s = setup(&[]);
    // A TLS handshake record of length zero; an HTTP/1.1 head with a header line lacking its colon.
    for bytes in [&b"\x16\x03\x01\x00\x00"[..], b"GET / HTTP/1.1\r\nHost sniffed.internet.test\r\n\r\n"] {
        let said = in_pod(&s, SEND_AND_LISTEN, &["203.0.113.12", "7", &hex(bytes)]);
        assert_eq!(said.get(1).map(String::as_str), Some("reset"), "{bytes:?}: {said:?}");
        let line = line_from(&s.gw, &said[0]);
        assert_eq!((line["decision"].as_str(), line["reason"].as_str()), (Some("deny"), Some("malformed-request")), "{bytes:?}: {line}");
        assert!(line["upstream"].is_null(), "{line}");
    }
    assert_eq!(s.echo.count(), 0, "a malformed stream reached the server: {:?}", s.echo.accepted());
    s.capture.assert_no_bypass_to(&[7]);
    drop((s.gw, s.echo, s.capture));
    s.topo.teardown();
}

/// With a sniff timeout of ten minutes, only a decision taken at accept lets these clients (whose
/// reads give up after 20 s) get anything at all.
#[test]
fn a_destination_declared_opaque_tcp_is_decided_at_accept() {
    let s = setup(&["--sniff-timeout-ms", "600000"]);
    let mut banner = s.topo.internet.command("/usr/bin/python3", &["-c", BANNER_SERVER]).stdout(Stdio::piped()).spawn().expect("python3 server");
    let mut server_said = BufReader::new(banner.stdout.take().unwrap());
    let mut first = String::new();
    server_said.read_line(&mut first).expect("banner server output");
    assert_eq!(first.trim(), "listening");

    // A server that speaks first: the client writes nothing until it has the banner.
    let said = in_pod(&s, SILENT_CLIENT, &["203.0.113.13", "3306"]);
    assert_eq!(said.get(1).map(String::as_str), Some(r"banner b'220 declared.internet.test ready\r\n'"), "{said:?}\n{}", s.gw.stderr_tail());
    assert_eq!(said.get(2).map(String::as_str), Some(r"echo b'QUIT\r\n'"), "{said:?}");
    let line = line_from(&s.gw, &said[0]);
    assert_eq!(
        (line["protocol"].as_str(), line["decision"].as_str(), line["detection"].as_str(), line["outcome"].as_str()),
        (Some("tcp"), Some("allow"), Some("declared"), Some("closed")),
        "{line}"
    );
    let mut served = String::new();
    server_said.read_line(&mut served).expect("banner server output");
    assert_eq!(served.trim(), format!("served {NODE_INTERNET_V4} 6"), "the server saw the proxy, and QUIT");
    let _ = gateway_tests::command::wait_bounded(&mut banner, Duration::from_secs(10));

    // Short first writes to a declared port are not waited on either.
    short_first_write_is_relayed(&s, "203.0.113.13", b"\x16", b" one byte, declared\n", "declared");
    short_first_write_is_relayed(&s, "203.0.113.13", b"HE", b"LLO declared\n", "declared");
    s.capture.assert_no_bypass_to(&[7, 3306]);
    drop((s.gw, s.echo, s.capture));
    s.topo.teardown();
}
