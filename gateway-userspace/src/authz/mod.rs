//! Who may reach what: Istio's `AuthorizationPolicy`, enforced where a
//! connection or request is decided.
//!
//! - On the node, policies attached to a ServiceEntry (`targetRef`) apply to
//!   every connection decided to it; the source is the pod (namespace,
//!   service account, address).
//! - At a gateway, policies selecting the gateway's own workload (its
//!   namespace, or the root namespace mesh-wide) and those attached to the
//!   Gateway whose listener took the connection apply; the source is the
//!   peer's SPIFFE identity from ISTIO_MUTUAL and its address (and, for
//!   `remoteIpBlocks`, `X-Forwarded-For` as far as `--num-trusted-proxies`
//!   trusts it).
//!
//! Istio's order: CUSTOM and DENY first, then, if any ALLOW policy applies,
//! a request must match one of them; AUDIT only marks. What cannot be
//! evaluated (an HTTP field on a TCP or TLS stream, `requestPrincipals`, an
//! unknown `when` key, CUSTOM's external authorizer) fails closed: an ALLOW
//! or AUDIT rule using it never matches, a DENY rule ignores it, a CUSTOM
//! rule that matches denies.
//!
//! - `compile.rs`: the snapshot's policies, indexed by what they attach to.
//! - `evaluate.rs`: one request's facts against them.
//! - `path.rs`: path normalisation (MeshConfig `pathNormalization`).

mod compile;
mod evaluate;
pub mod path;

#[cfg(test)]
mod tests;

pub use compile::{Authorizer, AuthzSettings};
pub use evaluate::{Applies, AuthzAction, AuthzDecision, AuthzHttp, AuthzRequest, Authorized};
pub use path::PathNormalization;

/// `<trust-domain>/ns/<namespace>/sa/<service-account>`: the principal
/// Istio policies name, from a SPIFFE id (`spiffe://` dropped).
pub fn principal_of_spiffe(uri: &str) -> Option<&str> {
    uri.strip_prefix("spiffe://")
}

/// The namespace a principal names.
pub fn namespace_of_principal(principal: &str) -> Option<&str> {
    let mut parts = principal.split('/');
    let (_td, ns_key, ns) = (parts.next()?, parts.next()?, parts.next()?);
    (ns_key == "ns").then_some(ns)
}
