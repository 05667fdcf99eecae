//! A real DNS server in the internet namespace: the upstream the gateway
//! forwards to and resolves with. Logs every query, with its source.

use std::path::PathBuf;
use std::process::{Child, Stdio};
use std::time::Duration;

use crate::netns::NetNs;
use crate::prereq::tool;
use crate::wait;

pub struct Dnsmasq {
    child: Option<Child>,
    log: PathBuf,
}

impl Dnsmasq {
    /// Serves `records` (name, address) on `listen`:53 inside `netns`.
    pub fn start(netns: &NetNs, dir: &std::path::Path, listen: &str, records: &[(&str, &str)]) -> Dnsmasq {
        let log = dir.join("dnsmasq.log");
        let mut args = vec![
            "--no-daemon".to_string(),
            "--no-resolv".into(),
            "--no-hosts".into(),
            "--bind-interfaces".into(),
            format!("--listen-address={listen}"),
            "--port=53".into(),
            "--log-queries=extra".into(),
            format!("--log-facility={}", log.display()),
            "--user=root".into(),
            "--pid-file=".into(),
        ];
        args.extend(records.iter().map(|(name, addr)| format!("--host-record={name},{addr}")));
        let argv: Vec<&str> = args.iter().map(String::as_str).collect();
        let child = netns
            .command(tool("dnsmasq"), &argv)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start dnsmasq: {e}"));
        let d = Dnsmasq { child: Some(child), log };
        let up = wait::poll(Duration::from_secs(10), Duration::from_millis(50), || {
            d.log_text().contains("started").then_some(())
        });
        assert!(up.is_some(), "dnsmasq did not start: {}", d.log_text());
        d
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The `query[TYPE] name from addr` lines.
    pub fn queries(&self) -> Vec<String> {
        self.log_text().lines().filter(|l| l.contains("query[")).map(str::to_owned).collect()
    }
}

impl Drop for Dnsmasq {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}
