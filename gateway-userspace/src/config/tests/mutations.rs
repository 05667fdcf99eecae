//! Loading never panics: every fixture is mutated deterministically
//! (truncated, bytes flipped, lines deleted or duplicated) and loaded.

use super::{fixtures, options};
use crate::config::source::Source;
use crate::config::{Loaded, load_sources};
use std::path::PathBuf;

/// A small deterministic generator (64-bit LCG).
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 33
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

fn fixture_files() -> Vec<PathBuf> {
    let mut out = Vec::new();
    for dir in ["good/v1", "broken"] {
        let mut files: Vec<PathBuf> = std::fs::read_dir(fixtures().join(dir))
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
            .collect();
        files.sort();
        out.extend(files);
    }
    out
}

fn mutations(bytes: &[u8], rng: &mut Lcg) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let step = bytes.len() / 40 + 1;
    for cut in (0..bytes.len()).step_by(step) {
        out.push(bytes[..cut].to_vec());
    }
    const NASTY: &[u8] = b":-[]{}&*!|>'\"%@`#,? \t\n\x00\xff\xc3";
    for round in 0..64 {
        let mut b = bytes.to_vec();
        if b.is_empty() {
            break;
        }
        for _ in 0..=round % 3 {
            let i = rng.below(b.len());
            b[i] = if rng.below(2) == 0 {
                b[i] ^ (1 << rng.below(8))
            } else {
                NASTY[rng.below(NASTY.len())]
            };
        }
        out.push(b);
    }
    let lines: Vec<&[u8]> = bytes.split_inclusive(|c| *c == b'\n').collect();
    for i in 0..lines.len() {
        out.push(
            lines
                .iter()
                .enumerate()
                .filter(|(j, _)| *j != i)
                .flat_map(|(_, l)| l.iter().copied())
                .collect(),
        );
        if rng.below(3) == 0 {
            let mut dup: Vec<u8> = Vec::new();
            for (j, l) in lines.iter().enumerate() {
                dup.extend_from_slice(l);
                if j == i {
                    dup.extend_from_slice(b"  ");
                    dup.extend_from_slice(l);
                }
            }
            out.push(dup);
        }
    }
    out
}

fn check_invariants(loaded: &Loaded, what: &str) {
    assert_eq!(loaded.snapshot.is_none(), loaded.has_errors(), "{what}");
    for f in &loaded.findings {
        assert!(f.line >= 1 && f.column >= 1, "{what}: {f}");
        assert!(!f.message.is_empty(), "{what}: {f}");
        assert!(f.to_string().contains(f.code.as_str()));
    }
    if let Some(s) = &loaded.snapshot {
        serde_json::to_string(&**s).expect("snapshots serialise");
    }
}

#[test]
fn mutated_fixtures_load_without_panicking() {
    let mut rng = Lcg(0x5eed_1234);
    let opts = options();
    let mut count = 0;
    for path in fixture_files() {
        let bytes = std::fs::read(&path).unwrap();
        for (k, m) in mutations(&bytes, &mut rng).into_iter().enumerate() {
            let loaded = load_sources(
                &[Source {
                    path: path.clone(),
                    bytes: m,
                }],
                &opts,
            );
            check_invariants(&loaded, &format!("{} mutation {k}", path.display()));
            count += 1;
        }
    }
    assert!(count > 2000, "only {count} mutations");
}

#[test]
fn hostile_inputs_load_without_panicking() {
    let deep_seq = "[".repeat(10_000);
    let deep_map = "a: {".repeat(5_000);
    let mut laughs = String::from("a: &a [x, x, x, x, x, x, x, x, x, x]\n");
    for i in 0..9u8 {
        let (p, c) = ((b'a' + i) as char, (b'b' + i) as char);
        laughs.push_str(&format!(
            "{c}: &{c} [*{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}]\n"
        ));
    }
    let inputs: Vec<Vec<u8>> = vec![
        Vec::new(),
        b"---\n---\n...\n".to_vec(),
        deep_seq.into_bytes(),
        deep_map.into_bytes(),
        laughs.into_bytes(),
        b"kind: Gateway\nspec: *nope\n".to_vec(),
        b"? [a, b]\n: c\n".to_vec(),
        b"kind: [Gateway]\n".to_vec(),
        b"apiVersion: networking.istio.io/v1\nkind: Gateway\nmetadata: {name: g}\nspec: {servers: [{port: {number: 1e99}}]}\n"
            .to_vec(),
        b"\xef\xbb\xbfapiVersion: networking.istio.io/v1\nkind: Sidecar\nmetadata: {name: s}\nspec: {}\n".to_vec(),
        vec![0xff; 64],
    ];
    for (i, bytes) in inputs.into_iter().enumerate() {
        let loaded = load_sources(
            &[Source {
                path: PathBuf::from("hostile.yaml"),
                bytes,
            }],
            &options(),
        );
        check_invariants(&loaded, &format!("input {i}"));
    }
}
