//! The chart: one panel per headline figure, a horizontal bar per mode at
//! the median, with a line from min to max over the repetitions.

use std::fmt::Write as _;

use super::{
    modes::Mode,
    report::num,
    results::{Results, Series, Spread},
};

const WIDTH: f64 = 760.0;
const LABEL: f64 = 120.0;
const BAR: f64 = 18.0;
const GAP: f64 = 6.0;
/// By `Mode::index`: A, B, C, D, E, Cs, Ck, Cc, Dh.
const COLOURS: [&str; 9] = ["#7f7f7f", "#d62728", "#1f77b4", "#ff7f0e", "#2ca02c", "#17becf", "#9467bd", "#8c564b", "#bcbd22"];

struct Panel {
    title: String,
    bars: Vec<(Mode, Spread)>,
}

pub fn chart(r: &Results) -> String {
    let mut panels = Vec::new();
    let others = Mode::PROXIED;
    for (id, what) in [("rr_p50", "p50"), ("rr_p99", "p99"), ("rr1_p50", "p50, all on one CPU")] {
        if let Some(s) = r.get(id) {
            panels.push(panel(
                format!("Added 64 B request/response latency, {what} (µs, mode − A)"),
                &others,
                |m| s.added(m, Mode::Direct),
            ));
        }
    }
    for id in ["bulk_1_up", "bulk_4_up", "conn_rate_16", "http_max"] {
        if let Some(s) = r.get(id) {
            panels.push(absolute(s));
        }
    }
    render(&panels)
}

fn absolute(s: &Series) -> Panel {
    panel(format!("{} ({})", s.title, s.unit), &Mode::ALL, |m| s.spread(m))
}

fn panel(title: String, modes: &[Mode], value: impl Fn(Mode) -> Option<Spread>) -> Panel {
    Panel { title, bars: modes.iter().filter_map(|&m| Some((m, value(m)?))).collect() }
}

fn render(panels: &[Panel]) -> String {
    let panel_height = |p: &Panel| 30.0 + p.bars.len() as f64 * (BAR + GAP) + 14.0;
    let height: f64 = 20.0 + panels.iter().map(panel_height).sum::<f64>();
    let mut o = String::new();
    let _ = writeln!(
        o,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" viewBox="0 0 {WIDTH} {height}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(o, r#"<rect width="100%" height="100%" fill="white"/>"#);
    let mut y = 20.0;
    for p in panels {
        let _ = writeln!(o, r#"<text x="10" y="{}" font-weight="bold">{}</text>"#, y + 12.0, escape(&p.title));
        let top = y + 24.0;
        let scale_max = p.bars.iter().map(|(_, s)| s.max.max(s.median)).fold(0.0_f64, f64::max);
        let scale_min = p.bars.iter().map(|(_, s)| s.min.min(s.median)).fold(0.0_f64, f64::min);
        let span = (scale_max - scale_min).max(1e-9);
        let plot = WIDTH - LABEL - 110.0;
        let x = |v: f64| LABEL + (v - scale_min) / span * plot;
        let zero = x(0.0);
        for (i, (mode, s)) in p.bars.iter().enumerate() {
            let by = top + i as f64 * (BAR + GAP);
            let (from, to) = if s.median >= 0.0 { (zero, x(s.median)) } else { (x(s.median), zero) };
            let _ = writeln!(o, r#"<text x="10" y="{}">{}</text>"#, by + BAR * 0.7, escape(&mode.title()));
            let _ = writeln!(
                o,
                r#"<rect x="{from:.1}" y="{by:.1}" width="{:.1}" height="{BAR}" fill="{}"/>"#,
                (to - from).max(0.5),
                COLOURS[mode.index()]
            );
            if s.n > 1 {
                let wy = by + BAR / 2.0;
                let _ = writeln!(
                    o,
                    r#"<line x1="{:.1}" y1="{wy:.1}" x2="{:.1}" y2="{wy:.1}" stroke="black" stroke-width="1.5"/>"#,
                    x(s.min),
                    x(s.max)
                );
            }
            let _ = writeln!(o, r#"<text x="{:.1}" y="{}">{}</text>"#, x(scale_max) + 8.0, by + BAR * 0.7, num(s.median));
        }
        let _ = writeln!(
            o,
            r##"<line x1="{zero:.1}" y1="{top}" x2="{zero:.1}" y2="{:.1}" stroke="#333"/>"##,
            top + p.bars.len() as f64 * (BAR + GAP)
        );
        y += panel_height(p);
    }
    o.push_str("</svg>\n");
    o
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}
