//! Checks of the harness itself, without the gateway: the topology is sealed and routes what it
//! should, pod commands land in the right namespace and cgroup, the servers answer, and stale
//! objects of dead runs are found and removed.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use gateway_tests::addresses::*;
use gateway_tests::certs;
use gateway_tests::cgroup::{TestCgroup, cgroup2_mount};
use gateway_tests::cleanup;
use gateway_tests::client::{EchoRun, curl_args, run_curl, run_echo_client};
use gateway_tests::command::{self, SHORT};
use gateway_tests::echo_server::EchoServer;
use gateway_tests::names;
use gateway_tests::netns::{self, NetNs};
use gateway_tests::nginx::{BODY_PREFIX, Nginx};
use gateway_tests::prereq::{self, BPFFS_ROOT, tool};
use gateway_tests::topology::Topology;

const CLIENT: &str = env!("CARGO_BIN_EXE_gw-test-client");

fn stdout_of(mut cmd: Command) -> String {
    command::run_ok(&mut cmd, SHORT)
}

#[test]
fn pod_commands_run_in_the_pods_namespace_and_cgroup() {
    let topo = Topology::build();
    let cgroup_line = stdout_of(topo.pod_a.command("cat", &["/proc/self/cgroup"]));
    let expected = format!("0::/{}-pod-a", topo.tag);
    assert!(
        cgroup_line.lines().any(|l| l == expected),
        "pod-a command is not in its cgroup: {cgroup_line}"
    );
    let outside = stdout_of(
        topo.pod_a
            .command_outside_cgroup("cat", &["/proc/self/cgroup"]),
    );
    assert!(
        !outside.contains(&topo.tag),
        "a command outside the cgroup landed in a test cgroup: {outside}"
    );
    let addrs = stdout_of(
        topo.pod_b
            .command("ip", &["-o", "addr", "show", "dev", "eth0"]),
    );
    assert!(
        addrs.contains("198.18.2.2/24") && addrs.contains("2001:db8:2::2/64"),
        "pod-b has the wrong addresses: {addrs}"
    );
    // The cgroup2 mount and bpffs stay visible to a pod command (nsenter, not `ip netns exec`).
    let mounts = stdout_of(topo.pod_a.command("cat", &["/proc/self/mountinfo"]));
    assert!(
        mounts.contains(" - cgroup2 ") && mounts.contains(" - bpf "),
        "pod command lost cgroup2 or bpffs: {mounts}"
    );
    topo.teardown();
}

#[test]
fn topology_is_sealed_from_the_machine() {
    let topo = Topology::build();
    for ns in [&topo.node, &topo.internet] {
        for family in ["-4", "-6"] {
            let routes = ip(&[family, "-n", ns.name(), "route", "show", "default"]);
            assert!(
                routes.trim().is_empty(),
                "{} has a default route ({family}): {routes}",
                ns.name()
            );
        }
    }
    // The node has links to the pods and the internet host only.
    let links = ip(&["-n", topo.node.name(), "-o", "link", "show"]);
    let names: Vec<&str> = links
        .lines()
        .filter_map(|l| l.split(':').nth(1))
        .map(|n| n.trim().split('@').next().unwrap())
        .collect();
    assert_eq!(
        names,
        ["lo", "pa", "pb", "inet"],
        "unexpected interfaces in the node: {links}"
    );
    // A destination outside the plan is unreachable from a pod: nothing routes it anywhere.
    let run = EchoRun {
        timeout: Duration::from_secs(2),
        ..EchoRun::to(&[sock(std::net::Ipv4Addr::new(192, 0, 2, 1), 9)])
    };
    let summary = run_echo_client(|args| topo.pod_a.command(CLIENT, args), &run);
    assert!(
        !summary.results[0].connected,
        "a pod reached 192.0.2.1, which nothing in the topology has: {}",
        summary.raw
    );
    topo.teardown();
}

#[test]
fn pods_reach_the_internet_directly_without_a_gateway() {
    let topo = Topology::build();
    let server = EchoServer::start(&topo.internet, &[7]);
    let targets = [
        sock(INTERNET_V4, 7),
        sock(INTERNET_V6, 7),
        sock(internet_v4(2), 7),
    ];
    let run = EchoRun {
        bytes: 256 * 1024,
        half_close: true,
        ..EchoRun::to(&targets)
    };
    let summary = run_echo_client(|args| topo.pod_a.command(CLIENT, args), &run);
    summary.assert_all_intact("direct echo from pod-a");
    for r in &summary.results {
        assert_eq!(
            r.peer,
            Some(r.target),
            "getpeername in the client: {}",
            summary.raw
        );
    }
    let seen = server.wait_finished(3, Duration::from_secs(10));
    let mut peers: Vec<String> = seen.iter().map(|a| a.peer.ip().to_string()).collect();
    peers.sort();
    assert_eq!(
        peers,
        ["198.18.1.2", "198.18.1.2", "2001:db8:1::2"],
        "sources the server saw: {seen:?}"
    );
    for a in &seen {
        assert!(
            a.first_line.ends_with(&a.local.to_string()),
            "token {} reached {}",
            a.first_line,
            a.local
        );
        assert_eq!(
            a.bytes,
            256 * 1024 + a.first_line.len() as u64 + 1,
            "bytes the server echoed: {a:?}"
        );
    }
    drop(server);
    topo.teardown();
}

#[test]
fn nginx_serves_http_and_https_with_the_test_ca() {
    let topo = Topology::build();
    let certs = certs::generate(&topo.temp.subdir("certs"), "web.test");
    let nginx = Nginx::start(&topo.internet, topo.temp.path(), &certs, INTERNET_V4.into());
    let ca = certs.ca_cert.to_string_lossy().into_owned();
    let requests = [
        curl_args(&["http://203.0.113.10/"]),
        curl_args(&["http://[2001:db8:113::10]/"]),
        curl_args(&[
            "--cacert",
            &ca,
            "--resolve",
            "web.test:443:203.0.113.10",
            "https://web.test/",
        ]),
    ];
    for args in &requests {
        let (ok, body, err) = run_curl(topo.pod_b.command("curl", args));
        assert!(
            ok && body.starts_with(BODY_PREFIX),
            "curl {args:?} from pod-b: body {body:?}, stderr {err}"
        );
    }
    let log = nginx.wait_for_entries(3, Duration::from_secs(5));
    let summary: Vec<(String, String, String)> = log
        .iter()
        .map(|e| (e.remote_addr.to_string(), e.host.clone(), e.sni.clone()))
        .collect();
    assert_eq!(
        summary,
        [
            ("198.18.2.2".into(), "203.0.113.10".into(), String::new()),
            (
                "2001:db8:2::2".into(),
                "[2001:db8:113::10]".into(),
                String::new()
            ),
            ("198.18.2.2".into(), "web.test".into(), "web.test".into()),
        ],
        "nginx access log: {log:?}"
    );
    drop(nginx);
    topo.teardown();
}

#[test]
fn stale_objects_of_dead_runs_are_removed() {
    prereq::require_all();
    // 4194305 is above the largest pid_max Linux allows, so its "owner" is never alive.
    let stale = format!("gwt-4194305-{}-stale", std::process::id());
    assert!(names::is_stale(&stale));
    let ns = NetNs::create(&stale);
    let cgroup = TestCgroup::create(&stale);
    std::fs::create_dir(Path::new(BPFFS_ROOT).join(&stale)).expect("mkdir in bpffs");
    std::fs::create_dir(Path::new("/tmp").join(&stale)).expect("mkdir in /tmp");
    // Leave them as a crashed run would.
    std::mem::forget(ns);
    std::mem::forget(cgroup);
    let mine = |name: &str| name.starts_with(&stale) && names::is_stale(name);
    assert_eq!(
        cleanup::find_matching(mine).len(),
        4,
        "the stale objects were not all found: {:?}",
        cleanup::find_matching(mine)
    );
    let problems = cleanup::remove_matching(mine);
    assert!(problems.is_empty(), "stale cleanup problems: {problems:?}");
    assert_eq!(cleanup::find_matching(mine), Vec::<String>::new());
    assert!(!netns::list().contains(&stale));
    assert!(!cgroup2_mount().join(&stale).exists());
}

fn ip(args: &[&str]) -> String {
    command::run_ok(Command::new(tool("ip")).args(args), SHORT)
}
