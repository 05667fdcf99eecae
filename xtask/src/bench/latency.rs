//! Figure 2: 64-byte request/response on one long-lived connection;
//! p50, p99 and p99.9 of the round trip. The report adds `mode − A`.

use std::time::Duration;

use super::{
    harness::{Harness, args},
    modes::Service,
    results::Figure,
};

/// Upper bound on round trips in one run.
const MAX_ROUND_TRIPS: usize = 5_000_000;

pub fn measure(h: &mut Harness<'_>) {
    let figs = [
        Figure { id: "rr_p50", title: "64 B request/response p50", unit: "µs", higher_is_better: false, additive: true },
        Figure { id: "rr_p99", title: "64 B request/response p99", unit: "µs", higher_is_better: false, additive: true },
        Figure { id: "rr_p999", title: "64 B request/response p99.9", unit: "µs", higher_is_better: false, additive: true },
    ];
    let seconds = h.plan.ping_seconds;
    let limit = Duration::from_secs_f64(seconds + 20.0);
    h.interleaved("64 B request/response", h.plan.reps, |h, mode, rep| {
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
