//! A long-running helper process (a python client or server in some namespace) that a test talks
//! to while it runs: its stdout lines are collected as they come, lines can be written to its
//! stdin, and it is killed on drop.

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::command;
use crate::wait;

/// Python: `read_response(f)` reads one HTTP/1.1 response from `f` (a
/// socket's `makefile('rb')`), its body by `Content-Length`, and returns
/// its status line.
const READ_RESPONSE: &str = "def read_response(f):
    status = f.readline().decode().strip()
    length = 0
    while True:
        h = f.readline().decode().strip()
        if not h:
            break
        if h.lower().startswith('content-length:'):
            length = int(h.split(':')[1])
    f.read(length)
    return status
";

/// A python script that may call `read_response(f)`.
pub fn with_read_response(script: &str) -> String {
    format!("{READ_RESPONSE}{script}")
}

pub struct Script {
    what: String,
    child: Child,
    stdin: Option<ChildStdin>,
    lines: Arc<Mutex<Vec<String>>>,
    stderr: Arc<Mutex<String>>,
}

impl Script {
    /// Starts `cmd` with its stdin, stdout and stderr piped.
    pub fn spawn(mut cmd: Command) -> Script {
        let what = command::describe(&cmd);
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start `{what}`: {e}"));
        let lines: Arc<Mutex<Vec<String>>> = Arc::default();
        let stderr: Arc<Mutex<String>> = Arc::default();
        let (out, err) = (child.stdout.take().expect("piped"), child.stderr.take().expect("piped"));
        let collected = lines.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                collected.lock().unwrap().push(line);
            }
        });
        let collected = stderr.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(err).lines().map_while(Result::ok) {
                let mut all = collected.lock().unwrap();
                all.push_str(&line);
                all.push('\n');
            }
        });
        Script { what, stdin: child.stdin.take(), child, lines, stderr }
    }

    /// Every stdout line so far.
    pub fn lines(&self) -> Vec<String> {
        self.lines.lock().unwrap().clone()
    }

    /// The stdout lines from the `start`-th on (for callers that keep their own position).
    pub fn lines_from(&self, start: usize) -> Vec<String> {
        self.lines.lock().unwrap().get(start..).map(<[String]>::to_vec).unwrap_or_default()
    }

    /// Waits (at most `timeout`) for a stdout line satisfying `pred`; panics with what the
    /// process said when none comes.
    pub fn wait_line(&self, timeout: Duration, what: &str, pred: impl Fn(&str) -> bool) -> String {
        wait::poll(timeout, Duration::from_millis(20), || self.lines().into_iter().find(|l| pred(l))).unwrap_or_else(|| {
            panic!("`{}` never said {what}; stdout: {:?}\nstderr: {}", self.what, self.lines(), self.stderr.lock().unwrap())
        })
    }

    /// Writes one line to its stdin.
    pub fn say(&mut self, line: &str) {
        let stdin = self.stdin.as_mut().expect("stdin is open");
        writeln!(stdin, "{line}").and_then(|()| stdin.flush()).unwrap_or_else(|e| panic!("writing to `{}`: {e}", self.what));
    }
}

impl Drop for Script {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
