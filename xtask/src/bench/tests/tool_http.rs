//! Tests of `bench/tool/http.rs`: what a response head says of its body and
//! its connection.

use crate::bench::tool::http::{Ending, framing};

#[test]
fn keep_alive_unless_the_head_says_close() {
    let head = b"HTTP/1.1 200 OK\r\nServer: nginx\r\nContent-Length: 1024\r\n\r\n";
    assert_eq!(framing(head).unwrap(), (1024, Ending::KeepAlive));
    let head = b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\nconnection: close\r\n\r\n";
    assert_eq!(framing(head).unwrap(), (5, Ending::Close));
    let head = b"HTTP/1.1 200 OK\r\nConnection: Upgrade, Close\r\nContent-Length: 0\r\n\r\n";
    assert_eq!(framing(head).unwrap(), (0, Ending::Close));
    let head = b"HTTP/1.1 200 OK\r\nConnection: keep-alive\r\nX-Note: close\r\nContent-Length: 2\r\n\r\n";
    assert_eq!(framing(head).unwrap(), (2, Ending::KeepAlive));
}

#[test]
fn other_statuses_and_missing_lengths_fail() {
    assert!(framing(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n").is_err());
    assert!(framing(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n").is_err());
}
