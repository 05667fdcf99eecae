//! Figure 4: bulk throughput with iperf3, 1 and 4 streams, client to
//! server and back (`-R`).

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
            let out = h.profiled(&id, mode, rep, |h| h.client(mode, Path::new("iperf3"), &a, limit))?.stdout;
            let v: serde_json::Value = serde_json::from_str(&out).context("parsing iperf3's JSON")?;
            if let Some(e) = v["error"].as_str() {
                bail!("iperf3: {e}");
            }
            let bps = v["end"]["sum_received"]["bits_per_second"].as_f64().context("no end.sum_received in iperf3's output")?;
            h.record(&fig, mode, rep, bps / 1e9);
            Ok(())
        });
    }
}
