//! Egress policy: from the facts of one connection to allow, deny or (later)
//! steer, with a reason. Pure: no sockets, no clocks; the proxy supplies the
//! facts and carries out the verdict.
//!
//! - `workload.rs`: who is connecting (WorkloadEntry by address).
//! - `registry.rs`: the ServiceEntries a namespace sees, indexed by host,
//!   wildcard suffix and CIDR.
//! - `decide.rs`: the decision itself.
//! - `mesh_routes.rs`: VirtualService routes bound to `mesh`, which may steer
//!   allowed traffic to another destination (an egress gateway).
//! - `compiled.rs`: everything above built once per configuration snapshot.
//! - `dns_bridge.rs`: the names the DNS server may answer, and what it told
//!   each workload.
//! - `declared.rs`: destinations declared opaque TCP, decided at accept.
//! - `recheck.rs`: an open connection's facts, re-decided against each newer
//!   configuration.

mod compiled;
mod decide;
mod declared;
mod dns_bridge;
pub(crate) mod mesh_routes;
mod recheck;
mod registry;
mod workload;

pub use compiled::{EgressPolicy, PolicySettings};
pub use dns_bridge::RegisteredNames;
pub use mesh_routes::{HttpFacts, RouteChoice, string_matches};
pub use decide::{AllowReason, ConnectionFacts, DenyReason, Detected, DnsKnowledge, Exit, NoDns, Target, Verdict, decide, decide_exit};
pub use declared::declared_opaque;
pub use recheck::{Decided, ExitDecided, decide_and_keep, decide_route_exit};
pub use registry::{MatchedEntry, PortProtocol};
pub use workload::Workload;
