//! Kernel programs of the interceptor.
//!
//! The path of one intercepted connection through them:
//! 1. `connect.rs`: `cgroup/connect4|6` records the original destination in
//!    socket storage and rewrites the destination to the proxy.
//! 2. `sock_ops.rs`: once established, the record is copied under the
//!    connection's 4-tuple, which the proxy rebuilds from its accepted socket;
//!    it is removed again when the socket closes.
//! 3. `getpeername.rs`: the caller's `getpeername()` shows the original
//!    destination, not the proxy.
//!
//! Around that path: `redirect.rs` applies the decision every address hook
//! shares (`gateway_common::redirect::plan`, tested on the host); `udp.rs` sends DNS datagrams to the proxy's DNS server and denies
//! other UDP; `egress.rs` drops any packet that still is not bound for the
//! proxy (raw sockets, ICMP).
//!
//! `log.rs` says why a connect was denied or a packet dropped, when the
//! agent runs with `--kernel-log` (and costs nothing otherwise).
//!
//! Apart from interception, `relay.rs` moves the bytes of decided connections
//! between the proxy's own sockets (`--relay sockmap`).
#![no_std]
#![no_main]

mod addr;
mod caller;
mod connect;
mod egress;
mod getpeername;
mod log;
mod maps;
mod redirect;
mod relay;
mod sock_ops;
mod udp;
mod variant;

#[cfg(not(test))]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    loop {}
}

#[unsafe(no_mangle)]
#[unsafe(link_section = "license")]
pub static LICENSE: [u8; 4] = *b"GPL\0";
