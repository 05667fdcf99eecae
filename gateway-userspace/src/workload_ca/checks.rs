//! The judgement of one CertificateSigningRequest, as pure functions of
//! what the API server stored: who asked (filled in by the API server from
//! the caller's credentials, never by the caller), for which identity, and
//! whether a pod with that identity runs on the asking node (a node agent),
//! or the identity is the requester's own (a gateway).

use std::{collections::BTreeSet, time::Duration};

use rcgen::{CertificateSigningRequestParams, IsCa, PublicKey, SanType};

use crate::tls::SpiffeId;

/// The key of `spec.extra` where the API server records the node of the
/// pod whose bound service-account token made the request
/// (ServiceAccountTokenNodeBinding).
pub const NODE_NAME_EXTRA: &str = "authentication.kubernetes.io/node-name";

/// Usages a workload certificate may carry; `client auth` is required.
const ALLOWED_USAGES: &[&str] = &["client auth", "server auth", "digital signature", "key encipherment"];

/// What the CA accepts.
#[derive(Clone, Debug)]
pub struct Policy {
    pub trust_domain: String,
    /// Kubernetes user names (`system:serviceaccount:<ns>:<sa>`) of the node
    /// agents, served for the pods of their node.
    pub requesters: BTreeSet<String>,
    /// User names of the gateways' service accounts, each served for its
    /// own identity only.
    pub gateways: BTreeSet<String>,
    /// The longest lifetime issued; also the lifetime when none is asked.
    pub max_lifetime: Duration,
}

/// The fields of a CSR the checks read.
#[derive(Clone, Debug, Default)]
pub struct CsrFacts {
    pub username: String,
    /// `spec.extra[authentication.kubernetes.io/node-name]`.
    pub node_names: Vec<String>,
    pub usages: Vec<String>,
    /// `spec.request`: a PEM PKCS#10 request (already base64-decoded).
    pub request: Vec<u8>,
    pub expiration_seconds: Option<i32>,
}

/// A pod as the entitlement check sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PodFacts {
    pub namespace: String,
    pub service_account: String,
    pub node: String,
    /// Phase Succeeded or Failed: its containers no longer run.
    pub finished: bool,
}

/// Who asks, as far as entitlement goes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Requester {
    /// A node agent, for the pods of this node.
    Node(String),
    /// A gateway, for its own service account (already checked).
    Own,
}

/// What may be signed.
#[derive(Debug)]
pub struct Grant {
    pub identity: SpiffeId,
    /// Why: a pod on the requesting node, or the requester's own identity.
    pub because: String,
    pub lifetime: Duration,
    pub server_auth: bool,
    /// The requester's public key (the request's signature verified).
    pub public_key: PublicKey,
}

/// Why a request is denied: a condition reason (CamelCase) and a message.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{reason}: {message}")]
pub struct Refusal {
    pub reason: &'static str,
    pub message: String,
}

fn refuse(reason: &'static str, message: impl Into<String>) -> Refusal {
    Refusal { reason, message: message.into() }
}

/// The user name of a service account, as the API server writes it.
pub fn service_account_user(namespace: &str, name: &str) -> String {
    format!("system:serviceaccount:{namespace}:{name}")
}

/// Checks the request alone (requester, usages, PKCS#10 content, lifetime)
/// and returns who asks and the identity asked for.
pub fn check_request(csr: &CsrFacts, policy: &Policy) -> Result<(Requester, SpiffeId, CsrCheck), Refusal> {
    let requester = if policy.requesters.contains(&csr.username) {
        match csr.node_names.as_slice() {
            [node] if !node.is_empty() => Requester::Node(node.clone()),
            [] => return Err(refuse("NoNodeBinding", format!("the requester's credentials carry no {NODE_NAME_EXTRA} (a node-bound service-account token is required)"))),
            _ => return Err(refuse("NoNodeBinding", format!("the requester's credentials carry not exactly one {NODE_NAME_EXTRA}"))),
        }
    } else if policy.gateways.contains(&csr.username) {
        Requester::Own
    } else {
        return Err(refuse("NotANodeAgent", format!("{:?} is neither a node agent's nor a gateway's service account", csr.username)));
    };
    let server_auth = check_usages(&csr.usages)?;
    let lifetime = lifetime(csr.expiration_seconds, policy.max_lifetime)?;
    let pem = std::str::from_utf8(&csr.request).map_err(|_| refuse("MalformedRequest", "spec.request is not PEM text"))?;
    let request = CertificateSigningRequestParams::from_pem(pem)
        .map_err(|e| refuse("MalformedRequest", format!("spec.request is not a valid PKCS#10 request: {e}")))?;
    let identity = requested_identity(&request, &policy.trust_domain)?;
    if requester == Requester::Own && csr.username != service_account_user(&identity.namespace, &identity.service_account) {
        return Err(refuse("NotOwnIdentity", format!("{:?} may only ask for its own identity, not {identity}", csr.username)));
    }
    Ok((requester, identity, CsrCheck { lifetime, server_auth, public_key: request.public_key }))
}

/// The request-level results that a [`Grant`] carries on.
#[derive(Debug)]
pub struct CsrCheck {
    pub lifetime: Duration,
    pub server_auth: bool,
    pub public_key: PublicKey,
}

/// The whole judgement: the request, then whether a pod of the identity's
/// service account runs on the requester's node.
pub fn decide(csr: &CsrFacts, policy: &Policy, pods: &[PodFacts]) -> Result<Grant, Refusal> {
    let (requester, identity, check) = check_request(csr, policy)?;
    let because = match requester {
        Requester::Node(node) if entitled(&node, &identity, pods) => {
            format!("a pod of {}/{} runs on node {node}", identity.namespace, identity.service_account)
        }
        Requester::Node(node) => {
            return Err(refuse(
                "NotEntitled",
                format!("no running pod of service account {}/{} on node {node}", identity.namespace, identity.service_account),
            ));
        }
        Requester::Own => "the gateway's own service account".to_string(),
    };
    Ok(Grant { identity, because, lifetime: check.lifetime, server_auth: check.server_auth, public_key: check.public_key })
}

/// Whether a pod with the identity's namespace and service account, not
/// finished, is scheduled on `node`.
pub fn entitled(node: &str, identity: &SpiffeId, pods: &[PodFacts]) -> bool {
    pods.iter().any(|p| {
        !p.finished && p.node == node && p.namespace == identity.namespace && p.service_account == identity.service_account
    })
}

/// `client auth` is required; returns whether `server auth` is asked too.
fn check_usages(usages: &[String]) -> Result<bool, Refusal> {
    if let Some(u) = usages.iter().find(|u| !ALLOWED_USAGES.contains(&u.as_str())) {
        return Err(refuse("BadUsages", format!("usage {u:?} is not allowed; only {ALLOWED_USAGES:?}")));
    }
    if !usages.iter().any(|u| u == "client auth") {
        return Err(refuse("BadUsages", "usages must include \"client auth\""));
    }
    Ok(usages.iter().any(|u| u == "server auth"))
}

/// `expirationSeconds`, at most `max`; `max` when none is asked.
fn lifetime(asked: Option<i32>, max: Duration) -> Result<Duration, Refusal> {
    match asked {
        None => Ok(max),
        Some(s) if s <= 0 => Err(refuse("BadLifetime", format!("expirationSeconds {s} is not positive"))),
        Some(s) => Ok(Duration::from_secs(s as u64).min(max)),
    }
}

/// The one SAN of the request, a SPIFFE id of this trust domain; a request
/// for a CA certificate is refused.
fn requested_identity(request: &CertificateSigningRequestParams, trust_domain: &str) -> Result<SpiffeId, Refusal> {
    if matches!(request.params.is_ca, IsCa::Ca(_)) {
        return Err(refuse("MalformedRequest", "the request asks for a CA certificate"));
    }
    let uri = match request.params.subject_alt_names.as_slice() {
        [SanType::URI(uri)] => uri.as_str().to_string(),
        [] => return Err(refuse("MalformedRequest", "the request has no subject alternative name")),
        [_] => return Err(refuse("MalformedRequest", "the request's subject alternative name is not a URI")),
        _ => return Err(refuse("MalformedRequest", "the request has more than one subject alternative name")),
    };
    let id = SpiffeId::parse(&uri).map_err(|e| refuse("MalformedRequest", e.to_string()))?;
    if id.trust_domain != trust_domain {
        return Err(refuse("WrongTrustDomain", format!("{uri} is not in trust domain {trust_domain}")));
    }
    Ok(id)
}
