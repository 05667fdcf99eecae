//! A rewound stream: the prefix first, then the stream.

use tokio::io::AsyncReadExt;

use crate::transport::rewind::*;

#[tokio::test]
async fn the_prefix_comes_first_then_the_stream() {
    let mut r = Rewind::new(b"hello ".to_vec(), &b"world"[..]);
    let mut out = String::new();
    r.read_to_string(&mut out).await.unwrap();
    assert_eq!(out, "hello world");
}
