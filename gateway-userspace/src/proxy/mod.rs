//! The node's outbound path: accepts what the interceptor redirected, finds
//! the original destination once, decides, and carries the bytes there with
//! the toolkit in `transport/`.
//!
//! - `listener.rs`: accept loop on each proxy address.
//! - `connection.rs`: one connection from accept to its log line.
//! - `peek.rs`: the first bytes, read without consuming them, through `sniff`.
//! - `http_egress.rs`: plain HTTP, decided and forwarded request by request.
//! - `origination.rs`: TLS to the destination when a DestinationRule asks.
//! - `mesh.rs`: mutual TLS to an egress gateway (ISTIO_MUTUAL).
//! - `deny.rs`: what a denied client sees.
//! - `revocation.rs`: closes a relayed stream that a newer configuration no
//!   longer allows, after a drain.

mod connection;
pub mod deny;
mod http_egress;
mod listener;
pub mod mesh;
pub mod origination;
pub mod peek;
pub mod revocation;

pub use listener::{OrigDstSource, OutboundContext, OutboundListener};
