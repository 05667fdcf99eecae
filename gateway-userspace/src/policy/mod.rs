//! Egress policy: from the facts of one connection to allow, deny or (later)
//! steer, with a reason. Pure: no sockets, no clocks; the proxy supplies the
//! facts and carries out the verdict.
//!
//! - `workload.rs`: who is connecting (WorkloadEntry by address).
//! - `registry.rs`: the ServiceEntries a namespace sees, indexed by host,
//!   wildcard suffix and CIDR.
//! - `decide.rs`: the decision itself.
//! - `route_match.rs`: VirtualService route matching for both roles; on the
//!   node, routes bound to `mesh` may steer allowed traffic to another
//!   destination (an egress gateway).
//! - `traffic_policy.rs`: the DestinationRule settings (TLS, connection pool,
//!   load balancer, outlier detection) for a host, subset and port.
//! - `compiled.rs`: everything above built once per configuration snapshot.
//! - `dns_bridge.rs`: the names the DNS server may answer (from the policy a
//!   [`PolicySource`] holds), and what it told each workload.
//! - `declared.rs`: destinations declared opaque TCP, decided at accept.
//! - `recheck.rs`: an open connection's facts, re-decided against each newer
//!   configuration.

mod audit;
mod compiled;
mod decide;
mod declared;
mod dns_bridge;
mod recheck;
mod registry;
pub(crate) mod route_match;
mod traffic_policy;
mod workload;

#[cfg(test)]
mod tests;

pub use audit::{Enforcement, WouldDeny, decide_enforced};
pub use compiled::{EgressPolicy, PolicySettings};
pub use dns_bridge::{PolicySource, RegisteredNames};
pub use route_match::{HttpFacts, RouteChoice};
pub use traffic_policy::{ResolvedTrafficPolicy, UpstreamTls, resolve_traffic_policy};
pub use decide::{AllowReason, ConnectionFacts, DenyReason, Detected, DnsKnowledge, Exit, NoDns, Target, Verdict, decide, decide_exit};
pub use declared::declared_opaque;
pub use recheck::{Decided, ExitDecided, decide_and_keep, decide_and_keep_enforced, decide_route_exit};
pub use registry::{MatchedEntry, PortProtocol};
pub use workload::WorkloadIdentity;
