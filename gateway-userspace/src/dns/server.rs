//! The listeners: UDP and TCP on every listen address, one task per UDP
//! query and per TCP connection, each bounded in number and time.

use std::{io, net::SocketAddr, sync::Arc, time::Duration};

use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpSocket, TcpStream, UdpSocket},
    sync::Semaphore,
    task::JoinSet,
    time::timeout,
};

use crate::handover::{Inherited, Kind, Offered, offer};

use super::{
    DnsMemory, DnsSettings, DnsStats, NameRegistry,
    handler::{Handler, Transport},
    upstream::Upstreams,
};

/// UDP queries being answered at once, per listener; more are dropped and
/// the client retries.
const UDP_IN_FLIGHT: usize = 1024;
/// TCP connections open at once, per listener; more wait in the backlog.
const TCP_CONNECTIONS: usize = 256;
/// How long a TCP connection may sit idle between queries.
const TCP_IDLE: Duration = Duration::from_secs(10);
/// How long reading the rest of a query, or writing a reply, may take.
const TCP_IO: Duration = Duration::from_secs(5);
/// Tries at finding a port free for both UDP and TCP when asked for port 0.
const PORT_TRIES: usize = 16;
/// A pause after a failed receive or accept, so a lasting error does not spin.
const ERROR_PAUSE: Duration = Duration::from_millis(50);

/// The DNS server: bound listeners, ready to `run`.
pub struct DnsServer {
    listeners: Vec<(Arc<UdpSocket>, TcpListener)>,
    handler: Arc<Handler>,
}

impl DnsServer {
    /// Binds UDP and TCP on every listen address (the same port for both).
    pub async fn bind(
        settings: DnsSettings,
        registry: Arc<dyn NameRegistry>,
        memory: Arc<DnsMemory>,
        stats: Arc<DnsStats>,
    ) -> io::Result<Self> {
        Self::bind_inheriting(settings, registry, memory, stats, &mut Inherited::default()).await
    }

    /// As `bind`, taking the sockets a previous instance handed over where
    /// their addresses match.
    pub async fn bind_inheriting(
        settings: DnsSettings,
        registry: Arc<dyn NameRegistry>,
        memory: Arc<DnsMemory>,
        stats: Arc<DnsStats>,
        inherited: &mut Inherited,
    ) -> io::Result<Self> {
        let mut listeners = Vec::with_capacity(settings.listen.len());
        for &address in &settings.listen {
            let handed = match (inherited.udp(address)?, inherited.tcp(address)?) {
                (Some(udp), Some(tcp)) => Some((udp, tcp)),
                _ => None,
            };
            let bound = match handed {
                Some(pair) => Ok(pair),
                None => bind_pair(address).await,
            };
            let (udp, tcp) = bound
                .map_err(|error| io::Error::new(error.kind(), format!("binding DNS listener {address}: {error}")))?;
            listeners.push((Arc::new(udp), tcp));
        }
        let upstreams = Upstreams::new(settings.upstreams, settings.mark);
        let handler = Handler { unknown: settings.unknown.clone(), registry, memory, stats, upstreams };
        Ok(Self { listeners, handler: Arc::new(handler) })
    }

    /// Every socket, to hand to the next instance.
    pub fn offer(&self) -> io::Result<Vec<Offered>> {
        let mut out = Vec::new();
        for (udp, tcp) in &self.listeners {
            out.push(offer(Kind::Udp, udp.local_addr()?, udp.as_ref())?);
            out.push(offer(Kind::Tcp, tcp.local_addr()?, tcp)?);
        }
        Ok(out)
    }

    /// The bound addresses, one per listen address, each over UDP and TCP.
    pub fn local_addrs(&self) -> Vec<SocketAddr> {
        self.listeners.iter().filter_map(|(udp, _)| udp.local_addr().ok()).collect()
    }

    /// Serves until this future is dropped or its task aborted; that stops
    /// every query and connection in progress too.
    pub async fn run(self) {
        let mut listeners = JoinSet::new();
        for (udp, tcp) in self.listeners {
            listeners.spawn(serve_udp(udp, self.handler.clone()));
            listeners.spawn(serve_tcp(tcp, self.handler.clone()));
        }
        while listeners.join_next().await.is_some() {}
    }
}

async fn bind_pair(address: SocketAddr) -> io::Result<(UdpSocket, TcpListener)> {
    if address.port() != 0 {
        return Ok((UdpSocket::bind(address).await?, bind_tcp(address)?));
    }
    let mut last = io::Error::new(io::ErrorKind::AddrInUse, "no port free for both UDP and TCP");
    for _ in 0..PORT_TRIES {
        let udp = UdpSocket::bind(address).await?;
        match bind_tcp(udp.local_addr()?) {
            Ok(tcp) => return Ok((udp, tcp)),
            Err(error) if error.kind() == io::ErrorKind::AddrInUse => last = error,
            Err(error) => return Err(error),
        }
    }
    Err(last)
}

fn bind_tcp(address: SocketAddr) -> io::Result<TcpListener> {
    let socket = match address {
        SocketAddr::V4(_) => TcpSocket::new_v4()?,
        SocketAddr::V6(_) => TcpSocket::new_v6()?,
    };
    socket.set_reuseaddr(true)?;
    socket.bind(address)?;
    socket.listen(1024)
}

async fn serve_udp(socket: Arc<UdpSocket>, handler: Arc<Handler>) {
    let in_flight = Arc::new(Semaphore::new(UDP_IN_FLIGHT));
    let mut queries = JoinSet::new();
    let mut buffer = vec![0u8; usize::from(u16::MAX)];
    loop {
        while queries.try_join_next().is_some() {}
        let (len, peer) = match socket.recv_from(&mut buffer).await {
            Ok(received) => received,
            Err(error) => {
                tracing::warn!(%error, "DNS UDP receive failed");
                tokio::time::sleep(ERROR_PAUSE).await;
                continue;
            }
        };
        let Ok(permit) = in_flight.clone().try_acquire_owned() else {
            tracing::debug!(%peer, "too many DNS queries in flight; dropping one");
            continue;
        };
        let bytes = buffer.get(..len).unwrap_or_default().to_vec();
        let (socket, handler) = (socket.clone(), handler.clone());
        queries.spawn(async move {
            let _permit = permit;
            let client = peer.ip().to_canonical();
            if let Some(reply) = handler.handle(client, &bytes, Transport::Udp).await
                && let Err(error) = socket.send_to(&reply, peer).await
            {
                tracing::debug!(%peer, %error, "cannot send a DNS reply");
            }
        });
    }
}

async fn serve_tcp(listener: TcpListener, handler: Arc<Handler>) {
    let open = Arc::new(Semaphore::new(TCP_CONNECTIONS));
    let mut connections = JoinSet::new();
    loop {
        while connections.try_join_next().is_some() {}
        let Ok(permit) = open.clone().acquire_owned().await else { return };
        let (stream, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(error) => {
                tracing::warn!(%error, "DNS TCP accept failed");
                tokio::time::sleep(ERROR_PAUSE).await;
                continue;
            }
        };
        let handler = handler.clone();
        connections.spawn(async move {
            let _permit = permit;
            serve_tcp_connection(stream, peer, &handler).await;
        });
    }
}

/// Answers the queries of one TCP connection in order, until the client
/// closes it, idles, or sends something not worth a reply.
async fn serve_tcp_connection(mut stream: TcpStream, peer: SocketAddr, handler: &Handler) {
    let client = peer.ip().to_canonical();
    loop {
        let Ok(Ok(len)) = timeout(TCP_IDLE, stream.read_u16()).await else { return };
        let mut query = vec![0u8; usize::from(len)];
        let Ok(Ok(_)) = timeout(TCP_IO, stream.read_exact(&mut query)).await else { return };
        let Some(reply) = handler.handle(client, &query, Transport::Tcp).await else { return };
        let Ok(reply_len) = u16::try_from(reply.len()) else { return };
        let mut framed = Vec::with_capacity(reply.len() + 2);
        framed.extend_from_slice(&reply_len.to_be_bytes());
        framed.extend_from_slice(&reply);
        match timeout(TCP_IO, stream.write_all(&framed)).await {
            Ok(Ok(())) => {}
            _ => return,
        }
    }
}
