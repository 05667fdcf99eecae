//! An open connection asked again. A connection keeps the facts it was
//! allowed on; each newer configuration re-decides them, and the connection
//! stands only while the verdict still lets it go to the same place. Pure,
//! like `decide.rs`: the proxy carries out what this says.

use std::{
    cell::RefCell,
    net::{IpAddr, SocketAddr},
};

use super::{
    ConnectionFacts, Detected, DnsKnowledge, EgressPolicy, Enforcement, Exit, RouteChoice, Target, Verdict, WorkloadIdentity, WouldDeny,
    decide_enforced, decide_exit, registry::canonical,
};

/// The facts a connection was decided on, owned, kept while it is open.
#[derive(Clone, Debug)]
pub struct Decided {
    workload: WorkloadIdentity,
    client: IpAddr,
    orig_dst: SocketAddr,
    detected: Sent,
    pick: u32,
    /// The names this gateway's DNS server had given the workload for the
    /// dialled address when it was decided: facts as well, which the answer's
    /// TTL running out later must not undo.
    learned: Vec<String>,
    /// Where it was let go; `None` when it was denied.
    granted: Option<Granted>,
    /// Audited connections are re-decided audited.
    enforcement: Enforcement,
}

/// [`Detected`], owned.
#[derive(Clone, Debug)]
enum Sent {
    Tls(Option<String>),
    Http(Option<String>),
    Opaque,
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct Granted {
    target: Target,
    steered: bool,
}

/// [`super::decide`], keeping the facts for later re-decisions.
pub fn decide_and_keep(facts: &ConnectionFacts<'_>, policy: &EgressPolicy, dns: &dyn DnsKnowledge) -> (Verdict, Decided) {
    let (verdict, _, decided) = decide_and_keep_enforced(facts, policy, dns, Enforcement::Enforce);
    (verdict, decided)
}

/// [`decide_and_keep`] under `enforcement` (audit mode, `audit.rs`).
pub fn decide_and_keep_enforced(
    facts: &ConnectionFacts<'_>,
    policy: &EgressPolicy,
    dns: &dyn DnsKnowledge,
    enforcement: Enforcement,
) -> (Verdict, Option<WouldDeny>, Decided) {
    let recording = Recording { live: dns, vouched: RefCell::default() };
    let (verdict, would_deny) = decide_enforced(facts, policy, &recording, enforcement);
    let granted = match &verdict {
        Verdict::Allow { target, .. } => Some(Granted { target: target.clone(), steered: false }),
        Verdict::Steer { target, .. } => Some(Granted { target: target.clone(), steered: true }),
        Verdict::Deny { .. } => None,
    };
    let detected = match facts.detected {
        Detected::Tls { sni } => Sent::Tls(sni.map(str::to_string)),
        Detected::Http { host } => Sent::Http(host.map(str::to_string)),
        Detected::Opaque => Sent::Opaque,
    };
    let decided = Decided {
        workload: facts.workload.clone(),
        client: facts.client,
        orig_dst: facts.orig_dst,
        detected,
        pick: facts.pick,
        learned: recording.vouched.into_inner(),
        granted,
        enforcement,
    };
    (verdict, would_deny, decided)
}

impl Decided {
    /// Whether `policy` still lets the connection go where it went:
    /// allowed (or steered, as it was) to the same target, which for
    /// endpoints means one that still lists `upstream`, the address it is
    /// connected to. An HTTP request is asked about as a `GET /` of its host.
    pub fn stands(&self, policy: &EgressPolicy, dns: &dyn DnsKnowledge, upstream: SocketAddr) -> bool {
        let Some(granted) = &self.granted else { return false };
        let detected = match &self.detected {
            Sent::Tls(sni) => Detected::Tls { sni: sni.as_deref() },
            Sent::Http(host) => Detected::Http { host: host.as_deref() },
            Sent::Opaque => Detected::Opaque,
        };
        let facts = ConnectionFacts {
            workload: &self.workload,
            client: self.client,
            orig_dst: self.orig_dst,
            detected,
            request: None,
            pick: self.pick,
        };
        let dns = Learned { learned: &self.learned, live: dns };
        match decide_enforced(&facts, policy, &dns, self.enforcement).0 {
            Verdict::Allow { target, .. } => !granted.steered && same_place(&granted.target, &target, upstream),
            Verdict::Steer { target, .. } => granted.steered && same_place(&granted.target, &target, upstream),
            Verdict::Deny { .. } => false,
        }
    }
}

/// At a gateway: a route's destination, with a subset narrowing the
/// entry's endpoints to those its DestinationRule labels.
pub fn decide_route_exit(policy: &EgressPolicy, workload: &WorkloadIdentity, route: &RouteChoice, port: u16, exit: Exit) -> Verdict {
    match decide_exit(policy, workload, &route.destination, port, exit) {
        Verdict::Allow { target, matched, reason, .. } | Verdict::Steer { target, matched, reason, .. } => {
            let target = if route.subset.is_some() { policy.route_target(workload, route, port) } else { target };
            Verdict::Allow { target, matched, reason, subset: route.subset.as_deref().map(str::to_string) }
        }
        deny => deny,
    }
}

/// What a gateway let a route's stream (or pooled connection) go to.
#[derive(Clone, Debug)]
pub struct ExitDecided {
    pub workload: WorkloadIdentity,
    pub route: RouteChoice,
    pub port: u16,
    pub exit: Exit,
    pub target: Target,
}

impl ExitDecided {
    /// Whether `policy` still lets the route's destination out, to the same
    /// place (`upstream`, for endpoints).
    pub fn stands(&self, policy: &EgressPolicy, upstream: SocketAddr) -> bool {
        match decide_route_exit(policy, &self.workload, &self.route, self.port, self.exit) {
            Verdict::Allow { target, .. } => same_place(&self.target, &target, upstream),
            _ => false,
        }
    }
}

/// The same place: the same address or name, or endpoints that still
/// include the one connected to.
fn same_place(was: &Target, now: &Target, upstream: SocketAddr) -> bool {
    let canonical_sock = |a: SocketAddr| SocketAddr::new(canonical(a.ip()), a.port());
    match now {
        Target::Endpoints(list) => list.iter().any(|a| canonical_sock(*a) == canonical_sock(upstream)),
        Target::Original(a) => matches!(was, Target::Original(b) if canonical_sock(*a) == canonical_sock(*b)),
        Target::Resolve { .. } => was == now,
    }
}

/// Notes every name the DNS knowledge vouched for during one decision.
struct Recording<'a> {
    live: &'a dyn DnsKnowledge,
    vouched: RefCell<Vec<String>>,
}

impl DnsKnowledge for Recording<'_> {
    fn answered(&self, client: IpAddr, name: &str, ip: IpAddr) -> bool {
        let yes = self.live.answered(client, name, ip);
        if yes {
            self.vouched.borrow_mut().push(name.to_string());
        }
        yes
    }

    fn names_for(&self, client: IpAddr, ip: IpAddr) -> Vec<String> {
        let names = self.live.names_for(client, ip);
        self.vouched.borrow_mut().extend(names.iter().cloned());
        names
    }
}

/// What was learned at the decision, and what the DNS server knows now.
/// A [`Decided`] is only ever asked about its own client and address.
struct Learned<'a> {
    learned: &'a [String],
    live: &'a dyn DnsKnowledge,
}

impl DnsKnowledge for Learned<'_> {
    fn answered(&self, client: IpAddr, name: &str, ip: IpAddr) -> bool {
        self.learned.iter().any(|n| n == name) || self.live.answered(client, name, ip)
    }

    fn names_for(&self, client: IpAddr, ip: IpAddr) -> Vec<String> {
        let mut names = self.learned.to_vec();
        names.extend(self.live.names_for(client, ip).into_iter().filter(|n| !self.learned.contains(n)));
        names
    }
}
