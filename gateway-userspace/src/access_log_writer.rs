//! The writer: lines gather in a bounded buffer that one thread of its own
//! empties every 20 ms (at once when it is large), as Envoy's flush thread
//! does for its access logs: one write for many lines, no wake-up per line,
//! and no trip through the runtime's blocking pool per batch. A log that
//! stayed empty for a whole interval sleeps until its next line, which it
//! writes at once. A full buffer makes connections wait rather than lose a
//! line.

use std::{
    io::Write,
    sync::{
        Arc, Condvar, Mutex, MutexGuard,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use tokio::sync::Notify;

#[derive(Clone)]
pub struct AccessLog {
    shared: Arc<Shared>,
}

struct Shared {
    pending: Mutex<Pending>,
    /// Wakes the writer thread before its interval is up.
    wake: Condvar,
    /// Batches written so far.
    done: AtomicU64,
    /// Told when the writer has taken the buffer.
    taken: Notify,
    /// Told when what was taken has been written.
    written: Notify,
}

#[derive(Default)]
struct Pending {
    lines: Vec<u8>,
    /// The last batch's buffer, emptied, for the next: the lines of a steady
    /// stream of requests are written into memory already in use.
    spare: Vec<u8>,
    /// Batches taken by the writer so far.
    taken: u64,
    /// The writer is to take the buffer now (a large buffer, a flush, the
    /// first line into an idle log).
    wake: bool,
    /// The writer sleeps with no interval until it is woken.
    idle: bool,
}

/// How often the writer empties the buffer.
const INTERVAL: Duration = Duration::from_millis(20);
/// The writer is woken at once past this many bytes…
const WAKE_AT: usize = 64 << 10;
/// …and writers wait past this many.
const LIMIT: usize = 4 << 20;
/// A written batch's buffer is kept for the next one up to this size; a
/// burst's larger one is freed.
const SPARE_KEPT: usize = 256 << 10;

impl AccessLog {
    /// Starts the writer thread on `out` (stdout in production).
    pub fn spawn<W: Write + Send + 'static>(out: W) -> std::io::Result<Self> {
        let shared = Arc::new(Shared {
            pending: Mutex::default(),
            wake: Condvar::new(),
            done: AtomicU64::new(0),
            taken: Notify::new(),
            written: Notify::new(),
        });
        let writer = shared.clone();
        std::thread::Builder::new()
            .name("access-log".into())
            .spawn(move || writer.write_out(out))?;
        Ok(Self { shared })
    }

    pub async fn write(&self, record: &super::ConnectionRecord) {
        self.write_json(record).await
    }

    pub async fn write_request(&self, record: &super::RequestRecord) {
        self.write_with(|out| super::line::request(out, record)).await
    }

    pub async fn write_dns(&self, record: &super::DnsRecord) {
        self.write_json(record).await
    }

    /// Returns once every line written so far is out.
    pub async fn flush(&self) {
        // Lines already taken are in a batch up to `taken`; the rest will be in the next.
        let target = {
            let p = self.shared.lock();
            p.taken + u64::from(!p.lines.is_empty())
        };
        loop {
            let written = self.shared.written.notified();
            tokio::pin!(written);
            written.as_mut().enable();
            if self.shared.done.load(Ordering::Acquire) >= target {
                return;
            }
            self.shared.wake(&mut self.shared.lock());
            written.await;
        }
    }

    async fn write_json<T: serde::Serialize>(&self, record: &T) {
        match serde_json::to_vec(record) {
            Ok(line) => self.write_with(|out| out.extend_from_slice(&line)).await,
            Err(e) => tracing::error!(error = %e, "access log record did not serialise"),
        }
    }

    /// Queues the line `write` appends, written straight into the pending
    /// buffer. Past [`LIMIT`] it waits for the writer to take the buffer.
    async fn write_with(&self, write: impl Fn(&mut Vec<u8>) + Sync) {
        loop {
            if self.try_append(&write) {
                return;
            }
            // Full: wait to be told the buffer was taken, registered before
            // looking again so that the telling cannot come in between.
            let taken = self.shared.taken.notified();
            tokio::pin!(taken);
            taken.as_mut().enable();
            if self.try_append(&write) {
                return;
            }
            self.shared.wake(&mut self.shared.lock());
            taken.await;
        }
    }

    /// Appends the line unless the buffer is full; whether it did.
    fn try_append(&self, write: &impl Fn(&mut Vec<u8>)) -> bool {
        let mut pending = self.shared.lock();
        if pending.lines.len() >= LIMIT {
            return false;
        }
        write(&mut pending.lines);
        pending.lines.push(b'\n');
        if pending.idle || pending.lines.len() >= WAKE_AT {
            self.shared.wake(&mut pending);
        }
        true
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Pending> {
        self.pending.lock().expect("access log lock")
    }

    /// Has the writer take the buffer now; told once until it has.
    fn wake(&self, pending: &mut Pending) {
        if !pending.wake {
            pending.wake = true;
            self.wake.notify_one();
        }
    }

    /// The writer thread's loop: every interval, or when woken, takes the
    /// buffer and writes it out.
    fn write_out(&self, mut out: impl Write) {
        loop {
            let (mut batch, number) = {
                let mut p = self.lock();
                p = self.wake.wait_timeout_while(p, INTERVAL, |p| !p.wake).expect("access log lock").0;
                if p.lines.is_empty() && !p.wake {
                    // Nothing came for a whole interval: sleep until something does.
                    p.idle = true;
                    p = self.wake.wait_while(p, |p| !p.wake).expect("access log lock");
                }
                (p.wake, p.idle) = (false, false);
                p.taken += 1;
                let spare = std::mem::take(&mut p.spare);
                (std::mem::replace(&mut p.lines, spare), p.taken)
            };
            self.taken.notify_waiters();
            if !batch.is_empty()
                && let Err(e) = out.write_all(&batch).and_then(|()| out.flush())
            {
                tracing::error!(error = %e, "access log write failed");
            }
            self.done.store(number, Ordering::Release);
            self.written.notify_waiters();
            if batch.capacity() <= SPARE_KEPT {
                batch.clear();
                self.lock().spare = batch;
            }
        }
    }
}
