//! Raw TCP clients: connection rate, ping-pong latency, idle connections,
//! and the probe that checks which path a mode takes.

use std::{
    io::{BufRead, Read, Write},
    net::{SocketAddr, TcpStream},
    sync::atomic::{AtomicU64, Ordering},
    thread,
    time::{Duration, Instant},
};

use anyhow::{Context, bail};
use serde_json::json;

const IO_TIMEOUT: Duration = Duration::from_secs(3);

fn connect(target: SocketAddr) -> std::io::Result<TcpStream> {
    let s = TcpStream::connect_timeout(&target, IO_TIMEOUT)?;
    s.set_nodelay(true)?;
    s.set_read_timeout(Some(IO_TIMEOUT))?;
    s.set_write_timeout(Some(IO_TIMEOUT))?;
    Ok(s)
}

/// One connection: send one byte, read it back, close.
fn exchange_one(target: SocketAddr) -> std::io::Result<()> {
    let mut s = connect(target)?;
    s.write_all(&[0])?;
    let mut b = [0u8; 1];
    s.read_exact(&mut b)
}

pub fn conn_rate(target: SocketAddr, concurrency: usize, duration: Duration, max_count: u64) -> anyhow::Result<()> {
    let started = AtomicU64::new(0);
    let done = AtomicU64::new(0);
    let errors = AtomicU64::new(0);
    let first_error = std::sync::OnceLock::new();
    let begin = Instant::now();
    let deadline = begin + duration;
    thread::scope(|scope| {
        for _ in 0..concurrency.max(1) {
            scope.spawn(|| {
                while Instant::now() < deadline && started.fetch_add(1, Ordering::Relaxed) < max_count {
                    match exchange_one(target) {
                        Ok(()) => done.fetch_add(1, Ordering::Relaxed),
                        Err(e) => {
                            let _ = first_error.set(e.to_string());
                            errors.fetch_add(1, Ordering::Relaxed)
                        }
                    };
                    // A path that refuses everything must not spin for the whole run.
                    if errors.load(Ordering::Relaxed) > 1000 {
                        return;
                    }
                }
            });
        }
    });
    let seconds = begin.elapsed().as_secs_f64();
    let done = done.into_inner();
    println!(
        "{}",
        json!({
            "connections": done,
            "errors": errors.into_inner(),
            "first_error": first_error.get(),
            "seconds": seconds,
            "per_second": done as f64 / seconds,
        })
    );
    Ok(())
}

/// Round trips of `size` bytes for `duration`, after at least 200 that
/// last `warmup` and are not counted.
pub fn ping_pong(target: SocketAddr, size: usize, warmup: Duration, duration: Duration, max_count: usize) -> anyhow::Result<()> {
    let mut s = connect(target).with_context(|| format!("connecting to {target}"))?;
    let out = vec![0u8; size.max(1)];
    let mut back = vec![0u8; out.len()];
    let mut round = |s: &mut TcpStream| -> std::io::Result<()> {
        s.write_all(&out)?;
        s.read_exact(&mut back)
    };
    let settled = Instant::now() + warmup;
    let mut rounds = 0;
    while rounds < 200 || Instant::now() < settled {
        round(&mut s)?;
        rounds += 1;
    }
    let mut samples = Vec::with_capacity(max_count.min(10_000_000));
    let deadline = Instant::now() + duration;
    while samples.len() < max_count && Instant::now() < deadline {
        let t = Instant::now();
        round(&mut s)?;
        samples.push(t.elapsed().as_nanos() as u64);
    }
    println!("{}", super::percentiles_us(&mut samples));
    Ok(())
}

pub fn hold(target: SocketAddr, levels: &[usize]) -> anyhow::Result<()> {
    let mut held = Vec::new();
    let mut stdin = std::io::stdin().lock();
    for &level in levels {
        let begin = Instant::now();
        let mut failures = 0;
        while held.len() < level {
            let opened = connect(target).and_then(|mut s| {
                s.write_all(&[0])?;
                let mut b = [0u8; 1];
                s.read_exact(&mut b)?;
                Ok(s)
            });
            match opened {
                Ok(s) => held.push(s),
                Err(e) => {
                    failures += 1;
                    if failures > 50 {
                        bail!("could not open connection {} of {level}: {e}", held.len() + 1);
                    }
                }
            }
        }
        println!("{}", json!({ "held": held.len(), "seconds": begin.elapsed().as_secs_f64(), "failures": failures }));
        std::io::stdout().flush()?;
        let mut line = String::new();
        if stdin.read_line(&mut line)? == 0 {
            break;
        }
    }
    Ok(())
}

pub fn probe(target: SocketAddr, duration: Duration) -> anyhow::Result<()> {
    let deadline = Instant::now() + duration;
    let mut last = String::new();
    while Instant::now() < deadline {
        let answer = connect(target).and_then(|mut s| {
            s.write_all(b"WHO?")?;
            let mut line = String::new();
            std::io::BufReader::new(s).read_line(&mut line)?;
            Ok(line)
        });
        match answer {
            Ok(line) if !line.trim().is_empty() => {
                println!("{}", json!({ "peer": line.trim() }));
                return Ok(());
            }
            Ok(_) => last = "empty answer".into(),
            Err(e) => last = e.to_string(),
        }
        thread::sleep(Duration::from_millis(100));
    }
    bail!("{target} did not answer within {duration:?}: {last}")
}
