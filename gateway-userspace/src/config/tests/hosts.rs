//! Host names: validation, short-name expansion, wildcard matching, `namespace/host`.

use crate::config::hosts::*;

#[test]
fn validation() {
    for ok in ["*", "*.example.com", "example.com", "reviews", "a-b.c"] {
        assert_eq!(host_problem(ok), None, "{ok}");
    }
    for bad in [
        "",
        "foo.*.com",
        "*foo.com",
        "a..b",
        "-a.com",
        "a_b.com",
        "*.",
    ] {
        assert!(host_problem(bad).is_some(), "{bad}");
    }
}

#[test]
fn expansion() {
    assert_eq!(
        expand_host("reviews", "bookinfo"),
        "reviews.bookinfo.svc.cluster.local"
    );
    assert_eq!(expand_host("httpbin.org", "x"), "httpbin.org");
    assert_eq!(expand_host("*", "x"), "*");
    assert_eq!(expand_host("10.0.0.1", "x"), "10.0.0.1");
}

#[test]
fn matching() {
    assert!(host_matches("*", "a.com"));
    assert!(host_matches("*.a.com", "b.a.com"));
    assert!(host_matches("*.a.com", "*.b.a.com"));
    assert!(host_matches("*.a.com", "*.a.com"));
    assert!(!host_matches("*.a.com", "a.com"));
    assert!(!host_matches("b.a.com", "*.a.com"));
    assert!(hosts_overlap("b.a.com", "*.a.com"));
    assert!(!hosts_overlap("b.a.com", "c.a.com"));
}

#[test]
fn server_hosts_and_refs() {
    let h = ServerHost::parse("bookinfo/*.bookinfo.com");
    assert!(h.admits("istio-system", "bookinfo", "uk.bookinfo.com"));
    assert!(!h.admits("istio-system", "other", "uk.bookinfo.com"));
    assert!(ServerHost::parse("./x.com").admits("a", "a", "x.com"));
    assert!(!ServerHost::parse("~/x.com").admits("a", "a", "x.com"));
    assert_eq!(GatewayRef::parse("mesh", "a"), GatewayRef::Mesh);
    assert_eq!(
        GatewayRef::parse("istio-system/gw", "a"),
        GatewayRef::Gateway {
            namespace: "istio-system".into(),
            name: "gw".into()
        }
    );
}
