//! One intercepted connection, from accept to its log line:
//! original destination (`orig_dst.rs`) → workload → first bytes
//! (`peek.rs`) → plain HTTP handed to `http_egress.rs` (the HTTP pipeline
//! decides each request), or verdict (`policy`) → denied (`deny.rs`) or
//! upstream (`transport::dial`, `mesh_identity.rs`) and relay
//! (`transport::relay_mode`) → log line.
//!
//! Deciding ends before carrying starts: [`decide`] returns a [`Carry`],
//! and only that lives on while the stream's bytes flow, so an idle
//! stream's task holds little more than its two sockets.

use std::{sync::Arc, time::Instant};

use tokio::net::TcpStream;
use tracing::{Span, field::display};

use super::{
    ProxyInputs, authorize::StreamAuthz, deny, http_egress,
    orig_dst::{OrigDstSource, original_destination},
    peek::{Peeked, peek_first_bytes},
    mesh_identity::MeshConnectError,
};
use crate::{
    transport::{
        addrs::{ClientAddr, OrigDstAddr, ProxyAddr},
        pick_percent,
        relay::relay_until,
        revoke::Revoke,
    },
    kubernetes::PodLookup,
    access_log::{ConnectionRecord, Decision, Outcome},
    policy::{ConnectionFacts, Decided, Detected, Enforcement, Verdict, declared_opaque, decide_and_keep_enforced},
    reload::ActiveConfig,
    sniff::{Sniffed, host_without_port},
};

/// The span every log line of one connection carries: its id and client
/// from accept; its original destination and workload once known.
pub fn span(client: ClientAddr) -> Span {
    tracing::info_span!(
        "conn",
        id = super::next_connection_id(),
        %client,
        orig_dst = tracing::field::Empty,
        workload = tracing::field::Empty,
    )
}

/// Serves one accepted connection; runs inside its [`span`].
pub async fn handle(
    client: TcpStream,
    client_addr: ClientAddr,
    local: ProxyAddr,
    source: OrigDstSource,
    inputs: Arc<ProxyInputs>,
) {
    let started = Instant::now();
    // The configuration it is decided with; a newer one may revoke it (revocation.rs).
    let config = inputs.config.current();
    let mut record = ConnectionRecord::new(client_addr);
    let found = original_destination(&inputs, &client, source, local, &mut record);
    if let Some(orig) = record.orig_dst {
        Span::current().record("orig_dst", display(orig));
    }
    match found {
        Err(reason) => {
            record.reason = reason.into();
            deny::reset(client);
        }
        Ok(orig) => {
            if let Some(carry) = decide(client, orig, &inputs, &config, &mut record).await {
                carry.run(&inputs, &mut record).await;
            }
        }
    }
    inputs.log_connection(&mut record, started.elapsed()).await;
}

/// Decides the connection: refuses it, serves it as HTTP (each request
/// decided), or returns the stream to carry.
async fn decide(
    client: TcpStream,
    orig: OrigDstAddr,
    inputs: &Arc<ProxyInputs>,
    config: &Arc<ActiveConfig>,
    record: &mut ConnectionRecord,
) -> Option<Carry> {
    let workload = match workload_of(inputs, config, record).await {
        Ok(w) => w,
        Err(reason) => {
            record.reason = reason.into();
            inputs.metrics.unknown_workload_denials.inc();
            deny::reset(client);
            return None;
        }
    };
    Span::current().record("workload", display(WorkloadName(&workload)));
    record.workload = Some(workload.clone());
    // Held until the connection ends; none left for this workload: refused.
    let Some(slot) = inputs.workload_limits.admit(&workload, record.src.0.ip(), &inputs.metrics) else {
        record.reason = super::workload_limit::REASON.into();
        deny::reset(client);
        return None;
    };
    // Declared opaque TCP: decided now, so a server that speaks first is not kept waiting.
    let peeked = if declared_opaque(&config.policy, &workload, record.src.0.ip(), orig.0, inputs.dns.as_ref()) {
        Peeked::Declared
    } else {
        peek_first_bytes(&client, inputs.settings.sniff_timeout).await
    };
    record.detection = Some(match peeked {
        Peeked::Declared => "declared",
        Peeked::Silent | Peeked::Incomplete => "timeout",
        _ => "first-bytes",
    });
    let detected = match &peeked {
        Peeked::Gone => {
            (record.reason, record.outcome) = ("client-closed".into(), Outcome::Closed);
            return None;
        }
        Peeked::Malformed(why) => {
            tracing::debug!(client = %record.src, why, "malformed first bytes");
            record.reason = "malformed-request".into();
            deny::reset(client);
            return None;
        }
        Peeked::Sniffed(Sniffed::Http1(req)) => {
            record.protocol = Some("http");
            record.host = req.absolute_authority.clone().or_else(|| req.host.clone());
            // Boxed: an HTTP connection's state is not kept by a stream's task.
            Box::pin(http_egress::serve(client, orig, inputs, workload, record)).await;
            return None;
        }
        Peeked::Sniffed(Sniffed::Tls(hello)) => {
            record.protocol = Some("tls");
            record.sni = hello.sni.clone();
            Detected::Tls { sni: hello.sni.as_deref() }
        }
        Peeked::Sniffed(Sniffed::Http2(req)) => {
            record.protocol = Some("http2");
            record.host = req.authority.clone();
            Detected::Http { host: req.authority.as_deref().map(host_without_port) }
        }
        Peeked::Sniffed(Sniffed::Opaque) | Peeked::Silent | Peeked::Incomplete | Peeked::Declared => {
            record.protocol = Some("tcp");
            Detected::Opaque
        }
    };
    let t0 = Instant::now();
    let enforcement = inputs.enforcement(&workload);
    let (verdict, would_deny, decided) = {
        let facts = ConnectionFacts {
            workload: &workload,
            client: record.src.0.ip(),
            orig_dst: orig.0,
            detected,
            request: None,
            pick: pick_percent(),
        };
        decide_and_keep_enforced(&facts, &config.policy, inputs.dns.as_ref(), enforcement)
    };
    // The AuthorizationPolicies attached to the ServiceEntry it was decided to.
    let enforced = enforcement == Enforcement::Enforce;
    let authz = match &verdict {
        Verdict::Allow { matched, .. } | Verdict::Steer { matched, .. } => {
            let (name, sni) = match detected {
                Detected::Tls { sni } => (sni, sni),
                Detected::Http { host } => (host, None),
                Detected::Opaque => (None, None),
            };
            StreamAuthz::new(&workload, record.src.0.ip(), matched.as_ref(), name, sni, orig.0.port())
        }
        Verdict::Deny { .. } => None,
    };
    inputs.metrics.decision_seconds.observe(t0.elapsed().as_secs_f64());
    // Refused by a policy; in audit mode, marked once the verdict is written.
    let (refused, audit_denied) = match &authz {
        Some(a) => {
            let authorized = a.ask(&config.policy);
            (record.authorized(&authorized, enforced), !authorized.allowed())
        }
        None => (false, false),
    };
    // Audit mode: the registry's verdict is written below; a policy that
    // would have denied the stream still says so.
    let mark_audit_denied = |record: &mut ConnectionRecord| {
        if audit_denied {
            (record.would, record.reason) = (Some(Decision::Deny), crate::access_log::AUTHZ_DENIED.into());
        }
    };
    // Audited streams are not revoked by a policy that would deny them.
    let kept = Box::new(Kept { decided, authz: authz.filter(|_| enforced), generation: config.generation });
    match verdict {
        Verdict::Allow { matched, .. } | Verdict::Steer { matched, .. } | Verdict::Deny { matched, .. } if refused => {
            record.matched = matched;
            refuse(client, detected).await;
            None
        }
        Verdict::Deny { reason, matched } => {
            (record.reason, record.matched) = (reason.into(), matched);
            refuse(client, detected).await;
            None
        }
        Verdict::Allow { target, matched, reason, .. } => {
            match &would_deny {
                Some(would) => record.would_deny(would),
                None => (record.decision, record.reason, record.matched) = (Decision::Allow, reason.into(), matched),
            }
            mark_audit_denied(record);
            Some(Carry { client, target, kept, mesh: None, slot })
        }
        Verdict::Steer { target, matched, reason, route } => {
            (record.decision, record.reason, record.matched) = (Decision::Steer, reason.into(), matched);
            mark_audit_denied(record);
            let mesh = inputs.mesh_tls(config, &workload, &route, &target);
            record.route = Some(route);
            match mesh {
                Ok(mesh) => Some(Carry { client, target, kept, mesh, slot }),
                Err(e) => {
                    tracing::warn!(error = %e, "no mesh identity for a steered connection");
                    record.outcome = Outcome::UpstreamUnreachable;
                    deny::reset(client);
                    None
                }
            }
        }
    }
}

/// A TLS client gets an alert it can read; anything else a reset.
async fn refuse(client: TcpStream, detected: Detected<'_>) {
    match detected {
        Detected::Tls { .. } => deny::tls_alert(client).await,
        _ => deny::reset(client),
    }
}

/// Who is calling. On a node agent, a pod cgroup names its pod; a pod the
/// API has not announced yet is waited for, then refused. Elsewhere (and for
/// cgroups outside the pods cgroup) a `--intercept-cgroup` WorkloadEntry, else
/// the client address.
async fn workload_of(inputs: &ProxyInputs, config: &ActiveConfig, record: &ConnectionRecord) -> Result<crate::policy::WorkloadIdentity, &'static str> {
    let static_identity = || config.policy.identify(record.src.0.ip(), record.cgroup_id);
    let (Some(pods), Some(cgroup)) = (&inputs.pods, record.cgroup_id) else { return Ok(static_identity()) };
    match pods.lookup(cgroup, inputs.settings.unknown_workload_wait).await {
        // An opted-out pod whose connect raced its exemption is still
        // decided under policy: stricter, never looser.
        PodLookup::Pod(w) | PodLookup::OptedOut(w) => Ok(w),
        PodLookup::NotAPod if config.policy.knows_cgroup(cgroup) => Ok(static_identity()),
        PodLookup::NotAPod | PodLookup::UnknownPod => Err("unknown-workload"),
    }
}

/// `namespace/name` of a workload for the connection's span; `namespace`
/// alone for a client no WorkloadEntry or pod names.
struct WorkloadName<'a>(&'a crate::policy::WorkloadIdentity);

impl std::fmt::Display for WorkloadName<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.0.name {
            Some(name) => write!(f, "{}/{}", self.0.namespace, name),
            None => f.write_str(&self.0.namespace),
        }
    }
}

/// What a relayed stream was decided and authorized on, and under which
/// generation; boxed, it moves into the stream's [`Revoke`].
struct Kept {
    decided: Decided,
    /// Boxed: most streams have none, and this lives as long as the stream.
    authz: Option<Box<StreamAuthz>>,
    generation: u64,
}

/// A decided stream and where it goes: all that lives on while it is carried.
struct Carry {
    client: TcpStream,
    target: crate::policy::Target,
    kept: Box<Kept>,
    /// Steered inside the workload's mutual TLS to the gateway.
    mesh: Option<super::origination::Origination>,
    /// The workload's connection slot, held until the stream ends.
    slot: super::workload_limit::WorkloadSlot,
}

impl Carry {
    async fn run(self, inputs: &ProxyInputs, record: &mut ConnectionRecord) {
        let Carry { client, target, kept, mesh, slot: _slot } = self;
        match mesh {
            None => forward_stream(client, &target, kept, inputs, record).await,
            // Boxed: copied through TLS, with state a plain stream does not need.
            Some(mesh) => Box::pin(forward_mesh(client, &target, mesh, kept, inputs, record)).await,
        }
    }
}

impl Kept {
    /// Ends the relay once a newer configuration no longer lets the stream
    /// go to `upstream`.
    fn revoke(self: Box<Self>, inputs: &ProxyInputs, upstream: std::net::SocketAddr) -> Revoke {
        let dns = inputs.dns.clone();
        inputs.revoke_when(self.generation, move |config| {
            self.decided.stands(&config.policy, dns.as_ref(), upstream) && self.authz.as_ref().is_none_or(|a| a.ask(&config.policy).allowed())
        })
    }
}

/// Carries an allowed stream (TLS, HTTP/2, opaque TCP) to its target.
async fn forward_stream(mut client: TcpStream, target: &crate::policy::Target, kept: Box<Kept>, inputs: &ProxyInputs, record: &mut ConnectionRecord) {
    match inputs.dialer().connect(target).await {
        Err(e) => {
            tracing::debug!(?target, error = %e, "upstream connect failed");
            record.outcome = Outcome::UpstreamUnreachable;
            deny::reset(client);
        }
        Ok((mut up, addr)) => {
            record.upstream = Some(addr);
            let mut revoke = kept.revoke(inputs, addr.0);
            let (stats, mode) = inputs.settings.relay.relay(&mut client, &mut up, addr.0.port(), &mut revoke).await;
            record.relay = Some(mode.name());
            record.relayed(&stats);
        }
    }
}

/// A steered stream inside the workload's mutual TLS to the gateway.
async fn forward_mesh(
    mut client: TcpStream,
    target: &crate::policy::Target,
    (config, name): super::origination::Origination,
    kept: Box<Kept>,
    inputs: &ProxyInputs,
    record: &mut ConnectionRecord,
) {
    let connected = match inputs.dialer().connect(target).await {
        Ok((tcp, addr)) => {
            record.upstream = Some(addr);
            match tokio::time::timeout(inputs.settings.connect_timeout, crate::tls::originate(tcp, &name, config)).await {
                Ok(Ok(tls)) => Ok((tls, addr)),
                Ok(Err(e)) => Err(MeshConnectError::Handshake(e)),
                Err(_) => Err(MeshConnectError::HandshakeTimeout),
            }
        }
        Err(e) => Err(MeshConnectError::Connect(e)),
    };
    match connected {
        Ok((mut tls, addr)) => {
            let stats = relay_until(&mut client, &mut tls, &mut kept.revoke(inputs, addr.0)).await;
            record.relay = Some("copy");
            record.relayed(&stats);
        }
        Err(e) => {
            tracing::debug!(?target, error = %e, "mutual TLS to the gateway failed");
            record.outcome = Outcome::UpstreamUnreachable;
            deny::reset(client);
        }
    }
}
