//! The proxy's own outbound sockets carry `SO_MARK`, which only a
//! CAP_NET_ADMIN process can set; the kernel programs leave them alone.

use std::{io, net::SocketAddr, time::Duration};

use nix::sys::socket::{setsockopt, sockopt};
use tokio::net::{TcpSocket, TcpStream};

use super::addrs::UpstreamAddr;

pub async fn connect_marked(to: UpstreamAddr, mark: u32, timeout: Duration) -> io::Result<TcpStream> {
    let socket = match to.0 {
        SocketAddr::V4(_) => TcpSocket::new_v4()?,
        SocketAddr::V6(_) => TcpSocket::new_v6()?,
    };
    setsockopt(&socket, sockopt::Mark, &mark).map_err(io::Error::from)?;
    socket.set_nodelay(true)?;
    match tokio::time::timeout(timeout, socket.connect(to.0)).await {
        Ok(result) => result,
        Err(_) => Err(io::Error::new(io::ErrorKind::TimedOut, "upstream connect timed out")),
    }
}
