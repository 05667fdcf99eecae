//! Configuration from the Kubernetes API: one document per resource, each
//! judged on its own. A document with errors is left out and its last
//! accepted version, if any, stays in force; the others load as usual.
//! File sources are judged as a whole, as before.

use std::{
    collections::BTreeMap,
    path::PathBuf,
};

use super::{ConfigError, Finding, LoadOptions, Loaded, Severity, load_sources, source::{self, Source}};

/// API documents by their finding path (`kubernetes:<Kind>/<ns>/<name>`).
pub type ApiDocuments = BTreeMap<PathBuf, Vec<u8>>;

/// The outcome of one load with API documents.
#[derive(Debug)]
pub struct IsolatedLoad {
    pub loaded: Loaded,
    /// The API documents in the result: the new ones, or last good versions.
    pub used: ApiDocuments,
    /// API documents left out (or held at their last good version), with
    /// the error findings that caused it.
    pub rejected: Vec<(PathBuf, Vec<Finding>)>,
}

/// Files and API documents loaded together and judged as a whole, as
/// `gateway validate --kubernetes` reports them.
pub fn load_all(paths: &[PathBuf], api: &ApiDocuments, opts: &LoadOptions) -> Result<Loaded, ConfigError> {
    let mut sources = source::collect(paths)?;
    sources.extend(api.iter().map(|(path, bytes)| Source { path: path.clone(), bytes: bytes.clone() }));
    Ok(load_sources(&sources, opts))
}

/// How many rounds of falling back are tried; each round can only remove
/// or roll back documents, so this bounds a pathological chain.
const MAX_ROUNDS: usize = 4;

pub fn load_with_api(
    paths: &[PathBuf],
    api: &ApiDocuments,
    last_good: &ApiDocuments,
    opts: &LoadOptions,
) -> Result<IsolatedLoad, ConfigError> {
    let files = source::collect(paths)?;
    let mut used = api.clone();
    let mut rejected: BTreeMap<PathBuf, Vec<Finding>> = BTreeMap::new();
    let mut round = 0;
    loop {
        let mut sources = files.clone();
        sources.extend(used.iter().map(|(path, bytes)| Source { path: path.clone(), bytes: bytes.clone() }));
        let loaded = load_sources(&sources, opts);
        let bad: BTreeMap<PathBuf, Vec<Finding>> = loaded
            .findings
            .iter()
            .filter(|f| f.severity == Severity::Error && used.contains_key(&f.file))
            .fold(BTreeMap::new(), |mut m, f| {
                m.entry(f.file.clone()).or_insert_with(Vec::new).push(f.clone());
                m
            });
        round += 1;
        if bad.is_empty() || round > MAX_ROUNDS {
            let rejected = rejected.into_iter().collect();
            return Ok(IsolatedLoad { loaded, used, rejected });
        }
        for (path, findings) in bad {
            match last_good.get(&path) {
                Some(good) if used.get(&path) != Some(good) => {
                    used.insert(path.clone(), good.clone());
                }
                _ => {
                    used.remove(&path);
                }
            }
            rejected.entry(path).or_insert(findings);
        }
    }
}
