//! One JSON line per connection, written when it closes, by the writer
//! in `access_log_writer.rs`.

use std::{borrow::Cow, sync::Arc, time::Duration};

use serde::Serialize;

use time_stamp::{TimeStamp, now_rfc3339};

use crate::{
    authz::{AuthzDecision, Authorized},
    policy::{DenyReason, MatchedEntry, RouteChoice, WorkloadIdentity},
    transport::addrs::{ClientAddr, OrigDstAddr, UpstreamAddr},
};

#[path = "access_log_line.rs"]
pub(crate) mod line;
#[path = "access_log_reason.rs"]
mod reason;
#[path = "access_log_time.rs"]
pub(crate) mod time_stamp;
#[path = "access_log_writer.rs"]
mod writer;
pub use reason::{Reason, ResponseFlag};
pub use writer::AccessLog;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Decision {
    Allow,
    /// Allowed, and sent where a `mesh` route says (an egress gateway).
    Steer,
    Deny,
}

impl Decision {
    pub const fn as_str(self) -> &'static str {
        match self {
            Decision::Allow => "allow",
            Decision::Steer => "steer",
            Decision::Deny => "deny",
        }
    }
}

/// How the connection ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    /// Both sides finished cleanly.
    Closed,
    /// One side reset or failed; both were reset.
    Reset,
    /// The proxy could not connect to the destination; the client was reset.
    UpstreamUnreachable,
    /// Refused by the proxy; the client was reset.
    Denied,
    /// Neither side sent a byte for the idle timeout; both were closed.
    IdleTimeout,
    /// A newer configuration no longer allowed it; both sides were reset
    /// after `--revocation-drain-secs`.
    Revoked,
}

#[derive(Clone, Debug, Serialize)]
pub struct ConnectionRecord {
    pub time: TimeStamp,
    pub event: &'static str,
    /// `node` (the interceptor) or `egress-gateway`.
    pub role: &'static str,
    pub src: ClientAddr,
    pub orig_dst: Option<OrigDstAddr>,
    pub workload: Option<WorkloadIdentity>,
    /// The peer's verified SPIFFE identity (ISTIO_MUTUAL).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub peer_identity: Option<String>,
    /// `tls`, `http`, `http2` or `tcp`, from the first bytes.
    pub protocol: Option<&'static str>,
    /// How the protocol was found: `declared` (the registry declares the
    /// destination opaque TCP, so it was decided at accept, nothing read),
    /// `first-bytes`, or `timeout` (nothing recognisable within
    /// `--sniff-timeout-ms`: opaque).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detection: Option<&'static str>,
    pub sni: Option<String>,
    pub host: Option<String>,
    pub decision: Decision,
    /// Audit mode: `deny` when the registry would have refused what was
    /// allowed; `reason` and `matched` then say why.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub would: Option<Decision>,
    pub reason: Reason,
    pub matched: Option<MatchedEntry>,
    /// The `mesh` route that steered it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub route: Option<RouteChoice>,
    /// The AuthorizationPolicy (and rule) that decided, when one applied.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub authz: Option<Box<AuthzDecision>>,
    /// The AUDIT policy that matched.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub audited: Option<Arc<str>>,
    pub upstream: Option<UpstreamAddr>,
    pub cgroup_id: Option<u64>,
    pub pid: Option<u32>,
    pub outcome: Outcome,
    /// HTTP connections: requests seen and how many were denied.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub requests: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub denied_requests: Option<u32>,
    /// How a relayed stream's bytes were carried: `copy`, `splice` or `sockmap`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub relay: Option<&'static str>,
    pub bytes_up: u64,
    pub bytes_down: u64,
    pub duration_ms: u64,
    /// The configuration generation that revoked it (`"reason":"revoked"`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub revoked_by: Option<u64>,
}

impl ConnectionRecord {
    pub fn new(src: ClientAddr) -> Self {
        Self {
            time: TimeStamp::EMPTY,
            event: "connection",
            role: "node",
            src,
            orig_dst: None,
            workload: None,
            peer_identity: None,
            protocol: None,
            detection: None,
            sni: None,
            host: None,
            decision: Decision::Deny,
            would: None,
            reason: Reason::Undecided,
            matched: None,
            route: None,
            authz: None,
            audited: None,
            upstream: None,
            cgroup_id: None,
            pid: None,
            outcome: Outcome::Denied,
            requests: None,
            denied_requests: None,
            relay: None,
            bytes_up: 0,
            bytes_down: 0,
            duration_ms: 0,
            revoked_by: None,
        }
    }

    /// How a relayed stream ended and what it carried. A revoked one takes
    /// the reason `revoked`; its decision and matched entry stay as they were.
    pub fn relayed(&mut self, stats: &crate::transport::relay::RelayStats) {
        (self.bytes_up, self.bytes_down) = (stats.client_to_upstream, stats.upstream_to_client);
        self.outcome = match (stats.revoked, stats.reset) {
            (Some(generation), _) => {
                (self.reason, self.revoked_by) = (Reason::Proxy("revoked"), Some(generation));
                Outcome::Revoked
            }
            (None, true) => Outcome::Reset,
            (None, false) => Outcome::Closed,
        };
    }

    pub fn finish(&mut self, elapsed: Duration) {
        self.duration_ms = elapsed.as_millis() as u64;
        self.time = now_rfc3339();
    }

    /// Audit mode: allowed, though the registry would have refused it.
    pub fn would_deny(&mut self, would: &crate::policy::WouldDeny) {
        (self.decision, self.would, self.reason, self.matched) = (Decision::Allow, Some(Decision::Deny), would.reason.into(), would.matched.clone());
    }

    /// See [`authorized`].
    pub fn authorized(&mut self, a: &Authorized, enforced: bool) -> bool {
        authorized(a, enforced, (&mut self.authz, &mut self.audited, &mut self.decision, &mut self.would, &mut self.reason))
    }
}

/// Records what the AuthorizationPolicies said; returns whether the
/// connection or request is refused. Denied: `reason` `authz-denied`, or,
/// in audit mode, still allowed with `would: deny`.
fn authorized(
    a: &Authorized,
    enforced: bool,
    (authz, audited, decision, would, reason): RecordFields<'_>,
) -> bool {
    (*authz, *audited) = (a.decision.clone().map(Box::new), a.audited.clone());
    if a.allowed() {
        return false;
    }
    *reason = AUTHZ_DENIED.into();
    if enforced {
        *decision = Decision::Deny;
    } else {
        *would = Some(Decision::Deny);
    }
    enforced
}

/// The fields of a connection or request line that authorization writes.
type RecordFields<'a> = (&'a mut Option<Box<AuthzDecision>>, &'a mut Option<Arc<str>>, &'a mut Decision, &'a mut Option<Decision>, &'a mut Reason);

/// The reason of what an AuthorizationPolicy denied.
pub const AUTHZ_DENIED: &str = "authz-denied";


/// A DNS query refused because its name is not registered: who asked for
/// what, so an attempt to carry data out in query names shows.
#[derive(Clone, Debug, Serialize)]
pub struct DnsRecord {
    pub time: TimeStamp,
    pub event: &'static str,
    pub src: std::net::IpAddr,
    pub workload: WorkloadIdentity,
    pub name: String,
    pub qtype: String,
    pub decision: Decision,
    pub reason: Reason,
}

impl DnsRecord {
    pub fn refused(src: std::net::IpAddr, workload: WorkloadIdentity, name: &str, qtype: &str) -> Self {
        Self {
            time: now_rfc3339(),
            event: "dns",
            src,
            workload,
            name: name.to_string(),
            qtype: qtype.to_string(),
            decision: Decision::Deny,
            reason: Reason::Deny(DenyReason::NotRegistered),
        }
    }
}

/// One HTTP request on an intercepted connection.
#[derive(Clone, Debug, Serialize)]
pub struct RequestRecord {
    pub time: TimeStamp,
    pub event: &'static str,
    pub role: &'static str,
    pub src: ClientAddr,
    pub orig_dst: OrigDstAddr,
    pub workload: WorkloadIdentity,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub peer_identity: Option<String>,
    /// A standard method's name is not copied.
    pub method: Cow<'static, str>,
    pub host: Option<Arc<str>>,
    pub path: String,
    pub decision: Decision,
    /// Audit mode: `deny` when the registry would have refused what was
    /// allowed; `reason` and `matched` then say why.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub would: Option<Decision>,
    pub reason: Reason,
    pub matched: Option<MatchedEntry>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub route: Option<RouteChoice>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub authz: Option<Box<AuthzDecision>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub audited: Option<Arc<str>>,
    pub upstream: Option<UpstreamAddr>,
    pub status: u16,
    /// Envoy's response flags, `-` when none.
    #[serde(serialize_with = "flags")]
    pub flags: Vec<ResponseFlag>,
    pub duration_ms: u64,
}

/// A method's name: a standard method's is static text.
fn method_name(m: &hyper::Method) -> Cow<'static, str> {
    use hyper::Method;
    Cow::Borrowed(match *m {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        Method::CONNECT => "CONNECT",
        Method::PATCH => "PATCH",
        Method::TRACE => "TRACE",
        _ => return Cow::Owned(m.as_str().to_string()),
    })
}

fn flags<S: serde::Serializer>(f: &[ResponseFlag], s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&joined(f))
}

fn joined(f: &[ResponseFlag]) -> String {
    if f.is_empty() { "-".to_string() } else { f.iter().map(|f| f.as_str()).collect::<Vec<_>>().join(",") }
}

impl RequestRecord {
    pub fn new<B>(src: ClientAddr, orig_dst: OrigDstAddr, workload: &WorkloadIdentity, req: &hyper::Request<B>, host: Option<Arc<str>>) -> Self {
        Self {
            time: TimeStamp::EMPTY,
            event: "request",
            role: "node",
            src,
            orig_dst,
            workload: workload.clone(),
            peer_identity: None,
            method: method_name(req.method()),
            host,
            path: req.uri().path_and_query().map_or_else(|| "/".to_string(), |p| p.as_str().to_string()),
            decision: Decision::Deny,
            would: None,
            reason: Reason::Undecided,
            matched: None,
            route: None,
            authz: None,
            audited: None,
            upstream: None,
            status: 0,
            flags: Vec::new(),
            duration_ms: 0,
        }
    }

    pub fn allow(&mut self, reason: impl Into<Reason>, matched: Option<MatchedEntry>) {
        (self.decision, self.reason, self.matched) = (Decision::Allow, reason.into(), matched);
    }

    pub fn flag(&mut self, flag: ResponseFlag) {
        if !self.flags.contains(&flag) {
            self.flags.push(flag);
        }
    }

    pub fn response_flags(&self) -> String {
        joined(&self.flags)
    }

    pub fn deny(&mut self, reason: impl Into<Reason>, matched: Option<MatchedEntry>) {
        (self.decision, self.reason, self.matched) = (Decision::Deny, reason.into(), matched);
    }

    /// Audit mode: allowed, though the registry would have refused it.
    pub fn would_deny(&mut self, would: &crate::policy::WouldDeny) {
        (self.decision, self.would, self.reason, self.matched) = (Decision::Allow, Some(Decision::Deny), would.reason.into(), would.matched.clone());
    }

    /// See [`authorized`].
    pub fn authorized(&mut self, a: &Authorized, enforced: bool) -> bool {
        authorized(a, enforced, (&mut self.authz, &mut self.audited, &mut self.decision, &mut self.would, &mut self.reason))
    }

    pub fn finish(&mut self, elapsed: Duration) {
        self.duration_ms = elapsed.as_millis() as u64;
        self.time = now_rfc3339();
    }
}
