//! What the kernel relay's connections wait on: one epoll set for all of
//! them, asking only for ends of stream and errors, so bytes flowing
//! through the kernel never wake the proxy, and a connection costs no
//! descriptor beyond its two sockets.
//!
//! Each socket is registered one-shot under (connection id, side); a
//! dispatcher task hands each event to its connection, which re-arms the
//! socket once it has acted on it.

use std::{
    collections::HashMap,
    io,
    os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd},
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering},
    },
};

use tokio::{io::unix::AsyncFd, sync::Notify};

const END_OF_STREAM: u32 = libc::EPOLLRDHUP as u32;
const ONE_SHOT: u32 = libc::EPOLLONESHOT as u32;

/// The process's one epoll set and who waits on it.
struct Shared {
    epoll: AsyncFd<OwnedFd>,
    slots: Mutex<HashMap<u64, Arc<Slot>>>,
    next_id: AtomicU64,
}

/// One connection's undelivered events, as (side, event mask).
#[derive(Default)]
struct Slot {
    events: Mutex<Vec<(usize, u32)>>,
    notify: Notify,
}

static SHARED: Mutex<Option<Arc<Shared>>> = Mutex::new(None);

/// The shared set, created (with its dispatcher) on first use.
fn shared() -> io::Result<Arc<Shared>> {
    let mut guard = SHARED.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(s) = guard.as_ref() {
        return Ok(s.clone());
    }
    // SAFETY: creates a new descriptor, owned below.
    let fd = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: just created, owned by no one else; the AsyncFd closes it.
    let epoll = unsafe { AsyncFd::register(OwnedFd::from_raw_fd(fd)) }.map_err(|e| e.into_parts().1)?;
    let s = Arc::new(Shared { epoll, slots: Mutex::default(), next_id: AtomicU64::new(1) });
    tokio::spawn(dispatch(s.clone()));
    *guard = Some(s.clone());
    Ok(s)
}

async fn dispatch(s: Arc<Shared>) {
    let mut events = [libc::epoll_event { events: 0, u64: 0 }; 64];
    loop {
        let mut ready = match s.epoll.readable().await {
            Ok(r) => r,
            Err(e) => {
                tracing::error!(error = %e, "kernel relay watcher stopped");
                return;
            }
        };
        // SAFETY: `events` has room for as many entries as asked for.
        let n = unsafe { libc::epoll_wait(s.epoll.get_ref().as_raw_fd(), events.as_mut_ptr(), events.len() as i32, 0) };
        if n <= 0 {
            ready.clear_ready();
            continue;
        }
        let slots = s.slots.lock().unwrap_or_else(|e| e.into_inner());
        for e in &events[..n as usize] {
            if let Some(slot) = slots.get(&(e.u64 >> 1)) {
                slot.events.lock().unwrap_or_else(|e| e.into_inner()).push(((e.u64 & 1) as usize, e.events));
                slot.notify.notify_one();
            }
        }
    }
}

/// One connection's two sockets in the shared set.
pub struct Watch {
    shared: Arc<Shared>,
    id: u64,
    slot: Arc<Slot>,
    fds: [RawFd; 2],
    /// What each side is watched for; `None` once it is no longer watched.
    interest: Mutex<[Option<u32>; 2]>,
}

impl Watch {
    pub fn new(fds: [RawFd; 2]) -> io::Result<Self> {
        let shared = shared()?;
        let id = shared.next_id.fetch_add(1, Ordering::Relaxed);
        let slot = Arc::new(Slot::default());
        shared.slots.lock().unwrap_or_else(|e| e.into_inner()).insert(id, slot.clone());
        let w = Self { shared, id, slot, fds, interest: Mutex::new([Some(END_OF_STREAM); 2]) };
        for i in 0..2 {
            w.ctl(libc::EPOLL_CTL_ADD, i, END_OF_STREAM)?;
        }
        Ok(w)
    }

    /// After a side's end of stream: only its errors (always reported).
    pub fn errors_only(&self, i: usize) -> io::Result<()> {
        self.interest.lock().unwrap_or_else(|e| e.into_inner())[i] = Some(0);
        self.ctl(libc::EPOLL_CTL_MOD, i, 0)
    }

    /// Nothing more to hear from this side.
    pub fn stop(&self, i: usize) -> io::Result<()> {
        self.interest.lock().unwrap_or_else(|e| e.into_inner())[i] = None;
        self.ctl(libc::EPOLL_CTL_DEL, i, 0)
    }

    /// Watches a side again for what it was watched for, after an event.
    pub fn rearm(&self, i: usize) -> io::Result<()> {
        match self.interest.lock().unwrap_or_else(|e| e.into_inner())[i] {
            Some(events) => self.ctl(libc::EPOLL_CTL_MOD, i, events),
            None => Ok(()),
        }
    }

    /// The next events, as (side, event mask). Each side that reported one
    /// stays quiet until it is re-armed (`errors_only`, `rearm`).
    pub async fn next(&self) -> Vec<(usize, u32)> {
        loop {
            let events = std::mem::take(&mut *self.slot.events.lock().unwrap_or_else(|e| e.into_inner()));
            if !events.is_empty() {
                return events;
            }
            self.slot.notify.notified().await;
        }
    }

    fn ctl(&self, op: libc::c_int, i: usize, events: u32) -> io::Result<()> {
        let mut ev = libc::epoll_event { events: events | ONE_SHOT, u64: (self.id << 1) | i as u64 };
        // SAFETY: valid descriptors and event.
        if unsafe { libc::epoll_ctl(self.shared.epoll.get_ref().as_raw_fd(), op, self.fds[i], &mut ev) } < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        for i in 0..2 {
            if self.interest.lock().unwrap_or_else(|e| e.into_inner())[i].is_some() {
                let _ = self.ctl(libc::EPOLL_CTL_DEL, i, 0);
            }
        }
        self.shared.slots.lock().unwrap_or_else(|e| e.into_inner()).remove(&self.id);
    }
}
