//! The low-water mark: what the kernel reports readable with it raised and
//! lowered (`poll` with no wait, so nothing here is timed).

use std::os::fd::AsRawFd;

use nix::sys::socket::{getsockopt, setsockopt, sockopt::RcvBuf};
use tokio::{io::AsyncWriteExt, net::TcpStream};

use super::{bounded, tcp_pair};
use crate::transport::low_water::{LARGEST, LowWater, RcvLowat, SMALLEST};

fn readable_now(stream: &TcpStream) -> bool {
    let mut fds = libc::pollfd { fd: stream.as_raw_fd(), events: libc::POLLIN, revents: 0 };
    // SAFETY: one pollfd on a socket we hold, no wait.
    let n = unsafe { libc::poll(&mut fds, 1, 0) };
    assert!(n >= 0, "poll: {}", std::io::Error::last_os_error());
    fds.revents & libc::POLLIN != 0
}

fn mark_of(stream: &TcpStream) -> usize {
    getsockopt(stream, RcvLowat).expect("getsockopt SO_RCVLOWAT")
}

fn set_receive_buffer(stream: &TcpStream, bytes: usize) {
    setsockopt(stream, RcvBuf, &bytes).expect("setsockopt SO_RCVBUF");
}

/// A few bytes below a raised mark are not reported; lowering it reports
/// them at once, and so does dropping it.
#[tokio::test]
async fn bytes_below_a_raised_mark_are_held_until_it_is_lowered() {
    bounded(async {
        let (mut sender, receiver) = tcp_pair().await;
        sender.write_all(&[7u8; 1000]).await.expect("send");
        receiver.readable().await.expect("the bytes arrive");
        // A fresh socket's buffer is too small for a mark; a bulk stream's
        // has grown by the time one is raised.
        set_receive_buffer(&receiver, 1024 * 1024);
        let mut low = LowWater::raise(&receiver, LARGEST);
        assert!(low.is_raised(), "a socket with a grown buffer takes a mark");
        assert!((SMALLEST..=LARGEST).contains(&mark_of(&receiver)), "mark {}", mark_of(&receiver));
        assert!(!readable_now(&receiver), "1,000 bytes are below the mark");
        low.lower();
        assert_eq!(mark_of(&receiver), 1);
        assert!(readable_now(&receiver), "lowered, the queued bytes are readable");
        let low = LowWater::raise(&receiver, LARGEST);
        assert!(!readable_now(&receiver));
        drop(low);
        assert!(readable_now(&receiver), "a dropped mark is lowered");
    })
    .await;
}

/// A mark below the smallest worth having is not raised.
#[tokio::test]
async fn a_small_mark_is_not_raised() {
    let (_sender, receiver) = tcp_pair().await;
    set_receive_buffer(&receiver, 1024 * 1024);
    let low = LowWater::raise(&receiver, SMALLEST - 1);
    assert!(!low.is_raised());
    assert_eq!(mark_of(&receiver), 1);
}

/// A read that the wait gave up on keeps the mark when it brought at least
/// half of it, and lowers it when it brought less.
#[tokio::test]
async fn a_short_read_lowers_the_mark_and_a_long_one_keeps_it() {
    let (_sender, receiver) = tcp_pair().await;
    set_receive_buffer(&receiver, 1024 * 1024);
    let mut low = LowWater::raise(&receiver, LARGEST);
    let mark = mark_of(&receiver);
    assert!(low.is_raised() && mark >= SMALLEST, "mark {mark}");
    low.after_short_read(mark / 2);
    assert_eq!(mark_of(&receiver), mark, "half the mark keeps it");
    low.after_short_read(mark / 2 - 1);
    assert!(!low.is_raised());
    assert_eq!(mark_of(&receiver), 1, "less than half lowers it");
}
