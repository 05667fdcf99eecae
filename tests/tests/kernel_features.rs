//! The start-up probe of kernel features, for real on this kernel: every
//! feature is found here; a required one that is missing (pretended with
//! `GATEWAY_KERNEL_PRETEND_MISSING`, which can only take features away)
//! stops the gateway with one error naming it and the minimum kernel, before
//! anything is loaded; a missing relay feature turns `--relay sockmap` into
//! copying, said in the log, while interception goes on.

use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use gateway_tests::addresses::*;
use gateway_tests::client::{EchoRun, run_echo_client};
use gateway_tests::gateway_process::{Gateway, GatewayConfig, gateway_bin};
use gateway_tests::pod_command;
use gateway_tests::topology::Topology;

const CLIENT: &str = env!("CARGO_BIN_EXE_gw-test-client");

/// A wrapper that runs the real gateway with `GATEWAY_KERNEL_PRETEND_MISSING=keys`.
fn pretending(topo: &Topology, keys: &str) -> PathBuf {
    let path = topo.temp.subdir("bin").join("gateway-pretending");
    let script = format!("#!/bin/sh\nGATEWAY_KERNEL_PRETEND_MISSING={keys} exec {} \"$@\"\n", gateway_bin().display());
    std::fs::write(&path, script).expect("write the wrapper");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod the wrapper");
    path
}

#[test]
fn this_kernel_has_every_feature_the_programs_use() {
    let topo = Topology::build();
    let gw = Gateway::start(&topo, GatewayConfig::for_pods(&topo));
    let stderr = gw.stderr();
    assert!(stderr.contains("kernel features probed: all present"), "stderr:\n{stderr}");
    drop(gw);
    topo.teardown();
}

#[test]
fn a_missing_required_feature_stops_the_gateway_naming_it_and_the_minimum_kernel() {
    let topo = Topology::build();
    let config = GatewayConfig::for_pods(&topo);
    let wrapper = pretending(&topo, "attach-getpeername,cgroup-link");
    let args = config.args_for_test();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let output = pod_command::in_netns_only(&topo.node.path(), &wrapper, &args)
        .stdin(Stdio::null())
        .env("NO_COLOR", "1")
        .output()
        .expect("run the gateway");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "the gateway must refuse to start; stderr:\n{stderr}");
    for expected in [
        "lacks what the kernel programs need",
        "bpf_link for cgroup programs (BPF_LINK_CREATE, BPF_LINK_UPDATE) (Linux 5.7)",
        "cgroup/getpeername4|6 hooks (gw_getpeername4|6) (Linux 5.8)",
        "the minimum kernel is Linux 5.8",
    ] {
        assert!(stderr.contains(expected), "missing {expected:?} in stderr:\n{stderr}");
    }
    // Refused before anything was loaded: nothing pinned, nothing attached.
    let pinned = std::fs::read_dir(config.bpffs.join("progs")).map(|d| d.count()).unwrap_or(0);
    assert_eq!(pinned, 0, "programs pinned under {} despite the refusal", config.bpffs.display());
    topo.teardown();
}

#[test]
fn a_missing_relay_feature_copies_instead_and_says_so() {
    let topo = Topology::build();
    let server = gateway_tests::echo_server::EchoServer::start(&topo.internet, &[7]);
    let mut config = GatewayConfig::for_pods(&topo);
    config.binary = Some(pretending(&topo, "map-sockhash"));
    config.extra_args.extend(["--relay".to_owned(), "sockmap".to_owned()]);
    let gw = Gateway::start(&topo, config);
    let stderr = gw.stderr();
    assert!(
        stderr.contains("kernel relay unavailable, decided streams are copied: this kernel lacks SOCKHASH maps"),
        "stderr:\n{stderr}"
    );
    let run = EchoRun { bytes: 64 * 1024, timeout: Duration::from_secs(30), ..EchoRun::to(&[sock(INTERNET_V4, 7)]) };
    let summary = run_echo_client(|a| topo.pod_a.command(CLIENT, a), &run);
    summary.assert_all_intact("echo through the proxy with the relay off");
    let local = summary.results[0].local.expect("local address");
    let line = gw.wait_json_line("connection", "the echo's line", |v| v["src"] == local.to_string());
    assert_eq!((line["relay"].as_str(), line["outcome"].as_str()), (Some("copy"), Some("closed")), "{line}");
    drop((gw, server));
    topo.teardown();
}
