//! What a denied client sees: a TLS `access_denied` alert, an HTTP 403
//! naming the reason (its header: `transport::http_pool::DENIED_HEADER`),
//! or a TCP reset.

use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};

/// A fatal `access_denied` (49) alert in a TLS 1.2 record, which every TLS
/// client understands before the handshake.
const TLS_ACCESS_DENIED: [u8; 7] = [0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x31];

pub async fn tls_alert<S: AsyncRead + AsyncWrite + Unpin>(mut client: S) {
    let _ = client.write_all(&TLS_ACCESS_DENIED).await;
    let _ = client.shutdown().await;
    drain_briefly(&mut client).await;
}

pub fn forbidden_body(reason: &str, host: &str) -> String {
    format!("egress to {host} denied: {reason}\n")
}

pub fn reset<S: crate::transport::relay::Resettable>(client: S) {
    client.reset();
    drop(client);
}

/// Reads what the client still sends for a moment, so closing does not turn
/// into a reset that could discard the response before the client reads it.
async fn drain_briefly<S: AsyncRead + Unpin>(client: &mut S) {
    // On the heap: a refused connection's task stays small.
    let mut sink = vec![0u8; 4096];
    let _ = tokio::time::timeout(std::time::Duration::from_millis(200), async {
        loop {
            match tokio::io::AsyncReadExt::read(client, &mut sink).await {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
        }
    })
    .await;
}
