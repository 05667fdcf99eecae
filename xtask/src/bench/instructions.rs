//! Figure 6: the user-space instructions each HTTP request costs the proxy,
//! counted by callgrind while one client sends GETs of nginx's 1 KiB file
//! one after another on one keep-alive connection. Each proxy runs under
//! valgrind on the proxy CPU for this figure only: the gateway's explicit
//! listener (every request decided, logged and counted, as in every mode),
//! the same under `REGISTRY_ONLY` with the host registered by a
//! ServiceEntry and a Sidecar's egress hosts (as a cluster runs it), the
//! gateway as an ingress gateway (a Gateway listener, a VirtualService
//! route to a ServiceEntry's endpoint), and HAProxy in `mode http` and in
//! `mode tcp` (which only relays bytes: the floor a proxy's user space
//! costs when it reads nothing of what it carries).
//!
//! A count of instructions does not move with the machine's load as CPU
//! time does, so its ratio is the steadiest view of the HTTP path's cost.
//! It leaves out the kernel's share (the socket calls, alike for both).
//! Callgrind's cache simulation (a 32 KiB first-level data cache, user
//! space only) also counts the data reads and writes that miss it: how
//! much memory a request touches beyond what stays cached between requests,
//! which instructions alone do not show.

use std::{
    fs,
    path::{Path, PathBuf},
    process::Command,
    thread,
    time::{Duration, Instant},
};

use anyhow::{Context, bail};
use serde_json::{Value, json};

use super::{
    harness::{Harness, args},
    modes::{Mode, Service},
    procs::{self, Cpu, Place, Proc},
};

/// Requests before the count starts: connections opened, caches filled.
const WARM_UP: u32 = 50;
const GATEWAY_LISTEN: &str = "127.0.0.1:15280";
const HAPROXY_LISTEN: &str = "127.0.0.1:15281";
/// The ingress Gateway's server port (it listens on every address).
const INGRESS_PORT: u16 = 15282;

#[derive(Clone, Copy)]
enum Subject {
    Gateway,
    Registry,
    Ingress,
    HaproxyHttp,
    HaproxyTcp,
}

impl Subject {
    fn name(self) -> &'static str {
        match self {
            Subject::Gateway => "gateway",
            Subject::Registry => "gateway-registry-only",
            Subject::Ingress => "gateway-ingress",
            Subject::HaproxyHttp => "haproxy-http",
            Subject::HaproxyTcp => "haproxy-tcp",
        }
    }
}

pub fn measure(h: &mut Harness<'_>) {
    let count = if h.plan.quick { 500 } else { 2_000 };
    let mut section = serde_json::Map::new();
    for subject in [Subject::Gateway, Subject::Registry, Subject::Ingress, Subject::HaproxyHttp, Subject::HaproxyTcp] {
        print!("bench: instructions per request, {}:", subject.name());
        match callgrind_totals(h, subject, count) {
            Ok((totals, kept)) => {
                let per = |n: u64| n as f64 / f64::from(count);
                let (n, l1_data_misses) = (per(totals.instructions), per(totals.l1_data_misses));
                println!(" {n:.0} ({l1_data_misses:.0} first-level data cache misses)");
                if let Some(kept) = kept {
                    h.results.note(format!(
                        "instructions, {}: callgrind dump in {} (callgrind_annotate --inclusive=yes reads it)",
                        subject.name(),
                        kept.display()
                    ));
                }
                section.insert(subject.name().into(), json!({ "per_request": n, "l1_data_misses": l1_data_misses, "requests": count }));
            }
            Err(e) => {
                println!(" failed");
                h.results.note(format!("instructions per request, {}: {e:#}", subject.name()));
            }
        }
    }
    h.results.sections.insert("instructions".into(), Value::Object(section));
}

/// Starts `subject` under callgrind, warms it up, zeroes the counters,
/// sends `count` requests, and returns the dumped totals. With
/// `--profile`, the dump is kept and its path returned.
fn callgrind_totals(h: &Harness<'_>, subject: Subject, count: u32) -> anyhow::Result<(Totals, Option<PathBuf>)> {
    let dir = h.topo.scratch.join("callgrind");
    fs::create_dir_all(&dir)?;
    let out = dir.join(format!("{}.out", subject.name()));
    let upstream = Mode::Direct.target(Service::Http);
    let bpffs = h.topo.bpffs.join("callgrind");
    let (program, listen, proxy_args): (PathBuf, String, Vec<String>) = match subject {
        Subject::Gateway | Subject::Registry => {
            let (file, yaml, policy) = match subject {
                Subject::Registry => ("registry.yaml", registry_config(upstream), "REGISTRY_ONLY"),
                _ => ("empty.yaml", "# No resources: ALLOW_ANY.\n".to_string(), "ALLOW_ANY"),
            };
            let config = dir.join(file);
            fs::write(&config, yaml)?;
            let mut a = gateway_args(&config, &bpffs);
            a.extend(args(&[&"--outbound-policy", &policy, &"--forward", &format!("{GATEWAY_LISTEN}={upstream}")]));
            (h.gateway.to_path_buf(), GATEWAY_LISTEN.to_string(), a)
        }
        Subject::Ingress => {
            let config = dir.join("ingress.yaml");
            fs::write(&config, ingress_config(upstream))?;
            let mut a = gateway_args(&config, &bpffs);
            a.extend(args(&[&"--labels", &"istio=ingressgateway"]));
            (h.gateway.to_path_buf(), format!("127.0.0.1:{INGRESS_PORT}"), a)
        }
        Subject::HaproxyHttp | Subject::HaproxyTcp => {
            let mode = if matches!(subject, Subject::HaproxyTcp) { "tcp" } else { "http" };
            let cfg = dir.join(format!("haproxy-{mode}.cfg"));
            fs::write(&cfg, haproxy_config(upstream, mode))?;
            ("haproxy".into(), HAPROXY_LISTEN.to_string(), args(&[&"-f", &cfg.display(), &"-db"]))
        }
    };
    let mut valgrind = vec!["--tool=callgrind".to_string(), CACHE_SIM.to_string(), format!("--callgrind-out-file={}", out.display())];
    valgrind.push(program.display().to_string());
    valgrind.extend(proxy_args);
    let log = dir.join(format!("{}.log", subject.name()));
    let mut proc = Proc::spawn(subject.name(), procs::command(&h.topo.proxy_place(), "valgrind", &valgrind), &log)?;
    let counted = (|| {
        warm_up(h, &mut proc, &listen)?;
        callgrind_control("--zero", proc.pid())?;
        sequence(h, &listen, count, Duration::from_secs(600))?;
        callgrind_control("--dump", proc.pid())?;
        let (totals, dump) = dumped_totals(&dir, subject.name())?;
        let kept = match &h.profiler {
            Some(profiler) => Some(profiler.keep(&dump, &format!("instructions-{}.callgrind", subject.name()))?),
            None => None,
        };
        Ok((totals, kept))
    })();
    proc.stop();
    if matches!(subject, Subject::Gateway | Subject::Registry | Subject::Ingress) {
        let _ = Command::new(h.gateway).arg("detach").arg("--bpffs").arg(&bpffs).output();
        let _ = fs::remove_dir_all(&bpffs);
    }
    counted
}

/// The warm-up requests, retried while the proxy starts (valgrind is slow
/// to start one).
fn warm_up(h: &Harness<'_>, proc: &mut Proc, listen: &str) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        proc.check_alive()?;
        match sequence(h, listen, WARM_UP, Duration::from_secs(60)) {
            Ok(()) => return Ok(()),
            Err(e) if Instant::now() > deadline => return Err(e.context("the proxy did not answer in time")),
            Err(_) => thread::sleep(Duration::from_millis(500)),
        }
    }
}

/// `count` GETs in sequence, from the node's namespace on the load CPU.
fn sequence(h: &Harness<'_>, listen: &str, count: u32, limit: Duration) -> anyhow::Result<()> {
    let place = Place { netns: &h.topo.node, cpu: Cpu::Load, cgroup_procs: None };
    let a = args(&[&"bench", &"http-sequence", &"--target", &listen, &"--count", &count]);
    procs::output(procs::command(&place, h.tool, &a), limit).map(drop)
}

fn callgrind_control(command: &str, pid: u32) -> anyhow::Result<()> {
    let out = Command::new("callgrind_control").arg(command).arg(pid.to_string()).output().context("running callgrind_control")?;
    if !out.status.success() {
        bail!("callgrind_control {command} failed: {}", String::from_utf8_lossy(&out.stderr).trim());
    }
    Ok(())
}

/// What a dump's `summary:` line counts, of the events [`CACHE_SIM`] asks for.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct Totals {
    pub instructions: u64,
    pub l1_data_misses: u64,
}

/// Callgrind's cache simulation; the dump's `events:` line then reads
/// `Ir Dr Dw I1mr D1mr D1mw ILmr DLmr DLmw`.
const CACHE_SIM: &str = "--cache-sim=yes";

/// The totals of a dump, from its `events:` and `summary:` lines.
pub(super) fn totals(dump: &str) -> Option<Totals> {
    let events: Vec<&str> = dump.lines().find_map(|l| l.strip_prefix("events:"))?.split_whitespace().collect();
    let counts: Vec<u64> = dump.lines().find_map(|l| l.strip_prefix("summary:"))?.split_whitespace().map(str::parse).collect::<Result<_, _>>().ok()?;
    let count = |event: &str| events.iter().position(|e| *e == event).and_then(|i| counts.get(i).copied());
    Some(Totals { instructions: count("Ir")?, l1_data_misses: count("D1mr")? + count("D1mw")? })
}

/// The totals of the newest dump (`NAME.out.N`), and the dump's path.
fn dumped_totals(dir: &Path, name: &str) -> anyhow::Result<(Totals, PathBuf)> {
    let prefix = format!("{name}.out.");
    let newest = fs::read_dir(dir)?
        .filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().to_str()?.strip_prefix(&prefix)?.parse::<u32>().ok().map(|n| (n, e.path())))
        .max_by_key(|(n, _)| *n)
        .context("callgrind wrote no dump")?
        .1;
    // The dump is written as the command is answered; wait for its summary.
    for _ in 0..50 {
        let text = fs::read_to_string(&newest)?;
        if text.lines().any(|l| l.starts_with("summary:")) {
            return Ok((totals(&text).with_context(|| format!("reading the events and summary of {}", newest.display()))?, newest));
        }
        thread::sleep(Duration::from_millis(100));
    }
    bail!("{} has no summary", newest.display())
}

/// What every gateway run here shares: its configuration, no DNS server,
/// access lines written (to nowhere), and its own admin port and bpffs.
fn gateway_args(config: &Path, bpffs: &Path) -> Vec<String> {
    args(&[
        &"run",
        &"--config",
        &config.display(),
        &"--dns-port",
        &0,
        &"--access-log",
        &"/dev/null",
        &"--admin-address",
        &"127.0.0.1:15290",
        &"--proxy-address",
        &"127.0.0.1",
        &"--proxy-port",
        &15299,
        &"--bpffs",
        &bpffs.display(),
    ])
}

/// The client's host (`bench.example`, as the bench's HTTP client sends
/// it) registered on nginx's port with nginx as its static endpoint, and a
/// Sidecar whose egress hosts the decision walks, as a namespace locked to
/// `REGISTRY_ONLY` has.
fn registry_config(upstream: std::net::SocketAddr) -> String {
    let (ip, port) = (upstream.ip(), upstream.port());
    format!(
        "apiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata: {{name: bench, namespace: default}}\n\
         spec:\n  hosts: [bench.example]\n  ports: [{{number: {port}, name: http, protocol: HTTP}}]\n  resolution: STATIC\n  endpoints: [{{address: {ip}}}]\n\
         ---\napiVersion: networking.istio.io/v1\nkind: Sidecar\nmetadata: {{name: default, namespace: default}}\n\
         spec:\n  egress:\n  - hosts: [\"./*\", \"istio-system/*\"]\n  outboundTrafficPolicy: {{mode: REGISTRY_ONLY}}\n"
    )
}

/// An ingress gateway: one HTTP server for every host, routed to nginx,
/// registered as a ServiceEntry with a static endpoint.
fn ingress_config(upstream: std::net::SocketAddr) -> String {
    let (ip, port) = (upstream.ip(), upstream.port());
    format!(
        "apiVersion: networking.istio.io/v1\nkind: Gateway\nmetadata: {{name: bench, namespace: default}}\n\
         spec:\n  selector: {{istio: ingressgateway}}\n  servers:\n  - port: {{number: {INGRESS_PORT}, name: http, protocol: HTTP}}\n    hosts: [\"*\"]\n\
         ---\napiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata: {{name: nginx, namespace: default}}\n\
         spec:\n  hosts: [nginx.bench.test]\n  ports: [{{number: {port}, name: http, protocol: HTTP}}]\n  resolution: STATIC\n  endpoints: [{{address: {ip}}}]\n\
         ---\napiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {{name: nginx, namespace: default}}\n\
         spec:\n  hosts: [\"*\"]\n  gateways: [bench]\n  http:\n  - route: [{{destination: {{host: nginx.bench.test, port: {{number: {port}}}}}}}]\n"
    )
}

/// One thread, as the gateway has one worker on its one proxy CPU. In
/// `mode http` server connections are kept alive, as in mode Dh; in `mode
/// tcp` each client connection has its server connection, as in mode D.
fn haproxy_config(upstream: std::net::SocketAddr, mode: &str) -> String {
    format!(
        "global\n    nbthread 1\n\ndefaults\n    mode {mode}\n    timeout connect 5s\n    timeout client 60s\n    timeout server 60s\n\n\
         frontend callgrind\n    bind {HAPROXY_LISTEN}\n    default_backend nginx\n\n\
         backend nginx\n    server nginx {upstream}\n"
    )
}
