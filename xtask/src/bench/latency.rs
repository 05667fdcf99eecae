//! Figure 2: 64-byte request/response on one long-lived connection;
//! p50, p99 and p99.9 of the round trip. The report adds `mode − A`,
//! taken repetition by repetition, with its interquartile range and min–max.
//!
//! Many short repetitions rather than a few long ones: a round trip's p50
//! moves more between runs (other work on the machine comes and goes) than
//! within one, and a median over a dozen repetitions shrugs off the few a
//! burst of other work lands in. Each run first settles for a moment that is
//! not counted (`ping-pong --warmup-seconds`): the gateway's default relay
//! copies a stream for its first 50 ms before handing it to the kernel.
//!
//! Measured twice: with the proxy on its own CPU (as every other figure),
//! and with the proxy moved onto the clients' and server's CPU. On a
//! virtual machine a wake-up across CPUs can cost more than the proxy's
//! own work, and the second placement shows how much.

use std::time::Duration;

use super::{
    harness::{Harness, args},
    modes::Service,
    procs::Cpu,
    results::Figure,
};

/// Upper bound on round trips in one run.
const MAX_ROUND_TRIPS: usize = 5_000_000;

pub fn measure(h: &mut Harness<'_>) {
    let split = [
        Figure { id: "rr_p50", title: "64 B request/response p50", unit: "µs", higher_is_better: false, additive: true },
        Figure { id: "rr_p99", title: "64 B request/response p99", unit: "µs", higher_is_better: false, additive: true },
        Figure { id: "rr_p999", title: "64 B request/response p99.9", unit: "µs", higher_is_better: false, additive: true },
    ];
    placement(h, "64 B request/response", &split);
    let shared = [
        Figure { id: "rr1_p50", title: "64 B request/response p50, one CPU", unit: "µs", higher_is_better: false, additive: true },
        Figure { id: "rr1_p99", title: "64 B request/response p99, one CPU", unit: "µs", higher_is_better: false, additive: true },
        Figure { id: "rr1_p999", title: "64 B request/response p99.9, one CPU", unit: "µs", higher_is_better: false, additive: true },
    ];
    h.pin_proxies(Cpu::Load);
    placement(h, "64 B request/response, proxy on the load CPU", &shared);
    h.pin_proxies(Cpu::Proxy);
}

fn placement(h: &mut Harness<'_>, what: &str, figs: &[Figure<'_>; 3]) {
    let seconds = h.plan.ping_seconds;
    let limit = Duration::from_secs_f64(seconds + 20.0);
    h.interleaved(what, &Service::Echo.modes().collect::<Vec<_>>(), h.plan.ping_reps, |h, mode, rep| {
        let a = args(&[
            &"ping-pong",
            &"--target",
            &mode.target(Service::Echo),
            &"--size",
            &64,
            &"--seconds",
            &seconds,
            &"--max-count",
            &MAX_ROUND_TRIPS,
        ]);
        let v = h.tool(mode, &a, limit)?.json()?;
        for (fig, key) in figs.iter().zip(["p50_us", "p99_us", "p999_us"]) {
            h.record(fig, mode, rep, v[key].as_f64().unwrap_or(f64::NAN));
        }
        Ok(())
    });
}
