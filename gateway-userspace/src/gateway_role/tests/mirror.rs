#[test]
fn the_shadow_host_keeps_the_port() {
    for (host, shadow) in [("api.test", "api.test-shadow"), ("api.test:8080", "api.test-shadow:8080")] {
        let mut req = hyper::Request::builder().header("host", host).body(()).unwrap();
        super::super::mirror::shadow_host(&mut req);
        assert_eq!(req.headers()["host"], shadow);
    }
}
