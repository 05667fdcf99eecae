//! The in-task HTTP/1.1 exchange against a loopback upstream that answers
//! each request head with scripted bytes: every framing a response may
//! have, interim responses, malformed heads and bodies, and when the
//! connection may carry another request.

use std::sync::{Arc, Mutex};

use http_body_util::{BodyExt, Empty};
use hyper::{HeaderMap, Method, Request, StatusCode, body::Bytes};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
    sync::mpsc,
};

use super::{bounded, tcp_pair};
use crate::transport::h1_client::{ExchangeError, Kept, PutBack, UpstreamIo, exchange, takes};

/// Where the test's pool keeps a connection handed back.
#[derive(Clone, Default)]
struct Back(Arc<Mutex<Option<Kept>>>);

impl PutBack for Back {
    fn put_back(self, kept: Kept) {
        *self.0.lock().unwrap() = Some(kept);
    }
}

impl Back {
    fn take(&self) -> Option<Kept> {
        self.0.lock().unwrap().take()
    }
}

/// An upstream that reads one request head for each script and answers it
/// with the script's bytes (`None`: it closes instead); it reports each head.
fn upstream(mut stream: TcpStream, scripts: Vec<Option<&'static [u8]>>) -> mpsc::UnboundedReceiver<String> {
    let (heads, seen) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        let mut buf = Vec::new();
        for script in scripts {
            let end = loop {
                if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                    break end + 4;
                }
                let mut chunk = [0u8; 4096];
                match stream.read(&mut chunk).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => buf.extend_from_slice(&chunk[..n]),
                }
            };
            let head: Vec<u8> = buf.drain(..end).collect();
            let _ = heads.send(String::from_utf8_lossy(&head).into_owned());
            match script {
                Some(bytes) => stream.write_all(bytes).await.expect("upstream answers"),
                None => return,
            }
        }
        // Hold the connection open until the client is done with it.
        let _ = stream.read(&mut [0u8; 1]).await;
    });
    seen
}

async fn connected(scripts: Vec<Option<&'static [u8]>>) -> (Kept, mpsc::UnboundedReceiver<String>) {
    let (ours, theirs) = tcp_pair().await;
    (Kept::new(UpstreamIo::Plain(ours)), upstream(theirs, scripts))
}

fn request(method: Method, uri: &str) -> Request<Empty<Bytes>> {
    Request::builder().method(method).uri(uri).header("host", "upstream.test").body(Empty::new()).unwrap()
}

/// The status, body and trailers of one exchange on `kept`.
async fn exchanged(kept: Kept, req: Request<Empty<Bytes>>, back: &Back) -> Result<(StatusCode, Vec<u8>, Option<HeaderMap>), String> {
    let resp = match exchange(kept, req, false, back.clone()).await {
        Ok(resp) => resp,
        Err(ExchangeError::Failed(e)) => return Err(e.to_string()),
        Err(ExchangeError::Unsent(..)) => return Err("unsent".into()),
    };
    let status = resp.status();
    let collected = resp.into_body().collect().await.map_err(|e| e.to_string())?;
    let trailers = collected.trailers().cloned();
    Ok((status, collected.to_bytes().to_vec(), trailers))
}

/// One GET answered with `script` by an upstream that then closes the
/// connection (which ends a body read until close).
async fn answered_once(script: &'static [u8], back: &Back) -> Result<(StatusCode, Vec<u8>, Option<HeaderMap>), String> {
    let (ours, mut theirs) = tcp_pair().await;
    tokio::spawn(async move {
        let mut head = [0u8; 1024];
        let _ = theirs.read(&mut head).await;
        let _ = theirs.write_all(script).await;
    });
    exchanged(Kept::new(UpstreamIo::Plain(ours)), request(Method::GET, "/"), back).await
}

#[tokio::test]
async fn each_framing_is_read_whole_and_the_connection_comes_back_after_each() {
    bounded(async {
        let (kept, mut heads) = connected(vec![
            Some(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello"),
            Some(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4;ext=1\r\nwiki\r\n5\r\npedia\r\n0\r\nx-checksum: abc\r\n\r\n"),
            Some(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"),
            Some(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nlink: </a>\r\n\r\nHTTP/1.1 201 Created\r\ncontent-length: 2\r\n\r\nok"),
            Some(b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\n"),
            Some(b"HTTP/1.1 204 No Content\r\n\r\n"),
            Some(b"HTTP/1.1 304 Not Modified\r\ncontent-length: 7\r\n\r\n"),
        ])
        .await;
        let back = Back::default();
        let got = exchanged(kept, request(Method::GET, "/a?b=c"), &back).await.unwrap();
        assert_eq!((got.0, &got.1[..], got.2), (StatusCode::OK, &b"hello"[..], None));
        let head = heads.recv().await.unwrap();
        assert_eq!(head, "GET /a?b=c HTTP/1.1\r\nhost: upstream.test\r\n\r\n");

        let got = exchanged(back.take().expect("kept after a length body"), request(Method::GET, "/"), &back).await.unwrap();
        assert_eq!(&got.1[..], b"wikipedia");
        assert_eq!(got.2.expect("trailers")["x-checksum"], "abc");

        let got = exchanged(back.take().expect("kept after a chunked body"), request(Method::GET, "/"), &back).await.unwrap();
        assert_eq!(&got.1[..], b"abc");

        let got = exchanged(back.take().expect("kept after another"), request(Method::GET, "/"), &back).await.unwrap();
        assert_eq!((got.0, &got.1[..]), (StatusCode::CREATED, &b"ok"[..]), "interim responses are skipped");

        let got = exchanged(back.take().expect("kept after interim ones"), request(Method::HEAD, "/"), &back).await.unwrap();
        assert_eq!((got.0, got.1.len()), (StatusCode::OK, 0), "a HEAD answer has no body, whatever its length says");

        for status in [StatusCode::NO_CONTENT, StatusCode::NOT_MODIFIED] {
            let got = exchanged(back.take().expect("kept after a bodiless answer"), request(Method::GET, "/"), &back).await.unwrap();
            assert_eq!((got.0, got.1.len()), (status, 0));
        }
        assert!(back.take().is_some(), "kept after the last");
    })
    .await;
}

#[tokio::test]
async fn absolute_form_targets_and_headers_go_as_given() {
    bounded(async {
        let (kept, mut heads) = connected(vec![Some(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n")]).await;
        let mut req = request(Method::DELETE, "http://upstream.test:8080/x/y?z");
        req.headers_mut().append("x-multi", "1".parse().unwrap());
        req.headers_mut().append("x-multi", "2".parse().unwrap());
        exchanged(kept, req, &Back::default()).await.unwrap();
        let head = heads.recv().await.unwrap();
        assert_eq!(head, "DELETE http://upstream.test:8080/x/y?z HTTP/1.1\r\nhost: upstream.test\r\nx-multi: 1\r\nx-multi: 2\r\n\r\n");
    })
    .await;
}

#[tokio::test]
async fn a_connection_that_cannot_carry_another_request_is_not_kept() {
    for (script, why) in [
        (&b"HTTP/1.1 200 OK\r\nconnection: close\r\ncontent-length: 1\r\n\r\nx"[..], "the upstream said close"),
        (b"HTTP/1.0 200 OK\r\ncontent-length: 1\r\n\r\nx", "HTTP/1.0 without keep-alive"),
        (b"HTTP/1.1 200 OK\r\n\r\nuntil the end", "a body read until close"),
        (b"HTTP/1.1 200 OK\r\ncontent-length: 1\r\n\r\nxHTTP/1.1 200 OK", "bytes past the response"),
        (b"HTTP/1.1 200 OK\r\ncontent-length: 3\r\ntransfer-encoding: chunked\r\n\r\n1\r\nx\r\n0\r\n\r\n", "both a length and chunking"),
    ] {
        bounded(async {
            let back = Back::default();
            let got = answered_once(script, &back).await;
            assert!(got.is_ok(), "{why}: {got:?}");
            assert!(back.take().is_none(), "{why}: the connection must not be kept");
        })
        .await;
    }
    bounded(async {
        let (kept, _heads) = connected(vec![Some(b"HTTP/1.1 200 OK\r\ncontent-length: 1\r\n\r\nx")]).await;
        let back = Back::default();
        let mut req = request(Method::GET, "/");
        req.headers_mut().insert("connection", "close".parse().unwrap());
        exchanged(kept, req, &back).await.unwrap();
        assert!(back.take().is_none(), "the request said close");
    })
    .await;
}

#[tokio::test]
async fn malformed_answers_fail_the_exchange_and_give_up_the_connection() {
    for (script, why) in [
        (&b"HTTP/1.1 200 OK\r\ncontent-length: 1\r\ncontent-length: 2\r\n\r\nxx"[..], "conflicting lengths"),
        (b"HTTP/1.1 200 OK\r\ncontent-length: -1\r\n\r\n", "a negative length"),
        (b"HTTP/1.1 200 OK\r\ncontent-length: 1x\r\n\r\n", "a length that is not a number"),
        (b"HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\n\r\n", "an upgrade nobody asked for"),
        (b"HTTP/1.1 2000 OK\r\n\r\n", "a status of four digits"),
        (b"HTTP/1.1 200 OK\r\nbad header\r\n\r\n", "a header without a colon"),
        (b"SSH-2.0-OpenSSH_9.2\r\n\r\n", "not HTTP"),
        (b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nshort", "a body cut short"),
        (b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\nzz\r\nab\r\n0\r\n\r\n", "a chunk size that is not hex"),
        (b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n2\r\nabcd\r\n0\r\n\r\n", "a chunk longer than its size"),
        (b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n2\r\nab\r\n", "no last chunk"),
        (b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n0\r\nbad trailer\r\n\r\n", "a malformed trailer"),
        (b"HTTP/1.1 200 OK\r\ncontent-len", "a head cut short"),
    ] {
        bounded(async {
            let back = Back::default();
            let got = answered_once(script, &back).await;
            assert!(got.is_err(), "{why}: {got:?}");
            assert!(back.take().is_none(), "{why}: the connection must not be kept");
        })
        .await;
    }
}

#[tokio::test]
async fn a_head_over_the_limits_is_refused() {
    let endless = || async {
        let filler = "a".repeat(4000);
        let (ours, mut theirs) = tcp_pair().await;
        tokio::spawn(async move {
            let mut head = [0u8; 1024];
            let _ = theirs.read(&mut head).await;
            let _ = theirs.write_all(b"HTTP/1.1 200 OK\r\nx-filler: ").await;
            // Without an end: the client must stop reading at its limit.
            while theirs.write_all(filler.as_bytes()).await.is_ok() {}
        });
        exchanged(Kept::new(UpstreamIo::Plain(ours)), request(Method::GET, "/"), &Back::default()).await
    };
    let many = || async {
        let (ours, mut theirs) = tcp_pair().await;
        tokio::spawn(async move {
            let mut head = [0u8; 1024];
            let _ = theirs.read(&mut head).await;
            let headers: String = (0..101).map(|i| format!("x-{i}: v\r\n")).collect();
            let _ = theirs.write_all(format!("HTTP/1.1 200 OK\r\n{headers}\r\n").as_bytes()).await;
        });
        exchanged(Kept::new(UpstreamIo::Plain(ours)), request(Method::GET, "/"), &Back::default()).await
    };
    bounded(async {
        let err = endless().await.expect_err("an endless head");
        assert!(err.contains("longer than"), "{err}");
        let err = many().await.expect_err("101 headers");
        assert!(err.contains("too many headers"), "{err}");
    })
    .await;
}

#[tokio::test]
async fn a_kept_connection_closed_under_an_idempotent_request_gives_the_request_back() {
    bounded(async {
        let (kept, _heads) = connected(vec![None]).await;
        let got = exchange(kept, request(Method::GET, "/again"), true, Back::default()).await;
        match got {
            Err(ExchangeError::Unsent(unsent)) => assert_eq!(unsent.0.uri(), "/again"),
            Err(ExchangeError::Failed(e)) => panic!("expected the request back, got {e}"),
            Ok(resp) => panic!("expected the request back, got {}", resp.status()),
        }
        // A POST may have been acted on: it is not sent again.
        let (kept, _heads) = connected(vec![None]).await;
        let got = exchange(kept, request(Method::POST, "/once"), true, Back::default()).await;
        assert!(matches!(got, Err(ExchangeError::Failed(_))), "a POST is not given back");
        // Nor is any request on a new connection.
        let (kept, _heads) = connected(vec![None]).await;
        let got = exchange(kept, request(Method::GET, "/"), false, Back::default()).await;
        assert!(matches!(got, Err(ExchangeError::Failed(_))), "a new connection's failure is final");
    })
    .await;
}

#[tokio::test]
async fn an_idle_connection_the_upstream_closed_or_wrote_on_is_seen_closed() {
    bounded(async {
        let (ours, theirs) = tcp_pair().await;
        let mut kept = Kept::new(UpstreamIo::Plain(ours));
        assert!(!kept.is_closed(), "open and quiet");
        drop(theirs);
        // The FIN arrives over loopback at once; poll until it is seen.
        while !kept.is_closed() {
            tokio::task::yield_now().await;
        }
        let (ours, mut theirs) = tcp_pair().await;
        let mut kept = Kept::new(UpstreamIo::Plain(ours));
        theirs.write_all(b"HTTP/1.1 408 Request Timeout\r\n\r\n").await.unwrap();
        while !kept.is_closed() {
            tokio::task::yield_now().await;
        }
    })
    .await;
}

#[test]
fn only_bodiless_plain_requests_are_taken() {
    let plain = request(Method::GET, "/");
    assert!(takes(&plain));
    let mut zero = request(Method::POST, "/");
    zero.headers_mut().insert("content-length", "0".parse().unwrap());
    assert!(takes(&zero));
    let with_body = Request::post("/").body(http_body_util::Full::new(Bytes::from_static(b"x"))).unwrap();
    assert!(!takes(&with_body));
    for (name, value) in [("upgrade", "websocket"), ("expect", "100-continue"), ("transfer-encoding", "chunked"), ("content-length", "4")] {
        let mut req = request(Method::GET, "/");
        req.headers_mut().insert(name, value.parse().unwrap());
        assert!(!takes(&req), "{name}");
    }
    let mut old = request(Method::GET, "/");
    *old.version_mut() = hyper::Version::HTTP_10;
    assert!(!takes(&old));
    assert!(!takes(&request(Method::CONNECT, "upstream.test:443")));
}
