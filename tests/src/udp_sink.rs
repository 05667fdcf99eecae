//! A UDP listener in a namespace that counts what arrives, to prove that
//! denied datagrams never do.

use std::net::UdpSocket;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread;
use std::time::Duration;

use crate::netns::{NetNs, enter_on_this_thread};

pub struct UdpSink {
    received: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
    thread: Option<thread::JoinHandle<()>>,
}

impl UdpSink {
    pub fn start(netns: &NetNs, port: u16) -> UdpSink {
        let handle = netns.open();
        let received = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (tx, rx) = std::sync::mpsc::channel();
        let thread = {
            let (received, stop) = (received.clone(), stop.clone());
            thread::spawn(move || {
                enter_on_this_thread(&handle);
                let sock = UdpSocket::bind(("::", port)).expect("bind the UDP sink");
                sock.set_read_timeout(Some(Duration::from_millis(100))).unwrap();
                tx.send(()).unwrap();
                let mut buf = [0u8; 2048];
                // Bounded: stops when told, or after ten minutes at most.
                for _ in 0..6_000 {
                    if stop.load(Ordering::Relaxed) {
                        break;
                    }
                    if sock.recv_from(&mut buf).is_ok() {
                        received.fetch_add(1, Ordering::Relaxed);
                    }
                }
            })
        };
        rx.recv_timeout(Duration::from_secs(5)).expect("UDP sink did not start");
        UdpSink { received, stop, thread: Some(thread) }
    }

    pub fn received(&self) -> usize {
        self.received.load(Ordering::Relaxed)
    }
}

impl Drop for UdpSink {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
