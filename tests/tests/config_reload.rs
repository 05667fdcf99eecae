//! Live reload under load: a pod keeps opening connections through the
//! proxy while the configuration changes; good changes apply within 2 s, bad
//! ones are rejected, and no connection is disturbed either way.

use std::fs;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use gateway_tests::addresses::*;
use gateway_tests::client::{EchoRun, run_echo_client};
use gateway_tests::echo_server::EchoServer;
use gateway_tests::gateway_process::{Gateway, GatewayConfig};
use gateway_tests::topology::Topology;
use gateway_tests::wait;

const CLIENT: &str = env!("CARGO_BIN_EXE_gw-test-client");
const APPLY_WITHIN: Duration = Duration::from_secs(2);

fn service_entry(name: &str, host: &str) -> String {
    format!(
        "apiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata:\n  name: {name}\n  namespace: default\nspec:\n  hosts: [{host}]\n  addresses: [203.0.113.10/32]\n  ports:\n  - number: 7\n    name: tcp-echo\n    protocol: TCP\n  location: MESH_EXTERNAL\n  resolution: NONE\n"
    )
}

fn generation(gw: &Gateway) -> u64 {
    gw.admin_json("/config_dump")["generation"].as_u64().expect("config_dump has a generation")
}

/// Waits for `want`; returns how long it took. Panics after `APPLY_WITHIN`.
fn wait_generation(gw: &Gateway, want: u64, what: &str) -> Duration {
    let start = Instant::now();
    let got = wait::poll(APPLY_WITHIN, Duration::from_millis(20), || (generation(gw) == want).then_some(()));
    assert!(got.is_some(), "{what}: generation {want} not live within {APPLY_WITHIN:?} (now {}); stderr:\n{}", generation(gw), gw.stderr_tail());
    start.elapsed()
}

/// Opens connections from pod-a in a loop until told to stop (bounded in
/// count and time); returns (connections, failures with context).
fn start_load(topo: &Topology, stop: Arc<AtomicBool>) -> thread::JoinHandle<(usize, Vec<String>)> {
    let pod = topo.pod_a.netns.path();
    let procs = topo.pod_a.cgroup.path().join("cgroup.procs");
    thread::spawn(move || {
        let (mut total, mut failures) = (0, Vec::new());
        let deadline = Instant::now() + Duration::from_secs(90);
        for _ in 0..2_000 {
            if stop.load(Ordering::Relaxed) || Instant::now() > deadline {
                break;
            }
            let mut run = EchoRun::to(&[sock(INTERNET_V4, 7)]);
            run.per_target = 5;
            run.bytes = 4096;
            // A client that fails exits non-zero, and run_echo_client panics with its output.
            let summary = run_echo_client(|args| gateway_tests::pod_command::in_cgroup_and_netns(&procs, &pod, CLIENT, args), &run);
            total += summary.results.len();
            failures.extend(summary.results.iter().filter(|r| !r.intact).map(|r| format!("{r:?}")));
        }
        (total, failures)
    })
}

#[test]
fn reload_applies_good_changes_rejects_bad_ones_and_keeps_connections_working() {
    let topo = Topology::build();
    let _server = EchoServer::start(&topo.internet, &[7]);
    // A ConfigMap-style directory: files are symlinks into ..data, itself a symlink.
    let dir = topo.temp.subdir("config");
    let version = |n: u32, body: &str| {
        let v = dir.join(format!("..v{n}"));
        fs::create_dir_all(&v).unwrap();
        fs::write(v.join("egress.yaml"), body).unwrap();
    };
    version(1, &service_entry("echo", "echo.internet.test"));
    std::os::unix::fs::symlink("..v1", dir.join("..data")).unwrap();
    std::os::unix::fs::symlink("..data/egress.yaml", dir.join("egress.yaml")).unwrap();

    // REGISTRY_ONLY: the load's connections pass only while `echo` stays registered.
    let gw = Gateway::start(&topo, GatewayConfig::enforcing(&topo, vec![dir.clone()]));
    assert_eq!(generation(&gw), 1);

    let stop = Arc::new(AtomicBool::new(false));
    let load = start_load(&topo, stop.clone());
    thread::sleep(Duration::from_millis(300));

    // 1. A good change, by the kubelet's atomic symlink swap.
    version(2, &(service_entry("echo", "echo.internet.test") + "---\n" + &service_entry("echo2", "echo2.internet.test")));
    swap_data(&dir, "..v2");
    let took = wait_generation(&gw, 2, "ConfigMap symlink swap");
    eprintln!("symlink-swap reload applied in {took:?}");
    let dump = gw.admin_json("/config_dump");
    let text = dump.to_string();
    assert!(text.contains("echo2.internet.test"), "config_dump lacks the new entry: {text}");
    assert!(dump["loaded_at"].as_str().is_some_and(|t| t.ends_with('Z')), "loaded_at: {dump}");

    // 2. A bad change: rejected, generation stays, a metric counts it, the log says where.
    version(3, "apiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata:\n  name: broken\nspec:\n  hosts: [x.test]\n  resolution: SOMETIMES\n");
    swap_data(&dir, "..v3");
    let rejected = wait::poll(Duration::from_secs(5), Duration::from_millis(50), || {
        gw.admin_request("GET", "/metrics").1.contains("gateway_config_reloads_total{result=\"Rejected\"} 1").then_some(())
    });
    assert!(rejected.is_some(), "the bad reload was not counted:\n{}", gw.admin_request("GET", "/metrics").1);
    assert_eq!(generation(&gw), 2, "a bad config must not replace the running one");
    let stderr = gw.stderr();
    assert!(stderr.contains("egress.yaml:7:") && stderr.contains("spec.resolution"), "finding with file, line and field expected in the log:\n{stderr}");

    // 3. POST /reload with the bad config: 422 with the findings.
    let (status, body) = gw.admin_request("POST", "/reload");
    assert_eq!(status, 422, "POST /reload on a bad config: {body}");
    assert!(body.contains("\"rejected\"") && body.contains("spec.resolution"), "{body}");

    // 4. Fixed again, applied by SIGHUP as well as by the watcher.
    version(4, &service_entry("echo", "echo.internet.test"));
    swap_data(&dir, "..v4");
    gw.signal(libc::SIGHUP);
    wait_generation(&gw, 3, "fixed config");
    let (status, body) = gw.admin_request("POST", "/reload");
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("\"unchanged\""), "an unchanged config keeps its generation: {body}");

    stop.store(true, Ordering::Relaxed);
    let (total, failures) = load.join().expect("the load thread panicked: a connection failed during reloads (its output is above)");
    eprintln!("{total} connections ran through the proxy during the reloads");
    assert!(total >= 20, "the load ran only {total} connections");
    assert!(failures.is_empty(), "{} of {total} connections failed during reloads:\n{}", failures.len(), failures.join("\n"));
    drop(gw);
    topo.teardown();
}

#[test]
fn run_refuses_a_config_with_errors_and_names_the_finding() {
    let topo = Topology::build();
    let bad = topo.temp.subdir("bad").join("gw.yaml");
    fs::write(&bad, "apiVersion: networking.istio.io/v1beta1\nkind: Gateway\nmetadata:\n  name: gw\nspec:\n  selector: {istio: ingressgateway}\n  servers:\n  - port: {number: 70000, name: http, protocol: HTTP}\n    hosts: ['*']\n").unwrap();
    let mut config = GatewayConfig::for_pods(&topo);
    config.configs = vec![bad.clone()];
    let args = config.args_for_test();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = gateway_tests::pod_command::in_netns_only(&topo.node.path(), gateway_tests::gateway_process::gateway_bin(), &args)
        .output()
        .expect("run gateway");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "gateway run must refuse a config with errors; stderr:\n{stderr}");
    assert!(stderr.contains("gw.yaml:8:") && stderr.contains("spec.servers[0].port.number"), "{stderr}");
    assert!(!Path::new(&config.bpffs).join("maps").exists(), "nothing may be loaded for a refused config");
    topo.teardown();
}

fn swap_data(dir: &Path, target: &str) {
    let tmp = dir.join("..data_tmp");
    std::os::unix::fs::symlink(target, &tmp).unwrap();
    fs::rename(&tmp, dir.join("..data")).unwrap();
}
