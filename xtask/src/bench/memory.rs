//! Figure 5: the proxy's resident memory with 1k, 5k and 9k idle
//! intercepted connections (mode C, and HAProxy in mode D beside it), and
//! the memory per connection: the slope between the first and last level.

use std::{
    io::{BufRead, BufReader, Write},
    process::Stdio,
    thread,
    time::Duration,
};

use anyhow::{Context, bail};
use serde_json::{Value, json};

use super::{
    harness::{Harness, args},
    modes::{Mode, Service},
    procs,
};

pub fn measure(h: &mut Harness<'_>) {
    let mut section = serde_json::Map::new();
    for mode in [Mode::Ebpf, Mode::Haproxy] {
        print!("bench: idle connections, mode {}:", mode.title());
        match levels(h, mode) {
            Ok(v) => {
                println!(" {} KiB per connection", v["per_connection_kib"]);
                section.insert(mode.title(), v);
            }
            Err(e) => {
                println!(" failed");
                h.results.note(format!("idle connections, mode {}: {e:#}", mode.title()));
            }
        }
    }
    h.results.sections.insert("memory".into(), Value::Object(section));
}

fn levels(h: &Harness<'_>, mode: Mode) -> anyhow::Result<Value> {
    let pid = h.servers.proxy_pid(mode).context("mode has no proxy")?;
    let baseline = procs::rss_kib(pid).context("reading the proxy's RSS")?;
    let levels = &h.plan.idle_levels;
    let list: Vec<String> = levels.iter().map(usize::to_string).collect();
    let mut a = vec!["bench".to_string()];
    a.extend(args(&[&"hold", &"--target", &mode.target(Service::Echo), &"--levels", &list.join(","), &"--seconds", &120]));
    let mut child = procs::command(&h.topo.client_place(mode), h.tool, &a)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .context("starting the idle-connection holder")?;
    let mut stdin = child.stdin.take().expect("piped");
    let mut lines = BufReader::new(child.stdout.take().expect("piped")).lines();
    let mut points = Vec::new();
    let outcome = (|| -> anyhow::Result<()> {
        for &level in levels {
            let line = lines.next().context("the holder stopped early")??;
            let v: Value = serde_json::from_str(&line).context("holder output")?;
            if v["held"].as_u64() != Some(level as u64) {
                bail!("holder reported {line}, expected {level} connections");
            }
            // Let the proxy finish setting up the last upstream connections.
            thread::sleep(Duration::from_millis(300));
            let rss = procs::rss_kib(pid).context("reading the proxy's RSS")?;
            print!(" {level}: {rss} KiB");
            let _ = std::io::stdout().flush();
            points.push(json!({ "connections": level, "rss_kib": rss, "open_seconds": v["seconds"] }));
            writeln!(stdin)?;
        }
        Ok(())
    })();
    drop(stdin);
    let _ = child.kill();
    let _ = child.wait();
    outcome?;
    let first = (&points[0]["connections"], &points[0]["rss_kib"]);
    let last = (&points[points.len() - 1]["connections"], &points[points.len() - 1]["rss_kib"]);
    let n = |v: &Value| v.as_f64().unwrap_or(0.0);
    let per_connection = (n(last.1) - n(first.1)) / (n(last.0) - n(first.0)).max(1.0);
    Ok(json!({
        "proxy_pid_baseline_kib": baseline,
        "levels": points,
        "per_connection_kib": (per_connection * 100.0).round() / 100.0,
    }))
}
