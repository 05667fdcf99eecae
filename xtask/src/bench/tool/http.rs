//! HTTP/1.1 GETs at a fixed rate, spread over a few keep-alive connections;
//! or a number of them in sequence on one.
//!
//! Each connection sends on its own schedule. A request whose slot came
//! while the previous response was still arriving is timed from its slot
//! (no coordinated omission); otherwise from when it is sent, so the sleep's
//! own lateness does not count. A response that says `Connection: close`
//! ends its connection and the next request opens a new one, as a client
//! keeping to HTTP/1.1 does.

use std::{
    io::{Read, Write},
    net::{SocketAddr, TcpStream},
    thread,
    time::{Duration, Instant},
};

use anyhow::{Context, bail};
use serde_json::json;

pub fn fixed_rate(target: SocketAddr, path: &str, rate: u32, duration: Duration, connections: u32) -> anyhow::Result<()> {
    let connections = connections.clamp(1, rate.max(1));
    let interval = Duration::from_secs_f64(f64::from(connections) / f64::from(rate.max(1)));
    let begin = Instant::now() + Duration::from_millis(50);
    let request = get_request(path);
    let results: Vec<anyhow::Result<(Vec<u64>, u64)>> = thread::scope(|scope| {
        let handles: Vec<_> = (0..connections)
            .map(|c| {
                let first = begin + interval.mul_f64(f64::from(c) / f64::from(connections));
                let request = request.as_bytes();
                scope.spawn(move || one_connection(target, request, first, interval, begin + duration))
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap_or_else(|_| bail!("client thread panicked"))).collect()
    });
    let mut samples = Vec::new();
    let mut errors = 0;
    for r in results {
        let (s, e) = r?;
        samples.extend(s);
        errors += e;
    }
    let mut summary = super::percentiles_us(&mut samples);
    summary["errors"] = json!(errors);
    summary["per_second"] = json!(samples.len() as f64 / duration.as_secs_f64());
    println!("{summary}");
    Ok(())
}

/// `count` GETs in sequence on one connection; any failure ends the run.
pub fn sequence(target: SocketAddr, path: &str, count: u32) -> anyhow::Result<()> {
    let request = get_request(path);
    // A run under callgrind answers slowly: each connection waits up to 30 s.
    let open = || -> anyhow::Result<TcpStream> {
        let s = connect(target)?;
        s.set_read_timeout(Some(Duration::from_secs(30)))?;
        Ok(s)
    };
    let mut stream = open()?;
    let mut buf = vec![0u8; 16 * 1024];
    for i in 0..count {
        stream.write_all(request.as_bytes())?;
        let ended = read_response(&mut stream, &mut buf).with_context(|| format!("request {} of {count}", i + 1))?;
        if ended == Ending::Close {
            stream = open()?;
        }
    }
    println!("{}", json!({ "requests": count }));
    Ok(())
}

/// The GET every client here sends.
fn get_request(path: &str) -> String {
    format!("GET {path} HTTP/1.1\r\nHost: bench.example\r\nUser-Agent: gateway-bench\r\n\r\n")
}

fn one_connection(
    target: SocketAddr,
    request: &[u8],
    first: Instant,
    interval: Duration,
    end: Instant,
) -> anyhow::Result<(Vec<u64>, u64)> {
    let mut stream = connect(target)?;
    let mut buf = vec![0u8; 16 * 1024];
    let mut samples = Vec::new();
    let mut errors = 0u64;
    let mut slot = first;
    while slot < end && errors < 100 {
        let now = Instant::now();
        let start = if now > slot {
            slot
        } else {
            thread::sleep(slot - now);
            Instant::now()
        };
        let answered = stream.write_all(request).map_err(anyhow::Error::from).and_then(|()| read_response(&mut stream, &mut buf));
        match answered {
            Ok(ended) => {
                samples.push(start.elapsed().as_nanos() as u64);
                if ended == Ending::Close {
                    stream = connect(target)?;
                }
            }
            Err(_) => {
                errors += 1;
                stream = connect(target)?;
            }
        }
        slot += interval;
    }
    Ok((samples, errors))
}

fn connect(target: SocketAddr) -> anyhow::Result<TcpStream> {
    let s = TcpStream::connect_timeout(&target, Duration::from_secs(3)).with_context(|| format!("connecting to {target}"))?;
    s.set_nodelay(true)?;
    s.set_read_timeout(Some(Duration::from_secs(3)))?;
    Ok(s)
}

/// What a response leaves of its connection.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Ending {
    KeepAlive,
    /// `Connection: close`: the server closes after this response.
    Close,
}

/// Reads one response: headers, then `Content-Length` bytes of body.
fn read_response(stream: &mut TcpStream, buf: &mut [u8]) -> anyhow::Result<Ending> {
    let mut have = 0;
    let head_end = loop {
        if have == buf.len() {
            bail!("response headers too long");
        }
        let n = stream.read(&mut buf[have..])?;
        if n == 0 {
            bail!("connection closed mid-response");
        }
        have += n;
        if let Some(i) = buf[..have].windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
    };
    let (length, ending) = framing(&buf[..head_end])?;
    let mut body = have - head_end;
    while body < length {
        let n = stream.read(buf)?;
        if n == 0 {
            bail!("connection closed mid-body");
        }
        body += n;
    }
    Ok(ending)
}

/// A `200` head's body length and whether its connection stays open.
pub(crate) fn framing(head: &[u8]) -> anyhow::Result<(usize, Ending)> {
    let head = std::str::from_utf8(head).context("response headers are not text")?;
    if !head.starts_with("HTTP/1.1 200") {
        bail!("unexpected status: {}", head.lines().next().unwrap_or(""));
    }
    // Read twice rather than collected: the client shares its CPU with the server.
    let fields = || head.lines().skip(1).filter_map(|l| l.split_once(':')).map(|(k, v)| (k.trim(), v.trim()));
    let length = fields()
        .find_map(|(k, v)| k.eq_ignore_ascii_case("content-length").then(|| v.parse().ok()).flatten())
        .context("response without Content-Length")?;
    let close = fields().any(|(k, v)| k.eq_ignore_ascii_case("connection") && v.split(',').any(|t| t.trim().eq_ignore_ascii_case("close")));
    Ok((length, if close { Ending::Close } else { Ending::KeepAlive }))
}
