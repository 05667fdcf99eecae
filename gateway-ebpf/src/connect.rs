//! `cgroup/connect4` and `cgroup/connect6`: send TCP connects, and UDP
//! connects to port 53, to the proxy; deny other UDP when the node's policy
//! says so (see `redirect.rs`).
//!
//! Every error path returns `DENY`, so the caller's `connect()` fails with
//! `EPERM` rather than going out unproxied.

use aya_ebpf::{macros::cgroup_sock_addr, programs::SockAddrContext};

use crate::redirect::redirect;

#[cgroup_sock_addr(connect4)]
pub fn gw_connect4(ctx: SockAddrContext) -> i32 {
    crate::variant::mark();
    match redirect(&ctx, false) {
        Ok(v) | Err(v) => v,
    }
}

#[cgroup_sock_addr(connect6)]
pub fn gw_connect6(ctx: SockAddrContext) -> i32 {
    crate::variant::mark();
    match redirect(&ctx, true) {
        Ok(v) | Err(v) => v,
    }
}
