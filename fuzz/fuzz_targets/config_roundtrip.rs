//! The YAML → configuration decoder.
//!
//! 1. Any text loads without panicking.
//! 2. The YAML layer round-trips: each parsed document, written out again in
//!    a canonical spelling (flow style, quoted strings, see `yaml_text`),
//!    parses back to the same tree.
//! 3. The decoder depends on what the YAML says, not how it is spelled: a
//!    configuration that validates loads from its canonical text to an
//!    equal snapshot (compared as JSON, the form `gateway validate` prints)
//!    with the same findings (code, severity, resource and field; positions
//!    and wording aside).
//!
//! There is no encoder back to Istio's YAML in the gateway, so the snapshot
//! is not re-encoded; the canonical text is the re-encoding of the input.

#![no_main]

use std::{os::unix::fs::FileTypeExt, path::Path};

use gateway_fuzz::yaml_text::{canonical, same_tree};
use gateway_userspace::config::{
    Finding, LoadOptions, Loaded, load_str,
    yaml::{Doc, Node, Value, parse_documents},
};
use libfuzzer_sys::fuzz_target;

/// Where the text is said to come from; relative TLS file paths resolve
/// against a directory that does not exist.
const CONFIG_PATH: &str = "/nonexistent-fuzz-config/config.yaml";

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let docs = parse_documents(text);
    if docs.iter().any(|d| matches!(d, Doc::Ok(n) if names_special_file(n))) {
        return;
    }
    let path = Path::new(CONFIG_PATH);
    let opts = LoadOptions::default();
    let first = load_str(path, text, &opts);

    let mut again = String::new();
    let mut trees = Vec::new();
    for doc in &docs {
        let Doc::Ok(node) = doc else { continue };
        let Some(doc_text) = canonical(node) else { return };
        again.push_str("---\n");
        again.push_str(&doc_text);
        again.push('\n');
        trees.push(&node.value);
    }
    let mut reparsed: Vec<Node> = Vec::new();
    for doc in parse_documents(&again) {
        match doc {
            Doc::Ok(n) => reparsed.push(n),
            // Aliases count once in the source, but the canonical text spells
            // out what they stand for, so it can pass a size limit the source
            // stayed under; the limit still holds, which is what matters.
            Doc::Err { message, .. } if is_size_limit(&message) => return,
            Doc::Err { pos, message } => panic!("canonical text does not parse at {pos:?}: {message}\n{again}"),
        }
    }
    assert_eq!(reparsed.len(), trees.len(), "document count changed:\n{again}");
    for (before, after) in trees.iter().zip(&reparsed) {
        assert!(same_tree(before, &after.value), "tree changed:\n{before:?}\n{:?}\n{again}", after.value);
    }

    if first.snapshot.is_none() {
        return;
    }
    let second = load_str(path, &again, &opts);
    assert_eq!(snapshot_json(&first), snapshot_json(&second), "snapshot changed:\n{again}");
    assert_eq!(finding_keys(&first), finding_keys(&second), "findings changed:\n{again}");
});

fn is_size_limit(message: &str) -> bool {
    message.starts_with("document expands to more than") || message.starts_with("document nests deeper than")
}

fn snapshot_json(loaded: &Loaded) -> Option<serde_json::Value> {
    loaded.snapshot.as_ref().map(|s| serde_json::to_value(&**s).expect("a snapshot serialises"))
}

fn finding_keys(loaded: &Loaded) -> Vec<String> {
    let mut keys: Vec<String> = loaded
        .findings
        .iter()
        .map(|f: &Finding| format!("{:?} {:?} {:?} {}", f.code, f.severity, f.resource, f.field))
        .collect();
    keys.sort();
    keys
}

/// Whether a string in the tree names a device, FIFO or socket: the loader
/// reads TLS files the configuration names, and reading those would block
/// or never end, which says nothing about the decoder.
fn names_special_file(node: &Node) -> bool {
    match &node.value {
        Value::Str(s) => {
            let base = Path::new(CONFIG_PATH).parent().unwrap_or(Path::new("/"));
            std::fs::metadata(base.join(s)).is_ok_and(|m| {
                let t = m.file_type();
                t.is_char_device() || t.is_block_device() || t.is_fifo() || t.is_socket()
            })
        }
        Value::Seq(items) => items.iter().any(names_special_file),
        Value::Map(entries) => entries.iter().any(|(k, v)| names_special_file(k) || names_special_file(v)),
        _ => false,
    }
}
