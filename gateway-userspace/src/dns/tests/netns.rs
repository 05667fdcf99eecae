//! A private network namespace per test, with dnsmasq as the upstream
//! resolver on 127.0.0.1:5300. Nothing links it to the machine's network.
//! Both go away on drop, even when the test panics; namespaces a crashed
//! earlier run left behind are removed on the next run.

use std::{
    fs::File,
    future::Future,
    net::SocketAddr,
    process::{Child, Command, Stdio},
    sync::{
        Once,
        atomic::{AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use hickory_proto::{
    op::{Message, Query},
    rr::{Name, RecordType},
};
use nix::sched::{CloneFlags, setns};
use tokio::net::UdpSocket;

const PREFIX: &str = "dnstest-";
pub(super) const UPSTREAM: &str = "127.0.0.1:5300";

/// dnsmasq's records: `upstream.test` A only, `both.test` A and AAAA,
/// `alias.test` a CNAME to `both.test`, `big.test` more A records than fit in
/// one of our UDP queries' answers; all with a TTL of 60 s. `nowhere.test`
/// is NXDOMAIN; any other name is REFUSED, dnsmasq having no upstream.
fn dnsmasq_records() -> Vec<String> {
    let mut args = vec![
        "--local-ttl=60".to_string(),
        "--address=/upstream.test/198.51.100.7".to_string(),
        "--host-record=both.test,198.51.100.8,2001:db8::8".to_string(),
        "--cname=alias.test,both.test".to_string(),
        "--address=/nowhere.test/".to_string(),
    ];
    args.extend((1..=100).map(|i| format!("--host-record=big.test,198.18.0.{i}")));
    args
}

pub(super) struct TestNet {
    name: String,
    dnsmasq: Option<Child>,
}

impl TestNet {
    /// A namespace with loopback up and dnsmasq listening in it.
    pub(super) fn with_dnsmasq() -> Self {
        static CLEANUP: Once = Once::new();
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        CLEANUP.call_once(remove_stale);
        let name = format!("{PREFIX}{}-{}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed));
        run(Command::new("ip").args(["netns", "add", &name]));
        let mut net = Self { name, dnsmasq: None };
        run(Command::new("ip").args(["-n", &net.name, "link", "set", "lo", "up"]));
        let child = Command::new("nsenter")
            .arg(format!("--net=/run/netns/{}", net.name))
            .args(["dnsmasq", "--no-daemon", "--no-resolv", "--no-hosts", "--pid-file"])
            .args(["--port", "5300", "--listen-address", "127.0.0.1", "--bind-interfaces"])
            .args(dnsmasq_records())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|error| {
                panic!("cannot start dnsmasq in {} (Debian package dnsmasq-base): {error}", net.name)
            });
        net.dnsmasq = Some(child);
        net
    }

    /// Stops dnsmasq, leaving the upstream address unanswered.
    pub(super) fn stop_dnsmasq(&mut self) {
        if let Some(mut child) = self.dnsmasq.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Runs `test` on a thread of its own inside the namespace, on a
    /// single-threaded runtime, so every socket it makes lives there.
    pub(super) fn run<F, Fut>(&self, test: F) -> Fut::Output
    where
        F: FnOnce() -> Fut + Send,
        Fut: Future,
        Fut::Output: Send,
    {
        let handle = format!("/run/netns/{}", self.name);
        std::thread::scope(|scope| {
            let thread = scope.spawn(move || {
                let netns = File::open(&handle).unwrap_or_else(|error| panic!("open {handle}: {error}"));
                setns(&netns, CloneFlags::CLONE_NEWNET).unwrap_or_else(|error| panic!("setns {handle}: {error}"));
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap_or_else(|error| panic!("tokio runtime: {error}"));
                runtime.block_on(async move {
                    tokio::time::timeout(Duration::from_secs(60), test())
                        .await
                        .unwrap_or_else(|_| panic!("test did not finish within 60 s"))
                })
            });
            thread.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic))
        })
    }
}

impl Drop for TestNet {
    fn drop(&mut self) {
        self.stop_dnsmasq();
        let _ = Command::new("ip").args(["netns", "del", &self.name]).status();
    }
}

/// Waits until the upstream answers a query, for at most 5 s.
pub(super) async fn wait_for_upstream(upstream: SocketAddr) {
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut query = Message::query();
    query.add_query(Query::query(Name::from_ascii("upstream.test.").unwrap_or_default(), RecordType::A));
    let bytes = query.to_vec().unwrap_or_else(|error| panic!("encode probe: {error}"));
    while Instant::now() < deadline {
        if let Ok(socket) = UdpSocket::bind("127.0.0.1:0").await
            && socket.send_to(&bytes, upstream).await.is_ok()
        {
            let mut buffer = [0u8; 512];
            let reply = tokio::time::timeout(Duration::from_millis(200), socket.recv_from(&mut buffer)).await;
            if matches!(reply, Ok(Ok(_))) {
                return;
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("dnsmasq did not answer on {upstream} within 5 s");
}

/// Removes the namespaces of test processes that no longer run, and ends
/// what those tests had started inside them.
fn remove_stale() {
    let Ok(output) = Command::new("ip").args(["netns", "list"]).output() else {
        panic!("`ip` (Debian package iproute2) is missing");
    };
    for line in String::from_utf8_lossy(&output.stdout).lines() {
        let Some(name) = line.split_whitespace().next() else { continue };
        let Some(rest) = name.strip_prefix(PREFIX) else { continue };
        let Some(pid) = rest.split('-').next() else { continue };
        if std::path::Path::new(&format!("/proc/{pid}")).exists() {
            continue;
        }
        if let Ok(pids) = Command::new("ip").args(["netns", "pids", name]).output() {
            for pid in String::from_utf8_lossy(&pids.stdout).split_whitespace() {
                let _ = Command::new("kill").arg(pid).status();
            }
        }
        let _ = Command::new("ip").args(["netns", "del", name]).status();
    }
}

fn run(command: &mut Command) {
    let status = command.status().unwrap_or_else(|error| panic!("{command:?}: {error} (needs iproute2 and root)"));
    assert!(status.success(), "{command:?} failed: {status} (the DNS server tests need root)");
}
