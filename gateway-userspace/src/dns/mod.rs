//! The node's DNS server: answers the queries the kernel programs redirect
//! from the pods (UDP and TCP port 53), and remembers what each workload was
//! told, so the proxy can later check that a destination IP really came from
//! a name the workload may reach.
//!
//! Follow one query through the files:
//! - `server.rs`: UDP and TCP listeners; one task per query or connection.
//! - `request.rs`: bytes to a validated question, and the error replies.
//! - `handler.rs`: one query from its bytes to the reply's bytes.
//! - `answer.rs`: the pure decision of what to answer for a name.
//! - `upstream.rs`: forwarding to the upstream resolvers over marked sockets.
//! - `memory.rs`: per-workload memory of the addresses given out.
//! - `stats.rs`: counters of the outcomes.
//!
//! `resolver.rs` is the proxy's own resolution of DNS-type hosts, through the
//! same upstreams and marked sockets.

pub mod answer;
pub mod handler;
mod memory;
pub mod request;
mod resolver;
mod server;
mod stats;
pub mod upstream;

#[cfg(test)]
mod tests;

use std::{
    net::{IpAddr, SocketAddr},
    time::Duration,
};

pub use memory::DnsMemory;
pub use resolver::Resolver;
pub use server::DnsServer;
pub use stats::DnsStats;

/// What to do with a query for a name the workload has no ServiceEntry for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum UnknownNames {
    /// Ask the upstream resolvers and pass their answer on.
    Forward,
    /// Answer NXDOMAIN, except for names in these domains (the cluster's
    /// own), which are forwarded. Nothing else leaves, so names cannot
    /// carry data out (DNS tunnelling).
    Refuse { forward_domains: Vec<String> },
}

impl UnknownNames {
    /// Whether an unregistered `name` (lowercase, no final dot) is forwarded.
    pub fn forwards(&self, name: &str) -> bool {
        match self {
            Self::Forward => true,
            Self::Refuse { forward_domains } => {
                forward_domains.iter().any(|d| name == d || name.strip_suffix(d.as_str()).is_some_and(|rest| rest.ends_with('.')))
            }
        }
    }
}

/// Everything the DNS server needs besides the shared state.
#[derive(Clone, Debug)]
pub struct DnsSettings {
    /// Addresses to listen on, each over both UDP and TCP. With port 0 the
    /// system picks one port, shared by the UDP and TCP listener.
    pub listen: Vec<SocketAddr>,
    /// Resolvers to forward to, tried in order.
    pub upstreams: Vec<SocketAddr>,
    /// What to do with names no ServiceEntry registers.
    pub unknown: UnknownNames,
    /// `SO_MARK` of every upstream socket, so the kernel programs leave them alone.
    pub mark: u32,
}

/// What the registry knows of a name, as seen from one workload.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NameAnswer {
    /// A ServiceEntry host this workload may reach.
    Registered {
        /// Addresses to answer with; if empty, the name is resolved upstream.
        addresses: Vec<IpAddr>,
        /// Whether the upstream resolvers may be asked about the name.
        resolve: bool,
    },
    /// No ServiceEntry of this workload has this host.
    Unregistered,
}

/// The names the workloads may reach, implemented by the rest of the gateway.
pub trait NameRegistry: Send + Sync + 'static {
    /// `name` is lowercase, without the final dot; `client` is the querying
    /// workload's address.
    fn lookup(&self, client: IpAddr, name: &str) -> NameAnswer;

    /// Told of each query refused because its name is not registered, for
    /// the audit log.
    fn refused(&self, _client: IpAddr, _name: &str, _qtype: &str) {}
}

/// How long one try at one upstream resolver may take.
pub const UPSTREAM_TRY_TIMEOUT: Duration = Duration::from_secs(2);

/// The TTL of the answers made from registered addresses.
pub const LOCAL_ANSWER_TTL: Duration = Duration::from_secs(30);

/// Failures of the DNS module, by the side that failed.
#[derive(Debug, thiserror::Error)]
pub enum DnsError {
    /// No upstream resolver is configured.
    #[error("no upstream DNS resolver is configured")]
    NoUpstreams,
    /// A socket to an upstream resolver failed.
    #[error("upstream DNS resolver {upstream}: {source}")]
    UpstreamIo {
        upstream: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    /// An upstream resolver did not answer in time.
    #[error("upstream DNS resolver {upstream} did not answer within {timeout:?}")]
    UpstreamTimeout { upstream: SocketAddr, timeout: Duration },
    /// An upstream resolver sent something that is not an answer to our question.
    #[error("upstream DNS resolver {upstream} sent a bad answer: {reason}")]
    UpstreamMalformed { upstream: SocketAddr, reason: String },
    /// An upstream resolver answered with an error code.
    #[error("upstream DNS resolver {upstream} answered {code}")]
    UpstreamRefused { upstream: SocketAddr, code: String },
    /// The name given to the resolver is not a valid DNS name.
    #[error("invalid DNS name {name:?}: {reason}")]
    InvalidName { name: String, reason: String },
    /// The name exists nowhere, or has no A or AAAA record.
    #[error("DNS name {name} has no address")]
    NoAddresses { name: String },
    /// A message could not be encoded.
    #[error("cannot encode a DNS message: {0}")]
    Encode(String),
}
