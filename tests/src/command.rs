//! Running external commands with a time limit, panicking with context when they fail.

use std::io::Read;
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::thread;
use std::time::{Duration, Instant};

/// Time limit for short administrative commands (`ip`, `bpftool`, `openssl`, ...).
pub const SHORT: Duration = Duration::from_secs(20);

/// Runs `cmd` to completion with its output captured; kills it and panics after `timeout`.
pub fn run(cmd: &mut Command, timeout: Duration) -> Output {
    let described = describe(cmd);
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start `{described}`: {e}"));
    let stdout = drain(child.stdout.take());
    let stderr = drain(child.stderr.take());
    let status = wait_bounded(&mut child, timeout)
        .unwrap_or_else(|| panic!("`{described}` did not finish within {timeout:?}; killed it"));
    Output {
        status,
        stdout: stdout.join().unwrap_or_default(),
        stderr: stderr.join().unwrap_or_default(),
    }
}

/// Runs `cmd` and returns its stdout; panics with its stderr unless it exits with status 0.
pub fn run_ok(cmd: &mut Command, timeout: Duration) -> String {
    let described = describe(cmd);
    let output = run(cmd, timeout);
    if !output.status.success() {
        panic!(
            "`{described}` failed ({}):\nstdout: {}\nstderr: {}",
            output.status,
            String::from_utf8_lossy(&output.stdout).trim_end(),
            String::from_utf8_lossy(&output.stderr).trim_end()
        );
    }
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Runs `cmd` for its exit status only, never panicking on failure (used during cleanup).
pub fn run_quiet(cmd: &mut Command, timeout: Duration) -> bool {
    let Ok(mut child) = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
    else {
        return false;
    };
    wait_bounded(&mut child, timeout).is_some_and(|s| s.success())
}

/// Waits at most `timeout` for `child`; kills it (SIGKILL) and returns `None` on expiry.
pub fn wait_bounded(child: &mut Child, timeout: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + timeout;
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return Some(status),
            Ok(None) if Instant::now() < deadline => thread::sleep(Duration::from_millis(10)),
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                return None;
            }
        }
    }
}

/// A readable rendering of a command line for messages.
pub fn describe(cmd: &Command) -> String {
    let mut parts = vec![cmd.get_program().to_string_lossy().into_owned()];
    parts.extend(cmd.get_args().map(|a| a.to_string_lossy().into_owned()));
    parts.join(" ")
}

fn drain<R: Read + Send + 'static>(pipe: Option<R>) -> thread::JoinHandle<Vec<u8>> {
    thread::spawn(move || {
        let mut buf = Vec::new();
        if let Some(mut pipe) = pipe {
            let _ = pipe.read_to_end(&mut buf);
        }
        buf
    })
}
