//! Tests of `access_log.rs`.

use crate::access_log::*;
use crate::transport::addrs::{ClientAddr, OrigDstAddr};
use std::time::Duration;

/// Reads `out` on a thread of its own until it has `lines` lines, and sends
/// them. A thread, not a blocking task: one left waiting on a line that never
/// comes does not keep the test's runtime from ending.
fn read_lines(mut out: std::io::PipeReader, lines: usize) -> std::sync::mpsc::Receiver<String> {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut text = Vec::new();
        let mut got = vec![0u8; 1 << 20];
        let mut seen = 0;
        while seen < lines {
            let n = std::io::Read::read(&mut out, &mut got).unwrap();
            assert!(n > 0, "the access log's output closed after {} bytes", text.len());
            seen += got[..n].iter().filter(|b| **b == b'\n').count();
            text.extend_from_slice(&got[..n]);
        }
        let _ = tx.send(String::from_utf8(text).unwrap());
    });
    rx
}

/// What `read_lines` read, waited for without holding up the runtime's
/// thread (the log's writers may need it to get there); `None` if it has not
/// come within a minute.
async fn lines_read(rx: std::sync::mpsc::Receiver<String>) -> Option<String> {
    for _ in 0..6000 {
        match rx.try_recv() {
            Ok(text) => return Some(text),
            Err(std::sync::mpsc::TryRecvError::Empty) => tokio::time::sleep(Duration::from_millis(10)).await,
            Err(e) => panic!("the reader ended: {e}"),
        }
    }
    None
}

fn connection_record(port: u16) -> ConnectionRecord {
    let mut r = ConnectionRecord::new(ClientAddr(std::net::SocketAddr::from(([198, 18, 1, 2], port))));
    r.finish(Duration::from_millis(1));
    r
}

#[tokio::test]
async fn lines_are_batched_and_a_flush_writes_them_all() {
    let (read, out) = std::io::pipe().unwrap();
    let log = AccessLog::spawn(out).unwrap();
    let reader = read_lines(read, 1000);
    for port in 0..1000u16 {
        log.write(&connection_record(port)).await;
    }
    log.flush().await;
    let text = lines_read(reader).await.expect("a flush returned before its lines were out");
    assert_eq!(text.lines().count(), 1000);
    assert!(text.lines().last().unwrap().contains("198.18.1.2:999"));
}

/// A log left idle for longer than its interval sleeps with no interval;
/// its next line wakes it, and comes out with no flush asked for.
#[tokio::test]
async fn a_line_into_an_idle_log_is_written_unasked() {
    let (read, out) = std::io::pipe().unwrap();
    let log = AccessLog::spawn(out).unwrap();
    let reader = read_lines(read, 2);
    log.write(&connection_record(1)).await;
    log.flush().await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    log.write(&connection_record(2)).await;
    let text = lines_read(reader).await.expect("the line after an idle spell was never written");
    assert!(text.lines().nth(1).unwrap().contains("198.18.1.2:2"), "{text}");
}

/// An output that takes nothing: past the buffer's limit, writers wait
/// rather than grow it; once the output reads again, every line comes out,
/// in order.
#[tokio::test]
async fn writers_wait_at_the_limit_and_no_line_is_lost() {
    let (read, out) = std::io::pipe().unwrap();
    let log = AccessLog::spawn(out).unwrap();
    // 10 MiB of request lines: more than the 4 MiB the buffer holds and the
    // 4 MiB batch the writer may have taken and be stuck writing.
    let base = request_record(0);
    let mut one = Vec::new();
    crate::access_log::line::request(&mut one, &base);
    let count = (10 << 20) / (one.len() + 1) + 1;
    let writer = {
        let log = log.clone();
        tokio::spawn(async move {
            for i in 0..count {
                let mut r = request_record(0);
                r.duration_ms = i as u64;
                log.write_request(&r).await;
            }
        })
    };
    // Nothing is read yet: the writer cannot have queued everything.
    for _ in 0..100 {
        tokio::task::yield_now().await;
    }
    assert!(!writer.is_finished(), "10 MiB queued while the output took only a pipe's worth");
    let text = lines_read(read_lines(read, count)).await.expect("lines were lost");
    writer.await.unwrap();
    for (i, line) in text.lines().enumerate() {
        assert!(line.ends_with(&format!(",\"duration_ms\":{i}}}")), "line {i}: {line}");
    }
}

#[test]
fn record_serialises_with_stable_field_names() {
    let mut r = ConnectionRecord::new(ClientAddr("198.18.1.2:40000".parse().unwrap()));
    r.orig_dst = Some(OrigDstAddr("203.0.113.10:80".parse().unwrap()));
    r.decision = Decision::Allow;
    r.reason = Reason::Proxy("passthrough");
    r.outcome = Outcome::UpstreamUnreachable;
    r.finish(Duration::from_millis(12));
    let v: serde_json::Value = serde_json::to_value(&r).unwrap();
    assert_eq!(v["src"], "198.18.1.2:40000");
    assert_eq!(v["orig_dst"], "203.0.113.10:80");
    assert_eq!(v["decision"], "allow");
    assert_eq!(v["outcome"], "upstream-unreachable");
    assert_eq!(v["duration_ms"], 12);
    assert!(v["time"].as_str().unwrap().ends_with('Z'));
}

/// A request record with every field set as `vary` says.
fn request_record(vary: usize) -> RequestRecord {
    use crate::{
        authz::{AuthzAction, AuthzDecision},
        policy::{DenyReason, MatchedEntry, RouteChoice, WorkloadIdentity},
        transport::addrs::UpstreamAddr,
    };
    let odd = vary % 2 == 1;
    let labels = if odd { std::sync::Arc::new([("app".to_string(), "shop \"v2\"".to_string()), ("tier".into(), "web".into())].into()) } else { Default::default() };
    let mut r = RequestRecord {
        time: "2026-11-27T01:02:03.456789Z".into(),
        event: "request",
        role: if odd { "ingress-gateway" } else { "node" },
        src: ClientAddr(if odd { "[fd00::1%7]:40000".parse().unwrap() } else { "198.18.1.2:40000".parse().unwrap() }),
        orig_dst: OrigDstAddr("203.0.113.10:80".parse().unwrap()),
        workload: WorkloadIdentity {
            namespace: "shop".into(),
            name: odd.then(|| "cart".into()),
            labels,
            service_account: odd.then(|| "cart-sa".into()),
        },
        peer_identity: odd.then(|| "spiffe://cluster.local/ns/shop/sa/cart".into()),
        method: ["GET", "POST", "M\u{7f}\u{1}"][vary % 3].into(),
        host: (vary % 3 != 2).then(|| ["api.example.com", "tab\there.example", "ünï.example"][vary % 3].into()),
        path: ["/", "/a?q=\"x\"&b=\\y", "/\u{0}\u{1f}/é/\u{2028}"][vary % 3].into(),
        decision: [Decision::Allow, Decision::Steer, Decision::Deny][vary % 3],
        would: odd.then_some(Decision::Deny),
        reason: [Reason::Deny(DenyReason::NotRegistered), Reason::Proxy("no-route"), Reason::Undecided][vary % 3],
        matched: odd.then(|| MatchedEntry { kind: "ServiceEntry", namespace: "shop".into(), name: "api".into(), host: "*.example.com".into() }),
        route: odd.then(|| RouteChoice {
            kind: "VirtualService",
            namespace: "shop".into(),
            name: "via-egress".into(),
            destination: "egress.istio-system.svc.cluster.local".into(),
            port: (vary % 3 == 1).then_some(443),
            subset: vary.is_multiple_of(3).then(|| "v1".into()),
        }),
        authz: (vary % 3 == 1).then(|| Box::new(AuthzDecision { allowed: false, action: AuthzAction::Deny, policy: odd.then(|| "shop/deny-admin".into()), rule: odd.then_some(2) })),
        audited: (vary % 4 == 3).then(|| "shop/audit-all".into()),
        upstream: (!vary.is_multiple_of(3)).then(|| UpstreamAddr(if vary.is_multiple_of(2) { "10.0.0.7:8080".parse().unwrap() } else { "[2001:db8::7]:443".parse().unwrap() })),
        status: [200, 403, 0][vary % 3],
        flags: Vec::new(),
        duration_ms: [0, 7, u64::MAX][vary % 3],
    };
    if vary % 3 == 1 {
        r.flag(ResponseFlag::NoRoute);
        r.flag(ResponseFlag::UpstreamConnectionFailure);
    }
    r
}

/// The request line is written by hand; it must be the derived
/// serialiser's JSON byte for byte, escapes included.
#[test]
fn request_line_is_the_derived_json() {
    for vary in 0..12 {
        let r = request_record(vary);
        let mut by_hand = Vec::new();
        line::request(&mut by_hand, &r);
        let by_hand = String::from_utf8(by_hand).expect("UTF-8");
        let derived = serde_json::to_string(&r).expect("serialises");
        assert_eq!(by_hand, derived, "variant {vary}");
    }
}

/// A record names the request's method as sent: a standard one from static
/// text, any other copied.
#[test]
fn a_record_names_standard_and_extension_methods() {
    let workload = crate::policy::WorkloadIdentity::unknown("shop");
    let (src, dst) = (ClientAddr("198.18.1.2:40000".parse().unwrap()), OrigDstAddr("203.0.113.10:80".parse().unwrap()));
    for (name, standard) in [("GET", true), ("PATCH", true), ("CONNECT", true), ("PURGE", false), ("get", false)] {
        let req = hyper::Request::builder().method(name).uri("/").body(()).unwrap();
        let r = RequestRecord::new(src, dst, &workload, &req, None);
        assert_eq!(r.method, name);
        assert_eq!(matches!(r.method, std::borrow::Cow::Borrowed(_)), standard, "{name}");
    }
}
