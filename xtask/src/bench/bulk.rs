//! Figure 4: bulk throughput with iperf3, 1 and 4 streams, client to
//! server and back (`-R`), and how busy the load CPU (client and server)
//! and the proxy CPU were meanwhile: which of them bounds the figure.

use std::{path::Path, time::Duration};

use anyhow::{Context, bail};

use super::{
    harness::{Harness, args},
    modes::Service,
    results::Figure,
};

pub fn measure(h: &mut Harness<'_>) {
    for (streams, reverse) in [(1u32, false), (4, false), (1, true), (4, true)] {
        let direction = if reverse { "server→client" } else { "client→server" };
        let id = format!("bulk_{streams}_{}", if reverse { "down" } else { "up" });
        let title = format!("iperf3, {streams} stream{}, {direction}", if streams == 1 { "" } else { "s" });
        let fig = Figure { id: &id, title: &title, unit: "Gbit/s", higher_is_better: true, additive: false };
        let (load_id, load_title) = (format!("{id}_load_cpu"), format!("{title}, load CPU busy"));
        let load = Figure { id: &load_id, title: &load_title, unit: "%", higher_is_better: false, additive: false };
        let (proxy_id, proxy_title) = (format!("{id}_proxy_cpu"), format!("{title}, proxy CPU busy"));
        let proxy = Figure { id: &proxy_id, title: &proxy_title, unit: "%", higher_is_better: false, additive: false };
        let seconds = h.plan.bulk_seconds;
        let limit = Duration::from_secs(seconds + 20);
        h.interleaved(&title, &Service::Iperf.modes().collect::<Vec<_>>(), h.plan.bulk_reps, |h, mode, rep| {
            let target = mode.target(Service::Iperf);
            let mut a = args(&[
                &"-c",
                &target.ip(),
                &"-p",
                &target.port(),
                &"-t",
                &seconds,
                &"-P",
                &streams,
                &"-J",
                &"--connect-timeout",
                &3000,
            ]);
            if reverse {
                a.push("-R".into());
            }
            let run = h.profiled(&id, mode, rep, true, |h| h.client(mode, Path::new("iperf3"), &a, limit))?;
            let v: serde_json::Value = serde_json::from_str(&run.stdout).context("parsing iperf3's JSON")?;
            if let Some(e) = v["error"].as_str() {
                bail!("iperf3: {e}");
            }
            let bps = v["end"]["sum_received"]["bits_per_second"].as_f64().context("no end.sum_received in iperf3's output")?;
            h.record(&fig, mode, rep, bps / 1e9);
            if let Some(busy) = run.cpu.load_busy {
                h.record(&load, mode, rep, busy * 100.0);
            }
            if let Some(busy) = run.cpu.proxy_busy {
                h.record(&proxy, mode, rep, busy * 100.0);
            }
            Ok(())
        });
    }
}
