//! A canonical text for a parsed YAML tree: flow style, every string
//! double-quoted with escapes, numbers in Rust's shortest round-trip form.
//! It says the same as the source in one fixed spelling, so the loader must
//! read both the same way.

use std::fmt::Write;

use gateway_userspace::config::yaml::{Node, Value};

/// The canonical text of `node`, or `None` if a mapping key is itself a
/// list or mapping (valid YAML, but not something a flow key can carry
/// unambiguously, and never a valid resource).
pub fn canonical(node: &Node) -> Option<String> {
    let mut out = String::new();
    write_value(&node.value, &mut out)?;
    Some(out)
}

fn write_value(value: &Value, out: &mut String) -> Option<()> {
    match value {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Int(i) => write!(out, "{i}").ok()?,
        Value::Float(f) if f.is_nan() => out.push_str(".nan"),
        Value::Float(f) if f.is_infinite() => out.push_str(if *f > 0.0 { ".inf" } else { "-.inf" }),
        Value::Float(f) => write!(out, "{f:?}").ok()?,
        Value::Str(s) => quote(s, out),
        Value::Seq(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write_value(&item.value, out)?;
            }
            out.push(']');
        }
        Value::Map(entries) => {
            out.push('{');
            for (i, (key, value)) in entries.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                if matches!(key.value, Value::Seq(_) | Value::Map(_)) {
                    return None;
                }
                write_value(&key.value, out)?;
                out.push_str(": ");
                write_value(&value.value, out)?;
            }
            out.push('}');
        }
    }
    Some(())
}

/// A double-quoted scalar; everything outside printable ASCII is escaped,
/// so no line break or BOM can change its meaning.
fn quote(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            ' '..='~' => out.push(c),
            c if u32::from(c) <= 0xffff => {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c => {
                let _ = write!(out, "\\U{:08x}", u32::from(c));
            }
        }
    }
    out.push('"');
}

/// Whether two trees say the same, positions aside (NaN equals NaN).
pub fn same_tree(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Float(x), Value::Float(y)) => x == y || (x.is_nan() && y.is_nan()),
        (Value::Seq(x), Value::Seq(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(p, q)| same_tree(&p.value, &q.value))
        }
        (Value::Map(x), Value::Map(y)) => {
            x.len() == y.len()
                && x.iter().zip(y).all(|((pk, pv), (qk, qv))| {
                    same_tree(&pk.value, &qk.value) && same_tree(&pv.value, &qv.value)
                })
        }
        _ => a == b,
    }
}
