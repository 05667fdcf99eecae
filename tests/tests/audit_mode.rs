//! Audit mode: with `--audit` (or a namespace labelled `gateway.io/audit=true`)
//! a pod's unregistered HTTP, TLS and TCP calls reach the real servers they
//! dialled, each audit line says `"decision":"allow","would":"deny"` with the
//! reason, the metric counts them, and the admin `/suggest` serves a proposal
//! that validates with no finding. The proxy's own refusals still refuse:
//! a malformed first flight, a pod the API never announced.

use std::net::IpAddr;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use gateway_tests::addresses::*;
use gateway_tests::certs;
use gateway_tests::client::{EchoRun, curl_status, run_echo_client};
use gateway_tests::dnsmasq::Dnsmasq;
use gateway_tests::echo_server::EchoServer;
use gateway_tests::gateway_process::{Gateway, GatewayConfig, gateway_bin};
use gateway_tests::kube_api::ApiServer;
use gateway_tests::kube_node::{PodSpec, agent_config, kubelet, namespace, probe};
use gateway_tests::kubelet::Driver;
use gateway_tests::nginx::{BODY_PREFIX, Nginx};
use gateway_tests::topology::{Pod, Topology};
use serde_json::Value;

const CLIENT: &str = env!("CARGO_BIN_EXE_gw-test-client");
/// The resolver the pod believes in (any address: port 53 goes to the gateway).
const POD_RESOLVER: &str = "198.51.100.53";
const NOTHING: &str = "# Nothing registered: every call would be refused under REGISTRY_ONLY.\n";

/// Connects, prints its own address, sends the hex bytes, and says what came back.
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

fn curl(pod: &Pod, args: &[&str]) -> (u16, String, String) {
    curl_status(|a| pod.command("curl", a), args)
}

fn gateway(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(gateway_bin()).args(args).output().expect("run gateway");
    (
        out.status.code().expect("exit code, not a signal"),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn path(p: &Path) -> &str {
    p.to_str().expect("a UTF-8 path")
}

fn assert_would_deny(line: &Value, reason: &str) {
    assert_eq!(
        (line["decision"].as_str(), line["would"].as_str(), line["reason"].as_str()),
        (Some("allow"), Some("deny"), Some(reason)),
        "{line}"
    );
}

/// The `/metrics` sample of would-deny calls to `host`.
fn would_deny_count(gw: &Gateway, host: &str) -> u64 {
    let (_, text) = gw.admin_request("GET", "/metrics");
    let wanted = format!("host=\"{host}\"");
    text.lines()
        .filter(|l| l.starts_with("gateway_audit_would_deny_total{") && l.contains(&wanted) && l.contains("reason=\"not-registered\""))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
        .sum()
}

#[test]
fn audited_calls_reach_their_servers_and_are_reported_as_would_deny() {
    let topo = Topology::build();
    let certs = certs::generate(&topo.temp.subdir("certs"), "web.test");
    let nginx = Nginx::start(&topo.internet, topo.temp.path(), &certs, INTERNET_V4.into());
    let echo = EchoServer::start(&topo.internet, &[7]);
    let _dns = Dnsmasq::start(&topo.internet, topo.temp.path(), "203.0.113.10", &[("api.test", "203.0.113.10")]);
    let dir = topo.temp.subdir("istio");
    std::fs::write(dir.join("base.yaml"), NOTHING).unwrap();
    let mut config = GatewayConfig::enforcing(&topo, vec![dir]);
    config.extra_args = ["--audit", "--dns-upstream", "203.0.113.10:53"].iter().map(|s| s.to_string()).collect();
    let gw = Gateway::start(&topo, config);
    let pod = &topo.pod_a;
    let ca = certs.ca_cert.to_string_lossy().into_owned();

    // 0. An unregistered name resolves: node-wide audit forwards it upstream.
    let server = format!("@{POD_RESOLVER}");
    let out = pod.command("dig", &["+time=3", "+tries=1", &server, "+short", "api.test", "A"]).output().expect("run dig");
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "203.0.113.10", "{}", gw.stderr_tail());

    // 1. HTTP by Host, TLS by SNI, opaque TCP: all reach the servers dialled.
    let (code, body, err) = curl(pod, &["-H", "Host: api.test", "http://203.0.113.10/"]);
    assert_eq!((code, body.as_str()), (200, format!("{BODY_PREFIX}api.test\n").as_str()), "{err}\n{}", gw.stderr_tail());
    let (code, body, err) = curl(pod, &["--cacert", &ca, "--resolve", "web.test:443:203.0.113.10", "https://web.test/"]);
    assert_eq!((code, body.as_str()), (200, format!("{BODY_PREFIX}web.test\n").as_str()), "{err}\n{}", gw.stderr_tail());
    let run = EchoRun { timeout: Duration::from_secs(5), ..EchoRun::to(&[sock(internet_v4(2), 7)]) };
    let summary = run_echo_client(|a| pod.command(CLIENT, a), &run);
    assert!(summary.results.iter().all(|r| r.intact), "opaque TCP must pass in audit mode: {summary:?}");
    let seen: Vec<String> = nginx.wait_for_entries(2, Duration::from_secs(10)).into_iter().map(|e| e.host).collect();
    assert_eq!(seen, ["api.test", "web.test"]);
    assert!(echo.count() >= 1, "the echo server was reached");

    // 2. Each line: allowed, would deny, why; sent where it was dialled.
    let http = gw.wait_json_line("request", "audited HTTP", |v| v["host"] == "api.test");
    assert_would_deny(&http, "not-registered");
    assert_eq!(http["status"], 200, "{http}");
    let tls = gw.wait_json_line("connection", "audited TLS", |v| v["sni"] == "web.test");
    assert_would_deny(&tls, "not-registered");
    assert_eq!(tls["upstream"], "203.0.113.10:443", "{tls}");
    let tcp = gw.wait_json_line("connection", "audited TCP", |v| v["orig_dst"] == "203.0.113.12:7" && v["decision"] == "allow");
    assert_would_deny(&tcp, "not-registered");
    assert_eq!(tcp["upstream"], "203.0.113.12:7", "{tcp}");
    let summary_line = gw.wait_json_line("connection", "the HTTP connection", |v| v["requests"].is_u64());
    assert_would_deny(&summary_line, "not-registered");

    // 3. The metric counts them by workload and host.
    assert_eq!(would_deny_count(&gw, "api.test"), 1);
    assert_eq!(would_deny_count(&gw, "web.test"), 1);
    assert!(would_deny_count(&gw, "203.0.113.12:7") >= 1);

    // 4. The admin /suggest: what `gateway suggest` would make, with no finding.
    let (status, yaml) = gw.admin_request("GET", "/suggest");
    assert_eq!(status, 200, "{yaml}");
    for expected in ["- api.test", "- web.test", "- 203.0.113.12", "protocol: HTTP\n", "protocol: HTTPS", "protocol: TCP"] {
        assert!(yaml.contains(expected), "{expected} is missing from /suggest:\n{yaml}");
    }
    let proposal = topo.temp.path().join("live.yaml");
    std::fs::write(&proposal, &yaml).unwrap();
    let (code, out, err) = gateway(&["validate", path(&proposal)]);
    assert_eq!((code, out.trim_end()), (0, "0 error(s), 0 warning(s)"), "{yaml}\n{err}");
    let (status, other) = gw.admin_request("GET", "/suggest?namespace=elsewhere");
    assert_eq!(status, 200);
    assert!(!other.contains("kind: ServiceEntry"), "{other}");
    assert_eq!(gw.admin_request("GET", "/suggest?namespace=Not_A_Name").0, 400);

    // 5. `gateway suggest` reads the would-deny lines of the log the same way.
    let log = topo.temp.path().join("access.log");
    std::fs::write(&log, gw.stdout()).unwrap();
    let (code, from_log, err) = gateway(&["suggest", "--from", path(&log)]);
    assert_eq!(code, 0, "{from_log}{err}");
    for expected in ["- api.test", "- web.test", "- 203.0.113.12"] {
        assert!(from_log.contains(expected), "{expected} is missing from the log's proposal:\n{from_log}");
    }

    // 6. Fail closed: a first flight that begins TLS and breaks its grammar is still refused.
    let before = echo.count();
    let argv = ["-c", SEND_AND_LISTEN, "203.0.113.12", "7", "1603010000"];
    let out = gateway_tests::command::run(&mut pod.command("/usr/bin/python3", &argv), Duration::from_secs(40));
    let said: Vec<String> = String::from_utf8_lossy(&out.stdout).lines().map(str::to_owned).collect();
    assert_eq!(said.get(1).map(String::as_str), Some("reset"), "{said:?}");
    let line = gw.wait_json_line("connection", "the malformed flight", |v| v["src"] == said[0].as_str());
    assert_eq!((line["decision"].as_str(), line["reason"].as_str()), (Some("deny"), Some("malformed-request")), "{line}");
    assert!(line["would"].is_null() && line["upstream"].is_null(), "{line}");
    assert_eq!(echo.count(), before, "a malformed stream reached the server");
    drop(gw);
    topo.teardown();
}

fn pod<'a>(ns: &'a str, name: &'a str, uid: &'a str, ip: IpAddr) -> PodSpec<'a> {
    PodSpec { namespace: ns, name, uid, service_account: "sa-app", labels: &[], ip }
}

/// The node agent: the namespace label audits its pods alone; a pod the API
/// never announced is refused even under `--audit`.
#[test]
fn the_namespace_label_audits_its_pods_and_unknown_pods_are_still_refused() {
    let topo = Topology::build();
    let server = EchoServer::start(&topo.internet, &[7]);
    let api = ApiServer::start_in(&topo.node);
    api.apply(namespace("audited", &[("gateway.io/audit", "true")]));
    api.apply(namespace("shop", &[]));
    let tree = kubelet(&topo, Driver::Systemd);
    let target = INTERNET_V4.to_string();

    let gw = Gateway::start(&topo, agent_config(&topo, &api, &tree, &[]));
    let (a, b) = ("9a000000-0000-4000-8000-000000000001", "9a000000-0000-4000-8000-000000000002");
    let (in_audited, in_shop) = (tree.add_pod(a), tree.add_pod(b));
    api.apply(pod("audited", "app", a, IpAddr::V4(topo.pod_a.v4)).object());
    api.apply(pod("shop", "app", b, IpAddr::V4(topo.pod_b.v4)).object());
    assert_eq!(probe(&in_audited, &topo.pod_a.netns.path(), &target, 7), "ok ping", "{}", gw.stderr_tail());
    let line = gw.wait_json_line("connection", "the audited pod", |v| v["workload"]["namespace"] == "audited");
    assert_would_deny(&line, "not-registered");
    let answer = probe(&in_shop, &topo.pod_b.netns.path(), &target, 7);
    assert!(answer.starts_with("refused"), "an unlabelled namespace is enforced: {answer}");
    let line = gw.wait_json_line("connection", "the enforced pod", |v| v["workload"]["namespace"] == "shop");
    assert_eq!((line["decision"].as_str(), line["reason"].as_str()), (Some("deny"), Some("not-registered")), "{line}");
    assert!(line["would"].is_null(), "{line}");
    assert_eq!(server.count(), 1, "only the audited pod's connection arrived");
    drop(gw);

    // Node-wide audit: a pod never announced is still refused.
    let gw = Gateway::start(&topo, agent_config(&topo, &api, &tree, &["--audit", "--unknown-workload-wait-ms", "500"]));
    let ghost = tree.add_pod("9a000000-0000-4000-8000-000000000003");
    let answer = probe(&ghost, &topo.pod_b.netns.path(), &target, 7);
    assert!(answer.starts_with("refused"), "an unknown workload is refused in audit mode: {answer}");
    let line = gw.wait_json_line("connection", "the unknown pod", |v| v["reason"] == "unknown-workload");
    assert_eq!(line["decision"], "deny", "{line}");
    assert_eq!(server.count(), 1, "the unknown pod reached nothing");
    drop((gw, tree));
    topo.teardown();
}
