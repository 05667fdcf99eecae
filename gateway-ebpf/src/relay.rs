//! `sk_skb/stream_verdict`: the kernel relay (`--relay sockmap`).
//!
//! Once the proxy has decided a connection and only copies its bytes, it puts
//! both sockets in `RELAY_SOCKS` and files each one's peer in `RELAY_PEERS`.
//! Every segment then received on one socket is queued straight onto the
//! other's send side, without waking the proxy.
//!
//! A socket without a peer record is not relayed: its bytes stay on it, for
//! the proxy. So does a segment whose peer is not (or no longer) in the map;
//! the record is flagged, since those bytes would now arrive out of order,
//! and the proxy resets the connection.
//!
//! Under `--relay auto` a stream that turns bulk (either direction moving
//! [`BULK_BYTES`] within one window) is handed back: from the segment that
//! crosses the mark on, both sockets keep their bytes, and the proxy, woken
//! by them, copies on once the kernel has sent what it already moved.

use core::ptr::{read_volatile, write_volatile};

use aya_ebpf::{
    bindings::sk_action::{SK_DROP, SK_PASS},
    helpers::{bpf_ktime_get_ns, generated::bpf_get_socket_cookie},
    macros::{map, stream_verdict},
    maps::{HashMap, SockHash},
    programs::SkBuffContext,
};
use gateway_common::{BULK_BYTES, BULK_WINDOW_NS, RELAY_CAPACITY, RelayPeer};

#[map]
pub static RELAY_SOCKS: SockHash<u64> = SockHash::with_max_entries(RELAY_CAPACITY, 0);

#[map]
pub static RELAY_PEERS: HashMap<u64, RelayPeer> = HashMap::with_max_entries(RELAY_CAPACITY, 0);

#[stream_verdict]
pub fn gw_relay(ctx: SkBuffContext) -> u32 {
    crate::variant::mark();
    let len = ctx.len();
    if len == 0 {
        // A bare FIN: TCP has recorded the end of stream, which the proxy
        // carries over. Redirected, an empty segment would make the kernel
        // report a broken pipe on the peer.
        return SK_DROP;
    }
    // SAFETY: the context's socket buffer, valid for the program's run.
    let cookie = unsafe { bpf_get_socket_cookie(ctx.skb.skb.cast()) };
    let Some(entry) = RELAY_PEERS.get_ptr_mut(&cookie) else {
        return SK_PASS; // not relayed: the proxy reads it
    };
    // SAFETY: a live map value. A socket's segments are handed to this
    // program under its socket lock, one at a time, so a plain
    // read-modify-write of its own record cannot race.
    unsafe {
        if read_volatile(&(*entry).handed_back) != 0 {
            return SK_PASS;
        }
        let mut peer = read_volatile(&(*entry).peer);
        if read_volatile(&(*entry).hand_back_bulk) != 0 && turned_bulk(entry, peer, u64::from(len)) {
            write_volatile(&raw mut (*entry).handed_back, 1);
            return SK_PASS;
        }
        if RELAY_SOCKS.redirect_skb(&ctx, &mut peer, 0) as u32 == SK_PASS {
            write_volatile(&raw mut (*entry).bytes, read_volatile(&(*entry).bytes) + u64::from(len));
        } else {
            write_volatile(&raw mut (*entry).stranded, 1);
        }
    }
    SK_PASS
}

/// Whether the stream is now bulk: the peer's bytes were handed back, or
/// `len` more brings this socket's window to [`BULK_BYTES`]. Counts `len`
/// in the window.
///
/// # Safety
/// `entry` is this socket's live record, written only under its lock.
unsafe fn turned_bulk(entry: *mut RelayPeer, peer: u64, len: u64) -> bool {
    // SAFETY: a map lookup; the value is read, never kept.
    if unsafe { RELAY_PEERS.get(&peer) }.is_some_and(|p| unsafe { read_volatile(&p.handed_back) } != 0) {
        return true;
    }
    // SAFETY: no arguments, reads the monotonic clock.
    let now = unsafe { bpf_ktime_get_ns() };
    // SAFETY: as the caller promises.
    unsafe {
        let mut moved = read_volatile(&(*entry).window_bytes);
        if now.wrapping_sub(read_volatile(&(*entry).window_start)) > BULK_WINDOW_NS {
            write_volatile(&raw mut (*entry).window_start, now);
            moved = 0;
        }
        moved += len;
        write_volatile(&raw mut (*entry).window_bytes, moved);
        moved >= BULK_BYTES
    }
}
