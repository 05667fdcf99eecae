//! Tests of `access_log.rs`.

use crate::access_log::*;
use crate::transport::addrs::{ClientAddr, OrigDstAddr};
use std::time::Duration;

#[tokio::test]
async fn lines_are_batched_and_a_flush_writes_them_all() {
    let (out, mut read) = tokio::io::duplex(1 << 20);
    let log = AccessLog::spawn(out);
    for port in 0..1000u16 {
        let mut r = ConnectionRecord::new(ClientAddr(std::net::SocketAddr::from(([198, 18, 1, 2], port))));
        r.finish(Duration::from_millis(1));
        log.write(&r).await;
    }
    log.flush().await;
    let mut got = vec![0u8; 1 << 20];
    let mut n = 0;
    while got[..n].iter().filter(|b| **b == b'\n').count() < 1000 {
        n += tokio::io::AsyncReadExt::read(&mut read, &mut got[n..]).await.unwrap();
    }
    let text = String::from_utf8_lossy(&got[..n]);
    assert_eq!(text.lines().count(), 1000);
    assert!(text.lines().last().unwrap().contains("198.18.1.2:999"));
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
