//! Figure 1: new connections per second, each a 1-byte exchange then close,
//! with 1 and 16 concurrent clients; and the CPU each connection costs.

use std::time::Duration;

use super::{
    harness::{Harness, args},
    modes::Service,
    results::Figure,
};

/// Upper bound on connections in one run, whatever the duration.
const MAX_CONNECTIONS: u64 = 2_000_000;

pub fn measure(h: &mut Harness<'_>) {
    for clients in [1usize, 16] {
        let id = format!("conn_rate_{clients}");
        let title = format!("Connections/s, {clients} client{}", if clients == 1 { "" } else { "s" });
        let fig = Figure { id: &id, title: &title, unit: "conn/s", higher_is_better: true, additive: false };
        let cpu_id = format!("conn_cpu_{clients}");
        let cpu_title = format!("Machine CPU per connection, {clients} client{}", if clients == 1 { "" } else { "s" });
        let cpu_fig = Figure { id: &cpu_id, title: &cpu_title, unit: "µs", higher_is_better: false, additive: true };
        let seconds = h.plan.conn_seconds;
        let limit = Duration::from_secs_f64(seconds + 20.0);
        h.interleaved(&title, &Service::Echo.modes().collect::<Vec<_>>(), h.plan.reps, |h, mode, rep| {
            let a = args(&[
                &"conn-rate",
                &"--target",
                &mode.target(Service::Echo),
                &"--concurrency",
                &clients,
                &"--seconds",
                &seconds,
                &"--max-count",
                &MAX_CONNECTIONS,
            ]);
            let run = h.tool(mode, &a, limit)?;
            let v = run.json()?;
            let (done, errors) = (v["connections"].as_f64().unwrap_or(0.0), v["errors"].as_f64().unwrap_or(0.0));
            if done == 0.0 {
                anyhow::bail!("no connection completed ({errors} errors)");
            }
            if errors > 0.0 {
                let first = v["first_error"].as_str().unwrap_or("?");
                h.results.note(format!("{title}, mode {}: {errors} of {} connections failed ({first})", mode.title(), done + errors));
            }
            h.record(&fig, mode, rep, v["per_second"].as_f64().unwrap_or(0.0));
            h.record(&cpu_fig, mode, rep, run.cpu.machine * run.cpu.seconds / done * 1e6);
            Ok(())
        });
    }
}
