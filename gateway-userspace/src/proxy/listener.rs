//! The outbound listener on one proxy address.

use std::{io, net::SocketAddr, sync::Arc, time::Duration};

use tokio::{
    net::{TcpListener, TcpSocket},
    sync::watch,
};

use tracing::Instrument;

use super::{ProxyInputs, connection, orig_dst::OrigDstSource};
use crate::transport::addrs::{ClientAddr, ProxyAddr};

pub struct OutboundListener {
    listener: TcpListener,
    source: OrigDstSource,
}

impl OutboundListener {
    pub fn bind(addr: SocketAddr, source: OrigDstSource) -> io::Result<Self> {
        let socket = match addr {
            SocketAddr::V4(_) => TcpSocket::new_v4()?,
            SocketAddr::V6(_) => TcpSocket::new_v6()?,
        };
        socket.set_reuseaddr(true)?;
        socket.bind(addr)?;
        Ok(Self { listener: socket.listen(4096)?, source })
    }

    /// A listener handed over by the previous instance (`handover.rs`).
    pub fn inherited(listener: TcpListener, source: OrigDstSource) -> Self {
        Self { listener, source }
    }

    /// The listening socket, to hand to the next instance.
    pub fn socket(&self) -> &TcpListener {
        &self.listener
    }

    pub fn address(&self) -> io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Accepts until `shutdown` turns true.
    pub async fn run(self, inputs: Arc<ProxyInputs>, mut shutdown: watch::Receiver<bool>) {
        loop {
            tokio::select! {
                _ = shutdown.changed() => return,
                accepted = self.listener.accept() => match accepted {
                    Ok((stream, peer)) => {
                        let _ = stream.set_nodelay(true);
                        let local = match stream.local_addr() {
                            Ok(a) => ProxyAddr(a),
                            Err(e) => {
                                tracing::warn!(error = %e, "accepted socket has no local address");
                                continue;
                            }
                        };
                        let client = ClientAddr(peer);
                        let span = connection::span(client);
                        tokio::spawn(connection::handle(stream, client, local, self.source, inputs.clone()).instrument(span));
                    }
                    Err(e) => {
                        // Out of descriptors and the like: back off, keep serving.
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                },
            }
        }
    }
}
