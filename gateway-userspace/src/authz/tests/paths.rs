//! Path normalisation, and a DENY on `/admin*` against the bypasses of the
//! CVE-2021-31920 and CVE-2021-39156 class.

use super::*;
use crate::authz::path::{PathNormalization::*, normalize, strict};

/// Ways to say `/admin` that some server reads as `/admin`, shared with
/// the integration test that sends them to a real server.
fn admin_variants() -> Vec<&'static str> {
    include_str!("../../../../tests/fixtures/authz/admin-variants.txt").lines().filter(|l| !l.starts_with('#') && !l.is_empty()).collect()
}

#[test]
fn base_merge_and_decode_as_istio_describes_them() {
    let cases = [
        ("/a/../b", "/b", "/b", "/b"),
        ("\\da", "/da", "/da", "/da"),
        ("/a//b", "/a//b", "/a/b", "/a/b"),
        ("/a%2Fb", "/a%2Fb", "/a%2Fb", "/a/b"),
        ("/a%2fb/%7euser", "/a%2Fb/~user", "/a%2Fb/~user", "/a/b/~user"),
        ("/%2e%2e/x", "/x", "/x", "/x"),
        ("/a/b/..", "/a/", "/a/", "/a/"),
        ("/../..", "/", "/", "/"),
        ("/q?x=/../y", "/q", "/q", "/q"),
        ("/bad%zz", "/bad%zz", "/bad%zz", "/bad%zz"),
    ];
    for (raw, base, merge, decode) in cases {
        assert_eq!(normalize(raw, Base), base, "BASE {raw}");
        assert_eq!(normalize(raw, MergeSlashes), merge, "MERGE_SLASHES {raw}");
        assert_eq!(normalize(raw, DecodeAndMergeSlashes), decode, "DECODE_AND_MERGE_SLASHES {raw}");
    }
    assert_eq!(strict("/x/..;/admin;a=b/"), "/admin/");
}

fn deny_admin() -> Authorizer {
    authorizer(
        "apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: no-admin, namespace: payments}
spec:
  targetRef: {kind: ServiceEntry, name: stripe}
  action: DENY
  rules: [{to: [{operation: {paths: ['/admin*']}}]}]
",
    )
}

#[test]
fn a_deny_on_admin_catches_every_variant_under_every_normalisation() {
    for how in [Base, MergeSlashes, DecodeAndMergeSlashes] {
        let mut a = deny_admin();
        a.settings.path_normalization = how;
        for v in admin_variants() {
            let r = Req::from("shop", "web").get(v).to_entry(&a);
            assert!(!r.allowed(), "{how:?}: {v} got past the DENY");
        }
        for v in ["/", "/public/admin", "/api/admin", "/public/x%2Fadmin"] {
            assert!(Req::from("shop", "web").get(v).to_entry(&a).allowed(), "{how:?}: {v} was denied");
        }
    }
}

#[test]
fn an_allow_on_a_prefix_does_not_reach_past_it() {
    let a = authorizer(
        "apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: public-only, namespace: payments}
spec:
  targetRef: {kind: ServiceEntry, name: stripe}
  action: ALLOW
  rules: [{to: [{operation: {paths: ['/public/*']}}]}]
",
    );
    assert!(Req::from("shop", "web").get("/public/x").to_entry(&a).allowed());
    for v in ["/public/../admin", "/public/..%2Fadmin", "/public/%5C..%5Cadmin", "/public;x/../admin", "/public/%2e%2e/admin"] {
        assert!(!Req::from("shop", "web").get(v).to_entry(&a).allowed(), "{v} was allowed");
    }
}

#[test]
fn a_canonical_path_is_what_every_rewriting_gives() {
    use crate::authz::path::{is_canonical, rewrite, strict_rewrite};
    let paths = admin_variants().into_iter().chain([
        "/", "/1k", "/anything/admin", "/a/b.c/d-e_f~g", "/a.", "/a/b/", "/.well-known/x", "/a/./b", "", "*", "/a//b", "/x;y",
    ]);
    let mut canonical = 0;
    for p in paths {
        if is_canonical(p) {
            canonical += 1;
            for how in [Base, MergeSlashes, DecodeAndMergeSlashes] {
                assert_eq!(rewrite(p, how), p, "{how:?} {p}");
            }
            assert_eq!(strict_rewrite(p), p, "strict {p}");
        }
    }
    assert!(canonical >= 6, "the list keeps canonical paths to compare");
    for not in ["/.well-known/x", "/a/./b", "", "*", "/a//b", "/x;y", "/%61dmin", "/a\\b"] {
        assert!(!is_canonical(not), "{not}");
    }
}
