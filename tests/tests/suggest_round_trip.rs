//! `gateway suggest` round trip: a pod's calls refused under REGISTRY_ONLY
//! (HTTP, TLS, opaque TCP) are read back from the audit log, the proposal
//! validates with no finding, and once loaded every one of those calls is
//! allowed while a host never proposed stays refused.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use gateway_tests::addresses::*;
use gateway_tests::certs;
use gateway_tests::client::{EchoRun, curl_status, run_echo_client};
use gateway_tests::dnsmasq::Dnsmasq;
use gateway_tests::echo_server::EchoServer;
use gateway_tests::gateway_process::{Gateway, GatewayConfig, gateway_bin};
use gateway_tests::nginx::{BODY_PREFIX, Nginx};
use gateway_tests::topology::{Pod, Topology};

const CLIENT: &str = env!("CARGO_BIN_EXE_gw-test-client");
const NOTHING: &str = "# Nothing registered: every call is refused under REGISTRY_ONLY.\n";

/// curl in the pod; (HTTP status or 0, body, curl's stderr).
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

/// The three calls of the pod: HTTP by Host, TLS by SNI, opaque TCP by address.
struct Calls<'a> {
    pod: &'a Pod,
    ca: String,
}

impl Calls<'_> {
    fn http(&self, host: &str) -> (u16, String, String) {
        curl(self.pod, &["-H", &format!("Host: {host}"), "http://203.0.113.10/"])
    }

    fn https(&self, host: &str) -> (u16, String, String) {
        curl(self.pod, &["--cacert", &self.ca, "--resolve", &format!("{host}:443:203.0.113.10"), &format!("https://{host}/")])
    }

    fn echo_intact(&self) -> bool {
        let run = EchoRun { timeout: Duration::from_secs(5), ..EchoRun::to(&[sock(internet_v4(2), 7)]) };
        let summary = run_echo_client(|a| self.pod.command(CLIENT, a), &run);
        summary.results.iter().all(|r| r.intact)
    }
}

#[test]
fn the_suggestion_allows_every_refused_call_and_nothing_else() {
    let topo = Topology::build();
    let certs = certs::generate(&topo.temp.subdir("certs"), "web.test");
    let nginx = Nginx::start(&topo.internet, topo.temp.path(), &certs, INTERNET_V4.into());
    let _echo = EchoServer::start(&topo.internet, &[7]);
    let records = [("web.test", "203.0.113.10"), ("api.test", "203.0.113.10"), ("other.test", "203.0.113.10")];
    let _dns = Dnsmasq::start(&topo.internet, topo.temp.path(), "203.0.113.10", &records);
    let dir = topo.temp.subdir("istio");
    std::fs::write(dir.join("base.yaml"), NOTHING).unwrap();
    let mut config = GatewayConfig::enforcing(&topo, vec![dir.clone()]);
    config.extra_args = ["--dns-upstream", "203.0.113.10:53"].iter().map(|s| s.to_string()).collect();
    let gw = Gateway::start(&topo, config);
    let calls = Calls { pod: &topo.pod_a, ca: certs.ca_cert.to_string_lossy().into_owned() };

    // 1. Refused, all three.
    let (code, body, _) = calls.http("api.test");
    assert_eq!((code, body.as_str()), (403, "egress to api.test denied: not-registered\n"));
    let (code, _, err) = calls.https("web.test");
    assert_eq!(code, 0, "TLS must be refused: {err}");
    assert!(!calls.echo_intact(), "opaque TCP must be refused");
    gw.wait_json_line("request", "refused HTTP", |v| v["host"] == "api.test" && v["decision"] == "deny");
    gw.wait_json_line("connection", "refused TLS", |v| v["sni"] == "web.test" && v["decision"] == "deny");
    gw.wait_json_line("connection", "refused TCP", |v| v["orig_dst"] == "203.0.113.12:7" && v["decision"] == "deny");

    // 2. The proposal from the audit log, with no finding.
    let log = topo.temp.path().join("access.log");
    std::fs::write(&log, gw.stdout()).unwrap();
    let proposal = topo.temp.path().join("suggested.yaml");
    let (code, out, err) = gateway(&["suggest", "--from", path(&log), "--output", path(&proposal)]);
    assert_eq!(code, 0, "{out}{err}");
    let yaml = std::fs::read_to_string(&proposal).unwrap();
    for expected in ["- api.test", "protocol: HTTP\n", "- web.test", "protocol: HTTPS", "- 203.0.113.12", "protocol: TCP", "# Suggested from the audit log: 1 denied"] {
        assert!(yaml.contains(expected), "{expected} is missing from the proposal:\n{yaml}");
    }
    assert!(!yaml.contains("other.test"), "{yaml}");
    let (code, out, err) = gateway(&["validate", path(&proposal)]);
    assert_eq!((code, out.trim_end()), (0, "0 error(s), 0 warning(s)"), "{yaml}\n{err}");

    // 3. Loaded beside the configuration in force: every refused call passes.
    std::fs::copy(&proposal, dir.join("suggested.yaml")).unwrap();
    let (status, body) = gw.admin_request("POST", "/reload");
    assert_eq!(status, 200, "POST /reload: {body}");
    let (code, body, err) = calls.http("api.test");
    assert_eq!((code, body.as_str()), (200, format!("{BODY_PREFIX}api.test\n").as_str()), "{err}\n{}", gw.stderr_tail());
    let (code, body, err) = calls.https("web.test");
    assert_eq!((code, body.as_str()), (200, format!("{BODY_PREFIX}web.test\n").as_str()), "{err}\n{}", gw.stderr_tail());
    assert!(calls.echo_intact(), "opaque TCP must pass once proposed");

    // 4. Nothing else changed: a host never seen stays refused.
    let (code, body, _) = calls.http("other.test");
    assert_eq!((code, body.as_str()), (403, "egress to other.test denied: not-registered\n"));
    let seen: Vec<String> = nginx.wait_for_entries(2, Duration::from_secs(10)).into_iter().map(|e| e.host).collect();
    assert_eq!(seen, ["api.test", "web.test"], "nginx must see only the two allowed requests");
    drop(gw);
    topo.teardown();
}

fn path(p: &Path) -> &str {
    p.to_str().expect("a UTF-8 path")
}

