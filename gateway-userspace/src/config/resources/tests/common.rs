//! Shared shapes: string matches as Istio reads them.

use crate::config::resources::common::*;

#[test]
fn a_pattern_matches_the_whole_value_and_must_compile_alone() {
    let p = Pattern::whole("/api/v[0-9]+").expect("valid");
    assert!(p.is_match("/api/v2") && !p.is_match("/x/api/v2") && !p.is_match("/api/v2/x"));
    assert!(Pattern::whole("a)(?:b").is_err(), "invalid alone, though valid once wrapped");
    assert!(Pattern::anywhere("v[0-9]").expect("valid").is_match("/api/v2/x"));
    assert_eq!(serde_json::to_string(&p).expect("serialises"), "\"/api/v[0-9]+\"");
    assert_ne!(Pattern::whole("a").expect("valid"), Pattern::anywhere("a").expect("valid"));
}

#[test]
fn string_matches_follow_istio() {
    let exact = StringMatch::Exact("/Login".into());
    assert!(exact.matches("/Login", false) && !exact.matches("/login", false));
    assert!(exact.matches("/login", true), "ignoreUriCase: the value comes lowercased");
    let prefix = StringMatch::Prefix("/api".into());
    assert!(prefix.matches("/api/x", false) && !prefix.matches("/ap", false));
    let regex = StringMatch::Regex(Pattern::whole("[a-z]+").expect("valid"));
    assert!(regex.matches("abc", false) && !regex.matches("abc1", false));
}
