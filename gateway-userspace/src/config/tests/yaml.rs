//! YAML trees: positions, core-schema scalars, one broken document among good ones, aliases.

use crate::config::findings::Pos;
use crate::config::yaml::*;

fn one(text: &str) -> Node {
    match parse_documents(text).pop() {
        Some(Doc::Ok(n)) => n,
        other => panic!("{other:?}"),
    }
}

#[test]
fn positions_are_one_based() {
    let n = one("a: 1\nb:\n  - x\n  - k: v\n");
    let Value::Map(entries) = &n.value else {
        panic!()
    };
    assert_eq!(entries[0].0.pos, Pos::new(1, 1));
    assert_eq!(entries[0].1.pos, Pos::new(1, 4));
    let Value::Seq(items) = &entries[1].1.value else {
        panic!()
    };
    assert_eq!(items[0].pos, Pos::new(3, 5));
    assert_eq!(items[1].pos, Pos::new(4, 5));
}

#[test]
fn scalars_resolve_by_core_schema() {
    let n = one("[1, '1', true, ~, 1.5, 0x1f, abc, 1e3, \"\", 99999999999999999999]");
    let Value::Seq(items) = n.value else { panic!() };
    let vals: Vec<Value> = items.into_iter().map(|n| n.value).collect();
    assert_eq!(vals[0], Value::Int(1));
    assert_eq!(vals[1], Value::Str("1".into()));
    assert_eq!(vals[2], Value::Bool(true));
    assert_eq!(vals[3], Value::Null);
    assert_eq!(vals[4], Value::Float(1.5));
    assert_eq!(vals[5], Value::Int(31));
    assert_eq!(vals[6], Value::Str("abc".into()));
    assert_eq!(vals[7], Value::Float(1000.0));
    assert_eq!(vals[8], Value::Str(String::new()));
    assert!(matches!(vals[9], Value::Float(_)));
}

#[test]
fn error_in_one_document_keeps_the_others() {
    let docs = parse_documents("a: 1\n---\nb: [1, 2\nc: 3\n---\nd: 4\n");
    assert_eq!(docs.len(), 3);
    assert!(matches!(docs[0], Doc::Ok(_)));
    match &docs[1] {
        Doc::Err { pos, .. } => assert!(pos.line >= 3),
        d => panic!("{d:?}"),
    }
    match &docs[2] {
        Doc::Ok(n) => assert_eq!(n.pos.line, 6),
        d => panic!("{d:?}"),
    }
}

#[test]
fn aliases_expand_and_bombs_stop() {
    let n = one("a: &x {k: v}\nb: *x\n");
    let Value::Map(entries) = &n.value else {
        panic!()
    };
    assert_eq!(entries[1].1.pos.line, 2);
    let mut bomb = String::from("a: &a [x, x, x, x, x, x, x, x, x, x]\n");
    for i in 0..8u8 {
        let (p, c) = ((b'a' + i) as char, (b'b' + i) as char);
        bomb.push_str(&format!(
            "{c}: &{c} [*{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}]\n"
        ));
    }
    assert!(matches!(
        parse_documents(&bomb).pop(),
        Some(Doc::Err { .. })
    ));
}
