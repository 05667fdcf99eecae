//! The outbound proxy: accepts what the interceptor redirected, finds the
//! original destination once, and carries the bytes there.
//!
//! - `addrs.rs`: typed addresses, so source and destination cannot be swapped.
//! - `listener.rs`: accept loop on each proxy address.
//! - `connection.rs`: one connection from accept to its log line.
//! - `peek.rs`: the first bytes, read without consuming them, through `sniff`.
//! - `http_egress.rs`: plain HTTP, decided and forwarded request by request.
//! - `http_pool.rs`: upstream HTTP connections kept per target.
//! - `origination.rs`: TLS to the destination when its DestinationRule
//!   settings (resolved by `policy::resolve_traffic_policy`) ask.
//! - `mesh_identity.rs`: the workloads' mesh identities, for mutual TLS to an egress
//!   gateway (ISTIO_MUTUAL).
//! - `deny.rs`: what a denied client sees.
//! - `upstream.rs`: the proxy's own, marked, outbound socket.
//! - `relay.rs`: bytes both ways, with half-close and resets carried over.
//! - `relay_mode.rs`: which relay carries a decided stream: the copy above,
//!   `splice.rs` (through a pipe), `sockmap.rs` (in the kernel; it waits on
//!   `sockmap_watch.rs`), or
//!   `relay_auto.rs` (copy first, then the kernel relay for lasting, non-bulk streams).
//! - `revocation.rs`: closes a relayed stream that a newer configuration no
//!   longer allows, after a drain.

pub mod addrs;
mod connection;
mod counting;
pub mod deny;
mod http_egress;
pub mod http_pool;
mod listener;
pub mod mesh_identity;
pub mod origination;
pub mod peek;
pub mod relay;
pub mod relay_auto;
pub mod relay_mode;
pub mod revocation;
pub mod rewind;
mod sockmap;
mod sockmap_watch;
mod splice;
mod upstream;

pub use listener::{OrigDstSource, OutboundContext, OutboundListener};
pub use upstream::{Dialer, NameResolver, NoResolver, mark_socket, pick_percent, random_u64};
