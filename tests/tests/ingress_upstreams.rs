//! The ingress role toward its upstreams, as a DestinationRule and the
//! route's policies shape it: pooled connections, load balancing, CORS,
//! mirrors, and the finer request matches. Backends in their own namespace.

use std::time::Duration;

use gateway_tests::client::curl_status;
use gateway_tests::gateway_process::Gateway;
use gateway_tests::http_backend::HttpBackend;
use gateway_tests::istio::{destination_rule, ingress_gateway, static_service};
use gateway_tests::topology::Topology;

const GATEWAY: &str = "http://198.18.1.1";

fn backend(topo: &Topology, last_octet: u8) -> HttpBackend {
    HttpBackend::start(&topo.internet, format!("203.0.113.{last_octet}:8080").parse().unwrap())
}

/// A VirtualService on `api.test` through `api-gateway`: one route per
/// path prefix, to `<name>.default.svc.cluster.local:8080`, with `extra`
/// fields per route (YAML flow-mapping entries, may be empty).
fn routes(routes: &[(&str, &str, &str)]) -> String {
    let mut http = String::new();
    for (prefix, name, extra) in routes {
        let extra = if extra.is_empty() { String::new() } else { format!(", {extra}") };
        http += &format!(
            "  - {{match: [{{uri: {{prefix: {prefix}}}}}], route: [{{destination: {{host: {name}.default.svc.cluster.local, port: {{number: 8080}}}}}}]{extra}}}\n"
        );
    }
    ingress_gateway("api-gateway", 80, "HTTP", &["api.test"])
        + &format!(
            "apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {{name: api, namespace: default}}
spec:
  hosts: [api.test]
  gateways: [api-gateway]
  http:
{http}"
        )
}

/// One curl process per request (a new downstream connection each time):
/// the status codes.
fn one_by_one(topo: &Topology, path: &str, n: usize, headers: &[&str]) -> Vec<u16> {
    (0..n)
        .map(|i| {
            let url = format!("{GATEWAY}{path}/{i}");
            let mut args = vec!["-H", "Host: api.test"];
            for h in headers {
                args.extend(["-H", h]);
            }
            args.push(&url);
            curl_status(|a| topo.pod_a.command_outside_cgroup("curl", a), &args).0
        })
        .collect()
}

#[test]
fn upstream_connections_are_shared_reused_and_retired() {
    let topo = Topology::build();
    let (kept, once, idle) = (backend(&topo, 10), backend(&topo, 11), backend(&topo, 12));
    let yaml = static_service("kept", 8080, "HTTP", &["203.0.113.10"])
        + &static_service("once", 8080, "HTTP", &["203.0.113.11"])
        + &static_service("idle", 8080, "HTTP", &["203.0.113.12"])
        + &destination_rule("once", "{connectionPool: {http: {maxRequestsPerConnection: 1}}}")
        + &destination_rule("idle", "{connectionPool: {http: {idleTimeout: 1s}}}")
        + &routes(&[("/kept", "kept", ""), ("/once", "once", ""), ("/idle", "idle", "")]);
    let gw = Gateway::start_ingress(&topo, &yaml, &[]);

    // Ten clients, one after another, each on its own connection: one upstream connection serves them all.
    assert_eq!(one_by_one(&topo, "/kept", 10, &[]), vec![200; 10]);
    assert_eq!((kept.seen_under("/kept"), kept.connections()), (10, 1), "requests and upstream connections");
    // maxRequestsPerConnection: 1 — a connection per request.
    assert_eq!(one_by_one(&topo, "/once", 5, &[]), vec![200; 5]);
    assert_eq!(once.connections(), 5);
    // idleTimeout: 1s — an idle connection is closed, the next request opens another.
    assert_eq!(one_by_one(&topo, "/idle", 2, &[]), vec![200; 2]);
    assert_eq!(idle.connections(), 1);
    std::thread::sleep(Duration::from_millis(2500));
    assert_eq!(one_by_one(&topo, "/idle", 1, &[]), vec![200]);
    assert_eq!(idle.connections(), 2, "a new connection after the idle timeout");
    drop(gw);
    topo.teardown();
}

#[test]
fn load_balancing_follows_the_destination_rule() {
    let topo = Topology::build();
    let backends = [backend(&topo, 11), backend(&topo, 12), backend(&topo, 13)];
    let endpoints = ["203.0.113.11", "203.0.113.12", "203.0.113.13"];
    let mut yaml = String::new();
    for (name, policy) in [
        ("rr", "{loadBalancer: {simple: ROUND_ROBIN}}"),
        ("random", "{loadBalancer: {simple: RANDOM}}"),
        ("least", "{loadBalancer: {simple: LEAST_REQUEST}}"),
        ("byheader", "{loadBalancer: {consistentHash: {httpHeaderName: x-user}}}"),
        ("bycookie", "{loadBalancer: {consistentHash: {httpCookie: {name: sticky, path: /, ttl: 60s}}}}"),
        ("bysource", "{loadBalancer: {consistentHash: {useSourceIp: true}}}"),
    ] {
        yaml += &(static_service(name, 8080, "HTTP", &endpoints) + &destination_rule(name, policy));
    }
    yaml += &routes(&[("/rr", "rr", ""), ("/random", "random", ""), ("/least", "least", ""), ("/byheader", "byheader", ""), ("/bycookie", "bycookie", ""), ("/bysource", "bysource", "")]);
    let gw = Gateway::start_ingress(&topo, &yaml, &[]);
    let counts = |prefix: &str| -> Vec<usize> { backends.iter().map(|b| b.seen_under(prefix)).collect() };

    assert_eq!(one_by_one(&topo, "/rr", 30, &[]), vec![200; 30]);
    assert_eq!(counts("/rr"), vec![10, 10, 10], "round robin visits each endpoint in turn");
    assert_eq!(one_by_one(&topo, "/random", 45, &[]), vec![200; 45]);
    assert!(counts("/random").iter().all(|n| *n >= 3), "random reaches every endpoint: {:?}", counts("/random"));
    assert_eq!(one_by_one(&topo, "/least", 45, &[]), vec![200; 45]);
    assert!(counts("/least").iter().all(|n| *n >= 3), "least request spreads idle load: {:?}", counts("/least"));

    // One user always lands on one endpoint; users spread.
    assert_eq!(one_by_one(&topo, "/byheader/alice", 12, &["x-user: alice"]), vec![200; 12]);
    assert!(counts("/byheader/alice").contains(&12), "{:?}", counts("/byheader/alice"));
    for user in 0..24 {
        one_by_one(&topo, &format!("/byheader/u{user}"), 1, &[&format!("x-user: u{user}")]);
    }
    let spread = counts("/byheader/u");
    assert!(spread.iter().filter(|n| **n > 0).count() >= 2, "users spread: {spread:?}");

    // The cookie is made up and set on the first answer; with it, one endpoint.
    let (code, _, headers) = curl_status(|a| topo.pod_a.command_outside_cgroup("curl", a), &["-H", "Host: api.test", &format!("{GATEWAY}/bycookie/first")]);
    assert_eq!(code, 200);
    let cookie = headers
        .lines()
        .find_map(|l| l.to_ascii_lowercase().starts_with("set-cookie:").then(|| l.split_once(':').unwrap().1.trim().to_string()))
        .unwrap_or_else(|| panic!("no Set-Cookie in {headers}"));
    assert!(cookie.starts_with("sticky=") && cookie.contains("Max-Age=60") && cookie.contains("Path=/"), "{cookie}");
    let pair = cookie.split(';').next().unwrap().to_string();
    assert_eq!(one_by_one(&topo, "/bycookie/again", 10, &[&format!("Cookie: {pair}")]), vec![200; 10]);
    assert!(counts("/bycookie/again").contains(&10), "{:?}", counts("/bycookie/again"));

    // All of pod-a's requests go to one endpoint.
    assert_eq!(one_by_one(&topo, "/bysource", 10, &[]), vec![200; 10]);
    assert!(counts("/bysource").contains(&10), "{:?}", counts("/bysource"));
    drop(gw);
    topo.teardown();
}

#[test]
fn cors_preflights_are_answered_and_allowed_origins_decorated() {
    let topo = Topology::build();
    let api = backend(&topo, 10);
    let cors = "corsPolicy: {allowOrigins: [{exact: 'https://app.test'}, {regex: 'https://.*[.]corp[.]test'}], allowMethods: [GET, POST], allowHeaders: [x-token], exposeHeaders: [x-trace], maxAge: 600s, allowCredentials: true}";
    let yaml = static_service("api", 8080, "HTTP", &["203.0.113.10"]) + &routes(&[("/", "api", cors)]);
    let gw = Gateway::start_ingress(&topo, &yaml, &[]);
    let curl = |args: &[&str]| {
        let mut all = vec!["-H", "Host: api.test"];
        all.extend_from_slice(args);
        curl_status(|a| topo.pod_a.command_outside_cgroup("curl", a), &all)
    };
    let lower = |s: String| s.to_ascii_lowercase();

    let (code, _, headers) = curl(&["-X", "OPTIONS", "-H", "Origin: https://app.test", "-H", "Access-Control-Request-Method: POST", &format!("{GATEWAY}/pre")]);
    let headers = lower(headers);
    assert_eq!(code, 200, "{headers}");
    for h in ["access-control-allow-origin: https://app.test", "access-control-allow-methods: get,post", "access-control-allow-headers: x-token", "access-control-max-age: 600", "access-control-allow-credentials: true"] {
        assert!(headers.contains(h), "{h} missing in {headers}");
    }
    assert_eq!(api.seen_under("/pre"), 0, "the preflight is answered by the gateway");

    // A preflight from another origin goes on to the backend, undecorated.
    let (_, _, headers) = curl(&["-X", "OPTIONS", "-H", "Origin: https://evil.test", "-H", "Access-Control-Request-Method: POST", &format!("{GATEWAY}/evil")]);
    assert!(!lower(headers).contains("access-control-allow-origin"));
    assert_eq!(api.seen_under("/evil"), 1);

    // An actual request from an allowed origin gets the allow headers.
    let (code, _, headers) = curl(&["-H", "Origin: https://x.corp.test", &format!("{GATEWAY}/get")]);
    let headers = lower(headers);
    assert_eq!(code, 200);
    assert!(headers.contains("access-control-allow-origin: https://x.corp.test") && headers.contains("access-control-expose-headers: x-trace"), "{headers}");
    drop(gw);
    topo.teardown();
}

#[test]
fn mirrors_receive_sampled_copies_with_a_shadow_host() {
    let topo = Topology::build();
    let (main, shadow) = (backend(&topo, 10), backend(&topo, 11));
    let yaml = static_service("main", 8080, "HTTP", &["203.0.113.10"])
        + &static_service("shadow", 8080, "HTTP", &["203.0.113.11"])
        + &routes(&[
            ("/all", "main", "mirror: {host: shadow.default.svc.cluster.local, port: {number: 8080}}"),
            ("/half", "main", "mirror: {host: shadow.default.svc.cluster.local, port: {number: 8080}}, mirrorPercentage: {value: 50}"),
        ]);
    let gw = Gateway::start_ingress(&topo, &yaml, &[]);
    let codes = |path: &str| -> Vec<u16> {
        let out = topo
            .pod_a
            .command_outside_cgroup("curl", &["-s", "--noproxy", "*", "--max-time", "60", "-o", "/dev/null", "-w", "%{http_code}\\n", "-H", "Host: api.test", &format!("{GATEWAY}{path}")])
            .output()
            .expect("curl");
        String::from_utf8_lossy(&out.stdout).lines().filter_map(|l| l.trim().parse().ok()).collect()
    };
    assert_eq!(codes("/all/[1-20]"), vec![200; 20]);
    assert_eq!(codes("/half/[1-200]"), vec![200; 200]);
    assert_eq!(main.seen_under("/all") + main.seen_under("/half"), 220, "the client's requests reach the main backend");
    // Copies arrive in the background.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while shadow.seen_under("/all") < 20 && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(shadow.seen_under("/all"), 20, "every request mirrored at 100 %");
    let copy = shadow.seen().into_iter().find(|r| r.path.starts_with("/all")).expect("a copy");
    assert!(copy.headers.iter().any(|(k, v)| k == "host" && v == "api.test-shadow"), "{:?}", copy.headers);
    let half = shadow.seen_under("/half");
    assert!((70..=130).contains(&half), "{half} of 200 mirrored at 50 %; 100 ± 30 expected");
    drop(gw);
    topo.teardown();
}

#[test]
fn query_scheme_without_headers_and_source_labels_select_routes() {
    let topo = Topology::build();
    let answer = |body: &str| format!("directResponse: {{status: 200, body: {{string: {body}}}}}");
    let yaml = ingress_gateway("api-gateway", 80, "HTTP", &["api.test"])
        + &format!(
            "apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {{name: api, namespace: default}}
spec:
  hosts: [api.test]
  gateways: [api-gateway]
  http:
  - {{match: [{{queryParams: {{version: {{exact: v2}}}}}}], {}}}
  - {{match: [{{scheme: {{exact: https}}}}], {}}}
  - {{match: [{{sourceLabels: {{app: someone-else}}}}], {}}}
  - {{match: [{{uri: {{prefix: /labels}}, sourceLabels: {{istio: ingressgateway}}}}], {}}}
  - {{match: [{{withoutHeaders: {{x-debug: {{exact: 'on'}}}}}}], {}}}
  - {{{}}}
",
            answer("query"),
            answer("https"),
            answer("not-us"),
            answer("labels"),
            answer("no-debug"),
            answer("debug")
        );
    let gw = Gateway::start_ingress(&topo, &yaml, &[]);
    let body = |path: &str, headers: &[&str]| {
        let url = format!("{GATEWAY}{path}");
        let mut args = vec!["-H", "Host: api.test"];
        for h in headers {
            args.extend(["-H", h]);
        }
        args.push(&url);
        curl_status(|a| topo.pod_a.command_outside_cgroup("curl", a), &args).1
    };
    assert_eq!(body("/x?version=v2", &[]), "query");
    assert_eq!(body("/x?version=v1", &[]), "no-debug", "another value does not match; http is not https");
    assert_eq!(body("/labels", &[]), "labels", "the gateway's own labels are the source labels");
    assert_eq!(body("/x", &["x-debug: on"]), "debug");
    assert_eq!(body("/x", &["x-debug: off"]), "no-debug");
    drop(gw);
    topo.teardown();
}

#[test]
fn a_destination_edits_the_headers_of_its_own_requests_and_responses() {
    let topo = Topology::build();
    let api = backend(&topo, 10);
    let yaml = static_service("api", 8080, "HTTP", &["203.0.113.10"])
        + &ingress_gateway("api-gateway", 80, "HTTP", &["api.test"])
        + "apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: api, namespace: default}
spec:
  hosts: [api.test]
  gateways: [api-gateway]
  http:
  - headers: {response: {set: {x-route: 'yes'}}}
    route:
    - destination: {host: api.default.svc.cluster.local, port: {number: 8080}}
      headers: {request: {set: {x-added: by-destination}}, response: {add: {x-destination: 'yes'}}}
";
    let gw = Gateway::start_ingress(&topo, &yaml, &[]);
    let (code, body, headers) = curl_status(|a| topo.pod_a.command_outside_cgroup("curl", a), &["-H", "Host: api.test", &format!("{GATEWAY}/h")]);
    assert_eq!((code, body.as_str()), (200, "path=/h\nx-added=by-destination\n"));
    let headers = headers.to_ascii_lowercase();
    assert!(headers.contains("x-route: yes") && headers.contains("x-destination: yes"), "{headers}");
    assert_eq!(api.seen_under("/h"), 1);
    let line = gw.wait_json_line("request", "the request", |v| v["path"] == "/h");
    assert_eq!((line["role"].as_str(), line["upstream"].as_str()), (Some("ingress-gateway"), Some("203.0.113.10:8080")), "{line}");
    drop(gw);
    topo.teardown();
}
