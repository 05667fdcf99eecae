//! The listening socket and the connections: a loopback port bound once (so it stays reserved
//! while the server is stopped), an accept thread, and one thread per TLS connection serving
//! keep-alive requests in turn.
//!
//! Stopping shuts the listening socket down (`shutdown(SHUT_RD)`): clients are refused, the port
//! stays bound to the socket, and `listen()` on the same socket serves again. `SO_REUSEADDR` is on
//! while listening (so the accepted connections' TIME_WAIT leftovers carry it and do not block the
//! next `listen()`) and off while stopped (so no other socket can bind the port meanwhile).

use std::io::{self, BufReader, Write};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, TcpListener, TcpStream};
use std::os::fd::{AsRawFd, FromRawFd};
use std::sync::Arc;
use std::thread::{self, JoinHandle};

use super::handlers::{self, Reply};
use super::shared::Shared;
use super::status::ApiError;
use super::watch;
use super::wire::{self, ReadError};

const BACKLOG: i32 = 128;

/// Binds 127.0.0.1 on a free port and listens.
pub fn bind_loopback() -> io::Result<TcpListener> {
    let mut last_error = None;
    for _ in 0..20 {
        let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        match bind_exact(port) {
            Ok(listener) => return Ok(listener),
            Err(e) => last_error = Some(e), // taken meanwhile: try another
        }
    }
    Err(last_error.unwrap_or_else(|| io::Error::other("no free port")))
}

fn bind_exact(port: u16) -> io::Result<TcpListener> {
    // SAFETY: plain socket calls on a descriptor this function owns; it is wrapped in a
    // TcpListener (which closes it) as soon as it exists.
    unsafe {
        let fd = libc::socket(libc::AF_INET, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0);
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        let listener = TcpListener::from_raw_fd(fd);
        let addr = libc::sockaddr_in {
            sin_family: libc::AF_INET as libc::sa_family_t,
            sin_port: port.to_be(),
            sin_addr: libc::in_addr {
                s_addr: u32::from(Ipv4Addr::LOCALHOST).to_be(),
            },
            sin_zero: [0; 8],
        };
        let len = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
        set_reuse_addr(&listener, true)?;
        if libc::bind(fd, (&raw const addr).cast(), len) != 0 {
            return Err(io::Error::last_os_error());
        }
        relisten(&listener)?;
        Ok(listener)
    }
}

/// `listen()` again on a socket that `stop_listening` shut down.
pub fn relisten(listener: &TcpListener) -> io::Result<()> {
    set_reuse_addr(listener, true)?;
    // SAFETY: listen(2) on a descriptor the TcpListener owns.
    if unsafe { libc::listen(listener.as_raw_fd(), BACKLOG) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Stops accepting: pending and new connections are refused, and a blocked `accept` returns.
pub fn stop_listening(listener: &TcpListener) {
    // SAFETY: shutdown(2) on a descriptor the TcpListener owns.
    unsafe { libc::shutdown(listener.as_raw_fd(), libc::SHUT_RD) };
    let _ = set_reuse_addr(listener, false);
}

fn set_reuse_addr(listener: &TcpListener, on: bool) -> io::Result<()> {
    let value = libc::c_int::from(on);
    let len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: setsockopt(2) with a pointer to a live c_int of the length given.
    let rc = unsafe {
        libc::setsockopt(
            listener.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_REUSEADDR,
            (&raw const value).cast(),
            len,
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

pub fn local_addr(listener: &TcpListener) -> SocketAddr {
    listener
        .local_addr()
        .unwrap_or(SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 0)))
}

/// Accepts until the socket is shut down, one thread per connection.
pub fn spawn_accept(listener: TcpListener, shared: Arc<Shared>) -> JoinHandle<()> {
    thread::Builder::new()
        .name("kube-api-accept".into())
        .spawn(move || {
            loop {
                let tcp = match listener.accept() {
                    Ok((tcp, _)) => tcp,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(_) => return, // shut down by stop()
                };
                let Some(id) = shared.register(&tcp) else {
                    continue;
                };
                let spawned = thread::Builder::new().name("kube-api-conn".into()).spawn({
                    let shared = Arc::clone(&shared);
                    move || {
                        serve_connection(&shared, tcp);
                        shared.unregister(id);
                    }
                });
                if spawned.is_err() {
                    shared.unregister(id);
                }
            }
        })
        .expect("spawning the accept thread")
}

/// Serves one TLS connection until the client closes it, asks to, or sends garbage.
fn serve_connection(shared: &Shared, tcp: TcpStream) {
    let _ = tcp.set_nodelay(true);
    let Ok(conn) = rustls::ServerConnection::new(Arc::clone(&shared.tls.config)) else {
        return;
    };
    let mut reader = BufReader::new(rustls::StreamOwned::new(conn, tcp));
    loop {
        let req = match wire::read_request(&mut reader) {
            Ok(req) => req,
            Err(ReadError::Closed | ReadError::Io) => return,
            Err(ReadError::Malformed(why)) => {
                let body = ApiError::bad_request(why).to_status().to_string();
                let _ = wire::write_response(
                    reader.get_mut(),
                    400,
                    "application/json",
                    body.as_bytes(),
                    true,
                );
                return;
            }
        };
        let close = req.wants_close();
        let (reply, log) = handlers::dispatch(shared, &req);
        // Logged before answering: once a client has its answer, the log shows the request.
        shared.log(log);
        let written = match reply {
            Reply::Json {
                code,
                body,
                content_type,
            } => wire::write_response(
                reader.get_mut(),
                code,
                content_type,
                body.to_string().as_bytes(),
                close,
            ),
            Reply::Watch(plan) => watch::run(shared, plan, reader.get_mut()),
        };
        if written.is_err() || close {
            let stream = reader.get_mut();
            stream.conn.send_close_notify();
            let _ = stream.flush();
            return;
        }
    }
}
