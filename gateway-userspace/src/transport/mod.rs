//! The I/O toolkit: how the proxy and the gateway role reach an upstream
//! and carry bytes. It decides nothing: `proxy/` (the node's outbound path)
//! and `gateway_role/` bring the decision (a policy `Target`, a `Grant`, a
//! `Revoke`) and use it.
//!
//! - `addrs.rs`: typed addresses, so source and destination cannot be swapped.
//! - `dial.rs`: the proxy's own, marked, outbound socket ([`Dialer`]), and
//!   name resolution for targets the proxy resolves itself.
//! - `h1_client/`: an HTTP/1.1 exchange run in the request's own task, for
//!   requests without a body; `http_pool.rs` hands it kept connections.
//! - `http_pool.rs`: upstream HTTP connections kept per target, each
//!   holding the `Grant` that let it be used; `pools.rs`: the node's pools,
//!   one per client connection, revoked together at each reload.
//! - `relay_mode.rs`: which relay carries a decided stream: `relay.rs`
//!   (the copy, with half-close and resets carried over), `splice.rs`
//!   (through a pipe), `sockmap.rs` (in the kernel; it waits on
//!   `sockmap_watch.rs`), or `relay_auto.rs` (copy first, then the kernel
//!   relay for lasting, non-bulk streams).
//! - `revoke.rs`: the signal that ends a relay early.
//! - `rewind.rs`: a stream with bytes already read put back in front.
//! - `idle.rs`: downstream connections' idle timeout and HTTP/1 head
//!   timeout, and the byte counts of a stream hyper drives.

pub mod addrs;
pub mod dial;
pub mod h1_client;
pub mod http_pool;
pub mod idle;
mod low_water;
pub mod pools;
pub mod relay;
pub mod relay_auto;
pub mod relay_mode;
pub mod revoke;
pub mod rewind;
mod sockmap;
mod sockmap_watch;
mod splice;

#[cfg(test)]
mod tests;

pub use dial::{Dialer, NameResolver, NoResolver, mark_socket, pick_percent, random_u64};
