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

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(name: &str, host: &str) -> Vec<u8> {
        format!(
            "{{\"apiVersion\": \"networking.istio.io/v1\", \"kind\": \"ServiceEntry\",
              \"metadata\": {{\"name\": \"{name}\", \"namespace\": \"a\"}},
              \"spec\": {{\"hosts\": [\"{host}\"], \"ports\": [{{\"number\": 443, \"name\": \"tls\", \"protocol\": \"TLS\"}}]}}}}"
        )
        .into_bytes()
    }

    #[test]
    fn a_broken_document_falls_back_to_its_last_good_version_and_spares_the_others() {
        let good = doc("one", "one.example.com");
        let broken = doc("one", "not a host!");
        let other = doc("two", "two.example.com");
        let p1 = PathBuf::from("kubernetes:ServiceEntry/a/one");
        let p2 = PathBuf::from("kubernetes:ServiceEntry/a/two");
        let api: ApiDocuments = [(p1.clone(), broken), (p2.clone(), other.clone())].into();
        let last_good: ApiDocuments = [(p1.clone(), good.clone())].into();
        let out = load_with_api(&[], &api, &last_good, &LoadOptions::default()).unwrap();
        assert!(!out.loaded.has_errors(), "{:?}", out.loaded.findings);
        assert_eq!(out.used.get(&p1), Some(&good));
        assert_eq!(out.used.get(&p2), Some(&other));
        assert_eq!(out.rejected.len(), 1);
        assert_eq!(out.rejected[0].0, p1);
        let snapshot = out.loaded.snapshot.unwrap();
        assert_eq!(snapshot.service_entries.len(), 2);

        // Without a last good version, the broken one is simply left out.
        let out = load_with_api(&[], &api, &ApiDocuments::new(), &LoadOptions::default()).unwrap();
        assert_eq!(out.used.len(), 1);
        assert_eq!(out.loaded.snapshot.unwrap().service_entries.len(), 1);
    }
}
