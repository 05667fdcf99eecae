//! The long-running processes: in the server namespace our echo server,
//! nginx and iperf3 (one per mode port); in the node namespace the gateway
//! (modes B, C, E) and HAProxy (modes D and Dh), both on the proxy CPU.

use std::{
    fs,
    path::{Path, PathBuf},
    thread,
    time::{Duration, Instant},
};

use anyhow::{Context, bail};

use super::{
    modes::{self, Mode, Service},
    procs::{self, Place, Proc},
    topology::Topology,
};

pub struct Servers {
    pub gateway: Proc,
    pub haproxy: Proc,
    // Kept for their Drop, which stops them.
    _echo: Proc,
    _nginx: Proc,
    _iperf: Vec<Proc>,
}

impl Servers {
    /// Starts everything and waits until each is ready. `lifetime` bounds
    /// the echo server.
    pub fn start(topo: &Topology, gateway_bin: &Path, tool: &Path, lifetime: Duration) -> anyhow::Result<Servers> {
        let log = |name: &str| topo.scratch.join(format!("{name}.log"));
        let server = topo.server_place();
        let ports: Vec<String> = Service::Echo.ports().iter().map(u16::to_string).collect();
        let echo_args = vec!["bench".into(), "serve".into(), "--ports".into(), ports.join(","), "--seconds".into(), lifetime.as_secs().to_string()];
        let echo = Proc::spawn("echo server", procs::command(&server, tool, &echo_args), &log("echo"))?;
        let nginx = start_nginx(topo, &server)?;
        let mut iperf = Vec::new();
        for port in Service::Iperf.ports() {
            let args = vec!["-s".into(), "-p".into(), port.to_string()];
            iperf.push(Proc::spawn("iperf3 server", procs::command(&server, "iperf3", &args), &log("iperf3"))?);
        }
        let gateway = start_gateway(topo, gateway_bin)?;
        let haproxy = start_haproxy(topo)?;
        let mut s = Servers { gateway, haproxy, _echo: echo, _nginx: nginx, _iperf: iperf };
        s.wait_ready(topo)?;
        Ok(s)
    }

    /// The proxy a mode's connections pass through, if any.
    pub fn proxy_pid(&self, mode: Mode) -> Option<u32> {
        match mode {
            Mode::Direct => None,
            Mode::Haproxy | Mode::HaproxyHttp => Some(self.haproxy.pid()),
            _ => Some(self.gateway.pid()),
        }
    }

    fn wait_ready(&mut self, topo: &Topology) -> anyhow::Result<()> {
        let node = Place { netns: &topo.node, cpu: procs::Cpu::Load, cgroup_procs: None };
        let url = format!("http://{}/ready", modes::ADMIN);
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            self.gateway.check_alive()?;
            let args = vec!["-sf".into(), "-o".into(), "/dev/null".into(), "--max-time".into(), "1".into(), url.clone()];
            if procs::output(procs::command(&node, "curl", &args), Duration::from_secs(5)).is_ok() {
                break;
            }
            if Instant::now() > deadline {
                bail!("gateway not ready within 30 s; the end of its log:\n{}", self.gateway.log_tail());
            }
            thread::sleep(Duration::from_millis(100));
        }
        self.haproxy.check_alive()?;
        Ok(())
    }

    /// Each mode's connections must reach the echo server and nginx by their
    /// own path: from the client's address when direct, from the node's when
    /// proxied, and at the mode's own server port. A mode is checked for the
    /// services it serves (Dh: HTTP only).
    pub fn check_paths(&self, topo: &Topology, tool: &Path) -> anyhow::Result<()> {
        for mode in Service::Echo.modes() {
            let args = vec!["bench".into(), "probe".into(), "--target".into(), mode.target(Service::Echo).to_string(), "--seconds".into(), "10".into()];
            let out = procs::output(procs::command(&topo.client_place(mode), tool, &args), Duration::from_secs(20))
                .with_context(|| format!("mode {} does not reach the echo server", mode.title()))?;
            let v: serde_json::Value = serde_json::from_str(out.trim()).context("probe output")?;
            let peer = v["peer"].as_str().unwrap_or_default();
            if peer != mode.expected_peer().to_string() {
                bail!("mode {}: the echo server saw {peer}, expected {}", mode.title(), mode.expected_peer());
            }
        }
        for mode in Service::Http.modes() {
            let url = format!("http://{}{PEER_PATH}", mode.target(Service::Http));
            let args = vec!["-sSf".into(), "--max-time".into(), "10".into(), url];
            let out = procs::output(procs::command(&topo.client_place(mode), "curl", &args), Duration::from_secs(20))
                .with_context(|| format!("mode {} does not reach nginx", mode.title()))?;
            let expected = format!("{} {}", mode.expected_peer(), Service::Http.port(mode));
            if out.trim() != expected {
                bail!("mode {}: nginx saw \"{}\" (peer, port), expected \"{expected}\"", mode.title(), out.trim());
            }
        }
        Ok(())
    }
}

fn start_gateway(topo: &Topology, bin: &Path) -> anyhow::Result<Proc> {
    let config = topo.scratch.join("empty.yaml");
    fs::write(&config, "# No resources: --outbound-policy ALLOW_ANY lets every connection through.\n")?;
    let mut args: Vec<String> = vec!["run".into(), "--config".into(), path(&config)];
    args.extend(["--intercept-cgroup".into(), path(&topo.cgroup)]);
    args.extend(["--proxy-address".into(), modes::PROXY_IP.to_string()]);
    args.extend(["--proxy-port".into(), modes::GATEWAY_PORT.to_string()]);
    args.extend(["--admin-address".into(), modes::ADMIN.into(), "--bpffs".into(), path(&topo.bpffs)]);
    args.extend(["--outbound-policy".into(), "ALLOW_ANY".into(), "--dns-port".into(), "0".into()]);
    args.extend(["--iptables-original-dst".into(), "--access-log".into(), "/dev/null".into()]);
    // B, C and E use the default relay (auto); Cc, Cs and Ck name theirs by port.
    for service in Service::ALL {
        args.extend(["--forward".into(), service.forward_arg()]);
        for mode in Mode::ALL {
            args.extend(mode.relay_arg(service).into_iter().flat_map(|r| ["--relay-port".to_string(), r]));
        }
    }
    let mut cmd = procs::command(&topo.proxy_place(), bin, &args);
    cmd.env("RUST_LOG", "info");
    Proc::spawn("gateway", cmd, &topo.scratch.join("gateway.log"))
}

/// HAProxy, one process, two transparent frontends: D in `mode tcp`, Dh in
/// `mode http`. In both a server address of 0.0.0.0 without a port sends
/// each connection to its original destination (HAProxy reads it with
/// SO_ORIGINAL_DST on Linux). In `mode http` the server connections are kept
/// alive and shared by HAProxy's default `http-reuse safe`, which only
/// reuses a connection to the same destination address.
fn start_haproxy(topo: &Topology) -> anyhow::Result<Proc> {
    let cfg = topo.scratch.join("haproxy.cfg");
    fs::write(&cfg, haproxy_config())?;
    let args = vec!["-f".into(), path(&cfg), "-db".into()];
    Proc::spawn("haproxy", procs::command(&topo.proxy_place(), "haproxy", &args), &topo.scratch.join("haproxy.log"))
}

pub fn haproxy_config() -> String {
    format!(
        "global\n    maxconn 9900\n    nbthread 1\n\n\
         defaults\n    timeout connect 5s\n    timeout client 300s\n    timeout server 300s\n\n\
         frontend intercepted\n    mode tcp\n    bind {proxy}:{tcp}\n    default_backend original\n\n\
         backend original\n    mode tcp\n    server original 0.0.0.0\n\n\
         frontend intercepted-http\n    mode http\n    bind {proxy}:{http}\n    default_backend original-http\n\n\
         backend original-http\n    mode http\n    server original 0.0.0.0\n",
        proxy = modes::PROXY_IP,
        tcp = modes::HAPROXY_PORT,
        http = modes::HAPROXY_HTTP_PORT,
    )
}

/// Where nginx answers with the peer's address and the port it was reached
/// at, for the path check.
const PEER_PATH: &str = "/peer";

/// nginx, one process, serving `/1k` (1,024 bytes) on every HTTP mode port,
/// and `/peer`.
fn start_nginx(topo: &Topology, place: &Place<'_>) -> anyhow::Result<Proc> {
    let root = topo.scratch.join("nginx");
    let www = root.join("www");
    fs::create_dir_all(&www)?;
    fs::write(www.join("1k"), vec![b'x'; 1024])?;
    let listens: String = Service::Http.ports().iter().map(|p| format!("        listen {p} backlog=4096;\n")).collect();
    let r = path(&root);
    let conf = format!(
        "daemon off;\nmaster_process off;\nworker_processes 1;\npid {r}/nginx.pid;\nerror_log {r}/error.log warn;\n\
         events {{ worker_connections 8192; }}\n\
         http {{\n    access_log off;\n    keepalive_requests 1000000;\n    keepalive_timeout 300s;\n\
             client_body_temp_path {r}/body;\n    proxy_temp_path {r}/proxy;\n    fastcgi_temp_path {r}/fastcgi;\n\
             uwsgi_temp_path {r}/uwsgi;\n    scgi_temp_path {r}/scgi;\n\
             server {{\n{listens}        root {r}/www;\n        location / {{ }}\n        location = {PEER_PATH} {{ return 200 \"$remote_addr $server_port\"; }}\n    }}\n}}\n"
    );
    let conf_path = root.join("nginx.conf");
    fs::write(&conf_path, conf)?;
    let args = vec!["-p".into(), format!("{r}/"), "-e".into(), format!("{r}/error.log"), "-c".into(), path(&conf_path)];
    Proc::spawn("nginx", procs::command(place, "nginx", &args), &topo.scratch.join("nginx.log"))
}

fn path(p: &Path) -> String {
    p.to_string_lossy().into_owned()
}

/// Where the release build of the tools lives, or an error saying how to build it.
pub fn tool_binary(root: &Path) -> anyhow::Result<PathBuf> {
    let bin = procs::tool_binary(root);
    if !bin.is_file() {
        bail!("{} is missing (cargo build --release -p xtask)", bin.display());
    }
    Ok(bin)
}
