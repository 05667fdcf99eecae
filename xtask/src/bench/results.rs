//! Measurements as they come in, one value per (figure, mode, repetition),
//! and what the report derives from them: min, quartiles, median and max
//! over the repetitions, ratios against modes A and B taken repetition by repetition
//! (the modes of one repetition ran back to back), and added latency.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::modes::Mode;

/// One figure, for example "connections per second with 16 clients".
pub struct Series {
    pub id: String,
    pub title: String,
    pub unit: String,
    pub higher_is_better: bool,
    /// Latency-like: the report also shows `mode − A`.
    pub additive: bool,
    /// Per mode, one slot per repetition (`None` when that run failed).
    pub values: BTreeMap<Mode, Vec<Option<f64>>>,
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Spread {
    pub min: f64,
    /// First quartile (linear interpolation between ranks).
    pub q1: f64,
    pub median: f64,
    /// Third quartile.
    pub q3: f64,
    pub max: f64,
    pub n: usize,
}

impl Spread {
    pub fn of(values: impl IntoIterator<Item = f64>) -> Option<Spread> {
        let mut v: Vec<f64> = values.into_iter().filter(|x| x.is_finite()).collect();
        if v.is_empty() {
            return None;
        }
        v.sort_by(f64::total_cmp);
        let n = v.len();
        let quantile = |q: f64| {
            let rank = q * (n - 1) as f64;
            let (lo, hi) = (rank.floor() as usize, rank.ceil() as usize);
            v[lo] + (v[hi] - v[lo]) * (rank - lo as f64)
        };
        Some(Spread { min: v[0], q1: quantile(0.25), median: quantile(0.5), q3: quantile(0.75), max: v[n - 1], n })
    }

    pub fn json(&self) -> Value {
        json!({ "min": self.min, "q1": self.q1, "median": self.median, "q3": self.q3, "max": self.max, "n": self.n })
    }
}

impl Series {
    pub fn spread(&self, mode: Mode) -> Option<Spread> {
        Spread::of(self.values.get(&mode)?.iter().flatten().copied())
    }

    /// Per-repetition pairs of (mode, base) where both ran.
    fn pairs(&self, mode: Mode, base: Mode) -> Vec<(f64, f64)> {
        let (Some(m), Some(b)) = (self.values.get(&mode), self.values.get(&base)) else { return Vec::new() };
        m.iter().zip(b).filter_map(|(x, y)| Some(((*x)?, (*y)?))).collect()
    }

    /// mode / base, repetition by repetition.
    pub fn ratio(&self, mode: Mode, base: Mode) -> Option<Spread> {
        Spread::of(self.pairs(mode, base).into_iter().filter(|(_, b)| *b != 0.0).map(|(m, b)| m / b))
    }

    /// mode − base, repetition by repetition.
    pub fn added(&self, mode: Mode, base: Mode) -> Option<Spread> {
        Spread::of(self.pairs(mode, base).into_iter().map(|(m, b)| m - b))
    }

    /// What `mode` adds at the speed of base's quieter repetitions:
    /// (mode / base − 1) × base's first quartile, repetition by repetition.
    /// Other work on a shared machine slows every mode of a repetition
    /// alike (by the same factor, not the same µs), so this moves less
    /// between runs than `added`.
    pub fn added_at_quiet_speed(&self, mode: Mode, base: Mode) -> Option<Spread> {
        let quiet = self.spread(base)?.q1;
        Spread::of(self.pairs(mode, base).into_iter().filter(|(_, b)| *b > 0.0).map(|(m, b)| (m / b - 1.0) * quiet))
    }

    pub fn json(&self) -> Value {
        let mut modes = serde_json::Map::new();
        for (&mode, reps) in &self.values {
            let mut m = json!({ "repetitions": reps });
            let opt = |s: Option<Spread>| s.map_or(Value::Null, |s| s.json());
            m["spread"] = opt(self.spread(mode));
            m["ratio_vs_a"] = opt(self.ratio(mode, Mode::Direct));
            m["ratio_vs_b"] = opt(self.ratio(mode, Mode::Iptables));
            if self.additive {
                m["added_vs_a"] = opt(self.added(mode, Mode::Direct));
                m["added_vs_a_at_quiet_speed"] = opt(self.added_at_quiet_speed(mode, Mode::Direct));
            }
            modes.insert(mode.title(), m);
        }
        json!({
            "id": self.id,
            "title": self.title,
            "unit": self.unit,
            "higher_is_better": self.higher_is_better,
            "modes": modes,
        })
    }
}

#[derive(Default)]
pub struct Results {
    pub series: Vec<Series>,
    /// Sections that are not per-mode series (memory, policy), as JSON.
    pub sections: BTreeMap<String, Value>,
    /// What failed or was skipped, in words.
    pub notes: Vec<String>,
}

/// How a figure is described when its first value arrives.
pub struct Figure<'a> {
    pub id: &'a str,
    pub title: &'a str,
    pub unit: &'a str,
    pub higher_is_better: bool,
    pub additive: bool,
}

impl Results {
    pub fn record(&mut self, fig: &Figure<'_>, mode: Mode, rep: usize, value: Option<f64>) {
        let idx = match self.series.iter().position(|s| s.id == fig.id) {
            Some(i) => i,
            None => {
                self.series.push(Series {
                    id: fig.id.into(),
                    title: fig.title.into(),
                    unit: fig.unit.into(),
                    higher_is_better: fig.higher_is_better,
                    additive: fig.additive,
                    values: BTreeMap::new(),
                });
                self.series.len() - 1
            }
        };
        let slots = self.series[idx].values.entry(mode).or_default();
        if slots.len() <= rep {
            slots.resize(rep + 1, None);
        }
        slots[rep] = value;
    }

    pub fn get(&self, id: &str) -> Option<&Series> {
        self.series.iter().find(|s| s.id == id)
    }

    pub fn note(&mut self, text: impl Into<String>) {
        let text = text.into();
        eprintln!("bench: {text}");
        self.notes.push(text);
    }
}
