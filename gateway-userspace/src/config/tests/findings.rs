//! Findings: their one-line display and their codes.

use std::path::Path;

use crate::config::findings::*;

#[test]
fn display_is_one_line() {
    let r = ResourceRef {
        kind: "VirtualService".into(),
        namespace: "default".into(),
        name: "hello".into(),
    };
    let f = finding(
        Code::WeightSum,
        Path::new("a.yaml"),
        Pos::new(12, 9),
        Some(&r),
        "spec.http[0].route[1].weight",
        "weights sum to 90; they must sum to 100",
    );
    assert_eq!(
        f.to_string(),
        "a.yaml:12:9: error[GW1009] VirtualService default/hello \
         spec.http[0].route[1].weight: weights sum to 90; they must sum to 100"
    );
    let json = serde_json::to_string(&f).unwrap();
    assert!(json.contains("\"code\":\"GW1009\""));
    assert!(json.contains("\"severity\":\"error\""));
}

#[test]
fn codes_are_unique() {
    let mut seen = std::collections::BTreeSet::new();
    for c in Code::ALL {
        assert!(seen.insert(c.as_str()), "duplicate {c}");
    }
}
