//! Listening sockets handed from one process to the next on the same node,
//! so that a rolling update of the node agent (a DaemonSet with
//! `maxSurge: 1`) never leaves the redirected ports unserved.
//!
//! The running process serves `--handover PATH`, a Unix socket only its own
//! user may use. A new process started with the same flag connects first
//! and receives, in one message, every listening socket the old one holds
//! (proxy listeners, DNS sockets, the admin listener) with their addresses;
//! where its own configuration names the same address it uses that socket
//! instead of binding. Both then accept on the same sockets, so nothing is
//! refused while the new one starts. Once the new one is ready it says so,
//! and the old one stops accepting proxy connections and lets its open ones
//! finish. If the new one fails before that, the old one goes on alone.

use std::{
    collections::HashMap,
    io::{self, IoSlice, IoSliceMut, Read, Write},
    net::SocketAddr,
    os::{
        fd::{AsRawFd, FromRawFd, OwnedFd, RawFd},
        unix::{
            fs::PermissionsExt,
            net::{UnixListener, UnixStream},
        },
    },
    path::{Path, PathBuf},
    time::Duration,
};

use nix::sys::socket::{ControlMessage, ControlMessageOwned, MsgFlags, recvmsg, sendmsg};
use serde::{Deserialize, Serialize};
use tokio::sync::watch;

/// Whether a handed socket listens for TCP or receives UDP.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Tcp,
    Udp,
}

/// One socket offered to the next process.
pub struct Offered {
    pub kind: Kind,
    pub addr: SocketAddr,
    pub fd: OwnedFd,
}

#[derive(Serialize, Deserialize)]
struct Described {
    kind: Kind,
    addr: SocketAddr,
}

/// The most sockets one handover carries.
const MAX_SOCKETS: usize = 64;
/// What the new process writes once it serves.
const READY: &[u8] = b"ready\n";
/// How long the new process waits for the old one's answer.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(5);

/// The sockets a predecessor handed over, taken one by one as this process
/// would bind them.
#[derive(Default)]
pub struct Inherited {
    sockets: HashMap<(Kind, SocketAddr), OwnedFd>,
    predecessor: Option<UnixStream>,
}

impl Inherited {
    /// Asks the process serving `path`, if any, for its sockets. No
    /// process there (no file, nobody listening) is a first start.
    pub fn receive(path: &Path) -> io::Result<Inherited> {
        let stream = match UnixStream::connect(path) {
            Ok(s) => s,
            Err(e) if matches!(e.kind(), io::ErrorKind::NotFound | io::ErrorKind::ConnectionRefused) => return Ok(Inherited::default()),
            Err(e) => return Err(io::Error::new(e.kind(), format!("reaching the running instance at {}: {e}", path.display()))),
        };
        stream.set_read_timeout(Some(ANSWER_TIMEOUT))?;
        let mut data = vec![0u8; 64 * 1024];
        let mut space = nix::cmsg_space!([RawFd; MAX_SOCKETS]);
        let mut iov = [IoSliceMut::new(&mut data)];
        let message = recvmsg::<()>(stream.as_raw_fd(), &mut iov, Some(&mut space), MsgFlags::MSG_CMSG_CLOEXEC)?;
        let mut fds = Vec::new();
        for cmsg in message.cmsgs()? {
            if let ControlMessageOwned::ScmRights(received) = cmsg {
                // SAFETY: the kernel just installed these descriptors in this
                // process for this message; nothing else owns them.
                fds.extend(received.into_iter().map(|fd| unsafe { OwnedFd::from_raw_fd(fd) }));
            }
        }
        let length = message.bytes;
        let described: Vec<Described> = serde_json::from_slice(&data[..length])
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, format!("the running instance's handover: {e}")))?;
        if described.len() != fds.len() {
            return Err(io::Error::new(io::ErrorKind::InvalidData, "the running instance's handover lost descriptors"));
        }
        let sockets = described.into_iter().zip(fds).map(|(d, fd)| ((d.kind, d.addr), fd)).collect();
        Ok(Inherited { sockets, predecessor: Some(stream) })
    }

    /// The handed TCP listener on `addr`, ready for tokio.
    pub fn tcp(&mut self, addr: SocketAddr) -> io::Result<Option<tokio::net::TcpListener>> {
        let Some(fd) = self.sockets.remove(&(Kind::Tcp, addr)) else { return Ok(None) };
        let listener = std::net::TcpListener::from(fd);
        listener.set_nonblocking(true)?;
        Ok(Some(tokio::net::TcpListener::from_std(listener)?))
    }

    /// The handed UDP socket on `addr`, ready for tokio.
    pub fn udp(&mut self, addr: SocketAddr) -> io::Result<Option<tokio::net::UdpSocket>> {
        let Some(fd) = self.sockets.remove(&(Kind::Udp, addr)) else { return Ok(None) };
        let socket = std::net::UdpSocket::from(fd);
        socket.set_nonblocking(true)?;
        Ok(Some(tokio::net::UdpSocket::from_std(socket)?))
    }

    /// Whether a predecessor handed anything over.
    pub fn from_predecessor(&self) -> bool {
        self.predecessor.is_some()
    }

    /// Tells the predecessor this process serves now. The sockets this
    /// process did not take are closed here (the predecessor keeps its own).
    pub fn announce_ready(&mut self) {
        self.sockets.clear();
        if let Some(mut stream) = self.predecessor.take()
            && let Err(e) = stream.write_all(READY)
        {
            tracing::warn!(error = %e, "could not tell the previous instance this one is ready; it stops at its SIGTERM");
        }
    }
}

/// Serves `path` for the next process: hands it `offered`, and once it
/// says it is ready, sets `stop_accepting`.
pub fn serve(path: PathBuf, offered: Vec<Offered>, stop_accepting: watch::Sender<bool>) -> io::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    // A socket file left by an earlier process (its predecessor included)
    // is replaced: only the newest process hands over.
    match std::fs::remove_file(&path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
        _ => {}
    }
    let listener = UnixListener::bind(&path)?;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))?;
    std::thread::Builder::new().name("handover".into()).spawn(move || {
        for stream in listener.incoming() {
            match stream.and_then(|s| hand_over(s, &offered)) {
                Ok(true) => {
                    tracing::info!(path = %path.display(), "the next instance is ready: no longer accepting proxy connections; open ones finish");
                    let _ = stop_accepting.send(true);
                    return;
                }
                Ok(false) => tracing::warn!("the next instance took the sockets but ended before it was ready; serving on"),
                Err(e) => tracing::warn!(error = %e, "handover failed; serving on"),
            }
        }
    })?;
    Ok(())
}

/// Sends the sockets over `stream` (to a process of this user only), then
/// waits for the ready line: `Ok(true)`, or `Ok(false)` if it closed first.
fn hand_over(mut stream: UnixStream, offered: &[Offered]) -> io::Result<bool> {
    let peer = nix::sys::socket::getsockopt(&stream, nix::sys::socket::sockopt::PeerCredentials)?;
    // SAFETY: geteuid has no preconditions and cannot fail.
    if peer.uid() != unsafe { libc::geteuid() } {
        return Err(io::Error::new(io::ErrorKind::PermissionDenied, format!("handover asked by uid {}", peer.uid())));
    }
    let described: Vec<Described> = offered.iter().map(|o| Described { kind: o.kind, addr: o.addr }).collect();
    let data = serde_json::to_vec(&described).map_err(io::Error::other)?;
    let fds: Vec<RawFd> = offered.iter().map(|o| o.fd.as_raw_fd()).collect();
    let rights = [ControlMessage::ScmRights(&fds)];
    sendmsg::<()>(stream.as_raw_fd(), &[IoSlice::new(&data)], &rights, MsgFlags::empty(), None)?;
    tracing::info!(sockets = offered.len(), pid = peer.pid(), "listening sockets handed to the next instance");
    let mut line = [0u8; READY.len()];
    match stream.read_exact(&mut line) {
        Ok(()) => Ok(line == READY),
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => Ok(false),
        Err(e) => Err(e),
    }
}

/// A duplicate of a socket's descriptor, to offer while this process keeps
/// using the socket.
pub fn offer(kind: Kind, addr: SocketAddr, socket: &impl std::os::fd::AsFd) -> io::Result<Offered> {
    Ok(Offered { kind, addr, fd: socket.as_fd().try_clone_to_owned()? })
}

const _: () = assert!(MAX_SOCKETS <= 253, "SCM_MAX_FD");
