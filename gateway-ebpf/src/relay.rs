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

use core::ptr::{read_volatile, write_volatile};

use aya_ebpf::{
    bindings::sk_action::{SK_DROP, SK_PASS},
    helpers::generated::bpf_get_socket_cookie,
    macros::{map, stream_verdict},
    maps::{HashMap, SockHash},
    programs::SkBuffContext,
};
use gateway_common::{RELAY_CAPACITY, RelayPeer};

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
        let mut peer = read_volatile(&(*entry).peer);
        if RELAY_SOCKS.redirect_skb(&ctx, &mut peer, 0) as u32 == SK_PASS {
            write_volatile(&raw mut (*entry).bytes, read_volatile(&(*entry).bytes) + u64::from(len));
        } else {
            write_volatile(&raw mut (*entry).stranded, 1);
        }
    }
    SK_PASS
}
