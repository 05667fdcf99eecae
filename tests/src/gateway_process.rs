//! The real `gateway` binary, run in the node namespace of a topology.
//!
//! It is started with `nsenter --net` (never `ip netns exec`, which would hide bpffs and the
//! cgroup2 mount), optionally from inside a cgroup, with stdout and stderr captured per run.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::Duration;

use crate::addresses::{PROXY_V4, PROXY_V6};
use crate::command;
use crate::gateway_log::{self, ConnectionEvent};
use crate::pod_command;
use crate::prereq::tool;
use crate::topology::Topology;
use crate::wait;

/// How long `gateway run` may take to answer 200 on /ready.
pub const READY_TIMEOUT: Duration = Duration::from_secs(30);
/// The proxy port the tests use (the gateway's default).
pub const PROXY_PORT: u16 = 15001;

/// The gateway binary: `$GATEWAY_BIN`, else the workspace's `target/debug/gateway`, if it exists.
pub fn find_gateway_bin() -> Option<PathBuf> {
    let path = std::env::var_os("GATEWAY_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../target/debug/gateway"
            ))
        });
    path.is_file().then_some(path)
}

/// The gateway binary; panics saying where it was looked for.
pub fn gateway_bin() -> PathBuf {
    find_gateway_bin().unwrap_or_else(|| {
        panic!(
            "the gateway binary is missing: set GATEWAY_BIN or build it at {} (cargo build -p gateway-userspace)",
            concat!(env!("CARGO_MANIFEST_DIR"), "/../target/debug/gateway")
        )
    })
}

/// The gateway built with the other variant of the kernel programs (the same behaviour, other
/// instructions): `$GATEWAY_VARIANT_BIN`, which `cargo xtask test` builds and sets.
pub fn variant_gateway_bin() -> PathBuf {
    let path = std::env::var_os("GATEWAY_VARIANT_BIN").map(PathBuf::from);
    match path {
        Some(p) if p.is_file() => p,
        other => panic!(
            "the variant gateway binary is missing (GATEWAY_VARIANT_BIN={other:?}): run the tests with \
             `cargo xtask test`, which builds it (cargo build -p gateway-userspace --features kernel-variant)"
        ),
    }
}

/// The empty Istio configuration fixture.
pub fn empty_config() -> PathBuf {
    PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/fixtures/interceptor/empty.yaml"
    ))
}

/// The command line of `gateway run`, and where the process itself runs.
#[derive(Debug, Clone)]
pub struct GatewayConfig {
    pub configs: Vec<PathBuf>,
    pub intercept_cgroups: Vec<PathBuf>,
    pub proxy_addresses: Vec<IpAddr>,
    pub proxy_port: u16,
    pub admin: SocketAddr,
    pub bpffs: PathBuf,
    /// Run the gateway itself inside this cgroup (given by its directory).
    pub own_cgroup: Option<PathBuf>,
    /// Run as this user id (and group id) instead of root, with no capability
    /// but CAP_NET_BIND_SERVICE, as a gateway Deployment's container runs.
    pub run_as: Option<u32>,
    /// Run in a mount namespace of its own where every mount is read-only, as a
    /// container with `readOnlyRootFilesystem` runs.
    pub read_only_root: bool,
    /// Further `gateway run` arguments, appended as given.
    pub extra_args: Vec<String>,
    /// The binary to run; `None`: [`gateway_bin`].
    pub binary: Option<PathBuf>,
}

impl GatewayConfig {
    /// A gateway serving ISTIO_MUTUAL: the mesh CA in `mesh` (made by `certs::mesh_certs`) and
    /// the identity `<stem>.crt|.key` it presents.
    pub fn with_mesh_identity(mut self, mesh: &Path, stem: &str) -> GatewayConfig {
        let path = |p: PathBuf| p.to_string_lossy().into_owned();
        self.extra_args.extend([
            "--mesh-ca".into(),
            path(mesh.join("ca.crt")),
            "--cert".into(),
            path(mesh.join(format!("{stem}.crt"))),
            "--key".into(),
            path(mesh.join(format!("{stem}.key"))),
        ]);
        self
    }

    /// A node whose workloads speak ISTIO_MUTUAL: the mesh CA and their certificates in `mesh`.
    pub fn with_workload_certs(mut self, mesh: &Path) -> GatewayConfig {
        let path = |p: &Path| p.to_string_lossy().into_owned();
        self.extra_args.extend(["--mesh-ca".into(), path(&mesh.join("ca.crt")), "--workload-certs".into(), path(mesh)]);
        self
    }

    /// Interception only: an empty config with `--outbound-policy ALLOW_ANY`,
    /// so every intercepted connection is carried to where it was going.
    /// Intercepts both pods, proxy on the node's 198.18.0.1 / 2001:db8::1.
    pub fn for_pods(topology: &Topology) -> GatewayConfig {
        let mut config = GatewayConfig::enforcing(topology, vec![empty_config()]);
        config.extra_args = vec!["--outbound-policy".to_owned(), "ALLOW_ANY".to_owned()];
        config
    }

    /// An egress gateway in `topology.egress`: no interception, `--labels
    /// istio=egressgateway`, resolving through `dns_upstream`.
    pub fn egress_gateway(topology: &Topology, configs: Vec<PathBuf>, dns_upstream: &str) -> GatewayConfig {
        GatewayConfig {
            configs,
            intercept_cgroups: Vec::new(),
            proxy_addresses: Vec::new(),
            proxy_port: PROXY_PORT,
            admin: "127.0.0.1:15000".parse().unwrap(),
            bpffs: topology.egress_bpffs.clone(),
            own_cgroup: None,
            run_as: None,
            read_only_root: false,
            extra_args: ["--labels", "istio=egressgateway", "--dns-upstream", dns_upstream].iter().map(|s| s.to_string()).collect(),
            binary: None,
        }
    }

    /// An ingress gateway in the node namespace: no interception,
    /// `--labels istio=ingressgateway`, then `extra` arguments.
    pub fn ingress(topology: &Topology, configs: Vec<PathBuf>, extra: &[&str]) -> GatewayConfig {
        let mut config = GatewayConfig::enforcing(topology, configs);
        config.intercept_cgroups.clear();
        config.extra_args = ["--labels", "istio=ingressgateway"].iter().chain(extra).map(|s| s.to_string()).collect();
        config
    }

    /// Egress enforcement with the default REGISTRY_ONLY policy and `configs`.
    pub fn enforcing(topology: &Topology, configs: Vec<PathBuf>) -> GatewayConfig {
        GatewayConfig {
            configs,
            intercept_cgroups: topology.pod_cgroups(),
            proxy_addresses: vec![IpAddr::V4(PROXY_V4), IpAddr::V6(PROXY_V6)],
            proxy_port: PROXY_PORT,
            admin: "127.0.0.1:15000".parse().unwrap(),
            bpffs: topology.bpffs.clone(),
            own_cgroup: None,
            run_as: None,
            read_only_root: false,
            extra_args: Vec::new(),
            binary: None,
        }
    }

    /// The `gateway run` arguments, for tests that start it themselves.
    pub fn args_for_test(&self) -> Vec<String> {
        self.args()
    }

    fn args(&self) -> Vec<String> {
        let mut args = vec!["run".to_owned()];
        let path = |p: &Path| p.to_string_lossy().into_owned();
        for c in &self.configs {
            args.extend(["--config".to_owned(), path(c)]);
        }
        for cg in &self.intercept_cgroups {
            args.extend(["--intercept-cgroup".to_owned(), path(cg)]);
        }
        for a in &self.proxy_addresses {
            args.extend(["--proxy-address".to_owned(), a.to_string()]);
        }
        args.extend(["--proxy-port".to_owned(), self.proxy_port.to_string()]);
        args.extend(["--admin-address".to_owned(), self.admin.to_string()]);
        args.extend(["--bpffs".to_owned(), path(&self.bpffs)]);
        args.extend(self.extra_args.iter().cloned());
        args
    }
}

/// A `gateway run` process (one at a time; `restart` starts the next run with the same config).
pub struct Gateway {
    config: GatewayConfig,
    node_netns: PathBuf,
    log_dir: PathBuf,
    child: Option<Child>,
    runs: u32,
}

impl Gateway {
    /// Starts `gateway run` in the node namespace and waits until /ready answers 200.
    pub fn start(topology: &Topology, config: GatewayConfig) -> Gateway {
        Self::start_in(topology, &topology.node, config)
    }

    /// Starts `gateway run` in `netns` (e.g. the egress gateway's).
    /// An ingress gateway in the node namespace serving `yaml`.
    pub fn start_ingress(topology: &Topology, yaml: &str, extra: &[&str]) -> Gateway {
        let dir = topology.temp.subdir("istio");
        std::fs::write(dir.join("gateway.yaml"), yaml).expect("write the gateway config");
        Gateway::start(topology, GatewayConfig::ingress(topology, vec![dir], extra))
    }

    pub fn start_in(topology: &Topology, netns: &crate::netns::NetNs, config: GatewayConfig) -> Gateway {
        // One log directory per gateway, so two in one namespace keep their own logs.
        let name = (1..)
            .map(|n| match n {
                1 => format!("gateway-{}", netns.name()),
                n => format!("gateway-{}-{n}", netns.name()),
            })
            .find(|d| !topology.temp.path().join(d).exists())
            .expect("a free log directory name");
        let log_dir = topology.temp.subdir(&name);
        let mut gateway = Gateway {
            config,
            node_netns: netns.path(),
            log_dir,
            child: None,
            runs: 0,
        };
        gateway.spawn_and_wait_ready();
        gateway
    }

    pub fn config(&self) -> &GatewayConfig {
        &self.config
    }

    fn log_file(&self, run: u32, stream: &str) -> PathBuf {
        self.log_dir.join(format!("run-{run}.{stream}"))
    }

    fn spawn_and_wait_ready(&mut self) {
        self.spawn_and_wait_for("/ready");
    }

    /// Starts `gateway run` and waits only until it is alive (`/healthz`), for
    /// tests of what keeps it from being ready; `wait_ready` then waits for that.
    pub fn start_alive(topology: &Topology, config: GatewayConfig) -> Gateway {
        let log_dir = topology.temp.subdir(&format!("gateway-{}", topology.node.name()));
        let mut gateway = Gateway { config, node_netns: topology.node.path(), log_dir, child: None, runs: 0 };
        gateway.spawn_and_wait_for("/healthz");
        gateway
    }

    /// Waits until `/ready` answers 200; panics (with stderr) on timeout.
    pub fn wait_ready(&mut self) {
        let ready = wait::poll(READY_TIMEOUT, Duration::from_millis(100), || (self.admin_status("/ready") == Some(200)).then_some(()));
        assert!(ready.is_some(), "gateway did not become ready within {READY_TIMEOUT:?}; stderr:\n{}", self.stderr_tail());
    }

    fn spawn_and_wait_for(&mut self, path: &str) {
        assert!(self.child.is_none(), "a gateway run is still going");
        let bin = self.config.binary.clone().unwrap_or_else(gateway_bin);
        self.runs += 1;
        let mut args = self.config.args();
        let mut program = bin.clone();
        if let Some(uid) = self.config.run_as {
            let id = uid.to_string();
            let privileges = [
                format!("--reuid={id}"), format!("--regid={id}"), "--clear-groups".into(),
                "--inh-caps=-all,+net_bind_service".into(), "--ambient-caps=+net_bind_service".into(),
                "--bounding-set=-all,+net_bind_service".into(), "--".into(), bin.to_string_lossy().into_owned(),
            ];
            args.splice(0..0, privileges);
            program = tool("setpriv");
        }
        if self.config.read_only_root {
            // Every mount of a private mount namespace remounted read-only, then the gateway.
            let script = "awk '{print $2}' /proc/self/mounts | while read -r m; do \
                          mount -o remount,bind,ro \"$(printf '%b' \"$m\")\" 2>/dev/null; done; exec \"$@\"";
            let wrapped = ["--mount", "--propagation", "private", "--", "sh", "-c", script, "sh"];
            let mut all: Vec<String> = wrapped.iter().map(|s| s.to_string()).collect();
            all.push(program.to_string_lossy().into_owned());
            all.append(&mut args);
            args = all;
            program = tool("unshare");
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let mut cmd = match &self.config.own_cgroup {
            Some(cg) => pod_command::in_cgroup_and_netns(
                &cg.join("cgroup.procs"),
                &self.node_netns,
                &program,
                &args,
            ),
            None => pod_command::in_netns_only(&self.node_netns, &program, &args),
        };
        let create = |path: PathBuf| {
            std::fs::File::create(&path)
                .unwrap_or_else(|e| panic!("cannot create {}: {e}", path.display()))
        };
        cmd.stdin(Stdio::null())
            .stdout(create(self.log_file(self.runs, "stdout")))
            .stderr(create(self.log_file(self.runs, "stderr")))
            .env("RUST_BACKTRACE", "1")
            .env("NO_COLOR", "1");
        let described = command::describe(&cmd);
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start `{described}`: {e}"));
        self.child = Some(child);
        let ready = wait::poll(READY_TIMEOUT, Duration::from_millis(100), || {
            if let Some(status) = self.exit_status() {
                panic!(
                    "gateway exited before it was ready ({status}); command: {described}\nstderr:\n{}",
                    self.stderr_tail()
                );
            }
            (self.admin_status(path) == Some(200)).then_some(())
        });
        if ready.is_none() {
            panic!(
                "gateway did not answer 200 on {path} within {READY_TIMEOUT:?}; command: {described}\nstderr:\n{}",
                self.stderr_tail()
            );
        }
    }

    /// The exit status if the current run has ended.
    fn exit_status(&mut self) -> Option<ExitStatus> {
        self.child
            .as_mut()
            .and_then(|c| c.try_wait().ok().flatten())
    }

    /// The pid of the current run.
    pub fn pid(&self) -> u32 {
        self.child
            .as_ref()
            .expect("the gateway is not running")
            .id()
    }

    /// GET `path` on the admin address from inside the node namespace; the HTTP status, if any.
    pub fn admin_status(&self, path: &str) -> Option<u16> {
        let url = format!("http://{}{path}", self.config.admin);
        let mut curl = pod_command::in_netns_only(
            &self.node_netns,
            tool("curl"),
            &[
                "-s",
                "-o",
                "/dev/null",
                "-w",
                "%{http_code}",
                "--noproxy",
                "*",
                "--max-time",
                "2",
                &url,
            ],
        );
        let out = command::run(&mut curl, Duration::from_secs(10));
        String::from_utf8_lossy(&out.stdout)
            .trim()
            .parse()
            .ok()
            .filter(|&code| code != 0)
    }

    /// `method` on `path` of the admin address from inside the node namespace:
    /// (status, body); status 0 when nothing answered.
    pub fn admin_request(&self, method: &str, path: &str) -> (u16, String) {
        let url = format!("http://{}{path}", self.config.admin);
        let mut curl = pod_command::in_netns_only(
            &self.node_netns,
            tool("curl"),
            &["-s", "-X", method, "-w", "\n%{http_code}", "--noproxy", "*", "--max-time", "5", &url],
        );
        let out = command::run(&mut curl, Duration::from_secs(10));
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let (body, code) = text.rsplit_once('\n').unwrap_or(("", text.as_str()));
        (code.trim().parse().unwrap_or(0), body.to_string())
    }

    /// GET `path` as JSON; panics with context unless it answers 200 with JSON.
    pub fn admin_json(&self, path: &str) -> serde_json::Value {
        let (status, body) = self.admin_request("GET", path);
        assert_eq!(status, 200, "GET {path}: {body}\nstderr:\n{}", self.stderr_tail());
        serde_json::from_str(&body).unwrap_or_else(|e| panic!("GET {path} is not JSON ({e}): {body}"))
    }

    /// The gateway's JSON lines of one `event` kind (`connection`, `request`).
    pub fn json_lines(&self, event: &str) -> Vec<serde_json::Value> {
        self.stdout()
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter(|v| v["event"] == event)
            .collect()
    }

    /// Waits (bounded) for a line of `event` kind satisfying `pred`; panics
    /// with the whole log when none comes.
    pub fn wait_json_line(&self, event: &str, what: &str, pred: impl Fn(&serde_json::Value) -> bool) -> serde_json::Value {
        wait::poll(Duration::from_secs(10), Duration::from_millis(50), || {
            self.json_lines(event).into_iter().find(|v| pred(v))
        })
        .unwrap_or_else(|| panic!("no {event} line for {what}; stdout:\n{}\nstderr:\n{}", self.stdout(), self.stderr_tail()))
    }

    /// The value of the first `/metrics` sample line starting with `sample`
    /// (name and labels); 0 when there is none.
    pub fn metric(&self, sample: &str) -> u64 {
        let (_, text) = self.admin_request("GET", "/metrics");
        text.lines()
            .find(|l| l.starts_with(sample))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    }

    /// Sends `signal` to the current run.
    pub fn signal(&self, signal: i32) {
        // SAFETY: kill has no memory-safety preconditions.
        unsafe { libc::kill(self.pid() as i32, signal) };
    }

    /// Everything the current (or last) run wrote to stderr.
    pub fn stderr(&self) -> String {
        std::fs::read_to_string(self.log_file(self.runs, "stderr")).unwrap_or_default()
    }

    /// SIGKILL, as a crash would; waits for the process to be gone.
    pub fn kill9(&mut self) {
        let mut child = self.child.take().expect("the gateway is not running");
        let _ = child.kill();
        let _ = child.wait();
    }

    /// Waits (at most `timeout`) for the current run to end by itself, as an
    /// out-of-memory kill ends it; its exit status, or `None` if it still runs.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let status = wait::poll(timeout, Duration::from_millis(20), || self.exit_status())?;
        self.child = None;
        Some(status)
    }

    /// Starts the next run with the same configuration, and waits until it is ready.
    pub fn restart(&mut self) {
        self.spawn_and_wait_ready();
    }

    /// SIGTERM, then waits up to 10 s; returns the exit status, or `None` if it had to be killed.
    pub fn stop(&mut self) -> Option<ExitStatus> {
        let mut child = self.child.take()?;
        // SAFETY: kill has no memory-safety preconditions.
        unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
        command::wait_bounded(&mut child, Duration::from_secs(10))
    }

    /// `gateway detach --bpffs <dir>`; panics with its output unless it succeeds.
    pub fn detach(&self) {
        let mut cmd = Command::new(self.config.binary.clone().unwrap_or_else(gateway_bin));
        cmd.arg("detach").arg("--bpffs").arg(&self.config.bpffs);
        command::run_ok(&mut cmd, Duration::from_secs(30));
    }

    /// Everything every run wrote to stdout, in order.
    pub fn stdout(&self) -> String {
        (1..=self.runs)
            .map(|run| std::fs::read_to_string(self.log_file(run, "stdout")).unwrap_or_default())
            .collect()
    }

    /// The last 60 lines the current (or last) run wrote to stderr, for failure messages.
    pub fn stderr_tail(&self) -> String {
        let text = std::fs::read_to_string(self.log_file(self.runs, "stderr")).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(60)..].join("\n")
    }

    /// The connection events logged so far by all runs.
    pub fn events(&self) -> Vec<ConnectionEvent> {
        gateway_log::parse_connection_events(&self.stdout())
    }

    /// Waits until at least `n` connection events were logged; panics (with stderr) on timeout.
    pub fn wait_for_events(&self, n: usize, timeout: Duration) -> Vec<ConnectionEvent> {
        let found = wait::poll(timeout, Duration::from_millis(50), || {
            let events = self.events();
            (events.len() >= n).then_some(events)
        });
        found.unwrap_or_else(|| {
            panic!(
                "expected at least {n} connection lines from the gateway within {timeout:?}, got {}:\n{}\ngateway stderr:\n{}",
                self.events().len(),
                self.stdout(),
                self.stderr_tail()
            )
        })
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        // A failing test shows what the gateway said; GWT_SHOW_GATEWAY_LOGS=1 shows it always.
        if std::thread::panicking() || std::env::var_os("GWT_SHOW_GATEWAY_LOGS").is_some() {
            eprintln!(
                "--- gateway stdout ---\n{}--- gateway stderr (last run, tail) ---\n{}",
                self.stdout(),
                self.stderr_tail()
            );
        }
    }
}
