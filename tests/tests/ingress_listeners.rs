//! An ingress gateway's listeners follow its configuration without a restart: a port a reload
//! adds opens and serves, one it removes stops accepting, a rotated certificate is served to
//! new connections, and a port that cannot be bound leaves the others serving. Connections
//! already open keep their TCP (and TLS) connection across all of it.

use std::path::{Path, PathBuf};
use std::time::Duration;

use gateway_tests::certs;
use gateway_tests::client::curl_status;
use gateway_tests::gateway_listeners::{caught_up, connect, port};
use gateway_tests::gateway_process::Gateway;
use gateway_tests::http_backend::HttpBackend;
use gateway_tests::istio;
use gateway_tests::script::Script;
use gateway_tests::topology::Topology;

const STEP: Duration = Duration::from_secs(20);
/// The node as pod-a (here an outside client) reaches it.
const NODE: &str = "198.18.1.1";

/// The api backend (203.0.113.12:8080), and its route for `host` through the Gateway `edge`.
fn api(host: &str) -> String {
    istio::static_service("api", 8080, "HTTP", &["203.0.113.12"])
        + &"apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: api, namespace: default}
spec:
  hosts: [HOST]
  gateways: [edge]
  http:
  - route: [{destination: {host: api.default.svc.cluster.local, port: {number: 8080}}}]
---
".replace("HOST", host)
}

/// The Gateway `edge` with one plain HTTP server for `api.test` on each port.
fn edge(ports: &[u16]) -> String {
    let servers: String = ports.iter().map(|p| format!("  - port: {{number: {p}, name: http-{p}, protocol: HTTP}}\n    hosts: [api.test]\n")).collect();
    format!("apiVersion: networking.istio.io/v1\nkind: Gateway\nmetadata: {{name: edge, namespace: default}}\nspec:\n  selector: {{istio: ingressgateway}}\n  servers:\n{servers}---\n")
}

fn config_file(topo: &Topology) -> PathBuf {
    topo.temp.path().join("istio").join("gateway.yaml")
}

/// Writes `yaml` and asks for a reload (the file watcher may have taken it first: then it says
/// `unchanged`); returns once the listeners have been brought to generation `want`.
fn reload(gw: &Gateway, topo: &Topology, yaml: &str, want: u64) -> Vec<serde_json::Value> {
    std::fs::write(config_file(topo), yaml).unwrap();
    let (status, body) = gw.admin_request("POST", "/reload");
    assert_eq!(status, 200, "POST /reload: {body}\n{}", gw.stderr_tail());
    caught_up(gw, want)
}

/// curl from pod-a to `http://NODE:port/path` as `api.test`: (status, body).
fn get(topo: &Topology, port: u16, path: &str) -> (u16, String) {
    let url = format!("http://{NODE}:{port}{path}");
    let (code, body, _) = curl_status(|a| topo.pod_a.command_outside_cgroup("curl", a), &["-H", "Host: api.test", &url]);
    (code, body)
}

fn probe(topo: &Topology, port: u16) -> String {
    connect(|a| topo.pod_a.command_outside_cgroup("python3", a), NODE, port)
}

/// One keep-alive connection to ARGV[1]:ARGV[2] as `api.test`: a request, then one more each
/// time a line comes on stdin. Prints `answer N STATUS BODY-FIRST-WORD LOCAL-ADDRESS`.
const KEEP_ALIVE_CLIENT: &str = r#"
import http.client, sys
c = http.client.HTTPConnection(sys.argv[1], int(sys.argv[2]), timeout=20)
n = 0
while True:
    n += 1
    c.request("GET", "/ask%d" % n, headers={"Host": "api.test"})
    r = c.getresponse(); body = r.read().decode().split()
    print("answer %d %d %s %s:%d" % ((n, r.status, body[0] if body else "-") + c.sock.getsockname()[:2]), flush=True)
    if not sys.stdin.readline():
        break
"#;

fn keep_alive_client(topo: &Topology, port: u16) -> Script {
    Script::spawn(topo.pod_a.command_outside_cgroup("/usr/bin/python3", &["-c", KEEP_ALIVE_CLIENT, NODE, &port.to_string()]))
}

/// The client's `n`th answer: (status, body's first word, local address).
fn answer(client: &Script, n: u32) -> (u16, String, String) {
    let line = client.wait_line(STEP, &format!("answer {n}"), |l| l.starts_with(&format!("answer {n} ")));
    let parts: Vec<&str> = line.split(' ').collect();
    (parts[2].parse().unwrap(), parts[3].to_string(), parts[4].to_string())
}

#[test]
fn a_port_added_by_a_reload_opens_and_serves_and_a_new_bind_address_rebinds_it() {
    let topo = Topology::build();
    let _backend = HttpBackend::start(&topo.internet, "203.0.113.12:8080".parse().unwrap());
    let gw = Gateway::start_ingress(&topo, &(api("api.test") + &edge(&[80])), &[]);
    let pid = gw.pid();
    let ports = caught_up(&gw, 1);
    assert_eq!(port(&ports, 80).map(|p| p["state"].clone()), Some("listening".into()), "{ports:?}");
    assert_eq!(get(&topo, 80, "/first"), (200, "path=/first\nx-added=\n".into()));
    assert_eq!(probe(&topo, 8081), "refused", "nothing listens on 8081 yet");

    let ports = reload(&gw, &topo, &(api("api.test") + &edge(&[80, 8081])), 2);
    let added = port(&ports, 8081).unwrap_or_else(|| panic!("8081 is not reported: {ports:?}"));
    assert_eq!((added["state"].as_str(), added["kind"].as_str()), (Some("listening"), Some("http")), "{added}");
    assert_eq!(get(&topo, 8081, "/added"), (200, "path=/added\nx-added=\n".into()), "the new port routes\n{}", gw.stderr_tail());
    assert_eq!(get(&topo, 80, "/still"), (200, "path=/still\nx-added=\n".into()));
    assert_eq!(gw.pid(), pid, "the same process");
    let (_, stats) = gw.admin_request("GET", "/stats");
    assert!(stats.contains("listener.[::]:8081 http listening"), "{stats}");

    // Bound to the address pod-a reaches only: rebound, and pod-b's side of the node refuses.
    let bound = edge(&[80, 8081]).replace("name: http-8081, protocol: HTTP}", "name: http-8081, protocol: HTTP}\n    bind: 198.18.1.1");
    let ports = reload(&gw, &topo, &(api("api.test") + &bound), 3);
    assert_eq!(port(&ports, 8081).map(|p| p["address"].clone()), Some("198.18.1.1:8081".into()), "{ports:?}");
    assert_eq!(get(&topo, 8081, "/bound"), (200, "path=/bound\nx-added=\n".into()));
    assert_eq!(connect(|a| topo.pod_b.command_outside_cgroup("python3", a), "198.18.2.1", 8081), "refused");
    assert_eq!(connect(|a| topo.pod_b.command_outside_cgroup("python3", a), "198.18.2.1", 80), "open");
    assert_eq!(gw.pid(), pid);
    drop(gw);
    topo.teardown();
}

#[test]
fn a_removed_port_stops_accepting_while_open_connections_go_on() {
    let topo = Topology::build();
    let _backend = HttpBackend::start(&topo.internet, "203.0.113.12:8080".parse().unwrap());
    let gw = Gateway::start_ingress(&topo, &(api("api.test") + &edge(&[80, 8081])), &[]);
    let pid = gw.pid();
    caught_up(&gw, 1);
    // One keep-alive connection on the port that stays, one on the port that goes.
    let mut staying = keep_alive_client(&topo, 80);
    let mut leaving = keep_alive_client(&topo, 8081);
    let (status, _, stay_local) = answer(&staying, 1);
    let (status2, _, leave_local) = answer(&leaving, 1);
    assert_eq!((status, status2), (200, 200), "{}", gw.stderr_tail());

    let ports = reload(&gw, &topo, &(api("api.test") + &edge(&[80])), 2);
    assert!(port(&ports, 8081).is_none(), "8081 is no longer planned: {ports:?}");
    assert_eq!(probe(&topo, 8081), "refused", "the removed port stops accepting");
    assert_eq!(probe(&topo, 80), "open");

    staying.say("again");
    assert_eq!(answer(&staying, 2), (200, "path=/ask2".into(), stay_local), "the same connection, served on");
    leaving.say("again");
    assert_eq!(answer(&leaving, 2), (200, "path=/ask2".into(), leave_local), "a connection of the closed listener may finish");
    assert_eq!(gw.pid(), pid);
    assert!(gw.stderr().contains("gateway listener closed"), "{}", gw.stderr_tail());
    drop((staying, leaving, gw));
    topo.teardown();
}

/// `dir/<name>/` laid out as the kubelet mounts a Secret: `tls.crt` and `tls.key` link through
/// `..data`, which points at a versioned directory; a new version is swapped in by renaming a
/// new `..data` link over the old one, so a reader never sees half of it.
fn mount_secret(dir: &Path, name: &str, version: &str, cert: &Path, key: &Path) {
    let secret = dir.join(name);
    let versioned = secret.join(format!("..{version}"));
    std::fs::create_dir_all(&versioned).unwrap();
    std::fs::copy(cert, versioned.join("tls.crt")).unwrap();
    std::fs::copy(key, versioned.join("tls.key")).unwrap();
    let staged = secret.join("..data_tmp");
    std::os::unix::fs::symlink(format!("..{version}"), &staged).unwrap();
    std::fs::rename(&staged, secret.join("..data")).unwrap();
    for file in ["tls.crt", "tls.key"] {
        let link = secret.join(file);
        if std::fs::symlink_metadata(&link).is_err() {
            std::os::unix::fs::symlink(format!("..data/{file}"), link).unwrap();
        }
    }
}

/// A TLS keep-alive connection to ARGV[1]:443 as `hello.test`, trusting the CA ARGV[2]: a
/// request, then one more each time a line comes on stdin. Prints `answer N STATUS SERIAL
/// LOCAL-ADDRESS`, with the serial of the certificate the connection was set up with.
const TLS_CLIENT: &str = r#"
import socket, ssl, sys
ctx = ssl.create_default_context(cafile=sys.argv[2])
s = ctx.wrap_socket(socket.create_connection((sys.argv[1], 443), timeout=20), server_hostname="hello.test")
f = s.makefile("rb")
n = 0
while True:
    n += 1
    s.sendall(b"GET /tls%d HTTP/1.1\r\nHost: hello.test\r\n\r\n" % n)
    status = read_response(f).split()[1]
    print("answer %d %s %s %s:%d" % ((n, status, s.getpeercert()["serialNumber"]) + s.getsockname()[:2]), flush=True)
    if not sys.stdin.readline():
        break
"#;

/// The serial and subject of the certificate a new connection to NODE:443 is shown.
fn served_certificate(topo: &Topology, ca: &Path) -> String {
    let script = format!(
        "openssl s_client -connect {NODE}:443 -servername hello.test -CAfile {} -verify_return_error </dev/null 2>/dev/null | openssl x509 -noout -serial -subject",
        ca.display()
    );
    let out = topo.pod_a.command_outside_cgroup("sh", &["-c", &script]).output().expect("openssl s_client");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Hex serials compare without leading zeros or case.
fn same_serial(a: &str, b: &str) -> bool {
    a.trim_start_matches('0').eq_ignore_ascii_case(b.trim_start_matches('0'))
}

/// The serial in what [`served_certificate`] printed.
fn shown_serial(shown: &str) -> &str {
    shown.lines().next().unwrap_or_default().trim_start_matches("serial=")
}

#[test]
fn a_rotated_certificate_is_served_to_new_connections_while_an_open_one_goes_on() {
    let topo = Topology::build();
    let _backend = HttpBackend::start(&topo.internet, "203.0.113.12:8080".parse().unwrap());
    let pki = topo.temp.subdir("pki");
    let first = certs::generate(&pki, "hello.test");
    let credentials = topo.temp.subdir("credentials");
    mount_secret(&credentials, "hello-cred", "v1", &first.server_cert, &first.server_key);
    let https = "apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: edge, namespace: default}
spec:
  selector: {istio: ingressgateway}
  servers:
  - port: {number: 443, name: https, protocol: HTTPS}
    hosts: [hello.test]
    tls: {mode: SIMPLE, credentialName: hello-cred}
";
    let gw = Gateway::start_ingress(&topo, &(api("hello.test") + https), &["--credential-dir", &credentials.to_string_lossy()]);
    let pid = gw.pid();
    caught_up(&gw, 1);
    let old_serial = certs::serial(&first.server_cert);
    let shown = served_certificate(&topo, &first.ca_cert);
    assert!(shown.starts_with("serial=") && same_serial(shown_serial(&shown), &old_serial), "{shown}\n{}", gw.stderr_tail());
    let ca = first.ca_cert.to_string_lossy().into_owned();
    let mut open = Script::spawn(topo.pod_a.command_outside_cgroup("/usr/bin/python3", &["-c", &gateway_tests::script::with_read_response(TLS_CLIENT), NODE, &ca]));
    let first_answer = open.wait_line(STEP, "answer 1", |l| l.starts_with("answer 1 "));
    let (_, rest) = first_answer.split_once("answer 1 ").unwrap();
    let fields: Vec<&str> = rest.split(' ').collect();
    assert_eq!(fields[0], "200", "{first_answer}\n{}", gw.stderr_tail());
    assert!(same_serial(fields[1], &old_serial), "{first_answer}");

    // A new certificate for the same host from the same CA, swapped in as the kubelet does.
    let (cert, key) = certs::reissue(&pki, "rotated", "hello.test", "/CN=hello.test/O=rotated");
    let new_serial = certs::serial(&cert);
    assert!(!same_serial(&new_serial, &old_serial));
    mount_secret(&credentials, "hello-cred", "v2", &cert, &key);
    let (status, body) = gw.admin_request("POST", "/reload");
    assert_eq!(status, 200, "{body}");
    let ports = caught_up(&gw, 2);
    assert_eq!(port(&ports, 443).map(|p| p["state"].clone()), Some("listening".into()), "{ports:?}");

    let shown = served_certificate(&topo, &first.ca_cert);
    assert!(same_serial(shown_serial(&shown), &new_serial), "a new connection gets the new certificate: {shown}\n{}", gw.stderr_tail());
    assert!(shown.contains("rotated"), "{shown}");
    open.say("again");
    let second = open.wait_line(STEP, "answer 2", |l| l.starts_with("answer 2 "));
    assert_eq!(second, format!("answer 2 200 {}", rest.split_once(' ').unwrap().1), "the open TLS connection goes on as it was set up");
    assert_eq!(gw.pid(), pid);
    assert!(gw.stderr().contains("re-keyed"), "{}", gw.stderr_tail());
    drop((open, gw));
    topo.teardown();
}

/// In the node namespace: holds 0.0.0.0:ARGV[1] listening until stdin closes.
const PORT_HOLDER: &str = "import socket, sys
s = socket.socket()
s.bind(('0.0.0.0', int(sys.argv[1])))
s.listen()
print('holding', flush=True)
sys.stdin.readline()
";

#[test]
fn a_port_that_cannot_be_bound_is_reported_and_the_others_serve() {
    let topo = Topology::build();
    let _backend = HttpBackend::start(&topo.internet, "203.0.113.12:8080".parse().unwrap());
    let holder = Script::spawn(topo.node.command("/usr/bin/python3", &["-c", PORT_HOLDER, "8082"]));
    holder.wait_line(STEP, "holding", |l| l == "holding");
    let gw = Gateway::start_ingress(&topo, &(api("api.test") + &edge(&[80, 8082])), &[]);
    let pid = gw.pid();

    let ports = caught_up(&gw, 1);
    let held = port(&ports, 8082).unwrap_or_else(|| panic!("8082 is not reported: {ports:?}"));
    assert_eq!(held["state"], "failed", "{held}");
    assert!(held["error"].as_str().is_some_and(|e| e.contains("in use")), "{held}");
    assert_eq!(gw.metric("gateway_listener_failures_total{port=\"8082\",reason=\"bind\"}"), 1);
    assert!(gw.stderr().contains("gateway listener not opened"), "{}", gw.stderr_tail());
    assert_eq!(get(&topo, 80, "/other"), (200, "path=/other\nx-added=\n".into()), "the other listener serves");

    // Freed, it is bound at the next configuration.
    drop(holder);
    let ports = reload(&gw, &topo, &(api("api.test") + &edge(&[80, 8082, 8083])), 2);
    assert_eq!(port(&ports, 8082).map(|p| p["state"].clone()), Some("listening".into()), "{ports:?}");
    assert_eq!(get(&topo, 8082, "/freed"), (200, "path=/freed\nx-added=\n".into()));
    assert_eq!(gw.pid(), pid, "the same process throughout");
    drop(gw);
    topo.teardown();
}
