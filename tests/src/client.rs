//! Clients run inside pods: `gw-test-client` (raw TCP echo) and curl.

use std::net::SocketAddr;
use std::process::Command;
use std::time::Duration;

use serde_json::Value;

use crate::addresses::canonical;
use crate::command;

/// What `gw-test-client` should do.
#[derive(Debug, Clone)]
pub struct EchoRun {
    pub targets: Vec<SocketAddr>,
    pub per_target: usize,
    pub bytes: usize,
    pub half_close: bool,
    /// Send the token line and wait for its echo before the payload.
    pub token_first: bool,
    pub timeout: Duration,
}

impl EchoRun {
    /// One connection to each target, token only, 15 s at most.
    pub fn to(targets: &[SocketAddr]) -> EchoRun {
        EchoRun {
            targets: targets.to_vec(),
            per_target: 1,
            bytes: 0,
            half_close: false,
            token_first: false,
            timeout: Duration::from_secs(15),
        }
    }

    pub fn args(&self) -> Vec<String> {
        let mut args = Vec::new();
        for t in &self.targets {
            args.extend(["--target".to_owned(), t.to_string()]);
        }
        args.extend(["--per-target".to_owned(), self.per_target.to_string()]);
        args.extend(["--bytes".to_owned(), self.bytes.to_string()]);
        args.extend([
            "--timeout-ms".to_owned(),
            self.timeout.as_millis().to_string(),
        ]);
        if self.half_close {
            args.push("--half-close".to_owned());
        }
        if self.token_first {
            args.push("--token-first".to_owned());
        }
        args
    }
}

/// The outcome of one connection as the client saw it.
#[derive(Debug, Clone)]
pub struct ConnectionResult {
    pub target: SocketAddr,
    /// The first line sent, which the echo server records: `gwt-token <index> <target>`.
    pub token: String,
    pub connected: bool,
    pub local: Option<SocketAddr>,
    /// What `getpeername()` returned in the client, canonical.
    pub peer: Option<SocketAddr>,
    pub sent: u64,
    pub received: u64,
    /// The reply was exactly what was sent.
    pub intact: bool,
    pub error: Option<String>,
    /// `std::io::ErrorKind` of the failure, e.g. `ConnectionRefused`.
    pub error_kind: Option<String>,
}

/// The summary `gw-test-client` prints.
#[derive(Debug, Clone)]
pub struct EchoSummary {
    pub results: Vec<ConnectionResult>,
    pub raw: String,
}

impl EchoSummary {
    pub fn intact(&self) -> usize {
        self.results.iter().filter(|r| r.intact).count()
    }

    /// Panics listing the failed connections unless every one echoed intact.
    pub fn assert_all_intact(&self, context: &str) {
        let failed: Vec<String> = self
            .results
            .iter()
            .filter(|r| !r.intact)
            .take(10)
            .map(|r| {
                format!(
                    "{} -> {}: {}",
                    r.token,
                    r.target,
                    r.error.as_deref().unwrap_or("reply differs")
                )
            })
            .collect();
        if !failed.is_empty() {
            panic!(
                "{context}: {} of {} connections failed; first ones:\n  {}",
                self.results.len() - self.intact(),
                self.results.len(),
                failed.join("\n  ")
            );
        }
    }
}

/// Runs `gw-test-client` with the arguments of `run`, started by `make_command(args)` (which
/// places it in a pod, a namespace or a cgroup); bounded by the run's timeout plus a margin.
pub fn run_echo_client(
    make_command: impl FnOnce(&[&str]) -> Command,
    run: &EchoRun,
) -> EchoSummary {
    let args = run.args();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut cmd = make_command(&args);
    let described = command::describe(&cmd);
    let out = command::run(&mut cmd, run.timeout + Duration::from_secs(15));
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    if !out.status.success() {
        panic!(
            "`{described}` failed ({}): {}{}",
            out.status,
            stdout,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    parse_summary(&stdout)
        .unwrap_or_else(|e| panic!("`{described}` printed an unexpected summary ({e}): {stdout}"))
}

fn parse_summary(stdout: &str) -> Result<EchoSummary, String> {
    let v: Value = serde_json::from_str(stdout.trim()).map_err(|e| e.to_string())?;
    let addr = |r: &Value, key: &str| -> Option<SocketAddr> {
        r[key].as_str()?.parse().ok().map(canonical)
    };
    let results = v["results"]
        .as_array()
        .ok_or("no results")?
        .iter()
        .map(|r| {
            Ok(ConnectionResult {
                target: r["target"]
                    .as_str()
                    .and_then(|t| t.parse().ok())
                    .ok_or("result without target")?,
                token: r["token"].as_str().unwrap_or_default().to_owned(),
                connected: r["connected"].as_bool().unwrap_or(false),
                local: addr(r, "local"),
                peer: addr(r, "peer"),
                sent: r["sent"].as_u64().unwrap_or(0),
                received: r["received"].as_u64().unwrap_or(0),
                intact: r["intact"].as_bool().unwrap_or(false),
                error: r["error"].as_str().map(str::to_owned),
                error_kind: r["error_kind"].as_str().map(str::to_owned),
            })
        })
        .collect::<Result<Vec<_>, &str>>()?;
    Ok(EchoSummary {
        results,
        raw: stdout.to_owned(),
    })
}

/// curl arguments that never consult a proxy, never retry and stop after 10 s.
pub fn curl_args<'a>(extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec![
        "-sS",
        "--noproxy",
        "*",
        "--max-time",
        "10",
        "--connect-timeout",
        "5",
    ];
    args.extend_from_slice(extra);
    args
}

/// Runs a prepared curl command; returns (exit status success, stdout, stderr).
pub fn run_curl(mut cmd: Command) -> (bool, String, String) {
    let out = command::run(&mut cmd, Duration::from_secs(20));
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// curl (from `make_command(args)`, e.g. a pod) with `args`: (HTTP status or
/// 0 when there was no HTTP answer, body, stderr with the response headers).
pub fn curl_status(make_command: impl FnOnce(&[&str]) -> Command, args: &[&str]) -> (u16, String, String) {
    let mut all = vec!["-w", "\n%{http_code}", "-D", "/dev/stderr"];
    all.extend_from_slice(args);
    let (_, out, err) = run_curl(make_command(&curl_args(&all)));
    let (body, code) = out.rsplit_once('\n').unwrap_or(("", &out));
    (code.trim().parse().unwrap_or(0), body.to_string(), err)
}
