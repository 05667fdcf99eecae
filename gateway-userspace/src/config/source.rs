//! Reading configuration files: single files, and directories walked
//! recursively for `*.yaml` / `*.yml` in sorted order.

use super::ConfigError;
use super::findings::{Code, Finding, Pos, finding};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// The bytes of one configuration file.
#[derive(Debug, Clone)]
pub(crate) struct Source {
    pub path: PathBuf,
    pub bytes: Vec<u8>,
}

/// Reads every path: files as given, directories recursively. Entries whose
/// name starts with `.` are skipped (this also skips the `..data` links of
/// mounted Kubernetes ConfigMaps, which would otherwise be read twice).
pub(crate) fn collect(paths: &[PathBuf]) -> Result<Vec<Source>, ConfigError> {
    let mut files = Vec::new();
    let mut seen_dirs = BTreeSet::new();
    for p in paths {
        let meta = std::fs::metadata(p).map_err(|e| ConfigError::read(p, e))?;
        if meta.is_dir() {
            walk(p, &mut files, &mut seen_dirs)?;
        } else {
            files.push(p.clone());
        }
    }
    files
        .into_iter()
        .map(|path| {
            let bytes = std::fs::read(&path).map_err(|e| ConfigError::read(&path, e))?;
            Ok(Source { path, bytes })
        })
        .collect()
}

fn walk(
    dir: &Path,
    files: &mut Vec<PathBuf>,
    seen: &mut BTreeSet<PathBuf>,
) -> Result<(), ConfigError> {
    let canonical = std::fs::canonicalize(dir).map_err(|e| ConfigError::read(dir, e))?;
    if !seen.insert(canonical) {
        return Ok(());
    }
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| ConfigError::read(dir, e))?
        .map(|e| {
            e.map(|e| e.path())
                .map_err(|err| ConfigError::read(dir, err))
        })
        .collect::<Result<_, _>>()?;
    entries.sort();
    for path in entries {
        let hidden = path
            .file_name()
            .and_then(|n| n.to_str())
            .is_none_or(|n| n.starts_with('.'));
        if hidden {
            continue;
        }
        let meta = std::fs::metadata(&path).map_err(|e| ConfigError::read(&path, e))?;
        if meta.is_dir() {
            walk(&path, files, seen)?;
        } else if is_yaml(&path) {
            files.push(path);
        }
    }
    Ok(())
}

fn is_yaml(path: &Path) -> bool {
    matches!(
        path.extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase)
            .as_deref(),
        Some("yaml" | "yml")
    )
}

/// The text of a source. Bytes that are not UTF-8 are reported (at their
/// line and column) and replaced, so the rest of the file is still read.
pub(crate) fn text(source: &Source, findings: &mut Vec<Finding>) -> String {
    let bytes = source
        .bytes
        .strip_prefix(b"\xEF\xBB\xBF")
        .unwrap_or(&source.bytes);
    match std::str::from_utf8(bytes) {
        Ok(s) => s.to_string(),
        Err(e) => {
            let good = &bytes[..e.valid_up_to()];
            let line = good.iter().filter(|b| **b == b'\n').count() + 1;
            let line_start = good.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
            let column = String::from_utf8_lossy(&good[line_start..]).chars().count() + 1;
            let msg = "the file is not valid UTF-8 here; save it as UTF-8";
            findings.push(finding(
                Code::YamlSyntax,
                &source.path,
                Pos::new(line, column),
                None,
                "",
                msg,
            ));
            String::from_utf8_lossy(bytes).into_owned()
        }
    }
}
