//! A pod process that copies the proxy's `SO_MARK` onto its own sockets
//! gets past neither the connect redirect nor the egress backstop: the kernel
//! programs know the proxy by the cgroup it runs in. The node routes pod
//! traffic, so a leak would arrive at the internet host, where a capture
//! watches for the pod's own addresses.

use std::time::Duration;

use gateway_tests::addresses::*;
use gateway_tests::echo_server::EchoServer;
use gateway_tests::gateway_process::{Gateway, GatewayConfig, empty_config};
use gateway_tests::capture::Capture;
use gateway_tests::wait;
use gateway_tests::topology::Topology;

/// The proxy's default mark, which the probe copies.
const PROXY_MARK: &str = "1337";

/// TCP connect, UDP datagram and ICMP echo to the internet host, each from a
/// socket carrying the mark. Prints one line per probe.
const PROBE: &str = r#"
import socket, struct, sys
target, mark = sys.argv[1], int(sys.argv[2])
def marked(s):
    s.setsockopt(socket.SOL_SOCKET, socket.SO_MARK, mark)
    s.settimeout(2)
    return s
try:
    s = marked(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
    s.connect((target, 7)); s.sendall(b"leak"); print("tcp", s.recv(16))
except Exception as e:
    print("tcp refused", type(e).__name__)
try:
    marked(socket.socket(socket.AF_INET, socket.SOCK_DGRAM)).sendto(b"leak", (target, 9)); print("udp sent")
except Exception as e:
    print("udp refused", type(e).__name__)
try:
    body = struct.pack("!BBHHH", 8, 0, 0, 1, 1) + b"leak"
    csum = sum(struct.unpack("!%dH" % (len(body) // 2), body))
    csum = ~((csum >> 16) + (csum & 0xffff)) & 0xffff
    body = body[:2] + struct.pack("!H", csum) + body[4:]
    marked(socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)).sendto(body, (target, 0)); print("icmp sent")
except Exception as e:
    print("icmp refused", type(e).__name__)
"#;

#[test]
fn a_pod_that_copies_the_proxy_mark_is_still_intercepted_and_held_by_the_backstop() {
    let topo = Topology::build();
    let _server = EchoServer::start(&topo.internet, &[7]);
    let target = INTERNET_V4.to_string();
    let args = ["-c", PROBE, &target, PROXY_MARK];

    // Control: the same probe from outside the intercepted cgroup leaks, and
    // the capture sees it. Otherwise the oracle could not fail.
    let control = Capture::anything_from_pods(&topo.internet, &topo.temp.subdir("control"));
    let out = topo.pod_a.command_outside_cgroup("python3", &args).output().expect("probe runs");
    let leaked = wait::poll(Duration::from_secs(5), Duration::from_millis(20), || (control.lines().len() >= 3).then_some(()));
    assert!(leaked.is_some(), "all three control probes should reach the internet host: {:?}; probe said {}", control.lines(), String::from_utf8_lossy(&out.stdout));
    drop(control);

    let gw = Gateway::start(&topo, GatewayConfig::enforcing(&topo, vec![empty_config()]));
    let oracle = Capture::anything_from_pods(&topo.internet, &topo.temp.subdir("intercepted"));
    let out = topo.pod_a.command("python3", &args).output().expect("probe runs");
    let said = String::from_utf8_lossy(&out.stdout).to_string();
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(oracle.lines(), Vec::<String>::new(), "nothing from the pod may arrive; probe said {said}");
    assert!(said.contains("tcp refused"), "the marked TCP connect must be refused by the proxy: {said}");
    let events = gw.wait_for_events(1, Duration::from_secs(10));
    assert!(
        events.iter().any(|e| e.decision == "deny" && e.orig_dst == Some(sock(INTERNET_V4, 7))),
        "the marked connect should reach the proxy and be denied there: {events:?}"
    );
    drop((gw, oracle));
    topo.teardown();
}
