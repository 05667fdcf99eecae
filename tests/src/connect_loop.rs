//! A tight, bounded connect loop in a pod, and the down windows of the gateway it is checked
//! against.
//!
//! A python client in the pod's cgroup connects in turn to an allowed and to a denied address,
//! each time with a short timeout, sends a token line and reads the echo, and prints one JSON line
//! per attempt with wall-clock timestamps (`time.time()`, the same clock as `SystemTime`). The
//! test records when it killed the gateway and when the next run answered /ready, and every
//! failure of an allowed connection must fall inside one of those windows.

use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::prereq::tool;
use crate::script::Script;
use crate::topology::Pod;

/// The client: `allowed`, `denied`, stop file, most attempts, most seconds, timeout, pause.
const CLIENT: &str = r#"
import json, os, socket, sys, time
allowed, denied, stop_file = sys.argv[1], sys.argv[2], sys.argv[3]
max_attempts, max_seconds = int(sys.argv[4]), float(sys.argv[5])
timeout, pause = float(sys.argv[6]), float(sys.argv[7])
def parse(a):
    host, port = a.rsplit(':', 1)
    return host, int(port)
targets = [('allowed', parse(allowed)), ('denied', parse(denied))]
began = time.time()
i = 0
while i < max_attempts and time.time() - began < max_seconds and not os.path.exists(stop_file):
    kind, addr = targets[i % 2]
    token = '%s-%d' % (kind, i)
    start, local, got = time.time(), None, b''
    s = socket.socket()
    s.settimeout(timeout)
    try:
        s.connect(addr)
        local = '%s:%d' % s.getsockname()
        s.sendall((token + '\n').encode())
        while not got.endswith(b'\n') and len(got) < 200:
            chunk = s.recv(200)
            if not chunk:
                break
            got += chunk
        result = 'echo' if got == (token + '\n').encode() else ('closed' if not got else 'data')
    except ConnectionRefusedError:
        result = 'refused'
    except ConnectionResetError:
        result = 'reset'
    except socket.timeout:
        result = 'timeout'
    except OSError as e:
        result = 'error:%s' % e.errno
    finally:
        s.close()
    print(json.dumps({'i': i, 'kind': kind, 'token': token, 'start': start, 'end': time.time(),
                      'result': result, 'local': local, 'got': len(got)}), flush=True)
    i += 1
    time.sleep(pause)
print('done %d' % i, flush=True)
"#;

/// One connection attempt, as the client logged it.
#[derive(Debug, Clone, PartialEq)]
pub struct Attempt {
    pub index: u64,
    /// `allowed` or `denied`.
    pub kind: String,
    pub token: String,
    /// Wall-clock seconds since the epoch.
    pub start: f64,
    pub end: f64,
    /// `echo` (the token came back), `closed`, `data`, `refused`, `reset`, `timeout`, `error:N`.
    pub result: String,
    pub local: Option<SocketAddr>,
    /// Bytes received.
    pub got: u64,
}

impl Attempt {
    pub fn is_allowed(&self) -> bool {
        self.kind == "allowed"
    }

    pub fn echoed(&self) -> bool {
        self.result == "echo"
    }
}

/// Parses one client line; `None` for anything but an attempt line.
pub fn parse_attempt(line: &str) -> Option<Attempt> {
    let v: serde_json::Value = serde_json::from_str(line).ok()?;
    Some(Attempt {
        index: v["i"].as_u64()?,
        kind: v["kind"].as_str()?.to_owned(),
        token: v["token"].as_str()?.to_owned(),
        start: v["start"].as_f64()?,
        end: v["end"].as_f64()?,
        result: v["result"].as_str()?.to_owned(),
        local: v["local"].as_str().and_then(|l| l.parse().ok()),
        got: v["got"].as_u64()?,
    })
}

/// A time the proxy was not serving: from just before it was killed (or the load that got it
/// killed began) until the next run answered /ready. Wall-clock seconds since the epoch.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DownWindow {
    pub from: f64,
    pub until: f64,
}

/// Wall-clock seconds since the epoch, as python's `time.time()`.
pub fn unix_now() -> f64 {
    SystemTime::now().duration_since(UNIX_EPOCH).expect("clock after 1970").as_secs_f64()
}

/// The window an attempt overlaps, if any; `margin` widens each window on both sides (the
/// attempt in flight when the kill came, and the two processes reading the clock).
pub fn window_of(attempt: &Attempt, windows: &[DownWindow], margin: f64) -> Option<usize> {
    windows.iter().position(|w| attempt.start <= w.until + margin && attempt.end >= w.from - margin)
}

/// The failed allowed attempts that overlap no down window.
pub fn failures_outside<'a>(attempts: &'a [Attempt], windows: &[DownWindow], margin: f64) -> Vec<&'a Attempt> {
    attempts
        .iter()
        .filter(|a| a.is_allowed() && !a.echoed() && window_of(a, windows, margin).is_none())
        .collect()
}

/// The running client.
pub struct ConnectLoop {
    script: Script,
    stop_file: std::path::PathBuf,
    seen: usize,
    attempts: Vec<Attempt>,
}

impl ConnectLoop {
    /// Starts the loop in `pod`'s namespace and cgroup (intercepted). It stops by itself after
    /// `max_attempts` or `max_time`, or when `stop` is called.
    pub fn start(pod: &Pod, dir: &Path, allowed: SocketAddr, denied: SocketAddr, max_attempts: u32, max_time: Duration) -> ConnectLoop {
        let stop_file = dir.join("stop-connect-loop");
        let args = [
            "-c".to_owned(),
            CLIENT.to_owned(),
            allowed.to_string(),
            denied.to_string(),
            stop_file.to_string_lossy().into_owned(),
            max_attempts.to_string(),
            max_time.as_secs_f64().to_string(),
            "0.5".to_owned(),
            "0.005".to_owned(),
        ];
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let script = Script::spawn(pod.command(tool("python3"), &args));
        ConnectLoop { script, stop_file, seen: 0, attempts: Vec::new() }
    }

    /// Every attempt logged so far.
    pub fn attempts(&mut self) -> &[Attempt] {
        let fresh = self.script.lines_from(self.seen);
        self.seen += fresh.len();
        self.attempts.extend(fresh.iter().filter_map(|l| parse_attempt(l)));
        &self.attempts
    }

    /// Waits (bounded) for an allowed attempt that started after `since` and came back echoed.
    pub fn wait_for_an_echo_after(&mut self, since: f64, timeout: Duration) -> bool {
        crate::wait::poll(timeout, Duration::from_millis(5), || {
            self.attempts().iter().rev().take_while(|a| a.start >= since).any(|a| a.is_allowed() && a.echoed()).then_some(())
        })
        .is_some()
    }

    /// Asks the loop to stop, waits for its last line and returns every attempt.
    pub fn stop(mut self) -> Vec<Attempt> {
        std::fs::write(&self.stop_file, "stop").expect("write the stop file");
        self.script.wait_line(Duration::from_secs(10), "done", |l| l.starts_with("done "));
        self.attempts();
        self.attempts
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attempt(kind: &str, start: f64, end: f64, result: &str) -> Attempt {
        Attempt { index: 0, kind: kind.into(), token: String::new(), start, end, result: result.into(), local: None, got: 0 }
    }

    #[test]
    fn a_failure_overlapping_a_window_is_inside_it() {
        let windows = [DownWindow { from: 10.0, until: 11.0 }, DownWindow { from: 20.0, until: 20.5 }];
        let inside = attempt("allowed", 10.2, 10.3, "refused");
        let in_flight_at_the_kill = attempt("allowed", 9.99, 10.01, "reset");
        let just_before = attempt("allowed", 9.9, 9.97, "reset");
        let between = attempt("allowed", 15.0, 15.1, "timeout");
        assert_eq!(window_of(&inside, &windows, 0.0), Some(0));
        assert_eq!(window_of(&in_flight_at_the_kill, &windows, 0.0), Some(0));
        assert_eq!(window_of(&just_before, &windows, 0.0), None);
        assert_eq!(window_of(&just_before, &windows, 0.05), Some(0));
        let all = [inside, between.clone(), attempt("allowed", 15.0, 15.1, "echo"), attempt("denied", 15.0, 15.1, "reset")];
        assert_eq!(failures_outside(&all, &windows, 0.05), vec![&between]);
    }

    #[test]
    fn client_lines_parse() {
        let line = r#"{"i": 3, "kind": "allowed", "token": "allowed-3", "start": 1.5, "end": 1.75, "result": "echo", "local": "198.18.1.2:40000", "got": 10}"#;
        let a = parse_attempt(line).expect("an attempt");
        assert_eq!((a.index, a.kind.as_str(), a.result.as_str(), a.got), (3, "allowed", "echo", 10));
        assert_eq!(a.local, Some("198.18.1.2:40000".parse().unwrap()));
        assert_eq!(parse_attempt("done 4"), None);
    }
}
