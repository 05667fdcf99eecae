use std::time::Duration;

use crate::transport::idle::*;

#[tokio::test(start_paused = true)]
async fn idle_only_after_a_quiet_period_without_requests() {
    let a = Activity::new();
    let timeout = Duration::from_secs(10);
    let busy = a.busy();
    let waited = tokio::time::timeout(Duration::from_secs(25), a.idle_for(timeout)).await;
    assert!(waited.is_err(), "a request in flight keeps the connection");
    drop(busy);
    let start = tokio::time::Instant::now();
    a.idle_for(timeout).await;
    assert!(start.elapsed() >= timeout, "idle counted from the request's end: {:?}", start.elapsed());
}

#[tokio::test(start_paused = true)]
async fn the_head_timer_runs_from_a_request_s_first_byte_until_it_is_parsed() {
    let a = Activity::new();
    let limit = Duration::from_secs(10);
    let quiet = tokio::time::timeout(Duration::from_secs(60), a.head_overdue(limit)).await;
    assert!(quiet.is_err(), "no bytes, no head timer (an idle keep-alive connection)");
    a.on_read(b"GET / HT");
    let start = tokio::time::Instant::now();
    a.head_overdue(limit).await;
    assert!(start.elapsed() >= limit);
    let _request = a.busy();
    assert!(tokio::time::timeout(Duration::from_secs(60), a.head_overdue(limit)).await.is_err(), "a parsed head stops it");
    let h2 = Activity::new();
    h2.on_read(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");
    assert!(tokio::time::timeout(Duration::from_secs(60), h2.head_overdue(limit)).await.is_err(), "not for HTTP/2");
}

#[tokio::test(start_paused = true)]
async fn bytes_either_way_restart_the_period_and_zero_disables() {
    let a = Activity::new();
    let (client, mut peer) = tokio::io::duplex(64);
    let mut tracked = Tracked::new(client, a.clone());
    tokio::time::sleep(Duration::from_secs(8)).await;
    tokio::io::AsyncWriteExt::write_all(&mut peer, b"ping").await.unwrap();
    let mut buf = [0u8; 4];
    tokio::io::AsyncReadExt::read_exact(&mut tracked, &mut buf).await.unwrap();
    tokio::time::sleep(Duration::from_secs(8)).await;
    tokio::io::AsyncWriteExt::write_all(&mut tracked, b"pong").await.unwrap();
    let start = tokio::time::Instant::now();
    a.idle_for(Duration::from_secs(10)).await;
    assert!(start.elapsed() >= Duration::from_secs(10), "{:?}", start.elapsed());
    assert_eq!(a.bytes(), (4, 4));
    let never = tokio::time::timeout(Duration::from_secs(3600), a.idle_for(Duration::ZERO)).await;
    assert!(never.is_err());
}

/// The watch's timers wake the connection's task through their own waker:
/// a connection that never ends by itself is asked to shut down once idle,
/// and dropped once a head is overdue.
#[tokio::test(start_paused = true)]
async fn a_served_connection_is_shut_down_when_idle_and_dropped_on_an_overdue_head() {
    use std::sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    };
    use std::task::Poll;

    let a = Activity::new();
    let asked = Arc::new(AtomicBool::new(false));
    let ends_once_asked = {
        let asked = asked.clone();
        std::future::poll_fn(move |_| if asked.load(Ordering::Relaxed) { Poll::Ready("shut down") } else { Poll::Pending })
    };
    let start = tokio::time::Instant::now();
    let serving = close_when_idle(ends_once_asked, &a, Duration::from_secs(10), Duration::from_secs(5), |_| asked.store(true, Ordering::Relaxed));
    let ended = tokio::time::timeout(Duration::from_secs(120), serving).await.expect("the idle timer wakes the connection's task");
    assert_eq!(ended, Some("shut down"));
    assert!(start.elapsed() >= Duration::from_secs(10), "{:?}", start.elapsed());

    let slow = Activity::new();
    slow.on_read(b"GET / HT");
    let start = tokio::time::Instant::now();
    let serving = close_when_idle(std::future::pending::<()>(), &slow, Duration::from_secs(3600), Duration::from_secs(5), |_| {});
    let ended = tokio::time::timeout(Duration::from_secs(120), serving).await.expect("the head timer wakes the connection's task");
    assert_eq!(ended, None, "an overdue head drops the connection");
    assert!((Duration::from_secs(5)..Duration::from_secs(60)).contains(&start.elapsed()), "{:?}", start.elapsed());
}
