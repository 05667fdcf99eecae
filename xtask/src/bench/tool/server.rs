//! The echo server the connection-rate, ping-pong and idle-connection
//! figures run against. One thread (the load CPU is shared with the
//! clients); a connection's first `WHO?` is answered with its peer's address,
//! which tells which path a mode's connections really took.

use std::{net::SocketAddr, time::Duration};

use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream},
};

pub fn serve(ports: &[u16], lifetime: Duration) -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    rt.block_on(async {
        for &port in ports {
            let listener = TcpListener::bind(("0.0.0.0", port)).await?;
            tokio::spawn(accept(listener));
        }
        println!("{}", serde_json::json!({ "listening": ports }));
        tokio::time::sleep(lifetime).await;
        Ok(())
    })
}

async fn accept(listener: TcpListener) {
    loop {
        match listener.accept().await {
            Ok((stream, peer)) => {
                let _ = stream.set_nodelay(true);
                tokio::spawn(echo(stream, peer));
            }
            // Out of descriptors or a reset in the queue: wait, then go on.
            Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
        }
    }
}

async fn echo(mut stream: TcpStream, peer: SocketAddr) {
    let mut buf = vec![0u8; 2048];
    let mut first = true;
    loop {
        let n = match stream.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        if first && buf[..n].starts_with(b"WHO?") {
            let _ = stream.write_all(format!("{}\n", peer.ip().to_canonical()).as_bytes()).await;
            return;
        }
        first = false;
        if stream.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
}
