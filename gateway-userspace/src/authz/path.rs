//! Request paths as Istio normalises them before routing and authorization
//! (MeshConfig `pathNormalization`), and the strict form that keeps an
//! ambiguous path from slipping past a policy.
//!
//! - `BASE`: `\` becomes `/`, percent-encoded unreserved characters are
//!   decoded (`%61` is `a`, `%2e` is `.`), other escapes get upper-case hex,
//!   and dot segments are removed (RFC 3986 5.2.4).
//! - `MERGE_SLASHES`: `BASE`, then `//` becomes `/`.
//! - `DECODE_AND_MERGE_SLASHES`: `%2F` and `%5C` decoded first, then
//!   `MERGE_SLASHES`.
//!
//! The strict form is `DECODE_AND_MERGE_SLASHES` with `;params` cut from
//! every segment: how the most liberal server could read the path.

use serde::Serialize;

/// MeshConfig `pathNormalization.normalization`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum PathNormalization {
    #[default]
    #[value(name = "BASE")]
    Base,
    #[value(name = "MERGE_SLASHES")]
    MergeSlashes,
    #[value(name = "DECODE_AND_MERGE_SLASHES")]
    DecodeAndMergeSlashes,
}

/// The path (no query, no fragment) normalised as `how` says.
pub fn normalize(path: &str, how: PathNormalization) -> String {
    if is_canonical(path) {
        return path.to_string();
    }
    rewrite(path, how)
}

/// Whether every reading of `path` is `path` itself: it starts with `/`
/// and has no escape, backslash, `;`, query, fragment, empty segment or
/// segment starting with a dot. Most requests' paths are; they skip the
/// rewriting.
pub fn is_canonical(path: &str) -> bool {
    let b = path.as_bytes();
    b.first() == Some(&b'/')
        && !b.iter().any(|c| matches!(c, b'%' | b'\\' | b';' | b'?' | b'#'))
        && !b.windows(2).any(|w| w == b"//" || w == b"/.")
}

/// [`normalize`] without the shortcut.
pub(super) fn rewrite(path: &str, how: PathNormalization) -> String {
    let path = path.split(['?', '#']).next().unwrap_or("");
    let decoded = decode(path, how == PathNormalization::DecodeAndMergeSlashes);
    let mut out = remove_dot_segments(&decoded);
    if how != PathNormalization::Base {
        out = merge_slashes(&out);
    }
    if out.is_empty() { "/".to_string() } else { out }
}

/// The strictest reading of `path`: decoded slashes, merged slashes, no
/// dot segments and no `;params`.
pub fn strict(path: &str) -> String {
    if is_canonical(path) {
        return path.to_string();
    }
    strict_rewrite(path)
}

/// [`strict`] without the shortcut.
pub(super) fn strict_rewrite(path: &str) -> String {
    let path = path.split(['?', '#']).next().unwrap_or("");
    let decoded = decode(path, true);
    let cut: Vec<&str> = decoded.split('/').map(|seg| seg.split(';').next().unwrap_or("")).collect();
    // Slashes merged before dot segments go, as a server that merges reads
    // `/a//../b`: `/b`, where RFC 3986 alone gives `/a/b`.
    let out = merge_slashes(&remove_dot_segments(&merge_slashes(&cut.join("/"))));
    if out.is_empty() { "/".to_string() } else { out }
}

fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}

fn hex(b: u8) -> Option<u8> {
    (b as char).to_digit(16).map(|d| d as u8)
}

/// `\` → `/`; unreserved escapes decoded (and `%2F`/`%5C` when
/// `slashes`); other escapes upper-cased.
fn decode(path: &str, slashes: bool) -> String {
    let b = path.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && i + 2 < b.len()
            && let (Some(h), Some(l)) = (hex(b[i + 1]), hex(b[i + 2]))
        {
            let c = h * 16 + l;
            if is_unreserved(c) || (slashes && (c == b'/' || c == b'\\')) {
                out.push(if c == b'\\' { b'/' } else { c });
            } else {
                out.extend_from_slice(format!("%{c:02X}").as_bytes());
            }
            i += 3;
            continue;
        }
        out.push(if b[i] == b'\\' { b'/' } else { b[i] });
        i += 1;
    }
    String::from_utf8(out).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

/// RFC 3986 section 5.2.4, on an absolute path.
fn remove_dot_segments(path: &str) -> String {
    let mut out: Vec<&str> = Vec::new();
    let segments: Vec<&str> = path.strip_prefix('/').unwrap_or(path).split('/').collect();
    let last = segments.len() - 1;
    for (i, seg) in segments.iter().enumerate() {
        match *seg {
            "." | ".." => {
                if *seg == ".." {
                    out.pop();
                }
                // A trailing dot segment leaves a directory: `/a/b/..` is `/a/`.
                if i == last {
                    out.push("");
                }
            }
            s => out.push(s),
        }
    }
    format!("/{}", out.join("/"))
}

fn merge_slashes(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    for c in path.chars() {
        if !(c == '/' && out.ends_with('/')) {
            out.push(c);
        }
    }
    out
}
