//! The gateway: node interceptor, egress gateway and ingress gateway.
//!
//! The path of an outbound connection: `interceptor` (kernel programs and
//! the original-destination lookup) → `proxy` (accept, decide, connect,
//! relay, with the I/O toolkit in `transport`; plain HTTP request by
//! request through `http_pipeline`, which the gateway role shares) →
//! `access_log`. `config` alone knows Istio's resource shapes; `reload`
//! keeps the live snapshot; `admin` and `metrics` expose state; `handover`
//! passes the listening sockets to the next instance on an update.

pub mod access_log;
pub mod admin;
pub mod authz;
pub mod cli;
pub mod config;
pub mod dns;
pub mod gateway_role;
pub mod handover;
pub mod http_pipeline;
pub mod interceptor;
pub mod kubernetes;
pub mod metrics;
pub mod policy;
pub mod proxy;
pub mod reload;
pub mod run;
pub mod sniff;
pub mod suggest;
pub mod tls;
pub mod transport;
pub mod validate;
pub mod workload_ca;

#[cfg(test)]
pub(crate) mod test_support;

#[cfg(test)]
mod tests;
