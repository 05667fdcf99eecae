//! Tests of the whole module against the fixtures in
//! `tests/fixtures/istio`.

mod api_documents;
mod broken;
mod findings;
mod good;
mod hosts;
mod mutations;
mod queries;
mod reporting;
mod values;
mod yaml;

use super::{LoadOptions, Loaded};
use std::collections::BTreeMap;
use std::path::PathBuf;

/// Root of the Istio fixtures.
pub(super) fn fixtures() -> PathBuf {
    PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../tests/fixtures/istio"
    ))
}

/// Options under which the good fixtures load cleanly.
pub(super) fn options() -> LoadOptions {
    LoadOptions {
        instance_labels: BTreeMap::from([("istio".to_string(), "ingressgateway".to_string())]),
        ..LoadOptions::default()
    }
}

/// All findings, one per line, for assertion messages.
pub(super) fn listing(loaded: &Loaded) -> String {
    loaded.findings.iter().map(|f| format!("{f}\n")).collect()
}
