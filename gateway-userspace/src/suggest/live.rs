//! The proxy's own refusals, kept in memory for the admin `/suggest`: each
//! denied (or, audited, would-be denied) connection and request goes into
//! an [`Observed`] exactly as its audit line would be read back, so the
//! admin endpoint serves what `gateway suggest` makes of the log. Memory
//! is bounded: at most [`MAX_DESTINATIONS`] destinations are kept, a
//! refusal of a further one is only counted.

use std::sync::Mutex;

use serde::Serialize;

use super::{PlanOptions, observed::Observed, render};

/// Destinations (namespace, host or address, port) kept at most.
pub const MAX_DESTINATIONS: usize = 4096;

/// What this process refused, by namespace and destination.
pub struct LiveRefusals {
    observed: Mutex<Observed>,
}

impl Default for LiveRefusals {
    fn default() -> Self {
        Self::with_capacity(MAX_DESTINATIONS)
    }
}

impl LiveRefusals {
    /// Keeping at most `max_destinations` destinations.
    pub fn with_capacity(max_destinations: usize) -> Self {
        Self { observed: Mutex::new(Observed { max_destinations: max_destinations.max(1), ..Observed::default() }) }
    }

    /// One refused connection or request record, as its audit line says
    /// it; `false` when its destination was past the limit, not kept.
    pub fn observe(&self, record: &impl Serialize) -> bool {
        let Ok(line) = serde_json::to_value(record) else { return true };
        let mut observed = self.observed.lock().expect("refusals lock");
        let dropped = observed.dropped;
        observed.lines += 1;
        observed.add_value(&line, None);
        observed.dropped == dropped
    }

    /// Refusals of further destinations not kept.
    pub fn dropped(&self) -> u64 {
        self.observed.lock().expect("refusals lock").dropped
    }

    /// The proposal (`gateway suggest`'s YAML), for one namespace or all.
    pub fn render(&self, namespace: Option<&str>) -> Result<String, serde_yaml::Error> {
        let view = {
            let observed = self.observed.lock().expect("refusals lock");
            let denied = observed.denied.iter().filter(|(ns, _)| namespace.is_none_or(|want| want == ns.as_str()));
            Observed {
                denied: denied.map(|(ns, d)| (ns.clone(), d.clone())).collect(),
                lines: observed.lines,
                max_destinations: observed.max_destinations,
                dropped: observed.dropped,
                ..Observed::default()
            }
        };
        render(&view, &PlanOptions::default())
    }
}
