//! The proxy's own outbound sockets. They carry `SO_MARK`, which only a
//! CAP_NET_ADMIN process can set; the kernel programs leave them alone.

use std::{
    future::Future,
    io,
    net::{IpAddr, SocketAddr},
    pin::Pin,
    sync::atomic::{AtomicUsize, Ordering},
    time::Duration,
};

use nix::sys::socket::{setsockopt, sockopt};
use tokio::net::{TcpSocket, TcpStream};

use super::addrs::UpstreamAddr;
use crate::policy::Target;

/// Resolves hosts of DNS-type entries for the proxy itself.
pub trait NameResolver: Send + Sync {
    fn resolve<'a>(&'a self, host: &'a str) -> Pin<Box<dyn Future<Output = io::Result<Vec<IpAddr>>> + Send + 'a>>;
}

/// Without configured upstream resolvers, names do not resolve: connections
/// that need the proxy's own resolution fail closed.
pub struct NoResolver;

impl NameResolver for NoResolver {
    fn resolve<'a>(&'a self, host: &'a str) -> Pin<Box<dyn Future<Output = io::Result<Vec<IpAddr>>> + Send + 'a>> {
        Box::pin(async move {
            Err(io::Error::new(io::ErrorKind::NotFound, format!("no resolver configured for {host} (--dns-upstream)")))
        })
    }
}

/// Sets `SO_MARK` where the process may (CAP_NET_ADMIN). The mark only
/// serves routing rules; interception knows the proxy by its cgroup, so an
/// unprivileged gateway goes without it.
pub fn mark_socket(socket: &impl std::os::fd::AsFd, mark: u32) -> io::Result<()> {
    match setsockopt(socket, sockopt::Mark, &mark) {
        Err(nix::errno::Errno::EPERM) => Ok(()),
        other => other.map_err(io::Error::from),
    }
}

pub async fn connect_marked(to: UpstreamAddr, mark: u32, timeout: Duration) -> io::Result<TcpStream> {
    let socket = match to.0 {
        SocketAddr::V4(_) => TcpSocket::new_v4()?,
        SocketAddr::V6(_) => TcpSocket::new_v6()?,
    };
    mark_socket(&socket, mark)?;
    socket.set_nodelay(true)?;
    match tokio::time::timeout(timeout, socket.connect(to.0)).await {
        Ok(result) => result,
        Err(_) => Err(io::Error::new(io::ErrorKind::TimedOut, "upstream connect timed out")),
    }
}

/// Settings for reaching a policy [`Target`].
pub struct Dialer<'a> {
    pub mark: u32,
    pub timeout: Duration,
    pub resolver: &'a dyn NameResolver,
    /// Rotates the starting endpoint of multi-address targets.
    pub rotate: &'a AtomicUsize,
}

impl Dialer<'_> {
    /// Connects to the first address of `target` that answers, starting
    /// from a rotating one.
    pub async fn connect(&self, target: &Target) -> io::Result<(TcpStream, UpstreamAddr)> {
        let mut candidates = self.addresses(target).await?;
        if !candidates.is_empty() {
            let start = self.rotate.fetch_add(1, Ordering::Relaxed) % candidates.len();
            candidates.rotate_left(start);
        }
        self.connect_first(&candidates).await
    }

    /// The addresses `target` stands for.
    pub async fn addresses(&self, target: &Target) -> io::Result<Vec<SocketAddr>> {
        Ok(match target {
            Target::Original(addr) => vec![*addr],
            Target::Endpoints(list) => list.clone(),
            Target::Resolve { host, port } => {
                self.resolver.resolve(host).await?.into_iter().map(|ip| SocketAddr::new(ip, *port)).collect()
            }
        })
    }

    /// Connects to the first of `candidates`, in order, that answers.
    pub async fn connect_first(&self, candidates: &[SocketAddr]) -> io::Result<(TcpStream, UpstreamAddr)> {
        let mut last = io::Error::new(io::ErrorKind::NotFound, "no address to connect to");
        for &c in candidates {
            let addr = UpstreamAddr(canonical(c));
            match connect_marked(addr, self.mark, self.timeout).await {
                Ok(s) => return Ok((s, addr)),
                Err(e) => last = e,
            }
        }
        Err(last)
    }
}

fn canonical(a: SocketAddr) -> SocketAddr {
    SocketAddr::new(a.ip().to_canonical(), a.port())
}

/// A uniform number in 0..100, for weighted route choices.
pub fn pick_percent() -> u32 {
    (random_u64() % 100) as u32
}

/// A random number (not for secrets): load balancing and sampling.
pub fn random_u64() -> u64 {
    fastrand::u64(..)
}
