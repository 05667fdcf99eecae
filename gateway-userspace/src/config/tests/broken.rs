//! Each file of the broken corpus has one fault and must produce exactly
//! the finding listed for it in `broken/expected.txt`.

use super::{fixtures, listing, options};
use crate::config::{Code, Severity, load};
use std::collections::BTreeSet;

struct Expected {
    file: String,
    code: String,
    line: usize,
    field: String,
}

fn expectations() -> Vec<Expected> {
    let text = std::fs::read_to_string(fixtures().join("broken/expected.txt")).unwrap();
    text.lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .map(|l| {
            let parts: Vec<&str> = l.split_whitespace().collect();
            assert_eq!(parts.len(), 4, "bad expectation line: {l}");
            Expected {
                file: parts[0].to_string(),
                code: parts[1].to_string(),
                line: parts[2].parse().unwrap(),
                field: if parts[3] == "-" {
                    String::new()
                } else {
                    parts[3].to_string()
                },
            }
        })
        .collect()
}

#[test]
fn each_broken_file_gives_exactly_its_finding() {
    let expected = expectations();
    assert!(
        expected.len() >= 40,
        "the corpus must hold at least 40 files"
    );
    let mut failures = Vec::new();
    for e in &expected {
        let path = fixtures().join("broken").join(&e.file);
        let loaded = load(std::slice::from_ref(&path), &options()).unwrap();
        let ok = loaded.findings.len() == 1 && {
            let f = &loaded.findings[0];
            f.code.as_str() == e.code && f.line == e.line && f.field == e.field && f.file == path
        };
        if !ok {
            failures.push(format!(
                "{}: expected {} at line {} field `{}`, got:\n{}",
                e.file,
                e.code,
                e.line,
                e.field,
                listing(&loaded)
            ));
        }
        let errors = loaded
            .findings
            .iter()
            .any(|f| f.severity == Severity::Error);
        assert_eq!(loaded.snapshot.is_none(), errors, "{}", e.file);
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn every_broken_file_is_listed_once() {
    let listed: Vec<String> = expectations().into_iter().map(|e| e.file).collect();
    let unique: BTreeSet<&String> = listed.iter().collect();
    assert_eq!(unique.len(), listed.len(), "a file is listed twice");
    let on_disk: BTreeSet<String> = std::fs::read_dir(fixtures().join("broken"))
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.ends_with(".yaml"))
        .collect();
    assert_eq!(on_disk, listed.iter().cloned().collect::<BTreeSet<_>>());
}

#[test]
fn the_corpus_covers_every_code() {
    // Analyzers that report every resource of a conflict have their fixture
    // pairs in `analyzers/` instead.
    let analyzers = std::fs::read_to_string(fixtures().join("analyzers/expected.txt")).unwrap();
    let analyzed = analyzers.lines().filter(|l| !l.starts_with('#')).filter_map(|l| l.split_whitespace().nth(1)).map(String::from);
    let used: BTreeSet<String> = expectations().into_iter().map(|e| e.code).chain(analyzed).collect();
    for code in Code::ALL {
        assert!(
            used.contains(code.as_str()),
            "no broken fixture produces {code}"
        );
    }
}

#[test]
fn loading_the_whole_corpus_reports_every_file() {
    let loaded = load(&[fixtures().join("broken")], &options()).unwrap();
    let files: BTreeSet<_> = loaded.findings.iter().map(|f| f.file.clone()).collect();
    assert!(files.len() >= expectations().len(), "{}", listing(&loaded));
    assert!(loaded.snapshot.is_none());
}

#[test]
fn documented_codes_match_the_code_table() {
    let doc = std::fs::read_to_string(fixtures().join("../../../docs/config-findings.md"))
        .expect("docs/config-findings.md exists");
    for code in Code::ALL {
        let row = format!("| {} | {} |", code.as_str(), code.severity());
        assert!(
            doc.contains(&row),
            "docs/config-findings.md lacks the row `{row}`"
        );
    }
}
