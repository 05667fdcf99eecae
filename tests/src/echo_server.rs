//! A TCP echo server in the `internet` namespace that records every connection it accepted:
//! from which peer, on which local address, the first line it received and how many bytes.
//!
//! It listens on `[::]:<port>` (dual-stack) for each port, so it answers on every address of the
//! internet host; the local address of an accepted socket says which one the client reached.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use crate::addresses::canonical;
use crate::netns::{self, NetNs};
use crate::wait;

/// The longest a server lives, and the most connections it accepts: its loops are bounded.
const MAX_LIFETIME: Duration = Duration::from_secs(600);
const MAX_CONNECTIONS: usize = 20_000;
/// How long a connection may stay idle before the server gives up on it.
const IDLE_TIMEOUT: Duration = Duration::from_secs(30);

/// One accepted connection. Addresses are canonical (IPv4-mapped shown as IPv4).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Accepted {
    pub peer: SocketAddr,
    pub local: SocketAddr,
    /// The first line received (without the newline), at most 200 bytes.
    pub first_line: String,
    /// Bytes received (and echoed) so far.
    pub bytes: u64,
    /// The client closed its side and the server finished echoing.
    pub finished: bool,
    /// The connection ended, cleanly (`finished`) or not (a reset, an error).
    pub ended: bool,
}

type Records = Arc<Mutex<Vec<Accepted>>>;

pub struct EchoServer {
    stop: Arc<AtomicBool>,
    records: Records,
    accept_thread: Option<JoinHandle<()>>,
}

impl EchoServer {
    /// Listens on `[::]:port` for every port in `ports`, inside `netns`.
    pub fn start(netns: &NetNs, ports: &[u16]) -> EchoServer {
        let handle = netns.open();
        let ports = ports.to_vec();
        let stop = Arc::new(AtomicBool::new(false));
        let records: Records = Arc::default();
        let (ready_tx, ready_rx) = mpsc::channel();
        let accept_thread = {
            let (stop, records) = (stop.clone(), records.clone());
            thread::spawn(move || {
                netns::enter_on_this_thread(&handle);
                let listeners: Result<Vec<TcpListener>, String> = ports
                    .iter()
                    .map(|port| {
                        let l = TcpListener::bind(("::", *port))
                            .map_err(|e| format!("bind [::]:{port}: {e}"))?;
                        l.set_nonblocking(true).map_err(|e| e.to_string())?;
                        Ok(l)
                    })
                    .collect();
                match listeners {
                    Ok(listeners) => {
                        let _ = ready_tx.send(Ok(()));
                        accept_loop(&listeners, &stop, &records);
                    }
                    Err(e) => {
                        let _ = ready_tx.send(Err(e));
                    }
                }
            })
        };
        match ready_rx.recv_timeout(Duration::from_secs(10)) {
            Ok(Ok(())) => {}
            Ok(Err(e)) => panic!("echo server in {}: {e}", netns.name()),
            Err(e) => panic!("echo server in {} did not start: {e}", netns.name()),
        }
        EchoServer {
            stop,
            records,
            accept_thread: Some(accept_thread),
        }
    }

    /// A snapshot of every connection accepted so far, in accept order.
    pub fn accepted(&self) -> Vec<Accepted> {
        self.records.lock().unwrap().clone()
    }

    pub fn count(&self) -> usize {
        self.records.lock().unwrap().len()
    }

    /// Waits until at least `n` connections were accepted and have finished; panics on timeout.
    pub fn wait_finished(&self, n: usize, timeout: Duration) -> Vec<Accepted> {
        wait::until(
            &format!("{n} finished connections at the echo server"),
            timeout,
            || self.accepted().iter().filter(|a| a.finished).count() >= n,
        );
        self.accepted()
    }
}

impl Drop for EchoServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.accept_thread.take() {
            let _ = t.join();
        }
    }
}

fn accept_loop(listeners: &[TcpListener], stop: &AtomicBool, records: &Records) {
    let started = Instant::now();
    let mut fds: Vec<libc::pollfd> = listeners
        .iter()
        .map(|l| libc::pollfd {
            fd: l.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        })
        .collect();
    let mut accepted = 0usize;
    while !stop.load(Ordering::Relaxed)
        && started.elapsed() < MAX_LIFETIME
        && accepted < MAX_CONNECTIONS
    {
        // SAFETY: `fds` is a valid array of pollfd for the duration of the call.
        let ready = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, 50) };
        if ready <= 0 {
            continue;
        }
        for listener in listeners {
            // Drain what is pending on this listener, bounded by the connection limit.
            while accepted < MAX_CONNECTIONS {
                let Ok((stream, _)) = listener.accept() else {
                    break;
                };
                accepted += 1;
                serve(stream, records);
            }
        }
    }
}

fn serve(stream: TcpStream, records: &Records) {
    let (Ok(peer), Ok(local)) = (stream.peer_addr(), stream.local_addr()) else {
        return;
    };
    let index = {
        let mut records = records.lock().unwrap();
        records.push(Accepted {
            peer: canonical(peer),
            local: canonical(local),
            first_line: String::new(),
            bytes: 0,
            finished: false,
            ended: false,
        });
        records.len() - 1
    };
    let records = records.clone();
    thread::spawn(move || echo(stream, index, &records));
}

fn echo(mut stream: TcpStream, index: usize, records: &Records) {
    let _ = stream.set_nonblocking(false);
    let _ = stream.set_read_timeout(Some(IDLE_TIMEOUT));
    let _ = stream.set_write_timeout(Some(IDLE_TIMEOUT));
    let mut first_line = Vec::new();
    let mut line_done = false;
    let mut total = 0u64;
    let mut buf = vec![0u8; 64 * 1024];
    // Bounded by the idle timeout on every read and by the server's lifetime.
    let started = Instant::now();
    let clean_eof = loop {
        if started.elapsed() > MAX_LIFETIME {
            break false;
        }
        let n = match stream.read(&mut buf) {
            Ok(0) => break true,
            Ok(n) => n,
            Err(_) => break false,
        };
        if !line_done {
            for &b in &buf[..n] {
                if b == b'\n' || first_line.len() >= 200 {
                    line_done = true;
                    break;
                }
                first_line.push(b);
            }
        }
        total += n as u64;
        if stream.write_all(&buf[..n]).is_err() {
            break false;
        }
        let mut records = records.lock().unwrap();
        records[index].bytes = total;
        records[index].first_line = String::from_utf8_lossy(&first_line).into_owned();
    };
    let _ = stream.shutdown(Shutdown::Write);
    let mut records = records.lock().unwrap();
    records[index].bytes = total;
    records[index].first_line = String::from_utf8_lossy(&first_line).into_owned();
    records[index].finished = clean_eof;
    records[index].ended = true;
}
