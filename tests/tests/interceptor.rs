//! End-to-end tests of interception: the real `gateway` binary in the node namespace, real clients
//! in pods, real servers in the internet namespace. Each test asserts on what the client got, what
//! the server saw and what the gateway logged, and ends by checking its topology left nothing.

use std::net::{IpAddr, SocketAddr};
use std::thread;
use std::time::Duration;

use gateway_tests::addresses::*;
use gateway_tests::bpf_inspect;
use gateway_tests::certs;
use gateway_tests::checks::{assert_allowed_event, by_token, event_from, node_address_towards};
use gateway_tests::cleanup::GATEWAY_PROGRAMS;
use gateway_tests::client::{EchoRun, EchoSummary, curl_args, run_curl, run_echo_client};
use gateway_tests::echo_server::EchoServer;
use gateway_tests::gateway_process::{Gateway, GatewayConfig, PROXY_PORT};
use gateway_tests::nginx::{BODY_PREFIX, Nginx};
use gateway_tests::topology::{Pod, Topology};
use gateway_tests::wait;

const CLIENT: &str = env!("CARGO_BIN_EXE_gw-test-client");
const EVENT_TIMEOUT: Duration = Duration::from_secs(10);
const MAPS: [&str; 4] = ["ORIG_TUPLE", "PROXY_CONFIG", "STATS", "ORIG_SK"];

/// `gw-test-client` inside the pod's namespace and cgroup (intercepted).
fn echo_from(pod: &Pod, run: &EchoRun) -> EchoSummary {
    run_echo_client(|args| pod.command(CLIENT, args), run)
}

#[test]
fn pod_reaches_the_internet_through_the_proxy_over_ipv4_ipv6_and_mapped_ipv4() {
    let topo = Topology::build();
    let server = EchoServer::start(&topo.internet, &[7]);
    let gw = Gateway::start(&topo, GatewayConfig::for_pods(&topo));
    assert_eq!(
        gw.admin_status("/healthz"),
        Some(200),
        "GET /healthz; stderr:\n{}",
        gw.stderr_tail()
    );

    let targets = [
        sock(INTERNET_V4, 7),
        sock(INTERNET_V6, 7),
        v4_mapped(INTERNET_V4, 7),
    ];
    let summary = echo_from(&topo.pod_a, &EchoRun::to(&targets));
    summary.assert_all_intact("echo from pod-a through the proxy");
    for r in &summary.results {
        // cgroup/getpeername restores the original destination for the pod.
        assert_eq!(
            r.peer,
            Some(canonical(r.target)),
            "getpeername() in pod-a for {}: {}",
            r.target,
            summary.raw
        );
    }

    let seen = by_token(&server.wait_finished(3, EVENT_TIMEOUT));
    let events = gw.wait_for_events(3, EVENT_TIMEOUT);
    assert_eq!(seen.len(), 3, "the echo server saw: {seen:?}");
    for r in &summary.results {
        let dst = canonical(r.target);
        let at_server = seen
            .get(&r.token)
            .unwrap_or_else(|| panic!("the server never saw {}: {seen:?}", r.token));
        assert_eq!(
            at_server.local, dst,
            "the server was reached on the wrong address for {}",
            r.token
        );
        assert_eq!(
            at_server.peer.ip(),
            node_address_towards(dst),
            "the server should see the node, not the pod: {at_server:?}"
        );
        let pod_ips: Vec<IpAddr> = match r.target.ip() {
            IpAddr::V4(_) => vec![POD_A_V4.into()],
            IpAddr::V6(v6) if v6.to_ipv4_mapped().is_some() => {
                vec![POD_A_V4.into(), POD_A_V6.into()]
            }
            IpAddr::V6(_) => vec![POD_A_V6.into()],
        };
        let local = r
            .local
            .unwrap_or_else(|| panic!("no local address for {}", r.token));
        let event = event_from(&events, local, &gw);
        assert_allowed_event(&event, dst, &pod_ips, topo.pod_a.cgroup.id(), r.sent, &gw);
    }
    assert_eq!(
        gw.events().len(),
        3,
        "one line per connection:\n{}",
        gw.stdout()
    );
    drop((gw, server));
    topo.teardown();
}

#[test]
fn pod_reaches_nginx_over_http_and_https_through_the_proxy() {
    let topo = Topology::build();
    let certs = certs::generate(&topo.temp.subdir("certs"), "web.test");
    let nginx = Nginx::start(&topo.internet, topo.temp.path(), &certs, INTERNET_V4.into());
    let gw = Gateway::start(&topo, GatewayConfig::for_pods(&topo));
    let ca = certs.ca_cert.to_string_lossy().into_owned();

    let (ok, body, err) = run_curl(
        topo.pod_a
            .command("curl", &curl_args(&["http://203.0.113.10/"])),
    );
    assert!(
        ok && body == format!("{BODY_PREFIX}203.0.113.10\n"),
        "HTTP from pod-a: body {body:?}, curl: {err}\ngateway stderr:\n{}",
        gw.stderr_tail()
    );
    let https = curl_args(&[
        "--cacert",
        &ca,
        "--resolve",
        "web.test:443:203.0.113.10",
        "https://web.test/",
    ]);
    let (ok, body, err) = run_curl(topo.pod_a.command("curl", &https));
    assert!(
        ok && body == format!("{BODY_PREFIX}web.test\n"),
        "HTTPS from pod-a: body {body:?}, curl: {err}\ngateway stderr:\n{}",
        gw.stderr_tail()
    );

    let log = nginx.wait_for_entries(2, EVENT_TIMEOUT);
    let seen: Vec<(String, u16, String, String)> = log
        .iter()
        .map(|e| {
            (
                e.remote_addr.to_string(),
                e.server_port,
                e.host.clone(),
                e.sni.clone(),
            )
        })
        .collect();
    assert_eq!(
        seen,
        [
            (
                NODE_INTERNET_V4.to_string(),
                80,
                "203.0.113.10".into(),
                String::new()
            ),
            (
                NODE_INTERNET_V4.to_string(),
                443,
                "web.test".into(),
                "web.test".into()
            ),
        ],
        "nginx should see the node's address, the Host and the SNI: {log:?}"
    );
    let events = gw.wait_for_events(2, EVENT_TIMEOUT);
    let dsts: Vec<Option<SocketAddr>> = events.iter().map(|e| e.orig_dst).collect();
    assert_eq!(
        dsts,
        [Some(sock(INTERNET_V4, 80)), Some(sock(INTERNET_V4, 443))],
        "gateway lines:\n{}",
        gw.stdout()
    );
    for e in &events {
        assert_eq!(
            (e.src.ip(), e.decision.as_str()),
            (IpAddr::V4(POD_A_V4), "allow"),
            "gateway line {}",
            e.raw
        );
        assert!(
            e.bytes_up > 0 && e.bytes_down > 0,
            "byte counts in {}",
            e.raw
        );
    }
    drop((gw, nginx));
    topo.teardown();
}

#[test]
fn one_mebibyte_and_a_half_close_cross_the_proxy_intact() {
    let topo = Topology::build();
    let server = EchoServer::start(&topo.internet, &[7]);
    let gw = Gateway::start(&topo, GatewayConfig::for_pods(&topo));
    let mib = 1024 * 1024;
    let base = EchoRun {
        bytes: mib,
        timeout: Duration::from_secs(30),
        ..EchoRun::to(&[sock(INTERNET_V4, 7)])
    };
    let full_duplex = echo_from(&topo.pod_a, &base);
    full_duplex.assert_all_intact("1 MiB echo through the proxy");
    let half_closed = echo_from(
        &topo.pod_a,
        &EchoRun {
            half_close: true,
            targets: vec![sock(INTERNET_V6, 7)],
            ..base.clone()
        },
    );
    half_closed.assert_all_intact("1 MiB echo with half-close through the proxy");

    let seen = server.wait_finished(2, EVENT_TIMEOUT);
    let events = gw.wait_for_events(2, EVENT_TIMEOUT);
    for (summary, pod_ip) in [
        (&full_duplex, IpAddr::V4(POD_A_V4)),
        (&half_closed, IpAddr::V6(POD_A_V6)),
    ] {
        let r = &summary.results[0];
        let at_server = seen
            .iter()
            .find(|a| a.first_line == r.token)
            .unwrap_or_else(|| panic!("server never saw {}: {seen:?}", r.token));
        assert_eq!(
            at_server.bytes, r.sent,
            "bytes the server received for {}",
            r.token
        );
        assert!(
            at_server.finished,
            "the server should have seen the client's FIN for {}: {at_server:?}",
            r.token
        );
        let event = event_from(&events, r.local.expect("local address"), &gw);
        assert_allowed_event(
            &event,
            r.target,
            &[pod_ip],
            topo.pod_a.cgroup.id(),
            r.sent,
            &gw,
        );
    }
    drop((gw, server));
    topo.teardown();
}

#[test]
fn two_hundred_concurrent_connections_from_two_pods_keep_their_destinations() {
    let topo = Topology::build();
    let ports: Vec<u16> = (7000..7050).collect();
    let server = EchoServer::start(&topo.internet, &ports);
    let gw = Gateway::start(&topo, GatewayConfig::for_pods(&topo));
    let targets_a: Vec<SocketAddr> = [internet_v4(0), internet_v4(1)]
        .iter()
        .flat_map(|a| ports.iter().map(|p| sock(*a, *p)))
        .collect();
    let targets_b: Vec<SocketAddr> = ports
        .iter()
        .map(|p| sock(internet_v4(2), *p))
        .chain(ports.iter().map(|p| sock(internet_v6(3), *p)))
        .collect();
    let run_a = EchoRun {
        timeout: Duration::from_secs(30),
        ..EchoRun::to(&targets_a)
    };
    let run_b = EchoRun {
        timeout: Duration::from_secs(30),
        ..EchoRun::to(&targets_b)
    };

    let (summary_a, summary_b) = thread::scope(|s| {
        let a = s.spawn(|| echo_from(&topo.pod_a, &run_a));
        let b = s.spawn(|| echo_from(&topo.pod_b, &run_b));
        (
            a.join().expect("pod-a client"),
            b.join().expect("pod-b client"),
        )
    });
    summary_a.assert_all_intact("100 concurrent connections from pod-a");
    summary_b.assert_all_intact("100 concurrent connections from pod-b");

    let seen = by_token(&server.wait_finished(200, Duration::from_secs(20)));
    let events = gw.wait_for_events(200, Duration::from_secs(20));
    assert_eq!(
        (seen.len(), events.len()),
        (200, 200),
        "server records / gateway lines:\n{}",
        gw.stdout()
    );
    for (summary, pod) in [(&summary_a, &topo.pod_a), (&summary_b, &topo.pod_b)] {
        for r in &summary.results {
            let at_server = seen
                .get(&r.token)
                .unwrap_or_else(|| panic!("server never saw {}", r.token));
            assert_eq!(
                at_server.local, r.target,
                "{} reached the server on the wrong address",
                r.token
            );
            assert_eq!(
                at_server.peer.ip(),
                node_address_towards(r.target),
                "source at the server for {}",
                r.token
            );
            assert_eq!(r.peer, Some(r.target), "getpeername() for {}", r.token);
            let event = event_from(&events, r.local.expect("local address"), &gw);
            assert_allowed_event(
                &event,
                r.target,
                &[pod.v4.into(), pod.v6.into()],
                pod.cgroup.id(),
                r.sent,
                &gw,
            );
        }
    }
    drop((gw, server));
    topo.teardown();
}

#[test]
fn a_process_outside_the_intercepted_cgroup_is_untouched() {
    let topo = Topology::build();
    let server = EchoServer::start(&topo.internet, &[7]);
    let gw = Gateway::start(&topo, GatewayConfig::for_pods(&topo));
    let run = EchoRun::to(&[sock(INTERNET_V4, 7), sock(INTERNET_V6, 7)]);
    let outside = run_echo_client(|args| topo.pod_a.command_outside_cgroup(CLIENT, args), &run);
    outside.assert_all_intact("echo from pod-a's namespace outside its cgroup");
    let seen = server.wait_finished(2, EVENT_TIMEOUT);
    let mut sources: Vec<IpAddr> = seen.iter().map(|a| a.peer.ip()).collect();
    sources.sort();
    assert_eq!(
        sources,
        [IpAddr::V4(POD_A_V4), IpAddr::V6(POD_A_V6)],
        "the server should see the pod itself: {seen:?}"
    );

    // A marker connection from inside the cgroup: once its line is written, any line for the
    // untouched connections would have been written too.
    let marker = echo_from(&topo.pod_a, &EchoRun::to(&[sock(INTERNET_V4, 7)]));
    marker.assert_all_intact("marker connection from inside pod-a's cgroup");
    gw.wait_for_events(1, EVENT_TIMEOUT);
    thread::sleep(Duration::from_millis(300));
    let events = gw.events();
    assert_eq!(
        events.len(),
        1,
        "only the marker connection may be logged:\n{}",
        gw.stdout()
    );
    assert_eq!(
        Some(events[0].src),
        marker.results[0].local,
        "the logged connection is not the marker: {}",
        events[0].raw
    );
    drop((gw, server));
    topo.teardown();
}

#[test]
fn the_proxys_own_upstream_connections_are_not_intercepted_again() {
    let topo = Topology::build();
    let server = EchoServer::start(&topo.internet, &[7]);
    let mut config = GatewayConfig::for_pods(&topo);
    config
        .intercept_cgroups
        .push(topo.node_cgroup.path().to_owned());
    // The gateway runs below the intercepted cgroup, in a cgroup of its own:
    // the kernel programs apply to it too, and know it by that cgroup.
    let gateway_cgroup = topo.node_cgroup.child("gateway");
    config.own_cgroup = Some(gateway_cgroup.path().to_owned());
    let gw = Gateway::start(&topo, config);
    assert!(
        gateway_cgroup.pids().contains(&gw.pid()),
        "the gateway should run inside the intercepted node cgroup"
    );

    let run = EchoRun {
        per_target: 5,
        ..EchoRun::to(&[sock(INTERNET_V4, 7), sock(INTERNET_V6, 7)])
    };
    let summary = run_echo_client(|args| topo.node_workload_command(CLIENT, args), &run);
    summary.assert_all_intact("host-network workload in the intercepted node cgroup");

    let seen = server.wait_finished(10, EVENT_TIMEOUT);
    let events = gw.wait_for_events(10, EVENT_TIMEOUT);
    thread::sleep(Duration::from_millis(500));
    assert_eq!(
        server.count(),
        10,
        "the server should see each client connection once: {:?}",
        server.accepted()
    );
    for a in &seen {
        assert_eq!(
            a.peer.ip(),
            node_address_towards(a.local),
            "source at the server: {a:?}"
        );
    }
    assert_eq!(
        gw.events().len(),
        10,
        "exactly one line per client connection:\n{}",
        gw.stdout()
    );
    let node_ips = [
        IpAddr::V4(NODE_INTERNET_V4),
        NODE_INTERNET_V6.into(),
        PROXY_V4.into(),
        PROXY_V6.into(),
    ];
    for r in &summary.results {
        let event = event_from(&events, r.local.expect("local address"), &gw);
        assert_allowed_event(
            &event,
            r.target,
            &node_ips,
            topo.node_cgroup.id(),
            r.sent,
            &gw,
        );
    }
    drop((gw, server));
    topo.teardown();
}

#[test]
fn a_connection_without_original_destination_is_denied_and_logged() {
    let topo = Topology::build();
    let gw = Gateway::start(&topo, GatewayConfig::for_pods(&topo));
    // Straight to the proxy from outside any intercepted cgroup: the kernel recorded nothing.
    let run = EchoRun::to(&[sock(PROXY_V4, PROXY_PORT)]);
    let summary = run_echo_client(|args| topo.pod_a.command_outside_cgroup(CLIENT, args), &run);
    let r = &summary.results[0];
    assert!(
        !r.intact && r.received == 0,
        "the proxy should close the connection without data: {}",
        summary.raw
    );
    let events = gw.wait_for_events(1, EVENT_TIMEOUT);
    let e = &events[0];
    assert_eq!(
        (e.decision.as_str(), e.reason.as_str()),
        ("deny", "no-original-destination"),
        "gateway line {}",
        e.raw
    );
    assert_eq!(e.src.ip(), IpAddr::V4(POD_A_V4), "gateway line {}", e.raw);
    drop(gw);
    topo.teardown();
}

#[test]
fn pins_survive_a_crash_and_detach_removes_everything() {
    let topo = Topology::build();
    let server = EchoServer::start(&topo.internet, &[7]);
    let mut gw = Gateway::start(&topo, GatewayConfig::for_pods(&topo));
    echo_from(&topo.pod_a, &EchoRun::to(&[sock(INTERNET_V4, 7)])).assert_all_intact("first run");
    gw.wait_for_events(1, EVENT_TIMEOUT);

    let map_ids: Vec<u64> = MAPS
        .iter()
        .map(|m| bpf_inspect::pinned_map_id(&topo.bpffs.join("maps").join(m)))
        .collect();
    let prog_ids: Vec<u64> = GATEWAY_PROGRAMS
        .iter()
        .map(|p| bpf_inspect::pinned_prog_id(&topo.bpffs.join("progs").join(p)))
        .collect();
    for cgroup in [&topo.pod_a.cgroup, &topo.pod_b.cgroup] {
        let mut attached: Vec<String> = bpf_inspect::cgroup_attachments(cgroup.path())
            .into_iter()
            .map(|a| a.name)
            .collect();
        attached.sort();
        let mut expected: Vec<String> = GATEWAY_PROGRAMS.iter().map(|p| p.to_string()).collect();
        expected.sort();
        assert_eq!(
            attached,
            expected,
            "programs attached to {}",
            cgroup.path().display()
        );
        for prog in GATEWAY_PROGRAMS {
            let link = topo
                .bpffs
                .join("links")
                .join(cgroup.id().to_string())
                .join(prog);
            assert!(
                link.exists(),
                "missing link pin {}; pins: {:?}",
                link.display(),
                bpf_inspect::pins_under(&topo.bpffs)
            );
        }
    }

    gw.kill9();
    let accepted_before = server.count();
    let after_crash = echo_from(
        &topo.pod_a,
        &EchoRun {
            timeout: Duration::from_secs(5),
            ..EchoRun::to(&[sock(INTERNET_V4, 7), sock(INTERNET_V6, 7)])
        },
    );
    for r in &after_crash.results {
        assert!(
            !r.connected,
            "with the gateway dead, {} must not connect (fail closed): {}",
            r.target, after_crash.raw
        );
        assert_eq!(
            r.error_kind.as_deref(),
            Some("ConnectionRefused"),
            "{}: {}",
            r.target,
            after_crash.raw
        );
    }
    thread::sleep(Duration::from_millis(300));
    assert_eq!(
        server.count(),
        accepted_before,
        "nothing may reach the server while the gateway is dead: {:?}",
        server.accepted()
    );
    assert_eq!(
        bpf_inspect::cgroup_attachments(topo.pod_a.cgroup.path()).len(),
        GATEWAY_PROGRAMS.len(),
        "links must survive kill -9"
    );

    gw.restart();
    let ids_after: Vec<u64> = MAPS
        .iter()
        .map(|m| bpf_inspect::pinned_map_id(&topo.bpffs.join("maps").join(m)))
        .collect();
    assert_eq!(
        ids_after, map_ids,
        "a restarted gateway must reuse the pinned maps {MAPS:?}"
    );
    let again = echo_from(&topo.pod_a, &EchoRun::to(&[sock(INTERNET_V4, 7)]));
    again.assert_all_intact("after restart");
    let events = gw.wait_for_events(2, EVENT_TIMEOUT);
    assert_allowed_event(
        &event_from(&events, again.results[0].local.unwrap(), &gw),
        sock(INTERNET_V4, 7),
        &[POD_A_V4.into()],
        topo.pod_a.cgroup.id(),
        again.results[0].sent,
        &gw,
    );
    assert_eq!(
        server
            .wait_finished(2, EVENT_TIMEOUT)
            .last()
            .map(|a| a.peer.ip()),
        Some(NODE_INTERNET_V4.into())
    );

    let stopped = gw.stop();
    assert!(
        stopped.is_some(),
        "the gateway did not exit within 10 s of SIGTERM; stderr:\n{}",
        gw.stderr_tail()
    );
    gw.detach();
    assert!(
        !topo.bpffs.exists(),
        "gateway detach left {:?}",
        bpf_inspect::pins_under(&topo.bpffs)
    );
    for cgroup in [&topo.pod_a.cgroup, &topo.pod_b.cgroup] {
        let left = bpf_inspect::cgroup_attachments(cgroup.path());
        assert!(
            left.is_empty(),
            "programs still attached to {} after detach: {left:?}",
            cgroup.path().display()
        );
    }
    wait::until(
        "the gateway's programs and maps to be freed after detach",
        Duration::from_secs(10),
        || {
            !prog_ids.iter().any(|id| bpf_inspect::prog_exists(*id))
                && !map_ids.iter().any(|id| bpf_inspect::map_exists(*id))
        },
    );

    // Detached: the pod now reaches the server directly, with its own address.
    let direct = echo_from(&topo.pod_a, &EchoRun::to(&[sock(INTERNET_V4, 7)]));
    direct.assert_all_intact("after detach");
    assert_eq!(
        server
            .wait_finished(3, EVENT_TIMEOUT)
            .last()
            .map(|a| a.peer.ip()),
        Some(POD_A_V4.into()),
        "after detach the pod is not intercepted"
    );
    drop((gw, server));
    topo.teardown();
}
