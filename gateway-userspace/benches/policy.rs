//! Policy decision time against 10 to 100,000 ServiceEntry hosts, per kind
//! of match (exact host, wildcard host, CIDR address), and the memory the
//! compiled snapshot takes.
//!
//! Each configuration is generated as YAML, loaded and compiled as the
//! gateway does, then one connection that matches an entry in the middle
//! of the registry is decided over and over. REGISTRY_ONLY, so the registry
//! is always consulted.
//!
//! Besides criterion's own output, one `policy-memory {json}` line per
//! configuration reports the bytes held by the snapshot and the compiled
//! policy (a counting allocator measures them).
//!
//! `GATEWAY_BENCH_SIZES=10,1000` limits the sizes.
//!
//! The group `authz` times one HTTP request's AuthorizationPolicy decision
//! among 1,000 policies: attached to 100 ServiceEntries (10 apply to the
//! request, the matching ALLOW rule last), and all 1,000 selecting the
//! gateway that asks (the worst case).

use std::{
    alloc::{GlobalAlloc, Layout, System},
    hint::black_box,
    net::{IpAddr, Ipv4Addr, SocketAddr},
    path::Path,
    sync::atomic::{AtomicUsize, Ordering},
    time::Instant,
};

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use gateway_userspace::{
    config::{LoadOptions, Severity, load_str, resources::sidecar::OutboundMode},
    authz::{Applies, AuthzHttp, AuthzRequest, Authorizer, AuthzSettings},
    config::Labels,
    policy::{ConnectionFacts, Detected, EgressPolicy, NoDns, PolicySettings, Verdict, decide},
};

/// Bytes currently allocated on the heap, by anyone.
static LIVE: AtomicUsize = AtomicUsize::new(0);

struct Counting;

// SAFETY: every call is forwarded unchanged to the system allocator; the
// counter only observes sizes.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size(), Ordering::Relaxed);
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size(), Ordering::Relaxed);
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE.fetch_add(new_size, Ordering::Relaxed);
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        // SAFETY: same contract as the caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

const CLIENT: IpAddr = IpAddr::V4(Ipv4Addr::new(198, 18, 1, 2));
/// CIDR entries take consecutive /32s from 198.18.0.0/15 (131,072 addresses).
const CIDR_BASE: u32 = u32::from_be_bytes([198, 18, 0, 0]);

#[derive(Clone, Copy)]
enum Kind {
    /// `svc-N.bench.example`, TLS on 443, resolved by the proxy (DNS).
    Exact,
    /// `*.wN.bench.example`, TLS on 443.
    Wildcard,
    /// `198.18.x.y/32`, opaque TCP on 5432.
    Cidr,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Exact => "exact",
            Kind::Wildcard => "wildcard",
            Kind::Cidr => "cidr",
        }
    }

    fn entry(self, i: usize) -> String {
        let head = format!(
            "apiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata: {{name: se-{i}, namespace: default}}\nspec:\n"
        );
        let body = match self {
            Kind::Exact => format!(
                "  hosts: [svc-{i}.bench.example]\n  ports: [{{number: 443, name: tls, protocol: TLS}}]\n  resolution: DNS\n"
            ),
            Kind::Wildcard => format!(
                "  hosts: ['*.w{i}.bench.example']\n  ports: [{{number: 443, name: tls, protocol: TLS}}]\n  resolution: DNS\n"
            ),
            Kind::Cidr => format!(
                "  hosts: [cidr-{i}.bench.example]\n  addresses: [{}/32]\n  ports: [{{number: 5432, name: tcp, protocol: TCP}}]\n  resolution: NONE\n",
                cidr_address(i)
            ),
        };
        head + &body
    }

    /// The name sent and the address dialled by a connection that matches entry `i`.
    fn query(self, i: usize) -> (Option<String>, SocketAddr) {
        match self {
            Kind::Exact => (Some(format!("svc-{i}.bench.example")), "198.19.0.10:443".parse().expect("address")),
            Kind::Wildcard => (Some(format!("api.w{i}.bench.example")), "198.19.0.10:443".parse().expect("address")),
            Kind::Cidr => (None, SocketAddr::new(IpAddr::V4(cidr_address(i)), 5432)),
        }
    }
}

fn cidr_address(i: usize) -> Ipv4Addr {
    let i = u32::try_from(i).expect("fewer than 2^32 entries");
    assert!(i < 1 << 17, "198.18.0.0/15 holds 131,072 addresses");
    Ipv4Addr::from(CIDR_BASE + i)
}

fn sizes() -> Vec<usize> {
    let default = vec![10, 1_000, 10_000, 100_000];
    let Ok(list) = std::env::var("GATEWAY_BENCH_SIZES") else { return default };
    let parsed: Vec<usize> = list.split(',').filter_map(|s| s.trim().parse().ok()).collect();
    if parsed.is_empty() { default } else { parsed }
}

/// Loads and compiles `n` entries of `kind`, printing how much memory the
/// result holds and how long it took.
fn compile(kind: Kind, n: usize) -> EgressPolicy {
    let yaml: String = (0..n).map(|i| kind.entry(i)).collect::<Vec<_>>().join("---\n");
    let started = Instant::now();
    let before = LIVE.load(Ordering::Relaxed);
    let loaded = load_str(Path::new("/bench/policy.yaml"), &yaml, &LoadOptions::default());
    let errors: Vec<String> =
        loaded.findings.iter().filter(|f| f.severity == Severity::Error).map(|f| f.to_string()).collect();
    assert!(errors.is_empty(), "generated {} configuration has errors: {errors:?}", kind.name());
    let snapshot = loaded.snapshot.expect("a configuration without errors has a snapshot");
    drop(loaded.findings);
    let settings = PolicySettings {
        default_namespace: "default".into(),
        outbound_mode: OutboundMode::RegistryOnly,
        cgroup_workloads: Default::default(),
        authz: Default::default(),
    };
    let policy = EgressPolicy::build(snapshot, settings);
    // The per-namespace index is built on first use; build it now.
    let _ = policy.registry_for("default");
    let bytes = LIVE.load(Ordering::Relaxed).saturating_sub(before);
    println!(
        "policy-memory {{\"kind\":\"{}\",\"hosts\":{n},\"bytes\":{bytes},\"compile_ms\":{:.1}}}",
        kind.name(),
        started.elapsed().as_secs_f64() * 1e3
    );
    policy
}

fn decisions(c: &mut Criterion) {
    for kind in [Kind::Exact, Kind::Wildcard, Kind::Cidr] {
        let mut group = c.benchmark_group(format!("policy-{}", kind.name()));
        for n in sizes() {
            let policy = compile(kind, n);
            let (name, orig_dst) = kind.query(n / 2);
            let detected = match &name {
                Some(sni) => Detected::Tls { sni: Some(sni) },
                None => Detected::Opaque,
            };
            let workload = policy.identify(CLIENT, None);
            let facts = ConnectionFacts { workload: &workload, client: CLIENT, orig_dst, detected, request: None, pick: 0 };
            let verdict = decide(&facts, &policy, &NoDns);
            assert!(matches!(verdict, Verdict::Allow { .. }), "{} with {n} hosts: expected an allow, got {verdict:?}", kind.name());
            group.bench_with_input(BenchmarkId::from_parameter(n), &n, |b, _| {
                b.iter(|| decide(black_box(&facts), black_box(&policy), &NoDns))
            });
        }
        group.finish();
    }
}

/// `n` AuthorizationPolicies, each with one rule naming a team's principal,
/// namespace, host, methods and paths; every fifth a DENY. `targeted`:
/// attached to ServiceEntry `se` of namespaces `ns0`..`ns99` (the request
/// to `ns50/se` sees 10); otherwise all select `istio: egressgateway` from
/// the root namespace.
fn authz_policies(n: usize, targeted: bool) -> Authorizer {
    let yaml: String = (0..n)
        .map(|i| {
            let (ns, attach) = if targeted {
                (format!("ns{}", i % 100), "targetRef: {kind: ServiceEntry, name: se}".to_string())
            } else {
                ("istio-system".to_string(), "selector: {matchLabels: {istio: egressgateway}}".to_string())
            };
            let action = if i % 5 == 1 { "DENY" } else { "ALLOW" };
            format!(
                "apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {{name: p{i}, namespace: {ns}}}
spec:
  {attach}
  action: {action}
  rules:
  - from: [{{source: {{principals: [cluster.local/ns/team{i}/sa/app], namespaces: [team{i}]}}}}]
    to: [{{operation: {{hosts: [api{i}.example.test], methods: [GET, POST], paths: [/v1/*]}}}}]
"
            )
        })
        .collect::<Vec<_>>()
        .join("---\n");
    let loaded = load_str(Path::new("/bench/authz.yaml"), &yaml, &LoadOptions::default());
    assert!(loaded.findings.iter().all(|f| f.severity != Severity::Error), "generated policies have errors");
    Authorizer::build(&loaded.snapshot.expect("a snapshot"), AuthzSettings::default())
}

fn authz(c: &mut Criterion) {
    let mut group = c.benchmark_group("authz");
    let labels: Labels = [("istio".to_string(), "egressgateway".to_string())].into();
    let header = |_: &str| None;
    for (id, targeted, team) in [("1000-policies-10-apply", true, 950), ("1000-policies-all-apply", false, 999)] {
        let authz = authz_policies(1000, targeted);
        let principal = format!("cluster.local/ns/team{team}/sa/app");
        let (namespace, host) = (format!("team{team}"), format!("api{team}.example.test"));
        let http = AuthzHttp { method: "GET", path: "/v1/charges", strict_path: "/v1/charges", header: &header };
        let req = AuthzRequest {
            principal: Some(&principal),
            namespace: Some(&namespace),
            source_ip: CLIENT,
            remote_ip: CLIENT,
            host: Some(&host),
            sni: None,
            port: 443,
            http: Some(http),
        };
        let applies = if targeted {
            Applies { service_entry: Some(("ns50", "se")), ..Applies::default() }
        } else {
            Applies { workload: Some(("istio-system", &labels)), ..Applies::default() }
        };
        let decided = authz.authorize(&applies, &req);
        assert!(decided.allowed() && decided.decision.is_some(), "{id}: expected an ALLOW match, got {decided:?}");
        group.bench_function(id, |b| b.iter(|| authz.authorize(black_box(&applies), black_box(&req))));
    }
    group.finish();
}

criterion_group!(benches, decisions, authz);
criterion_main!(benches);
