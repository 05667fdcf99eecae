//! The leak oracle: a packet capture on the internet host's side of a
//! routing node. The node forwards pod traffic, as a real node does, so a
//! packet that escaped interception would arrive here carrying the pod's own
//! address; the proxy's traffic arrives from the node's address instead.

use std::io::{BufRead, BufReader};
use std::net::IpAddr;
use std::process::{Child, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::netns::NetNs;
use crate::prereq::tool;
use crate::wait;

/// A running capture of every packet from the given sources.
pub struct LeakOracle {
    child: Child,
    packets: Arc<Mutex<Vec<String>>>,
}

impl LeakOracle {
    /// Starts `tcpdump` on the internet host's interface and waits until it captures.
    pub fn watch(internet: &NetNs, sources: &[IpAddr]) -> LeakOracle {
        let filter = sources.iter().map(|s| format!("src host {s}")).collect::<Vec<_>>().join(" or ");
        let mut child = internet
            .command(tool("tcpdump"), &["-l", "-n", "-i", "eth0", &filter])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start tcpdump: {e}"));
        let packets = Arc::new(Mutex::new(Vec::new()));
        let out = child.stdout.take().expect("piped");
        let sink = packets.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                sink.lock().unwrap().push(line);
            }
        });
        let (tx, rx) = std::sync::mpsc::channel();
        let err = child.stderr.take().expect("piped");
        std::thread::spawn(move || {
            for line in BufReader::new(err).lines().map_while(Result::ok) {
                if line.contains("listening on") {
                    let _ = tx.send(());
                }
            }
        });
        rx.recv_timeout(Duration::from_secs(10)).unwrap_or_else(|_| panic!("tcpdump did not start capturing within 10 s"));
        LeakOracle { child, packets }
    }

    /// Every packet captured so far, as tcpdump printed it.
    pub fn packets(&self) -> Vec<String> {
        self.packets.lock().unwrap().clone()
    }

    /// Waits up to `timeout` for at least one packet (for the control run).
    pub fn wait_for_any(&self, timeout: Duration) -> Vec<String> {
        wait::poll(timeout, Duration::from_millis(20), || {
            let p = self.packets();
            (!p.is_empty()).then_some(p)
        })
        .unwrap_or_default()
    }
}

impl Drop for LeakOracle {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
