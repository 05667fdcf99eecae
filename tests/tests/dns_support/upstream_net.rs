//! A private network namespace per test, with dnsmasq as the upstream
//! resolver on 127.0.0.1:5300. Nothing links it to the machine's network.
//! Both go away on drop, even when the test panics; what a crashed earlier
//! run left behind is removed by the harness's cleanup on the next run.

use std::{
    future::Future,
    net::SocketAddr,
    process::{Child, Stdio},
    time::{Duration, Instant},
};

use gateway_tests::{
    cleanup,
    command::{self, SHORT},
    names,
    netns::{NetNs, enter_on_this_thread},
    prereq::{self, tool},
};
use hickory_proto::{
    op::{Message, Query},
    rr::{Name, RecordType},
};
use tokio::net::UdpSocket;

/// Where dnsmasq listens inside the namespace.
pub const UPSTREAM: &str = "127.0.0.1:5300";
/// The longest a test body may run; generous, so a loaded machine is slow, not failing.
const TEST_BOUND: Duration = Duration::from_secs(120);
/// How long dnsmasq may take to answer its first query.
const STARTUP_BOUND: Duration = Duration::from_secs(30);

pub fn upstream() -> SocketAddr {
    UPSTREAM.parse().unwrap_or_else(|_| unreachable!())
}

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

pub struct UpstreamNet {
    dnsmasq: Option<Child>,
    // Dropped last: deleting the namespace also ends anything left in it.
    netns: NetNs,
}

impl UpstreamNet {
    /// A namespace with loopback up and dnsmasq listening in it.
    pub fn with_dnsmasq() -> Self {
        prereq::require_all();
        cleanup::remove_stale_once();
        let netns = NetNs::create(&format!("{}-dns", names::unique_tag()));
        let args = ["--no-daemon", "--no-resolv", "--no-hosts", "--pid-file"]
            .into_iter()
            .map(str::to_owned)
            .chain(["--port=5300", "--listen-address=127.0.0.1", "--bind-interfaces"].map(str::to_owned))
            .chain(dnsmasq_records())
            .collect::<Vec<_>>();
        let argv: Vec<&str> = args.iter().map(String::as_str).collect();
        let child = netns
            .command(tool("dnsmasq"), &argv)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|error| panic!("cannot start dnsmasq in {} (Debian package dnsmasq-base): {error}", netns.name()));
        Self { dnsmasq: Some(child), netns }
    }

    /// Stops dnsmasq, leaving the upstream address unanswered.
    pub fn stop_dnsmasq(&mut self) {
        if let Some(mut child) = self.dnsmasq.take() {
            let _ = child.kill();
            let _ = command::wait_bounded(&mut child, SHORT);
        }
    }

    /// From now on, the namespace drops every packet to the upstream that
    /// does not carry `mark`, over UDP and TCP.
    pub fn drop_unmarked_to_upstream(&self, mark: u32) {
        let mark = format!("{mark:#x}");
        for protocol in ["udp", "tcp"] {
            let rule = [
                "-A", "OUTPUT", "-o", "lo", "-d", "127.0.0.1", "-p", protocol, "--dport", "5300", "-m", "mark",
                "!", "--mark", &mark, "-j", "DROP",
            ];
            command::run_ok(&mut self.netns.command(tool("iptables"), &rule), SHORT);
        }
    }

    /// Runs `test` on a thread of its own inside the namespace, on a
    /// single-threaded runtime, so every socket it makes lives there.
    pub fn run<F, Fut>(&self, test: F) -> Fut::Output
    where
        F: FnOnce() -> Fut + Send,
        Fut: Future,
        Fut::Output: Send,
    {
        let handle = self.netns.open();
        std::thread::scope(|scope| {
            let thread = scope.spawn(move || {
                enter_on_this_thread(&handle);
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap_or_else(|error| panic!("tokio runtime: {error}"));
                runtime.block_on(async move {
                    tokio::time::timeout(TEST_BOUND, test())
                        .await
                        .unwrap_or_else(|_| panic!("test did not finish within {TEST_BOUND:?}"))
                })
            });
            thread.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic))
        })
    }
}

impl Drop for UpstreamNet {
    fn drop(&mut self) {
        self.stop_dnsmasq();
    }
}

/// Waits until the upstream answers a query (bounded).
pub async fn wait_for_upstream(upstream: SocketAddr) {
    let deadline = Instant::now() + STARTUP_BOUND;
    let mut query = Message::query();
    query.add_query(Query::query(Name::from_ascii("upstream.test.").unwrap_or_default(), RecordType::A));
    let bytes = query.to_vec().unwrap_or_else(|error| panic!("encode probe: {error}"));
    while Instant::now() < deadline {
        if let Ok(socket) = UdpSocket::bind("127.0.0.1:0").await
            && socket.send_to(&bytes, upstream).await.is_ok()
        {
            let mut buffer = [0u8; 512];
            let reply = tokio::time::timeout(Duration::from_millis(500), socket.recv_from(&mut buffer)).await;
            if matches!(reply, Ok(Ok(_))) {
                return;
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("dnsmasq did not answer on {upstream} within {STARTUP_BOUND:?}");
}
