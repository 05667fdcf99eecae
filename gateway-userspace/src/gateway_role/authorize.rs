//! The gateway's authorization step. The policies that apply: those
//! selecting this gateway (its namespace, or the root namespace mesh-wide,
//! `selector` on its labels), those attached to the Gateways of the
//! listener (`targetRef` kind Gateway), and those attached to the
//! ServiceEntry the destination was decided to. The source is the peer: its
//! SPIFFE identity from ISTIO_MUTUAL as principal (and its namespace), its
//! address, and for `remoteIpBlocks` the client `X-Forwarded-For` names as
//! far as `--num-trusted-proxies` trusts it.

use std::{net::IpAddr, sync::Arc};

use super::GatewayContext;
use crate::{
    authz::{Applies, AuthzHttp, AuthzRequest, Authorized, namespace_of_principal, principal_of_spiffe},
    config::Labels,
    policy::{EgressPolicy, MatchedEntry},
};

/// What one connection or request of a listener is asked with, owned, so a
/// relayed stream can be asked again after a reload.
#[derive(Clone, Debug)]
pub struct GatewayAuthz {
    namespace: String,
    labels: Arc<Labels>,
    gateways: Vec<(String, String)>,
    /// The peer's SPIFFE id.
    identity: Option<String>,
    peer: IpAddr,
    remote: IpAddr,
    host: Option<String>,
    sni: Option<String>,
    port: u16,
    service_entry: Option<(String, String)>,
}

impl GatewayAuthz {
    /// A connection of a listener on `port`, claimed by `gateways`.
    pub fn new(ctx: &GatewayContext, gateways: &[(String, String)], port: u16, identity: Option<&str>, peer: IpAddr) -> Self {
        Self {
            namespace: ctx.workload.namespace.to_string(),
            labels: ctx.workload.labels.clone(),
            gateways: gateways.to_vec(),
            identity: identity.map(str::to_string),
            peer,
            remote: peer,
            host: None,
            sni: None,
            port,
            service_entry: None,
        }
    }

    /// The destination: the name asked for and the entry it was decided to.
    pub fn to(mut self, host: Option<&str>, sni: Option<&str>, matched: Option<&MatchedEntry>) -> Self {
        self.host = host.map(str::to_ascii_lowercase);
        self.sni = sni.map(str::to_ascii_lowercase);
        self.service_entry = matched.filter(|m| m.kind == "ServiceEntry").map(|m| (m.namespace.to_string(), m.name.to_string()));
        self
    }

    /// An HTTP request's `X-Forwarded-For`: the original client, as far as
    /// `trusted` proxies in front of this gateway vouch for it.
    pub fn forwarded_for(mut self, xff: Option<&str>, trusted: u32) -> Self {
        self.remote = remote_ip(self.peer, xff, trusted);
        self
    }

    /// `None` when the configuration has no AuthorizationPolicy at all.
    pub fn ask(&self, policy: &EgressPolicy, http: Option<AuthzHttp<'_>>) -> Option<Authorized> {
        let authz = policy.authorizer();
        if authz.is_empty() {
            return None;
        }
        let principal = self.identity.as_deref().and_then(principal_of_spiffe);
        let req = AuthzRequest {
            principal,
            namespace: principal.and_then(namespace_of_principal),
            source_ip: self.peer,
            remote_ip: self.remote,
            host: self.host.as_deref(),
            sni: self.sni.as_deref(),
            port: self.port,
            http,
        };
        let applies = Applies {
            workload: Some((&self.namespace, &self.labels)),
            service_entry: self.service_entry.as_ref().map(|(ns, n)| (ns.as_str(), n.as_str())),
            gateways: &self.gateways,
        };
        Some(authz.authorize(&applies, &req))
    }
}

/// Envoy's `xff_num_trusted_hops` with `use_remote_address`: the `trusted`-th
/// address from the right of `X-Forwarded-For`; the peer when there are
/// none to trust, too few, or one that is not an address.
pub fn remote_ip(peer: IpAddr, xff: Option<&str>, trusted: u32) -> IpAddr {
    let (Some(xff), Ok(n @ 1..)) = (xff, usize::try_from(trusted)) else { return peer };
    let hops: Vec<&str> = xff.split(',').map(str::trim).filter(|h| !h.is_empty()).collect();
    hops.len()
        .checked_sub(n)
        .and_then(|i| hops[i].parse::<IpAddr>().ok())
        .map_or(peer, |ip| match ip {
            IpAddr::V6(v6) => v6.to_canonical(),
            v4 => v4,
        })
}
