//! gw-test-client: opens many concurrent TCP connections, sends each a unique token line and
//! optionally N random bytes, checks that exactly the same bytes come back, and prints a JSON
//! summary on stdout. Bounded in time by --timeout-ms; it never retries.
//!
//! ```text
//! gw-test-client --target ADDR:PORT [--target ADDR:PORT]... [--per-target N] [--bytes N]
//!                [--half-close] [--token-first] [--timeout-ms MS]
//! ```
//! Each connection sends `gwt-token <index> <target>\n` followed by the payload. All connections
//! are opened before any sends, so they are open at the same time. With --half-close the client
//! shuts down its sending side after the payload and reads the reply until EOF; without it, it
//! reads exactly as many bytes as it sent and then closes. With --token-first it sends the token
//! line alone and waits for its echo before the payload: a request and its answer, then bulk.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::process::ExitCode;
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

const MAX_CONNECTIONS: usize = 5_000;
const MAX_BYTES: usize = 64 * 1024 * 1024;

struct Options {
    targets: Vec<SocketAddr>,
    per_target: usize,
    bytes: usize,
    half_close: bool,
    token_first: bool,
    timeout: Duration,
}

fn parse_options() -> Result<Options, String> {
    let mut o = Options {
        targets: Vec::new(),
        per_target: 1,
        bytes: 0,
        half_close: false,
        token_first: false,
        timeout: Duration::from_secs(20),
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = |name: &str| args.next().ok_or(format!("{name} needs a value"));
        match arg.as_str() {
            "--target" => o.targets.push(
                value("--target")?
                    .parse()
                    .map_err(|e| format!("--target: {e}"))?,
            ),
            "--per-target" => {
                o.per_target = value("--per-target")?
                    .parse()
                    .map_err(|e| format!("--per-target: {e}"))?
            }
            "--bytes" => {
                o.bytes = value("--bytes")?
                    .parse()
                    .map_err(|e| format!("--bytes: {e}"))?
            }
            "--timeout-ms" => {
                o.timeout = Duration::from_millis(
                    value("--timeout-ms")?
                        .parse()
                        .map_err(|e| format!("--timeout-ms: {e}"))?,
                )
            }
            "--half-close" => o.half_close = true,
            "--token-first" => o.token_first = true,
            other => return Err(format!("unknown argument {other}")),
        }
    }
    let total = o.targets.len() * o.per_target;
    if total == 0 || total > MAX_CONNECTIONS {
        return Err(format!(
            "between 1 and {MAX_CONNECTIONS} connections are allowed, asked for {total}"
        ));
    }
    if o.bytes > MAX_BYTES {
        return Err(format!("at most {MAX_BYTES} bytes per connection"));
    }
    Ok(o)
}

fn main() -> ExitCode {
    let options = match parse_options() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("gw-test-client: {e}");
            return ExitCode::from(2);
        }
    };
    let deadline = Instant::now() + options.timeout;
    let jobs: Vec<(usize, SocketAddr)> = options
        .targets
        .iter()
        .flat_map(|t| std::iter::repeat_n(*t, options.per_target))
        .enumerate()
        .collect();
    let barrier = Arc::new(Barrier::new(jobs.len()));
    let threads: Vec<_> = jobs
        .into_iter()
        .map(|(index, target)| {
            let barrier = barrier.clone();
            let shape = Shape {
                bytes: options.bytes,
                half_close: options.half_close,
                token_first: options.token_first,
            };
            thread::spawn(move || one_connection(index, target, shape, deadline, &barrier))
        })
        .collect();
    let results: Vec<Value> = threads
        .into_iter()
        .map(|t| {
            t.join()
                .unwrap_or_else(|_| json!({"error": "thread panicked"}))
        })
        .collect();
    let ok = results
        .iter()
        .filter(|r| r["intact"] == json!(true))
        .count();
    println!(
        "{}",
        json!({"total": results.len(), "ok": ok, "results": results})
    );
    ExitCode::SUCCESS
}

fn remaining(deadline: Instant) -> Duration {
    deadline
        .saturating_duration_since(Instant::now())
        .max(Duration::from_millis(1))
}

/// What one connection sends, and how.
#[derive(Clone, Copy)]
struct Shape {
    bytes: usize,
    half_close: bool,
    token_first: bool,
}

fn one_connection(
    index: usize,
    target: SocketAddr,
    shape: Shape,
    deadline: Instant,
    barrier: &Barrier,
) -> Value {
    let token = format!("gwt-token {index} {target}");
    let mut result = json!({"index": index, "target": target.to_string(), "token": token, "connected": false, "intact": false});
    let connected = TcpStream::connect_timeout(&target, remaining(deadline));
    // Everyone waits here, connected or not, so that all connections are open at once.
    barrier.wait();
    let stream = match connected {
        Ok(s) => s,
        Err(e) => return with_error(result, &e),
    };
    result["connected"] = json!(true);
    result["local"] = json!(
        stream
            .local_addr()
            .map(|a| a.to_string())
            .unwrap_or_default()
    );
    result["peer"] = json!(
        stream
            .peer_addr()
            .map(|a| a.to_string())
            .unwrap_or_default()
    );
    let mut message = format!("{token}\n").into_bytes();
    message.extend(random_bytes(shape.bytes));
    result["sent"] = json!(message.len());
    match exchange(stream, &message, shape, deadline) {
        Ok(reply) => {
            result["received"] = json!(reply.len());
            result["intact"] = json!(reply == message);
            if reply != message {
                result["error"] = json!(format!(
                    "reply differs: {} bytes back for {} sent",
                    reply.len(),
                    message.len()
                ));
            }
            result
        }
        Err(e) => with_error(result, &e),
    }
}

fn with_error(mut result: Value, e: &std::io::Error) -> Value {
    result["error"] = json!(e.to_string());
    result["error_kind"] = json!(format!("{:?}", e.kind()));
    result
}

/// Writes `message` on one thread while reading the echo on this one, so large payloads do not
/// deadlock on full socket buffers. With `token_first`, the token line is sent and its echo read
/// before the rest.
fn exchange(
    stream: TcpStream,
    message: &[u8],
    shape: Shape,
    deadline: Instant,
) -> std::io::Result<Vec<u8>> {
    stream.set_read_timeout(Some(remaining(deadline)))?;
    stream.set_write_timeout(Some(remaining(deadline)))?;
    let mut reader = stream;
    let mut reply = Vec::with_capacity(message.len());
    let mut buf = vec![0u8; 64 * 1024];
    let mut first = 0;
    if shape.token_first {
        first = message.iter().position(|&b| b == b'\n').map_or(message.len(), |i| i + 1);
        reader.write_all(&message[..first])?;
        while reply.len() < first {
            match reader.read(&mut buf)? {
                0 => return Ok(reply),
                n => reply.extend_from_slice(&buf[..n]),
            }
        }
    }
    let half_close = shape.half_close;
    let mut writer = reader.try_clone()?;
    let to_send = message[first..].to_vec();
    let sender = thread::spawn(move || -> std::io::Result<()> {
        writer.write_all(&to_send)?;
        if half_close {
            writer.shutdown(Shutdown::Write)?;
        }
        Ok(())
    });
    // Bounded by the read timeout (the deadline) and by the expected length.
    while Instant::now() < deadline {
        if !half_close && reply.len() >= message.len() {
            break;
        }
        match reader.read(&mut buf)? {
            0 => break,
            n => reply.extend_from_slice(&buf[..n]),
        }
    }
    sender
        .join()
        .map_err(|_| std::io::Error::other("sender thread panicked"))??;
    let _ = reader.shutdown(Shutdown::Both);
    Ok(reply)
}

fn random_bytes(n: usize) -> Vec<u8> {
    let mut bytes = vec![0u8; n];
    if n > 0 {
        std::fs::File::open("/dev/urandom")
            .and_then(|mut f| f.read_exact(&mut bytes))
            .unwrap_or_else(|e| panic!("cannot read /dev/urandom: {e}"));
    }
    bytes
}
