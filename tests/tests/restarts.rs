//! Restarts and crashes never leak. The kernel programs stay pinned while `gateway run` is down,
//! so an intercepted connect then goes to a port nobody listens on and is refused.
//!
//! A pod runs a tight, bounded connect loop (an allowed and a denied host in turn) while the
//! gateway is killed and restarted, by `kill -9` or by the kernel's OOM killer under a cgroup
//! memory limit. Checked: the denied host is never reached (the echo server and the capture
//! beyond the routing node), allowed connections fail only while the proxy is down and succeed
//! through it otherwise, and the pinned maps are the same objects throughout.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::os::unix::process::ExitStatusExt;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use gateway_tests::addresses::*;
use gateway_tests::bpf_inspect;
use gateway_tests::capture::Capture;
use gateway_tests::connect_loop::{Attempt, ConnectLoop, DownWindow, failures_outside, unix_now, window_of};
use gateway_tests::echo_server::{Accepted, EchoServer};
use gateway_tests::gateway_process::{Gateway, GatewayConfig};
use gateway_tests::memory_cgroup::MemoryCgroup;
use gateway_tests::prereq::tool;
use gateway_tests::script::Script;
use gateway_tests::topology::Topology;

const ALLOWED_PORT: u16 = 7001;
const DENIED_PORT: u16 = 7002;
/// A registered port where nothing accepts: the connections the OOM load holds open.
const HOLD_PORT: u16 = 7003;
/// Widens each down window: the connect in flight at the kill, and two processes' clocks.
const MARGIN_SECONDS: f64 = 0.05;
/// How long after /ready the loop may take to get an echo through the new run.
const SERVED_AGAIN: Duration = Duration::from_secs(5);

const REGISTRY: &str = "apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: allowed-echo, namespace: default}
spec:
  hosts: [allowed.internet.test]
  addresses: [203.0.113.10/32]
  ports:
  - {number: 7001, name: tcp-echo, protocol: TCP}
  - {number: 7003, name: tcp-hold, protocol: TCP}
  location: MESH_EXTERNAL
  resolution: NONE
";

fn allowed() -> SocketAddr {
    sock(INTERNET_V4, ALLOWED_PORT)
}

fn denied() -> SocketAddr {
    sock(internet_v4(1), DENIED_PORT)
}

/// The topology, the echo server, the capture (shown able to fail) and the gateway's config.
struct Rig {
    topo: Topology,
    server: EchoServer,
    capture: Capture,
    config: GatewayConfig,
}

fn rig() -> Rig {
    let topo = Topology::build();
    let server = EchoServer::start(&topo.internet, &[ALLOWED_PORT, DENIED_PORT]);
    let capture = Capture::from_pods(&topo.internet, &topo.temp.subdir("capture"));
    capture.assert_sees_a_bypass(&topo.pod_b, sock(internet_v4(3), 9999));
    let dir = topo.temp.subdir("istio");
    std::fs::write(dir.join("registry.yaml"), REGISTRY).expect("write the registry");
    let config = GatewayConfig::enforcing(&topo, vec![PathBuf::from(&dir)]);
    Rig { topo, server, capture, config }
}

/// The id of every map the gateway pinned, by pin path.
fn pinned_map_ids(topo: &Topology) -> Vec<(PathBuf, u64)> {
    let pins = bpf_inspect::pins_under(&topo.bpffs.join("maps"));
    assert!(!pins.is_empty(), "no maps pinned under {}", topo.bpffs.display());
    pins.into_iter().map(|p| {
        let id = bpf_inspect::pinned_map_id(&p);
        (p, id)
    }).collect()
}

/// Everything the loop, the server and the capture saw, checked against the down windows.
fn assert_nothing_leaked(rig: &Rig, attempts: &[Attempt], windows: &[DownWindow], what: &str) {
    let accepted = rig.server.accepted();
    let at_denied: Vec<&Accepted> = accepted.iter().filter(|a| a.local == denied()).collect();
    assert!(at_denied.is_empty(), "{what}: the denied host was reached: {at_denied:?}");
    let answered: Vec<&Attempt> = attempts.iter().filter(|a| !a.is_allowed() && a.got > 0).collect();
    assert!(answered.is_empty(), "{what}: a denied connection got data back: {answered:?}");
    rig.capture.assert_no_bypass_to(&[ALLOWED_PORT, DENIED_PORT, HOLD_PORT]);

    let outside = failures_outside(attempts, windows, MARGIN_SECONDS);
    assert!(
        outside.is_empty(),
        "{what}: {} allowed connections failed while the proxy was up (windows {windows:?}): {:?}",
        outside.len(),
        &outside[..outside.len().min(20)]
    );
    let by_token: HashMap<&str, &Accepted> = accepted.iter().map(|a| (a.first_line.as_str(), a)).collect();
    for a in attempts.iter().filter(|a| a.is_allowed() && a.echoed()) {
        let seen = by_token.get(a.token.as_str()).unwrap_or_else(|| panic!("{what}: the server never saw {}", a.token));
        assert_eq!((seen.local, seen.peer.ip()), (allowed(), NODE_INTERNET_V4.into()), "{what}: {} did not come through the proxy: {seen:?}", a.token);
    }
}

/// Counts, for the figures: attempts, allowed echoes, failures by result, windows hit.
fn figures(attempts: &[Attempt], windows: &[DownWindow]) -> String {
    let mut failures: HashMap<(&str, &str), usize> = HashMap::new();
    for a in attempts.iter().filter(|a| !a.echoed()) {
        *failures.entry((a.kind.as_str(), a.result.as_str())).or_default() += 1;
    }
    let hit: std::collections::HashSet<usize> = attempts.iter().filter(|a| !a.echoed()).filter_map(|a| window_of(a, windows, MARGIN_SECONDS)).collect();
    let echoes = attempts.iter().filter(|a| a.is_allowed() && a.echoed()).count();
    format!("{} attempts, {echoes} allowed echoes, failures by (kind, result) {failures:?}, all inside down windows; {} of {} windows saw a failure", attempts.len(), hit.len(), windows.len())
}

fn assert_gap_was_exercised(attempts: &[Attempt], what: &str) {
    for kind in ["allowed", "denied"] {
        assert!(
            attempts.iter().any(|a| a.kind == kind && a.result == "refused"),
            "{what}: no {kind} connection was refused: the loop never ran into a down window"
        );
    }
}

#[test]
fn a_hundred_kill_9_restarts_under_a_connect_loop_never_leak() {
    const CYCLES: usize = 100;
    let rig = rig();
    let mut gw = Gateway::start(&rig.topo, rig.config.clone());
    let maps = pinned_map_ids(&rig.topo);
    let mut client = ConnectLoop::start(&rig.topo.pod_a, rig.topo.temp.path(), allowed(), denied(), 60_000, Duration::from_secs(150));
    assert!(client.wait_for_an_echo_after(0.0, SERVED_AGAIN), "no echo through the first run: {:?}", client.attempts().last());

    let started = Instant::now();
    let mut windows = Vec::new();
    for cycle in 0..CYCLES {
        let from = unix_now();
        gw.kill9();
        gw.restart();
        let until = unix_now();
        windows.push(DownWindow { from, until });
        assert_eq!(pinned_map_ids(&rig.topo), maps, "cycle {cycle}: the pinned maps changed");
        assert!(client.wait_for_an_echo_after(until, SERVED_AGAIN), "cycle {cycle}: no echo through the restarted proxy; last: {:?}", client.attempts().last());
    }
    let elapsed = started.elapsed();
    let attempts = client.stop();
    assert_nothing_leaked(&rig, &attempts, &windows, "kill -9 loop");
    assert_gap_was_exercised(&attempts, "kill -9 loop");
    let down: f64 = windows.iter().map(|w| w.until - w.from).sum();
    eprintln!(
        "figure: {CYCLES} kill -9/restart cycles in {:.1} s ({:.0} ms per cycle, {:.0} ms down on average); {}; {} maps kept their ids; capture: {} packets from pods, none to the test ports",
        elapsed.as_secs_f64(),
        elapsed.as_secs_f64() * 1000.0 / CYCLES as f64,
        down * 1000.0 / CYCLES as f64,
        figures(&attempts, &windows),
        maps.len(),
        rig.capture.lines().len()
    );
    drop(gw);
    rig.topo.teardown();
}

/// A listener in the internet namespace that never accepts: the proxy's upstream connections
/// to it stay open (up to the backlog), so each held client connection costs the proxy memory.
const HOLD_SERVER: &str = r#"
import socket, sys, time
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((sys.argv[1], int(sys.argv[2])))
s.listen(65535)
print('listening', flush=True)
time.sleep(float(sys.argv[3]))
"#;

/// Opens up to `count` connections from the pod and holds them, until one is refused (the proxy
/// died) or the time is up; then reports and exits.
const HOLD_CLIENT: &str = r#"
import resource, socket, sys, time
target, count, max_seconds = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
host, port = target.rsplit(':', 1)
held, began, why = [], time.time(), 'count'
while len(held) < count:
    if time.time() - began > max_seconds:
        why = 'time'
        break
    s = socket.socket()
    s.settimeout(2)
    try:
        s.connect((host, int(port)))
        s.sendall(b'hold\n' * 200)
        held.append(s)
    except OSError as e:
        why = 'error:%s' % e.errno
        s.close()
        break
print('held %d %s' % (len(held), why), flush=True)
"#;

#[test]
fn an_oom_killed_proxy_leaks_nothing_and_restarts_with_the_same_maps() {
    const CYCLES: usize = 5;
    const HEADROOM: u64 = 24 << 20;
    let mut rig = rig();
    let memory = MemoryCgroup::create(&rig.topo.node_cgroup, &format!("{}-gateway-oom", rig.topo.tag));
    rig.config.own_cgroup = memory.unified_path();
    let _hold_server = {
        let target = INTERNET_V4.to_string();
        let port = HOLD_PORT.to_string();
        let s = Script::spawn(rig.topo.internet.command(tool("python3"), &["-c", HOLD_SERVER, &target, &port, "300"]));
        s.wait_line(Duration::from_secs(10), "listening", |l| l == "listening");
        s
    };
    let mut gw = Gateway::start(&rig.topo, rig.config.clone());
    let maps = pinned_map_ids(&rig.topo);
    let mut client = ConnectLoop::start(&rig.topo.pod_a, rig.topo.temp.path(), allowed(), denied(), 60_000, Duration::from_secs(150));
    assert!(client.wait_for_an_echo_after(0.0, SERVED_AGAIN), "no echo through the first run: {:?}", client.attempts().last());

    let started = Instant::now();
    let mut windows = Vec::new();
    let mut held = Vec::new();
    let mut died = Vec::new();
    for cycle in 0..CYCLES {
        memory.adopt(gw.pid());
        let limit = memory.usage() + HEADROOM;
        memory.set_limit(Some(limit));
        let kills_before = memory.oom_kills();
        let from = unix_now();
        let target = sock(INTERNET_V4, HOLD_PORT).to_string();
        let hog = Script::spawn(rig.topo.pod_b.command(tool("python3"), &["-c", HOLD_CLIENT, &target, "15000", "60"]));
        let status = gw.wait_exit(Duration::from_secs(60));
        died.push(unix_now());
        let report = hog.wait_line(Duration::from_secs(70), "how many it held", |l| l.starts_with("held "));
        drop(hog);
        let status = status.unwrap_or_else(|| panic!("cycle {cycle}: the proxy was not OOM-killed under a {limit}-byte limit ({}); load: {report}", memory.describe()));
        assert_eq!(status.signal(), Some(libc::SIGKILL), "cycle {cycle}: the proxy ended otherwise than by SIGKILL: {status}");
        assert_eq!(memory.oom_kills(), kills_before + 1, "cycle {cycle}: {} counted no OOM kill", memory.describe());
        held.push(report);
        memory.set_limit(None);
        gw.restart();
        let until = unix_now();
        windows.push(DownWindow { from, until });
        assert_eq!(pinned_map_ids(&rig.topo), maps, "cycle {cycle}: the pinned maps changed");
        assert!(client.wait_for_an_echo_after(until, SERVED_AGAIN), "cycle {cycle}: no echo through the restarted proxy; last: {:?}", client.attempts().last());
    }
    let elapsed = started.elapsed();
    let attempts = client.stop();
    assert_nothing_leaked(&rig, &attempts, &windows, "OOM loop");
    // The window opens when the load starts; these failed while the starved proxy still ran.
    let before_death = attempts
        .iter()
        .filter(|a| a.is_allowed() && !a.echoed())
        .filter(|a| window_of(a, &windows, MARGIN_SECONDS).is_some_and(|w| a.end < died[w] - MARGIN_SECONDS))
        .count();
    eprintln!(
        "figure: {CYCLES} OOM kills ({}, limit = usage + {} MiB) in {:.1} s ({:.0} ms per cycle); load per cycle: {held:?}; {}; {before_death} allowed failures ended before the kill was seen; {} maps kept their ids; capture: {} packets from pods, none to the test ports",
        memory.describe(),
        HEADROOM >> 20,
        elapsed.as_secs_f64(),
        elapsed.as_secs_f64() * 1000.0 / CYCLES as f64,
        figures(&attempts, &windows),
        maps.len(),
        rig.capture.lines().len()
    );
    drop(gw);
    drop(memory);
    rig.topo.teardown();
}
