//! The kernel programs' own log (`gateway run --kernel-log`): with it on, the
//! agent prints why a pod's datagram was denied and why its raw packet was
//! dropped; with it off (the default), the log is not in the programs at all:
//! the verifier removed it, so the loaded programs are shorter than with it on.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use gateway_tests::gateway_process::{Gateway, GatewayConfig, empty_config};
use gateway_tests::prereq::tool;
use gateway_tests::topology::Topology;
use gateway_tests::wait;

/// One ICMP echo on a raw socket; prints what became of it.
const RAW_ECHO: &str = "
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
s.settimeout(1.0)
try:
    s.sendto(b'\\x08\\x00\\xf7\\xff\\x00\\x00\\x00\\x00', (sys.argv[1], 0))
    print('sent')
except OSError as e:
    print('send-error', e.errno)
";

fn enforcing_with(topo: &Topology, extra: &[&str]) -> GatewayConfig {
    let mut config = GatewayConfig::enforcing(topo, vec![empty_config()]);
    config.extra_args.extend(extra.iter().map(|s| s.to_string()));
    config
}

/// `bytes_xlated` and `verified_insns` (0 where the kernel does not say) of a pinned program.
fn program_size(pin: &Path) -> (u64, u64) {
    let out = Command::new(tool("bpftool")).args(["-j", "prog", "show", "pinned"]).arg(pin).output().expect("bpftool");
    let shown: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("bpftool prog show pinned {}: {e}: {}", pin.display(), String::from_utf8_lossy(&out.stderr)));
    (shown["bytes_xlated"].as_u64().expect("bytes_xlated"), shown["verified_insns"].as_u64().unwrap_or(0))
}

fn prog(config: &GatewayConfig, name: &str) -> PathBuf {
    config.bpffs.join("progs").join(name)
}

#[test]
fn with_kernel_log_the_agent_prints_why_a_datagram_was_denied_and_a_packet_dropped() {
    let topo = Topology::build();
    let gw = Gateway::start(&topo, enforcing_with(&topo, &["--kernel-log"]));
    let udp = topo.pod_a.command("sh", &["-c", "echo datagram | socat -u - UDP:203.0.113.10:9999"]).output().expect("socat");
    assert!(!udp.status.success(), "connected UDP from the pod must be refused");
    let raw = topo.pod_a.command("python3", &["-c", RAW_ECHO, "203.0.113.10"]).output().expect("python3");
    let raw = String::from_utf8_lossy(&raw.stdout).trim().to_string();
    assert!(raw == "sent" || raw.starts_with("send-error"), "raw echo from the pod: {raw}");

    let wanted = [
        "deny ::ffff:203.0.113.10 port 9999: UDP other than DNS (REGISTRY_ONLY)",
        "backstop drop: protocol 1 port 0 not bound for the proxy (ethertype 800)",
    ];
    let seen = wait::poll(Duration::from_secs(10), Duration::from_millis(100), || {
        let stderr = gw.stderr();
        wanted.iter().all(|w| stderr.contains(w)).then_some(())
    });
    assert!(seen.is_some(), "expected kernel lines {wanted:?}; stderr:\n{}", gw.stderr_tail());
    drop(gw);
    topo.teardown();
}

#[test]
fn without_kernel_log_the_programs_carry_no_logging() {
    let topo = Topology::build();
    let off_config = enforcing_with(&topo, &[]);
    let mut gw = Gateway::start(&topo, off_config.clone());
    let names = ["gw_connect4", "gw_sendmsg6", "gw_egress"];
    let off: Vec<_> = names.iter().map(|n| program_size(&prog(&off_config, n))).collect();
    assert!(!gw.stderr().contains("kernel log on"), "logging must be off by default");
    gw.stop();
    // The same build with the flag: the programs are replaced in place, with logging.
    let on_config = enforcing_with(&topo, &["--kernel-log"]);
    let gw = Gateway::start(&topo, on_config.clone());
    let on: Vec<_> = names.iter().map(|n| program_size(&prog(&on_config, n))).collect();
    for ((name, (off_bytes, off_insns)), (on_bytes, on_insns)) in names.iter().zip(&off).zip(&on) {
        assert!(off_bytes < on_bytes, "{name}: {off_bytes} bytes without the log, {on_bytes} with it: the log was not removed");
        assert!(off_insns <= on_insns, "{name}: verified {off_insns} instructions without the log, {on_insns} with it");
        eprintln!("{name}: {off_bytes} bytes / {off_insns} verified without the log, {on_bytes} / {on_insns} with it");
    }
    drop(gw);
    topo.teardown();
}
