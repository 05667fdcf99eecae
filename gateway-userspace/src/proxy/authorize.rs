//! The node's authorization step: the AuthorizationPolicies attached to the
//! ServiceEntry a connection or request was decided to (`targetRef`), asked
//! with the pod as source: its namespace, its service account as principal
//! (`<trust-domain>/ns/<ns>/sa/<sa>`), its address. The destination is the
//! decided host: the name the client sent, else the entry's host.

use std::net::IpAddr;

use crate::{
    authz::{Applies, AuthzHttp, AuthzRequest, Authorized},
    policy::{EgressPolicy, MatchedEntry, WorkloadIdentity},
};

/// What a stream was authorized on, kept so that each newer configuration
/// can ask again (`revocation.rs`).
#[derive(Clone, Debug)]
pub struct StreamAuthz {
    workload: WorkloadIdentity,
    client: IpAddr,
    /// The ServiceEntry: namespace, name.
    entry: (String, String),
    host: Option<String>,
    sni: Option<String>,
    port: u16,
}

impl StreamAuthz {
    /// `None` when the stream was decided to no ServiceEntry (ALLOW_ANY, a
    /// Kubernetes Service), to which no policy can be attached.
    /// Boxed: it is kept as long as the stream, and most streams have none.
    pub fn new(workload: &WorkloadIdentity, client: IpAddr, matched: Option<&MatchedEntry>, name: Option<&str>, sni: Option<&str>, port: u16) -> Option<Box<Self>> {
        let m = matched.filter(|m| m.kind == "ServiceEntry")?;
        Some(Box::new(Self {
            workload: workload.clone(),
            client,
            entry: (m.namespace.to_string(), m.name.to_string()),
            host: decided_host(name, m),
            sni: sni.map(str::to_ascii_lowercase),
            port,
        }))
    }

    pub fn ask(&self, policy: &EgressPolicy) -> Authorized {
        ask(policy, &self.workload, self.client, (&self.entry.0, &self.entry.1), self.host.as_deref(), self.sni.as_deref(), self.port, None)
    }
}

/// An HTTP request's authorization, when it was decided to a ServiceEntry.
pub fn request(policy: &EgressPolicy, workload: &WorkloadIdentity, client: IpAddr, matched: Option<&MatchedEntry>, host: Option<&str>, port: u16, http: AuthzHttp<'_>) -> Option<Authorized> {
    let m = matched.filter(|m| m.kind == "ServiceEntry")?;
    let host = decided_host(host, m);
    Some(ask(policy, workload, client, (&m.namespace, &m.name), host.as_deref(), None, port, Some(http)))
}

fn decided_host(name: Option<&str>, m: &MatchedEntry) -> Option<String> {
    name.map(str::to_ascii_lowercase).or_else(|| (!m.host.starts_with('*')).then(|| m.host.to_string()))
}

#[allow(clippy::too_many_arguments)]
fn ask(
    policy: &EgressPolicy,
    workload: &WorkloadIdentity,
    client: IpAddr,
    (ns, name): (&str, &str),
    host: Option<&str>,
    sni: Option<&str>,
    port: u16,
    http: Option<AuthzHttp<'_>>,
) -> Authorized {
    let authz = policy.authorizer();
    if authz.is_empty() {
        return Authorized::default();
    }
    let principal = workload.service_account.as_ref().map(|sa| format!("{}/ns/{}/sa/{sa}", authz.settings().trust_domain, workload.namespace));
    let req = AuthzRequest {
        principal: principal.as_deref(),
        namespace: Some(&workload.namespace),
        source_ip: client,
        remote_ip: client,
        host,
        sni,
        port,
        http,
    };
    authz.authorize(&Applies { service_entry: Some((ns, name)), ..Applies::default() }, &req)
}
