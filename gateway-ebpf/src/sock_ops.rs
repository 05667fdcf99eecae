//! `sock_ops`: file the original destination under the 4-tuple once a
//! redirected connection is established, and drop it when the socket closes.

use core::ptr::read_volatile;

use aya_ebpf::{
    bindings::{
        BPF_SK_STORAGE_GET_F_CREATE, BPF_SOCK_OPS_ACTIVE_ESTABLISHED_CB,
        BPF_SOCK_OPS_PASSIVE_ESTABLISHED_CB, BPF_SOCK_OPS_STATE_CB, BPF_SOCK_OPS_STATE_CB_FLAG,
        BPF_TCP_CLOSE,
    },
    helpers::generated::bpf_sk_storage_get,
    macros::sock_ops,
    programs::SockOpsContext,
};
use gateway_common::{AF_INET, OrigDst, SockTuple, Stat};

use crate::{
    addr::{ip4_bytes, ip6_bytes, mapped},
    maps::{ORIG_TUPLE, count, inbound_sk_ptr, orig_sk_ptr},
};

#[sock_ops]
pub fn gw_sockops(ctx: SockOpsContext) -> u32 {
    crate::variant::mark();
    match ctx.op() {
        BPF_SOCK_OPS_ACTIVE_ESTABLISHED_CB => on_established(&ctx),
        BPF_SOCK_OPS_PASSIVE_ESTABLISHED_CB => mark_inbound(&ctx),
        BPF_SOCK_OPS_STATE_CB if ctx.arg(1) == BPF_TCP_CLOSE => {
            // A missing key is fine: the socket may never have been redirected.
            let _ = ORIG_TUPLE.remove(&tuple(&ctx));
        }
        _ => {}
    }
    1
}

/// An accepted connection: the egress backstop lets its replies out.
fn mark_inbound(ctx: &SockOpsContext) {
    // SAFETY: valid context; `sk` may be null and is checked.
    let sk = unsafe { (*ctx.ops).__bindgen_anon_2.sk };
    if sk.is_null() {
        return;
    }
    let mut one: u32 = 1;
    // SAFETY: non-null socket; creates the flag if absent.
    unsafe {
        bpf_sk_storage_get(inbound_sk_ptr(), sk.cast(), (&raw mut one).cast(), u64::from(BPF_SK_STORAGE_GET_F_CREATE))
    };
}

fn on_established(ctx: &SockOpsContext) {
    // SAFETY: valid context; `sk` may be null and is checked.
    let sk = unsafe { (*ctx.ops).__bindgen_anon_2.sk };
    if sk.is_null() {
        return;
    }
    // SAFETY: non-null socket; lookup only (no create).
    let orig = unsafe { bpf_sk_storage_get(orig_sk_ptr(), sk.cast(), core::ptr::null_mut(), 0) }
        .cast::<OrigDst>();
    if orig.is_null() {
        return; // not a redirected socket
    }
    // SAFETY: non-null storage of type OrigDst.
    let orig = unsafe { *orig };
    if ORIG_TUPLE.insert(&tuple(ctx), &orig, 0).is_err() {
        // The proxy will find no record and close the connection.
        count(Stat::TupleInsertFailed);
        return;
    }
    let _ = ctx.set_cb_flags((ctx.cb_flags() | BPF_SOCK_OPS_STATE_CB_FLAG) as i32);
}

/// The connection as the client socket sees it: (local, remote).
///
/// Every context field is read up front, each with its own volatile load: the
/// verifier accepts only direct `ctx + constant` loads, and branches would let
/// the compiler merge loads behind a computed pointer.
#[inline(always)]
fn tuple(ctx: &SockOpsContext) -> SockTuple {
    let ops = ctx.ops;
    let mut l6 = [0u32; 4];
    let mut r6 = [0u32; 4];
    // SAFETY: valid context for the program's run; plain in-bounds field loads.
    let (family, local_port, remote_port, l4, r4) = unsafe {
        l6[0] = read_volatile(&(*ops).local_ip6[0]);
        l6[1] = read_volatile(&(*ops).local_ip6[1]);
        l6[2] = read_volatile(&(*ops).local_ip6[2]);
        l6[3] = read_volatile(&(*ops).local_ip6[3]);
        r6[0] = read_volatile(&(*ops).remote_ip6[0]);
        r6[1] = read_volatile(&(*ops).remote_ip6[1]);
        r6[2] = read_volatile(&(*ops).remote_ip6[2]);
        r6[3] = read_volatile(&(*ops).remote_ip6[3]);
        (
            read_volatile(&(*ops).family),
            read_volatile(&(*ops).local_port),
            read_volatile(&(*ops).remote_port),
            read_volatile(&(*ops).local_ip4),
            read_volatile(&(*ops).remote_ip4),
        )
    };
    let (src_addr, dst_addr) = if family == u32::from(AF_INET) {
        (mapped(ip4_bytes(l4)), mapped(ip4_bytes(r4)))
    } else {
        (ip6_bytes(l6), ip6_bytes(r6))
    };
    SockTuple {
        src_addr,
        dst_addr,
        src_port: local_port as u16,                 // host order
        dst_port: u32::from_be(remote_port) as u16, // network order, upper half
        _pad: 0,
    }
}
