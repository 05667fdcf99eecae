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
#![no_std]
#![no_main]

mod addr;
mod connect;
mod getpeername;
mod maps;
mod sock_ops;

#[cfg(not(test))]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    loop {}
}

#[unsafe(no_mangle)]
#[unsafe(link_section = "license")]
pub static LICENSE: [u8; 4] = *b"GPL\0";
