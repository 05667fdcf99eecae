//! YAML documents as trees whose every node knows its line and column.
//!
//! A file is cut into documents at `---` lines before parsing, so a syntax
//! error in one document does not hide the documents after it.

use super::findings::Pos;
use std::collections::HashMap;
use yaml_rust2::parser::{Event, Parser};
use yaml_rust2::scanner::{Marker, TScalarStyle};

/// Nodes a single document may expand to (aliases included).
const MAX_NODES: usize = 200_000;
/// Nesting depth a single document may reach.
const MAX_DEPTH: usize = 128;

/// A YAML node with its 1-based position.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    pub pos: Pos,
    pub value: Value,
}

/// A node's value, with plain scalars resolved by the YAML 1.2 core schema.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Seq(Vec<Node>),
    Map(Vec<(Node, Node)>),
}

impl Node {
    /// Words for the node's type in messages: "a string", "a mapping"...
    pub fn type_name(&self) -> &'static str {
        match self.value {
            Value::Null => "null",
            Value::Bool(_) => "a boolean",
            Value::Int(_) => "an integer",
            Value::Float(_) => "a number",
            Value::Str(_) => "a string",
            Value::Seq(_) => "a list",
            Value::Map(_) => "a mapping",
        }
    }

    /// The node as map-key text (scalars only).
    pub fn key_text(&self) -> Option<String> {
        match &self.value {
            Value::Str(s) => Some(s.clone()),
            Value::Int(i) => Some(i.to_string()),
            Value::Bool(b) => Some(b.to_string()),
            Value::Float(f) => Some(f.to_string()),
            Value::Null => Some(String::new()),
            _ => None,
        }
    }
}

/// One document of a file: its root node, or the syntax error that ended it.
#[derive(Debug)]
pub enum Doc {
    Ok(Node),
    Err { pos: Pos, message: String },
}

/// Splits `text` into documents and parses each one.
pub fn parse_documents(text: &str) -> Vec<Doc> {
    let mut out = Vec::new();
    for (offset, chunk) in split_documents(text) {
        parse_chunk(chunk, offset, &mut out);
    }
    out
}

/// Cuts the text at lines that start a document (`---`), returning each
/// piece with the number of lines before it.
fn split_documents(text: &str) -> Vec<(usize, &str)> {
    let mut pieces = Vec::new();
    let mut start = 0usize;
    let mut start_line = 0usize;
    let mut idx = 0usize;
    for (line_no, line) in text.split_inclusive('\n').enumerate() {
        let b = line.as_bytes();
        let is_marker =
            b.starts_with(b"---") && matches!(b.get(3), None | Some(b' ' | b'\t' | b'\r' | b'\n'));
        if is_marker && idx > start {
            pieces.push((start_line, &text[start..idx]));
            start = idx;
            start_line = line_no;
        }
        idx += line.len();
    }
    if start < text.len() || pieces.is_empty() {
        pieces.push((start_line, &text[start..]));
    }
    pieces
}

fn pos_of(m: &Marker, line_offset: usize) -> Pos {
    Pos::new(m.line() + line_offset, m.col() + 1)
}

enum Frame {
    Seq(Pos, usize, Vec<Node>),
    Map(Pos, usize, Vec<(Node, Node)>, Option<Node>),
}

fn parse_chunk(chunk: &str, line_offset: usize, out: &mut Vec<Doc>) {
    let mut parser = Parser::new_from_str(chunk);
    let mut stack: Vec<Frame> = Vec::new();
    let mut anchors: HashMap<usize, Node> = HashMap::new();
    let mut count = 0usize;
    let mut root: Option<Node> = None;
    loop {
        let (event, marker) = match parser.next_token() {
            Ok(x) => x,
            Err(e) => {
                out.push(Doc::Err {
                    pos: pos_of(e.marker(), line_offset),
                    message: e.info().to_string(),
                });
                return;
            }
        };
        let pos = pos_of(&marker, line_offset);
        let complete = match event {
            Event::StreamEnd => return,
            Event::DocumentStart => {
                stack.clear();
                root = None;
                None
            }
            Event::DocumentEnd => {
                if let Some(node) = root.take() {
                    out.push(Doc::Ok(node));
                }
                None
            }
            Event::Scalar(text, style, anchor, tag) => {
                let tag_suffix = tag.as_ref().map(|t| t.suffix.as_str());
                let node = Node {
                    pos,
                    value: resolve_scalar(text, style, tag_suffix),
                };
                Some((node, anchor))
            }
            Event::Alias(id) => match anchors.get(&id) {
                Some(n) => {
                    count += count_nodes(n);
                    let mut n = n.clone();
                    n.pos = pos;
                    Some((n, 0))
                }
                None => {
                    out.push(Doc::Err {
                        pos,
                        message: "alias refers to an unknown anchor".into(),
                    });
                    return;
                }
            },
            Event::SequenceStart(anchor, _) => {
                stack.push(Frame::Seq(pos, anchor, Vec::new()));
                None
            }
            Event::MappingStart(anchor, _) => {
                stack.push(Frame::Map(pos, anchor, Vec::new(), None));
                None
            }
            Event::SequenceEnd | Event::MappingEnd => match stack.pop() {
                Some(Frame::Seq(p, anchor, items)) => Some((
                    Node {
                        pos: p,
                        value: Value::Seq(items),
                    },
                    anchor,
                )),
                Some(Frame::Map(p, anchor, entries, _)) => {
                    let p = entries.first().map(|(k, _)| k.pos).unwrap_or(p);
                    Some((
                        Node {
                            pos: p,
                            value: Value::Map(entries),
                        },
                        anchor,
                    ))
                }
                None => None,
            },
            Event::StreamStart | Event::Nothing => None,
        };
        count += 1;
        if count > MAX_NODES || stack.len() > MAX_DEPTH {
            let what = if count > MAX_NODES {
                format!("document expands to more than {MAX_NODES} nodes")
            } else {
                format!("document nests deeper than {MAX_DEPTH} levels")
            };
            out.push(Doc::Err { pos, message: what });
            return;
        }
        if let Some((node, anchor)) = complete {
            if anchor > 0 {
                anchors.insert(anchor, node.clone());
            }
            match stack.last_mut() {
                Some(Frame::Seq(_, _, items)) => items.push(node),
                Some(Frame::Map(_, _, entries, pending)) => match pending.take() {
                    Some(key) => entries.push((key, node)),
                    None => *pending = Some(node),
                },
                None => root = Some(node),
            }
        }
    }
}

fn count_nodes(n: &Node) -> usize {
    let mut total = 0;
    let mut todo = vec![n];
    while let Some(n) = todo.pop() {
        total += 1;
        match &n.value {
            Value::Seq(items) => todo.extend(items.iter()),
            Value::Map(entries) => {
                for (k, v) in entries {
                    todo.push(k);
                    todo.push(v);
                }
            }
            _ => {}
        }
    }
    total
}

fn resolve_scalar(text: String, style: TScalarStyle, tag: Option<&str>) -> Value {
    match tag {
        Some("str") => return Value::Str(text),
        Some("null") => return Value::Null,
        _ => {}
    }
    if style != TScalarStyle::Plain {
        return Value::Str(text);
    }
    match text.as_str() {
        "" | "~" | "null" | "Null" | "NULL" => return Value::Null,
        "true" | "True" | "TRUE" => return Value::Bool(true),
        "false" | "False" | "FALSE" => return Value::Bool(false),
        ".inf" | ".Inf" | ".INF" | "+.inf" | "+.Inf" | "+.INF" => {
            return Value::Float(f64::INFINITY);
        }
        "-.inf" | "-.Inf" | "-.INF" => return Value::Float(f64::NEG_INFINITY),
        ".nan" | ".NaN" | ".NAN" => return Value::Float(f64::NAN),
        _ => {}
    }
    if let Some(v) = parse_int(&text) {
        return v;
    }
    if looks_like_float(&text)
        && let Ok(f) = text.parse::<f64>()
    {
        return Value::Float(f);
    }
    Value::Str(text)
}

fn parse_int(text: &str) -> Option<Value> {
    let (neg, digits) = match text.as_bytes().first()? {
        b'-' => (true, &text[1..]),
        b'+' => (false, &text[1..]),
        _ => (false, text),
    };
    let (radix, body) = if let Some(h) = digits.strip_prefix("0x") {
        (16, h)
    } else if let Some(o) = digits.strip_prefix("0o") {
        (8, o)
    } else {
        (10, digits)
    };
    if body.is_empty() || !body.chars().all(|c| c.is_digit(radix)) {
        return None;
    }
    if radix != 10 && text.starts_with(['-', '+']) {
        return None;
    }
    match i64::from_str_radix(body, radix) {
        Ok(v) => Some(Value::Int(if neg { -v } else { v })),
        Err(_) => Some(Value::Float(text.parse::<f64>().unwrap_or(f64::INFINITY))),
    }
}

fn looks_like_float(text: &str) -> bool {
    let t = text.strip_prefix(['-', '+']).unwrap_or(text);
    let (mantissa, exp) = match t.find(['e', 'E']) {
        Some(i) => (&t[..i], Some(&t[i + 1..])),
        None => (t, None),
    };
    let mut parts = mantissa.splitn(2, '.');
    let int_part = parts.next().unwrap_or("");
    let frac = parts.next();
    let digits = |s: &str| s.chars().all(|c| c.is_ascii_digit());
    let mantissa_ok = match frac {
        Some(f) => digits(int_part) && digits(f) && !(int_part.is_empty() && f.is_empty()),
        None => !int_part.is_empty() && digits(int_part),
    };
    let exp_ok = match exp {
        Some(e) => {
            let e = e.strip_prefix(['-', '+']).unwrap_or(e);
            !e.is_empty() && digits(e)
        }
        None => true,
    };
    mantissa_ok && exp_ok
}
