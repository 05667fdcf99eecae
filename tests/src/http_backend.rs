//! A scripted HTTP/1.1 backend for behaviour nginx cannot show: `/flaky…`
//! fails every other request with 500, `/slow…` answers after 2 s, anything
//! else echoes the path and the `x-added` header. Records every request.

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use crate::netns::{NetNs, enter_on_this_thread};

#[derive(Clone, Debug)]
pub struct SeenRequest {
    pub path: String,
    pub headers: Vec<(String, String)>,
}

pub struct HttpBackend {
    seen: Arc<Mutex<Vec<SeenRequest>>>,
    connections: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
}

impl HttpBackend {
    pub fn start(netns: &NetNs, addr: SocketAddr) -> HttpBackend {
        Self::start_with(netns, addr, false)
    }

    /// A backend that answers every request with 500.
    pub fn start_failing(netns: &NetNs, addr: SocketAddr) -> HttpBackend {
        Self::start_with(netns, addr, true)
    }

    fn start_with(netns: &NetNs, addr: SocketAddr, always_fail: bool) -> HttpBackend {
        let handle = netns.open();
        let seen: Arc<Mutex<Vec<SeenRequest>>> = Arc::default();
        let stop = Arc::new(AtomicBool::new(false));
        let connections = Arc::new(AtomicUsize::new(0));
        let (tx, rx) = std::sync::mpsc::channel();
        {
            let (seen, stop, connections) = (seen.clone(), stop.clone(), connections.clone());
            thread::spawn(move || {
                enter_on_this_thread(&handle);
                let listener = TcpListener::bind(addr).expect("bind the HTTP backend");
                listener.set_nonblocking(true).unwrap();
                tx.send(()).unwrap();
                let flaky = Arc::new(AtomicUsize::new(0));
                // Bounded: at most ten minutes of polling.
                for _ in 0..60_000 {
                    if stop.load(Ordering::Relaxed) {
                        break;
                    }
                    match listener.accept() {
                        Ok((stream, _)) => {
                            connections.fetch_add(1, Ordering::Relaxed);
                            let (seen, flaky) = (seen.clone(), flaky.clone());
                            thread::spawn(move || serve(stream, &seen, &flaky, always_fail));
                        }
                        Err(_) => thread::sleep(Duration::from_millis(10)),
                    }
                }
            });
        }
        rx.recv_timeout(Duration::from_secs(5)).expect("HTTP backend did not start");
        HttpBackend { seen, connections, stop }
    }

    pub fn seen(&self) -> Vec<SeenRequest> {
        self.seen.lock().unwrap().clone()
    }

    /// Requests whose path starts with `prefix`.
    pub fn seen_under(&self, prefix: &str) -> usize {
        self.seen.lock().unwrap().iter().filter(|r| r.path.starts_with(prefix)).count()
    }

    /// TCP connections accepted so far.
    pub fn connections(&self) -> usize {
        self.connections.load(Ordering::Relaxed)
    }
}

impl Drop for HttpBackend {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

fn serve(stream: TcpStream, seen: &Mutex<Vec<SeenRequest>>, flaky: &AtomicUsize, always_fail: bool) {
    stream.set_read_timeout(Some(Duration::from_secs(10))).ok();
    let mut writer = stream.try_clone().expect("clone the stream");
    let mut reader = BufReader::new(stream);
    for _ in 0..10_000 {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let path = line.split_whitespace().nth(1).unwrap_or("/").to_string();
        let mut headers = Vec::new();
        loop {
            let mut h = String::new();
            if reader.read_line(&mut h).unwrap_or(0) == 0 || h.trim().is_empty() {
                break;
            }
            if let Some((k, v)) = h.trim_end().split_once(':') {
                headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
            }
        }
        let added = headers.iter().find(|(k, _)| k == "x-added").map(|(_, v)| v.clone()).unwrap_or_default();
        seen.lock().unwrap().push(SeenRequest { path: path.clone(), headers });
        let (status, body) = if always_fail {
            ("500 Internal Server Error", "always failing\n".to_string())
        } else if path.starts_with("/flaky") {
            if flaky.fetch_add(1, Ordering::Relaxed).is_multiple_of(2) { ("500 Internal Server Error", "failing\n".to_string()) } else { ("200 OK", "ok\n".to_string()) }
        } else if path.starts_with("/slow") {
            thread::sleep(Duration::from_secs(2));
            ("200 OK", "slow\n".to_string())
        } else {
            ("200 OK", format!("path={path}\nx-added={added}\n"))
        };
        let head = format!("HTTP/1.1 {status}\r\ncontent-length: {}\r\ncontent-type: text/plain\r\n\r\n", body.len());
        if writer.write_all(head.as_bytes()).and_then(|_| writer.write_all(body.as_bytes())).is_err() {
            return;
        }
    }
}
