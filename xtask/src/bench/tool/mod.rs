//! The benchmark's own clients and server, run inside the topology as
//! hidden `cargo xtask bench <tool>` subcommands of the release build.
//! Each prints one JSON line on stdout and stops by itself: every loop is
//! bounded in count and in time, and a watchdog ends the process.

mod clients;
pub(crate) mod http;
mod server;

use std::{net::SocketAddr, time::Duration};

#[derive(clap::Subcommand)]
pub enum Tool {
    /// Echo server on each port; `WHO?` is answered with the peer's address.
    #[command(hide = true)]
    Serve {
        #[arg(long, value_delimiter = ',')]
        ports: Vec<u16>,
        #[arg(long)]
        seconds: u64,
    },
    /// New connections per second, each a 1-byte exchange then close.
    #[command(hide = true)]
    ConnRate {
        #[arg(long)]
        target: SocketAddr,
        #[arg(long)]
        concurrency: usize,
        #[arg(long)]
        seconds: f64,
        #[arg(long)]
        max_count: u64,
    },
    /// Request/response latency on one long-lived connection.
    #[command(hide = true)]
    PingPong {
        #[arg(long)]
        target: SocketAddr,
        #[arg(long, default_value_t = 64)]
        size: usize,
        #[arg(long)]
        seconds: f64,
        #[arg(long)]
        max_count: usize,
        /// Round trips before this are not counted: the connection settles
        /// (the gateway's default relay hands a quiet stream to the kernel
        /// after its first 50 ms window).
        #[arg(long, default_value_t = 0.15)]
        warmup_seconds: f64,
    },
    /// HTTP/1.1 GETs at a fixed rate over keep-alive connections.
    #[command(hide = true)]
    HttpRate {
        #[arg(long)]
        target: SocketAddr,
        #[arg(long, default_value = "/1k")]
        path: String,
        #[arg(long)]
        rate: u32,
        #[arg(long)]
        seconds: f64,
        #[arg(long, default_value_t = 4)]
        connections: u32,
    },
    /// `count` HTTP/1.1 GETs one after another on one keep-alive connection.
    #[command(hide = true)]
    HttpSequence {
        #[arg(long)]
        target: SocketAddr,
        #[arg(long, default_value = "/1k")]
        path: String,
        #[arg(long)]
        count: u32,
    },
    /// Opens idle connections up to each level, reporting each, and waits
    /// for a line on stdin before the next.
    #[command(hide = true)]
    Hold {
        #[arg(long)]
        target: SocketAddr,
        #[arg(long, value_delimiter = ',')]
        levels: Vec<usize>,
        #[arg(long)]
        seconds: u64,
    },
    /// Asks the echo server who it sees as the peer, retrying until it answers.
    #[command(hide = true)]
    Probe {
        #[arg(long)]
        target: SocketAddr,
        #[arg(long)]
        seconds: f64,
    },
}

pub fn run(tool: Tool) -> anyhow::Result<()> {
    super::procs::raise_nofile_limit();
    match tool {
        Tool::Serve { ports, seconds } => {
            watchdog(Duration::from_secs(seconds + 5));
            server::serve(&ports, Duration::from_secs(seconds))
        }
        Tool::ConnRate { target, concurrency, seconds, max_count } => {
            watchdog(secs(seconds) + Duration::from_secs(15));
            clients::conn_rate(target, concurrency, secs(seconds), max_count)
        }
        Tool::PingPong { target, size, seconds, max_count, warmup_seconds } => {
            watchdog(secs(seconds) + secs(warmup_seconds) + Duration::from_secs(15));
            clients::ping_pong(target, size, secs(warmup_seconds), secs(seconds), max_count)
        }
        Tool::HttpRate { target, path, rate, seconds, connections } => {
            watchdog(secs(seconds) + Duration::from_secs(15));
            http::fixed_rate(target, &path, rate, secs(seconds), connections)
        }
        Tool::HttpSequence { target, path, count } => {
            watchdog(Duration::from_secs(600));
            http::sequence(target, &path, count)
        }
        Tool::Hold { target, levels, seconds } => {
            watchdog(Duration::from_secs(seconds));
            clients::hold(target, &levels)
        }
        Tool::Probe { target, seconds } => {
            watchdog(secs(seconds) + Duration::from_secs(5));
            clients::probe(target, secs(seconds))
        }
    }
}

fn secs(s: f64) -> Duration {
    Duration::from_secs_f64(s.clamp(0.0, 3600.0))
}

/// Ends the process after `limit`, whatever it is doing.
fn watchdog(limit: Duration) {
    std::thread::spawn(move || {
        std::thread::sleep(limit);
        eprintln!("bench tool: time limit of {limit:?} reached; exiting");
        std::process::exit(3);
    });
}

/// Percentiles of latencies in nanoseconds, as microseconds.
pub(crate) fn percentiles_us(samples: &mut [u64]) -> serde_json::Value {
    samples.sort_unstable();
    let at = |q: f64| {
        if samples.is_empty() {
            return 0.0;
        }
        let i = ((samples.len() as f64 * q).ceil() as usize).clamp(1, samples.len()) - 1;
        samples[i] as f64 / 1e3
    };
    let mean = if samples.is_empty() { 0.0 } else { samples.iter().sum::<u64>() as f64 / samples.len() as f64 / 1e3 };
    serde_json::json!({
        "count": samples.len(),
        "p50_us": at(0.50),
        "p99_us": at(0.99),
        "p999_us": at(0.999),
        "mean_us": mean,
    })
}
