//! The results as Markdown (printed and written) and as JSON, under
//! `target/bench/`.

use std::{fmt::Write as _, fs, path::Path};

use serde_json::{Value, json};

use super::{
    modes::Mode,
    results::{Results, Series, Spread},
};

/// What describes a run besides its numbers.
pub struct Meta {
    pub date: String,
    pub machine: String,
    /// Which build of the gateway was measured.
    pub build: String,
    pub quick: bool,
    pub repetitions: String,
    pub seconds: f64,
    /// `/proc/loadavg`'s 1-minute figure before the run: other work on the
    /// machine moves the latency figures most.
    pub load_before: Option<f64>,
}

pub fn write(dir: &Path, meta: &Meta, r: &Results) -> anyhow::Result<String> {
    fs::create_dir_all(dir)?;
    let md = markdown(meta, r);
    fs::write(dir.join("results.md"), &md)?;
    fs::write(dir.join("results.json"), serde_json::to_string_pretty(&to_json(meta, r))?)?;
    fs::write(dir.join("chart.svg"), super::svg::chart(r))?;
    Ok(md)
}

fn to_json(meta: &Meta, r: &Results) -> Value {
    json!({
        "date": meta.date,
        "machine": meta.machine,
        "build": meta.build,
        "quick": meta.quick,
        "repetitions": meta.repetitions,
        "seconds": meta.seconds,
        "load_before": meta.load_before,
        "modes": Mode::ALL.iter().map(|m| m.title()).collect::<Vec<_>>(),
        "figures": r.series.iter().map(|s| s.json()).collect::<Vec<_>>(),
        "sections": r.sections,
        "notes": r.notes,
    })
}

/// Three significant digits, thousands separated.
pub fn num(v: f64) -> String {
    if !v.is_finite() {
        return "–".into();
    }
    let a = v.abs();
    let decimals = if a >= 100.0 || v.fract() == 0.0 { 0 } else if a >= 10.0 { 1 } else if a >= 1.0 { 2 } else { 3 };
    let s = format!("{v:.decimals$}");
    let (int, frac) = s.split_once('.').map_or((s.as_str(), None), |(i, f)| (i, Some(f)));
    let (sign, digits) = int.strip_prefix('-').map_or(("", int), |d| ("-", d));
    let mut grouped = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            grouped.push(',');
        }
        grouped.push(c);
    }
    match frac {
        Some(f) => format!("{sign}{grouped}.{f}"),
        None => format!("{sign}{grouped}"),
    }
}

fn cell(s: Option<Spread>) -> String {
    match s {
        Some(s) if s.n > 1 => format!("{} [{}–{}]", num(s.median), num(s.min), num(s.max)),
        Some(s) => num(s.median),
        None => "–".into(),
    }
}

/// A ratio as every table writes it.
fn times(v: f64) -> String {
    format!("{v:.2}×")
}

fn ratio_cell(s: Option<Spread>) -> String {
    match s {
        Some(s) if s.n > 1 => format!("{} [{}–{}]", times(s.median), times(s.min), times(s.max)),
        Some(s) => times(s.median),
        None => "–".into(),
    }
}

pub fn markdown(meta: &Meta, r: &Results) -> String {
    let mut o = String::new();
    let kind = if meta.quick { "quick run" } else { "full run" };
    let _ = writeln!(o, "# Benchmark results ({kind}, {})\n", meta.date);
    let load = meta.load_before.map_or(String::new(), |l| format!(" Load average before the run: {l:.2}."));
    let _ = writeln!(
        o,
        "Machine: {}. Gateway build: {}. Repetitions: {}. Took {:.0} s.{load}",
        meta.machine, meta.build, meta.repetitions, meta.seconds
    );
    // A run limited by `--only` to the sections below has no per-mode table.
    if !r.series.is_empty() {
        per_mode_sections(&mut o, r);
    }
    latency_spread_section(&mut o, r);
    memory_section(&mut o, r.sections.get("memory"));
    instructions_section(&mut o, r.sections.get("instructions"));
    policy_section(&mut o, r.sections.get("policy"));
    if !r.notes.is_empty() {
        let _ = writeln!(o, "\n## Notes\n");
        for n in &r.notes {
            let _ = writeln!(o, "- {n}");
        }
    }
    o
}

/// The figures measured in every mode: their values, their ratios, and
/// what each mode adds to A.
fn per_mode_sections(o: &mut String, r: &Results) {
    let _ = writeln!(
        o,
        "Modes, interleaved in every repetition: A direct (no interception), B iptables DNAT to the gateway \
         (SO_ORIGINAL_DST), C the gateway's eBPF interception as it runs by default (`--relay auto`), Cc the same with every \
         stream copied through the proxy, Cs with splice(2), Ck relayed in the kernel (SOCKHASH), D iptables DNAT to HAProxy \
         in `mode tcp`, Dh the same with HAProxy in `mode http` (parsing both sides, server connections kept alive), \
         E the client addresses the gateway's explicit listener. B and E use the default relay too. The relay variants \
         (Cc, Cs, Ck) run in the connection, latency and bulk figures only: HTTP is parsed request by request in every \
         relay mode. Dh runs in the HTTP figures only. Client and server share one CPU, the proxy has the other.\n"
    );
    let heads: Vec<String> = Mode::ALL.iter().map(|m| m.title()).collect();
    let _ = writeln!(o, "## Per mode: median [min–max]\n");
    let _ = writeln!(o, "| Figure | Unit | {} |", heads.join(" | "));
    let _ = writeln!(o, "|---|---|{}", "---:|".repeat(heads.len()));
    for s in &r.series {
        let cells: Vec<String> = Mode::ALL.iter().map(|&m| cell(s.spread(m))).collect();
        let _ = writeln!(o, "| {} | {} | {} |", s.title, s.unit, cells.join(" | "));
    }

    let pairs = ratio_pairs();
    let _ = writeln!(o, "\n## Ratios, per repetition: median [min–max]\n");
    let names: Vec<String> = pairs.iter().map(|(m, b)| format!("{}/{}", m.letter(), b.letter())).collect();
    let _ = writeln!(o, "| Figure | {} |", names.join(" | "));
    let _ = writeln!(o, "|---|{}", "---:|".repeat(names.len()));
    for s in r.series.iter().filter(|s| has_ratios(s)) {
        let cells: Vec<String> = pairs.iter().map(|&(m, b)| ratio_cell(s.ratio(m, b))).collect();
        let _ = writeln!(o, "| {} | {} |", s.title, cells.join(" | "));
    }

    if !r.series.iter().any(|s| s.additive) {
        return;
    }
    let others = Mode::PROXIED;
    let _ = writeln!(o, "\n## Added by each mode (mode − A), per repetition: median [min–max]\n");
    let heads: Vec<String> = others.iter().map(|m| m.title()).collect();
    let _ = writeln!(o, "| Figure | Unit | {} |", heads.join(" | "));
    let _ = writeln!(o, "|---|---|{}", "---:|".repeat(heads.len()));
    for s in r.series.iter().filter(|s| s.additive) {
        let cells: Vec<String> = others.iter().map(|&m| cell(s.added(m, Mode::Direct))).collect();
        let _ = writeln!(o, "| {} | {} | {} |", s.title, s.unit, cells.join(" | "));
    }
}

/// Whether a figure's modes compare as ratios: a CPU's busy share (`%`)
/// says which CPU bounds a figure, and is not compared.
fn has_ratios(s: &Series) -> bool {
    s.unit != "%"
}

/// The ratio table's columns: every proxied mode against A, against B, and
/// the gateway (C) against HAProxy in TCP (D) and in HTTP mode (Dh).
pub fn ratio_pairs() -> Vec<(Mode, Mode)> {
    Mode::PROXIED
        .iter()
        .map(|&m| (m, Mode::Direct))
        .chain(Mode::PROXIED[1..].iter().map(|&m| (m, Mode::Iptables)))
        .chain([(Mode::Ebpf, Mode::Haproxy), (Mode::Ebpf, Mode::HaproxyHttp)])
        .collect()
}

/// The added p50 of the 64 B request/response figures, with how far it
/// moved between repetitions: the figure most sensitive to a noisy machine.
/// Beside `mode − A`, the same at A's quieter speed (see
/// `Series::added_at_quiet_speed`).
fn latency_spread_section(o: &mut String, r: &Results) {
    let series: Vec<_> = ["rr_p50", "rr1_p50"].iter().filter_map(|id| r.get(id)).collect();
    if series.is_empty() {
        return;
    }
    let _ = writeln!(o, "\n## Added 64 B request/response p50: spread over repetitions\n");
    let _ = writeln!(
        o,
        "Median, interquartile range and min–max over the repetitions of mode − A (µs), and of the same at A's \
         quieter speed, (mode / A − 1) × A's first quartile: other work on the machine slows a whole repetition \
         by a factor, which the second form divides out.\n"
    );
    let _ = writeln!(o, "| Figure | Mode | mode − A | interquartile | min–max | at A's quiet speed | interquartile | min–max | n |");
    let _ = writeln!(o, "|---|---|---:|---:|---:|---:|---:|---:|---:|");
    let range = |a: f64, b: f64| format!("{}–{}", num(a), num(b));
    for s in series {
        for m in Mode::PROXIED {
            let (Some(a), Some(q)) = (s.added(m, Mode::Direct), s.added_at_quiet_speed(m, Mode::Direct)) else { continue };
            let _ = writeln!(
                o,
                "| {} | {} | {} | {} | {} | {} | {} | {} | {} |",
                s.title,
                m.title(),
                num(a.median),
                range(a.q1, a.q3),
                range(a.min, a.max),
                num(q.median),
                range(q.q1, q.q3),
                range(q.min, q.max),
                a.n
            );
        }
    }
}

fn memory_section(o: &mut String, memory: Option<&Value>) {
    let Some(Value::Object(modes)) = memory else { return };
    let Some(levels) = modes.values().next().and_then(|m| m["levels"].as_array()) else { return };
    let counts: Vec<String> = levels.iter().map(|l| format!("{} conns", num(l["connections"].as_f64().unwrap_or(0.0)))).collect();
    let _ = writeln!(o, "\n## Proxy resident memory with idle connections (KiB)\n");
    let _ = writeln!(o, "| Mode | before | {} | per connection |", counts.join(" | "));
    let _ = writeln!(o, "|---|---:|{}---:|", "---:|".repeat(counts.len()));
    for (mode, m) in modes {
        let rss: Vec<String> = m["levels"]
            .as_array()
            .map(|ls| ls.iter().map(|l| num(l["rss_kib"].as_f64().unwrap_or(f64::NAN))).collect())
            .unwrap_or_default();
        let _ = writeln!(
            o,
            "| {mode} | {} | {} | {} KiB |",
            num(m["proxy_pid_baseline_kib"].as_f64().unwrap_or(f64::NAN)),
            rss.join(" | "),
            num(m["per_connection_kib"].as_f64().unwrap_or(f64::NAN))
        );
    }
}

fn instructions_section(o: &mut String, counted: Option<&Value>) {
    let Some(Value::Object(subjects)) = counted else { return };
    if subjects.is_empty() {
        return;
    }
    let per_request = |name: &str| subjects.get(name).and_then(|s| s["per_request"].as_f64());
    let (http, tcp) = (per_request("haproxy-http"), per_request("haproxy-tcp"));
    let _ = writeln!(o, "\n## User-space instructions per HTTP request (callgrind)\n");
    let _ = writeln!(
        o,
        "GETs of the 1 KiB file in sequence on one keep-alive connection; the kernel's share is not counted. \
         Data cache misses: callgrind's simulated 32 KiB first-level data cache, reads and writes.\n"
    );
    let _ = writeln!(
        o,
        "| Proxy | requests counted | instructions per request | / HAProxy `mode http` | / HAProxy `mode tcp` | data cache misses per request |"
    );
    let _ = writeln!(o, "|---|---:|---:|---:|---:|---:|");
    for (name, s) in subjects {
        let n = s["per_request"].as_f64().unwrap_or(f64::NAN);
        let ratio = |d: Option<f64>| d.map_or("–".to_string(), |d| times(n / d));
        let misses = s["l1_data_misses"].as_f64().map_or("–".to_string(), num);
        let _ = writeln!(
            o,
            "| {name} | {} | {} | {} | {} | {misses} |",
            num(s["requests"].as_f64().unwrap_or(f64::NAN)),
            num(n),
            ratio(http),
            ratio(tcp)
        );
    }
}

fn policy_section(o: &mut String, policy: Option<&Value>) {
    let Some(decisions) = policy.and_then(|p| p["decisions"].as_array()) else { return };
    let mut sizes: Vec<u64> = decisions.iter().filter_map(|d| d["hosts"].as_u64()).collect();
    sizes.sort_unstable();
    sizes.dedup();
    let _ = writeln!(o, "\n## Policy decision time (criterion median) and compiled snapshot memory\n");
    let heads: Vec<String> = sizes.iter().map(|n| format!("{} hosts", num(*n as f64))).collect();
    let _ = writeln!(o, "| Match | {} |", heads.join(" | "));
    let _ = writeln!(o, "|---|{}", "---:|".repeat(heads.len()));
    for kind in ["exact", "wildcard", "cidr"] {
        let cells: Vec<String> = sizes
            .iter()
            .map(|&n| {
                let d = decisions.iter().find(|d| d["kind"] == kind && d["hosts"] == n);
                let ns = d.and_then(|d| d["median_ns"].as_f64());
                let mib = d.and_then(|d| d["snapshot_bytes"].as_f64()).map(|b| b / 1048576.0);
                match (ns, mib) {
                    (Some(ns), Some(mib)) => format!("{} ns ({} MiB)", num(ns), num(mib)),
                    (Some(ns), None) => format!("{} ns", num(ns)),
                    _ => "–".into(),
                }
            })
            .collect();
        let _ = writeln!(o, "| {kind} | {} |", cells.join(" | "));
    }
    let Some(authz) = policy.and_then(|p| p["authz"].as_array()).filter(|a| !a.is_empty()) else { return };
    let _ = writeln!(o, "\n## AuthorizationPolicy decision time (criterion median), one HTTP request\n");
    let _ = writeln!(o, "| Policies | Median | Mean |\n|---|---:|---:|");
    for a in authz {
        let ns = |k: &str| a[k].as_f64().map_or("–".into(), |v| format!("{} ns", num(v)));
        let _ = writeln!(o, "| {} | {} | {} |", a["case"].as_str().unwrap_or("?").replace('-', " "), ns("median_ns"), ns("mean_ns"));
    }
}
