//! Figure 3: HTTP/1.1 GETs of a 1 KiB file from nginx. First at a fixed
//! 1,000 requests per second (p50, p99, and the CPU each 1,000 req/s costs,
//! machine-wide and in the proxy), then the most wrk gets from 16
//! connections. Modes A to E and Dh (HAProxy parsing HTTP).

use std::{path::Path, time::Duration};

use anyhow::{Context, bail};

use super::{
    harness::{Harness, args},
    modes::Service,
    results::Figure,
};

pub const FIXED_RATE: u32 = 1_000;

pub fn measure(h: &mut Harness<'_>) {
    fixed_rate(h);
    max_rate(h);
}

fn fixed_rate(h: &mut Harness<'_>) {
    let figs = [
        Figure { id: "http_p50", title: "HTTP 1 KiB at 1,000 req/s, p50", unit: "µs", higher_is_better: false, additive: true },
        Figure { id: "http_p99", title: "HTTP 1 KiB at 1,000 req/s, p99", unit: "µs", higher_is_better: false, additive: true },
    ];
    let machine = Figure {
        id: "http_cpu_machine",
        title: "Machine CPU per 1,000 req/s",
        unit: "vCPU",
        higher_is_better: false,
        additive: true,
    };
    let proxy = Figure { id: "http_cpu_proxy", title: "Proxy CPU per 1,000 req/s", unit: "vCPU", higher_is_better: false, additive: false };
    let seconds = h.plan.http_fixed_seconds;
    let limit = Duration::from_secs_f64(seconds + 20.0);
    h.interleaved("HTTP at 1,000 req/s", &super::modes::Mode::HTTP, h.plan.http_fixed_reps, |h, mode, rep| {
        let a = args(&[
            &"http-rate",
            &"--target",
            &mode.target(Service::Http),
            &"--rate",
            &FIXED_RATE,
            &"--seconds",
            &seconds,
        ]);
        let run = h.profiled("http_fixed", mode, rep, false, |h| h.tool(mode, &a, limit))?;
        let v = run.json()?;
        let rate = v["per_second"].as_f64().unwrap_or(0.0);
        if rate <= 0.0 {
            bail!("no request completed");
        }
        if v["errors"].as_u64().unwrap_or(0) > 0 {
            h.results.note(format!("HTTP at 1,000 req/s, mode {}: {} failed requests", mode.title(), v["errors"]));
        }
        h.record(&figs[0], mode, rep, v["p50_us"].as_f64().unwrap_or(f64::NAN));
        h.record(&figs[1], mode, rep, v["p99_us"].as_f64().unwrap_or(f64::NAN));
        h.record(&machine, mode, rep, run.cpu.machine / (rate / 1000.0));
        if let Some(p) = run.cpu.process {
            h.record(&proxy, mode, rep, p / (rate / 1000.0));
        }
        Ok(())
    });
}

fn max_rate(h: &mut Harness<'_>) {
    let fig = Figure { id: "http_max", title: "HTTP 1 KiB, maximum (wrk, 16 connections)", unit: "req/s", higher_is_better: true, additive: false };
    let seconds = h.plan.http_max_seconds;
    let limit = Duration::from_secs(seconds + 20);
    h.interleaved("HTTP maximum rate", &super::modes::Mode::HTTP, h.plan.reps_short, |h, mode, rep| {
        let url = format!("http://{}/1k", mode.target(Service::Http));
        let a = args(&[&"-t1", &"-c16", &format!("-d{seconds}s"), &url]);
        let out = h.client(mode, Path::new("wrk"), &a, limit)?.stdout;
        let rps = out
            .lines()
            .find_map(|l| l.strip_prefix("Requests/sec:"))
            .and_then(|v| v.trim().parse::<f64>().ok())
            .with_context(|| format!("no Requests/sec in wrk's output: {out}"))?;
        if let Some(errors) = out.lines().find(|l| l.contains("Non-2xx") || l.contains("Socket errors")) {
            h.results.note(format!("HTTP maximum rate, mode {}: {}", mode.title(), errors.trim()));
        }
        h.record(&fig, mode, rep, rps);
        Ok(())
    });
}
