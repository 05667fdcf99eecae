//! Folding many subdomains of one domain into a wildcard, only when asked
//! (`--wildcard-min N`).
//!
//! The registrable domain is taken as the last two labels (`a.b.example.com`
//! → `example.com`), or three when the second-to-last label is a short
//! second-level label under a two-letter country code (`x.example.co.uk` →
//! `example.co.uk`). Without the public suffix list this is a heuristic: the
//! output is a proposal to review, and a wildcard is never made by default.

use std::collections::{BTreeMap, BTreeSet};

/// The domain `host` belongs to, if it has a subdomain under it.
pub fn registrable_domain(host: &str) -> Option<String> {
    let labels: Vec<&str> = host.split('.').collect();
    let n = labels.len();
    if n < 2 {
        return None;
    }
    let country_second_level = n >= 3 && labels[n - 1].len() == 2 && matches!(labels[n - 2], "co" | "com" | "net" | "org" | "ac" | "gov" | "edu" | "ne" | "or");
    let keep = if country_second_level { 3 } else { 2 };
    (n > keep).then(|| labels[n - keep..].join("."))
}

/// For each domain with at least `min` distinct subdomains among `hosts`,
/// the wildcard that replaces them (`*.example.com`) and the hosts it covers.
pub fn fold(hosts: &BTreeSet<String>, min: usize) -> BTreeMap<String, BTreeSet<String>> {
    let mut by_domain: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for h in hosts {
        if let Some(d) = registrable_domain(h) {
            by_domain.entry(d).or_default().insert(h.clone());
        }
    }
    by_domain.into_iter().filter(|(_, hs)| min >= 2 && hs.len() >= min).map(|(d, hs)| (format!("*.{d}"), hs)).collect()
}
