//! Replacing a running gateway with another build, as a DaemonSet rolling update with
//! `maxSurge` does: the new process takes the old one's listening sockets (`--handover`), the
//! pinned links stay attached and only the program inside each one changes, and the old process
//! then stops; pods connecting all along (over IPv4 and IPv6) are never let through nor refused.
//!
//! "Another build" is `$GATEWAY_VARIANT_BIN`: the same sources with the `kernel-variant` feature,
//! whose programs carry other instructions (so another object, stamp and program tags) and
//! behave the same, and whose exemption map has one entry less: that map is replaced, its
//! entries copied, while every other map is kept. `cargo xtask test` builds it.

use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::time::Duration;

use gateway_tests::addresses::*;
use gateway_tests::bpf_inspect::{self, LinkShown};
use gateway_tests::capture::Capture;
use gateway_tests::checks::node_address_towards;
use gateway_tests::cleanup::GATEWAY_PROGRAMS;
use gateway_tests::echo_server::EchoServer;
use gateway_tests::gateway_process::{Gateway, GatewayConfig, variant_gateway_bin};
use gateway_tests::script::Script;
use gateway_tests::topology::Topology;
use gateway_tests::wait;

/// The echo port the pods' loops connect to; only the proxy may carry it.
const ECHO_PORT: u16 = 7100;
/// A port nothing uses, for the probe that shows the capture can see a bypass.
const PROBE_PORT: u16 = 7999;
const MAPS: [&str; 9] =
    ["VERSION", "EXEMPT_CGROUPS", "ORIG_SK", "ORIG_TUPLE", "PROXY_CONFIG", "STATS", "INBOUND_SK", "RELAY_SOCKS", "RELAY_PEERS"];
const RELAY_PROGRAM: &str = "gw_relay";
/// The one map whose definition the variant changes.
const CHANGED_MAP: &str = "EXEMPT_CGROUPS";
/// An exemption for a cgroup id no cgroup has (and none is consulted without `--intercept-pods`),
/// to see the exemptions carried into the variant's map.
const EXEMPTION: (u64, u32) = (u64::MAX - 1, 1);
const STEP: Duration = Duration::from_secs(60);

/// In the pod: sequential connections to ARGV[1]:ARGV[2], each sending a line and reading it
/// back, until told `stop` on stdin, 20,000 connections or 90 s. Prints `ok N` or
/// `fail N ERROR` for each, then `done TOTAL FAILED`.
const CONNECT_LOOP: &str = r#"
import select, socket, sys, time
host, port = sys.argv[1], int(sys.argv[2])
total = failed = 0
deadline = time.monotonic() + 90
while total < 20000 and time.monotonic() < deadline:
    if select.select([sys.stdin], [], [], 0)[0]:
        break
    total += 1
    line = ("upgrade-%d\n" % total).encode()
    try:
        with socket.create_connection((host, port), timeout=5) as s:
            s.sendall(line)
            got = b""
            while not got.endswith(b"\n"):
                chunk = s.recv(100)
                if not chunk:
                    break
                got += chunk
        if got != line:
            raise Exception("echo %r" % got)
        print("ok %d" % total, flush=True)
    except Exception as e:
        failed += 1
        print("fail %d %r" % (total, e), flush=True)
    time.sleep(0.002)
print("done %d %d" % (total, failed), flush=True)
"#;

/// What the kernel holds under the gateway's bpffs directory.
#[derive(Debug)]
struct KernelView {
    /// By link pin: its inode, and the link as bpftool shows it.
    links: BTreeMap<PathBuf, (u64, LinkShown)>,
    /// By program name: the pinned program's id and tag.
    programs: BTreeMap<&'static str, (u64, String)>,
    maps: BTreeMap<&'static str, u64>,
    stamp: u64,
}

impl KernelView {
    fn read(topo: &Topology) -> KernelView {
        let bpffs = &topo.bpffs;
        let mut links = BTreeMap::new();
        for cgroup in [&topo.pod_a.cgroup, &topo.pod_b.cgroup] {
            for prog in GATEWAY_PROGRAMS {
                let pin = bpffs.join("links").join(cgroup.id().to_string()).join(prog);
                let inode = std::fs::metadata(&pin).unwrap_or_else(|e| panic!("link pin {}: {e}", pin.display())).ino();
                links.insert(pin.clone(), (inode, bpf_inspect::pinned_link(&pin)));
            }
        }
        let programs = GATEWAY_PROGRAMS
            .iter()
            .chain([&RELAY_PROGRAM])
            .map(|p| {
                let pin = bpffs.join("progs").join(p);
                (*p, (bpf_inspect::pinned_prog_id(&pin), bpf_inspect::pinned_prog_tag(&pin)))
            })
            .collect();
        let maps = MAPS.iter().map(|m| (*m, bpf_inspect::pinned_map_id(&bpffs.join("maps").join(m)))).collect();
        let stamp = bpf_inspect::pinned_array_u64(&bpffs.join("maps/VERSION"));
        KernelView { links, programs, maps, stamp }
    }

    /// The program every link must run: the one pinned under the link's name.
    fn assert_links_run_pinned_programs(&self, when: &str) {
        for (pin, (_, link)) in &self.links {
            let name = pin.file_name().and_then(|n| n.to_str()).unwrap();
            assert_eq!(link.prog_id, self.programs[name].0, "{when}: link {} runs another program than the pinned {name}", pin.display());
        }
    }
}

/// The connection loops, one per pod: pod-a over IPv4, pod-b over IPv6.
struct Loops(Vec<Script>);

impl Loops {
    fn start(topo: &Topology) -> Loops {
        let port = ECHO_PORT.to_string();
        let (v4, v6) = (INTERNET_V4.to_string(), INTERNET_V6.to_string());
        let loops = [(&topo.pod_a, v4), (&topo.pod_b, v6)]
            .into_iter()
            .map(|(pod, target)| Script::spawn(pod.command("/usr/bin/python3", &["-c", CONNECT_LOOP, &target, &port])))
            .collect();
        Loops(loops)
    }

    /// Connections completed so far.
    fn ok(&self) -> usize {
        self.0.iter().map(|l| l.lines().iter().filter(|l| l.starts_with("ok ")).count()).sum()
    }

    fn wait_each(&self, n: usize) {
        for l in &self.0 {
            l.wait_line(STEP, &format!("{n} connections"), |line| line == format!("ok {n}") || line.starts_with("fail "));
        }
    }

    /// Stops them: (connections made, failed, the failure lines).
    fn stop(mut self) -> (usize, usize, Vec<String>) {
        let (mut total, mut failed, mut failures) = (0, 0, Vec::new());
        for l in &mut self.0 {
            l.say("stop");
            let done = l.wait_line(STEP, "its tally", |line| line.starts_with("done "));
            let tally: Vec<usize> = done.split_whitespace().skip(1).map(|n| n.parse().expect("a count")).collect();
            total += tally[0];
            failed += tally[1];
            failures.extend(l.lines().into_iter().filter(|line| line.starts_with("fail ")));
        }
        (total, failed, failures)
    }
}

/// The running gateway, serving its listening sockets to a successor at `handover`.
fn handing_over(topo: &Topology, handover: &std::path::Path) -> GatewayConfig {
    let mut config = GatewayConfig::for_pods(topo);
    config.extra_args.extend(["--handover".to_owned(), handover.to_string_lossy().into_owned()]);
    config
}

/// The variant's gateway taking over from the running one, as a DaemonSet's surge pod does: the
/// same proxy and DNS ports, whose sockets it takes through `handover`, the same bpffs and
/// cgroups. Its admin endpoint is its own here, so that the harness's probes reach this process.
fn variant_taking_over(topo: &Topology, handover: &std::path::Path) -> GatewayConfig {
    let mut config = handing_over(topo, handover);
    config.binary = Some(variant_gateway_bin());
    config.admin = "127.0.0.1:15010".parse().unwrap();
    config
}

/// Waits until none of `programs` (name, id) exists any more; panics naming those that do.
fn wait_freed(programs: &BTreeMap<&'static str, (u64, String)>, what: &str) {
    let alive = || -> Vec<(&str, u64)> {
        programs.iter().filter(|(_, (id, _))| bpf_inspect::prog_exists(*id)).map(|(n, (id, _))| (*n, *id)).collect()
    };
    let freed = wait::poll(Duration::from_secs(10), Duration::from_millis(100), || alive().is_empty().then_some(()));
    assert!(freed.is_some(), "{what}: still loaded after 10 s: {:?}", alive());
}

#[test]
fn upgrade_replaces_the_programs_in_place_while_pods_keep_connecting() {
    let topo = Topology::build();
    let server = EchoServer::start(&topo.internet, &[ECHO_PORT]);
    let capture = Capture::from_pods(&topo.internet, topo.temp.path());
    capture.assert_sees_a_bypass(&topo.pod_a, sock(INTERNET_V4, PROBE_PORT));
    let handover = topo.temp.path().join("handover.sock");
    let mut old = Gateway::start(&topo, handing_over(&topo, &handover));
    let exempt_map = topo.bpffs.join("maps").join(CHANGED_MAP);
    bpf_inspect::pinned_map_put(&exempt_map, &EXEMPTION.0.to_le_bytes(), &EXEMPTION.1.to_le_bytes());
    let before = KernelView::read(&topo);
    before.assert_links_run_pinned_programs("before the update");

    let loops = Loops::start(&topo);
    loops.wait_each(20);
    let before_swap = loops.ok();
    let mut new = Gateway::start(&topo, variant_taking_over(&topo, &handover));
    let after_swap = loops.ok();
    let swapped = new.stderr();
    assert!(
        swapped.contains("links_swapped=20"),
        "the variant should have swapped the 20 links of two pods in place:\n{swapped}"
    );
    assert!(new.stderr().contains("listening sockets taken over"), "the new gateway must take the sockets over:\n{}", new.stderr_tail());
    // Keep going until the new proxy has carried a good share of the connections: once it is
    // ready, the old one stops accepting and lets its open connections finish.
    wait::until("200 connections through the new gateway", STEP, || new.events().len() >= 200);
    wait::until("the old gateway stopping to accept", STEP, || old.stderr().contains("no longer accepting proxy connections"));
    // The old process goes (the DaemonSet deletes the old pod) while the loops run on.
    assert!(old.stop().is_some(), "the old gateway did not stop on SIGTERM");
    let carried = new.events().len();
    wait::until("100 more connections after the old gateway stopped", STEP, || new.events().len() >= carried + 100);
    let (total, failed, failures) = loops.stop();
    eprintln!(
        "upgrade: {total} connections, {failed} failed; {} completed while the new gateway started and swapped the programs",
        after_swap - before_swap
    );
    assert!(failures.is_empty() && failed == 0, "connections failed across the update:\n{failures:?}");
    assert!(after_swap > before_swap, "no connection completed while the programs were replaced ({before_swap} before)");

    // Every connection went through a proxy (one of the two logged it) and reached the server
    // from the node's address; the capture saw nothing from the pod's own address.
    let logged = wait::poll(STEP, Duration::from_millis(100), || {
        let n = old.events().len() + new.events().len();
        (n >= total).then_some(n)
    });
    assert_eq!(logged, Some(total), "connection lines: old {} + new {}, client {total}", old.events().len(), new.events().len());
    let seen = server.wait_finished(total, STEP);
    let from_pod: Vec<_> = seen.iter().filter(|a| a.peer.ip() != node_address_towards(a.local)).collect();
    assert!(seen.len() == total && from_pod.is_empty(), "the server saw {} connections, these not from the node: {from_pod:?}", seen.len());
    capture.assert_no_bypass_to(&[ECHO_PORT]);
    eprintln!("upgrade: the capture saw {} packets from the pods to port {ECHO_PORT}", capture.to_port(ECHO_PORT).len());

    let after = KernelView::read(&topo);
    after.assert_links_run_pinned_programs("after the update");
    for (pin, (inode, link)) in &before.links {
        let (inode_after, link_after) = after.links[pin];
        assert_eq!((inode_after, link_after.id), (*inode, link.id), "{}: the same pinned link must stay", pin.display());
        assert_ne!(link_after.prog_id, link.prog_id, "{}: the link must now run the new program", pin.display());
    }
    for (name, (id, tag)) in &before.programs {
        let (id_after, tag_after) = &after.programs[name];
        assert!(id_after != id && tag_after != tag, "{name}: pinned program {id} tag {tag} → {id_after} tag {tag_after}: not another build's");
    }
    for (name, id) in &before.maps {
        match *name {
            CHANGED_MAP => assert_ne!(after.maps[name], *id, "{name} changed its definition: a fresh map must replace it"),
            _ => assert_eq!(after.maps[name], *id, "{name} is unchanged: it must be kept, with its state"),
        }
    }
    assert_eq!(bpf_inspect::pinned_map_max_entries(&exempt_map), 16_383, "the variant's {CHANGED_MAP}");
    assert_eq!(
        bpf_inspect::pinned_map_get(&exempt_map, &EXEMPTION.0.to_le_bytes()),
        Some(EXEMPTION.1.to_le_bytes().to_vec()),
        "the exemption must be copied into the new {CHANGED_MAP}"
    );
    assert_ne!(after.stamp, before.stamp, "the stamp must name the new build");

    // Once the old process is gone, nothing holds its programs: not the links, not the relay's
    // socket map (its verdict program was replaced there too).
    wait_freed(&before.programs, "the old build's programs");
    assert!(new.stop().is_some(), "the new gateway did not stop on SIGTERM");
    new.detach();
    drop((old, new, server, capture));
    topo.teardown();
}

#[test]
fn upgrade_where_no_link_is_attached_loads_the_other_build_afresh() {
    let topo = Topology::build();
    let server = EchoServer::start(&topo.internet, &[ECHO_PORT]);
    let mut gw = Gateway::start(&topo, GatewayConfig::for_pods(&topo));
    let first = KernelView::read(&topo);
    assert!(gw.stop().is_some(), "the gateway did not stop on SIGTERM");

    // A run that intercepts nothing (it loads the programs for its kernel relay) detaches the
    // pods and leaves the pins without links.
    let mut relay_only = GatewayConfig::for_pods(&topo);
    relay_only.intercept_cgroups.clear();
    relay_only.extra_args.extend(["--relay".to_owned(), "sockmap".to_owned()]);
    let mut gw = Gateway::start(&topo, relay_only);
    assert!(gw.stop().is_some(), "the relay-only gateway did not stop on SIGTERM");
    let links = bpf_inspect::pins_under(&topo.bpffs.join("links"));
    assert!(links.is_empty(), "links left: {links:?}");

    let mut config = GatewayConfig::for_pods(&topo);
    config.binary = Some(variant_gateway_bin());
    let mut gw = Gateway::start(&topo, config);
    let second = KernelView::read(&topo);
    second.assert_links_run_pinned_programs("after loading the other build");
    assert_ne!(second.stamp, first.stamp, "the stamp must name the new build");
    for (name, id) in &first.maps {
        assert_ne!(second.maps[name], *id, "{name}: with no link attached the pins are cleared and loaded afresh");
    }
    wait_freed(&first.programs, "the first build's programs");

    let loops = Loops::start(&topo);
    loops.wait_each(5);
    let (total, failed, failures) = loops.stop();
    assert!(failed == 0, "connections failed after loading the other build: {failures:?}");
    let seen = server.wait_finished(total, STEP);
    let from_pod: Vec<_> = seen.iter().filter(|a| a.peer.ip() != node_address_towards(a.local)).collect();
    assert!(from_pod.is_empty(), "not proxied: {from_pod:?}");
    assert!(gw.stop().is_some(), "the gateway did not stop on SIGTERM");
    gw.detach();
    drop((gw, server));
    topo.teardown();
}
