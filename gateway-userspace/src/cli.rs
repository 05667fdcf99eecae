//! Command-line interface.

use std::{
    collections::BTreeMap,
    net::{IpAddr, SocketAddr},
    path::PathBuf,
};

use clap::{Args, Parser, Subcommand, ValueEnum};

pub use crate::transport::relay_mode::RelayMode;

#[derive(Debug, Parser)]
#[command(name = "gateway", version, about = "Egress and ingress gateway for Istio service meshes")]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Intercept the given cgroups and run the proxy.
    Run(Box<RunArgs>),
    /// Remove the kernel programs, links and maps pinned under --bpffs.
    Detach(DetachArgs),
    /// Check Istio YAML and print every finding; exit 0 clean, 1 errors, 2 unreadable.
    Validate(ValidateArgs),
    /// Propose the ServiceEntries (and Sidecars) that would allow what the
    /// audit log shows was refused.
    Suggest(SuggestArgs),
    /// Generate a test CA and certificates (mesh identities, servers) to try
    /// mutual TLS without an external PKI.
    Certs(crate::tls::CertsArgs),
    /// The in-cluster CA of the mesh identities: approves and signs the
    /// CertificateSigningRequests of node agents for their pods.
    Ca(Box<crate::workload_ca::CaArgs>),
}

/// How the Istio YAML is read, shared by `run` and `validate`.
#[derive(Debug, Args)]
pub struct ConfigArgs {
    /// Namespace of resources that name none, as `kubectl apply` would.
    #[arg(long, default_value = "default")]
    pub namespace: String,
    /// This instance's own labels (k=v,k=v): selects the Gateways it serves.
    #[arg(long, value_parser = parse_labels, default_value = "")]
    pub labels: BTreeMap<String, String>,
    /// Directory holding `<credentialName>/{tls.crt,tls.key,ca.crt}`.
    #[arg(long)]
    pub credential_dir: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct ValidateArgs {
    /// Istio YAML files or directories of them.
    #[arg(required_unless_present = "kubernetes")]
    pub paths: Vec<PathBuf>,
    /// Analyze the live cluster's Istio resources and Services (with any files).
    #[arg(long)]
    pub kubernetes: bool,
    /// Reach the API server through this kubeconfig instead of the in-cluster
    /// service account.
    #[arg(long, requires = "kubernetes")]
    pub kubeconfig: Option<PathBuf>,
    /// The cluster's DNS domain, for Service host names.
    #[arg(long, default_value = "cluster.local")]
    pub cluster_domain: String,
    #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
    pub output: OutputFormat,
    #[command(flatten)]
    pub config: ConfigArgs,
}

#[derive(Debug, Args)]
pub struct SuggestArgs {
    /// Access logs (the JSON lines `gateway run` writes on stdout); `-` reads standard input.
    #[arg(long, required = true, num_args = 1..)]
    pub from: Vec<PathBuf>,
    /// Only calls made by workloads of this namespace.
    #[arg(long)]
    pub namespace: Option<String>,
    /// Fold N or more subdomains of one domain into a wildcard entry.
    #[arg(long, value_parser = clap::value_parser!(u16).range(2..))]
    pub wildcard_min: Option<u16>,
    /// Also propose each namespace's Sidecar, listing the hosts its calls
    /// went to (allowed or proposed), which hides every other host from it.
    #[arg(long)]
    pub sidecars: bool,
    /// Send this host through the egress gateway (Gateway, VirtualService,
    /// DestinationRule subset); repeat for more hosts.
    #[arg(long)]
    pub egress_gateway: Vec<String>,
    /// The egress gateway's namespace.
    #[arg(long, default_value = "istio-system")]
    pub egress_gateway_namespace: String,
    /// The labels of the egress gateway's instances (k=v,k=v).
    #[arg(long, value_parser = parse_labels, default_value = "istio=egressgateway")]
    pub egress_gateway_selector: BTreeMap<String, String>,
    /// The cluster's DNS domain, for the egress gateway's Service.
    #[arg(long, default_value = "cluster.local")]
    pub cluster_domain: String,
    /// Write the YAML here instead of standard output.
    #[arg(long, short)]
    pub output: Option<PathBuf>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum OutputFormat {
    Text,
    Json,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// Istio YAML files or directories of them.
    #[arg(long, required_unless_present = "kubernetes", num_args = 1..)]
    pub config: Vec<PathBuf>,
    #[command(flatten)]
    pub config_args: ConfigArgs,
    #[command(flatten)]
    pub kubernetes: KubernetesArgs,
    #[command(flatten)]
    pub authz: AuthzArgs,
    /// cgroup v2 directories whose processes are intercepted, each optionally
    /// naming the WorkloadEntry its processes are (`DIR=NAMESPACE/NAME`); without
    /// one, a workload is known by its address.
    #[arg(long = "intercept-cgroup", value_parser = parse_cgroup)]
    pub intercept_cgroups: Vec<InterceptCgroup>,
    /// Address intercepted workloads reach the proxy on; at most one IPv4 and
    /// one IPv6 [default: 127.0.0.1 and ::1].
    #[arg(long = "proxy-address")]
    pub proxy_addresses: Vec<IpAddr>,
    /// Port of the proxy listeners.
    #[arg(long, default_value_t = 15001)]
    pub proxy_port: u16,
    /// Admin endpoint: /healthz, /ready, /metrics, /stats, /config_dump, POST /reload.
    #[arg(long, default_value = "127.0.0.1:15000")]
    pub admin_address: SocketAddr,
    /// bpffs directory where the kernel programs, links and maps are pinned.
    #[arg(long, default_value = "/sys/fs/bpf/gateway")]
    pub bpffs: PathBuf,
    /// SO_MARK of the proxy's upstream sockets, for routing rules. The kernel
    /// programs know the proxy by the cgroup it runs in, not by this mark.
    #[arg(long, default_value_t = 1337, value_parser = clap::value_parser!(u32).range(1..))]
    pub socket_mark: u32,
    /// Seconds to wait for an upstream TCP connect.
    #[arg(long, default_value_t = 10)]
    pub connect_timeout: u64,
    /// What to do with traffic to hosts no ServiceEntry registers; a Sidecar's
    /// outboundTrafficPolicy overrides it for the workloads it selects.
    #[arg(long, value_enum, default_value_t = OutboundPolicy::RegistryOnly)]
    pub outbound_policy: OutboundPolicy,
    /// Audit mode for every workload: decide as under REGISTRY_ONLY, then
    /// let what the registry would refuse go where it was dialled, logged
    /// `"decision":"allow","would":"deny"` with the reason. The proxy's own
    /// refusals (unknown workload, malformed request, limits, loops) still
    /// refuse. Namespaces labelled `gateway.io/audit=true` audit alone.
    #[arg(long)]
    pub audit: bool,
    /// Milliseconds to wait for a client's first bytes to name a protocol
    /// (TLS ClientHello, HTTP head); a client that is silent or sent bytes
    /// that did not complete one is then an opaque stream, decided by
    /// address. Destinations the registry declares opaque TCP are decided
    /// at once, without waiting.
    #[arg(long, default_value_t = 1000)]
    pub sniff_timeout_ms: u64,
    /// Seconds a relayed stream that a reloaded configuration no longer
    /// allows stays open before both sides are reset (a newer configuration
    /// that allows it again meanwhile keeps it).
    #[arg(long, default_value_t = 5)]
    pub revocation_drain_secs: u64,
    /// Port of the DNS server on each proxy address, where the intercepted
    /// workloads' DNS queries (port 53) are sent; 0 leaves DNS alone.
    #[arg(long, default_value_t = 15053)]
    pub dns_port: u16,
    /// Resolvers the DNS server forwards to and the proxy resolves with
    /// [default: the nameservers of /etc/resolv.conf].
    #[arg(long = "dns-upstream")]
    pub dns_upstreams: Vec<SocketAddr>,
    /// When the kernel programs hold no record for a connection, take its
    /// destination from netfilter (`SO_ORIGINAL_DST`), for workloads that an
    /// iptables `REDIRECT` sends to the proxy port.
    #[arg(long)]
    pub iptables_original_dst: bool,
    /// An explicit listener, `LISTEN=UPSTREAM` (both ADDR:PORT): clients that
    /// connect to LISTEN are proxied to UPSTREAM under the same policy.
    #[arg(long = "forward", value_parser = parse_forward)]
    pub forwards: Vec<(SocketAddr, SocketAddr)>,
    /// CA of the mesh identities, for ISTIO_MUTUAL between nodes and gateways.
    #[arg(long)]
    pub mesh_ca: Option<PathBuf>,
    /// This instance's own certificate and key (an ISTIO_MUTUAL server's identity).
    #[arg(long, requires = "key")]
    pub cert: Option<PathBuf>,
    #[arg(long, requires = "cert")]
    pub key: Option<PathBuf>,
    /// Directory of workload certificates, `<namespace>-<serviceaccount>.crt|.key`,
    /// that the node presents for each workload's ISTIO_MUTUAL connections.
    #[arg(long)]
    pub workload_certs: Option<PathBuf>,
    /// HTTP/1 on Gateway listeners and from pods: milliseconds a client has
    /// to send a request's headers, from their first byte; a slower one is
    /// disconnected.
    #[arg(long, default_value_t = 10_000)]
    pub header_read_timeout_ms: u64,
    /// Gateway listeners: largest request head, in bytes; larger gets 431.
    #[arg(long, default_value_t = 60 * 1024)]
    pub max_header_bytes: usize,
    /// How the bytes of a decided stream that needs no more inspection (TLS
    /// passthrough, opaque TCP, steered streams) are carried: `copy` (read and
    /// write through the proxy), `splice` (socket to pipe to socket in the
    /// kernel), `sockmap` (the kernel moves each segment to the other socket;
    /// the proxy only carries ends of stream and resets), or `auto` (copy
    /// first; every 50 ms a stream that moved less than 1 MiB in that time
    /// goes to `sockmap`). Streams the proxy encrypts or inspects per request
    /// are always copied.
    #[arg(long, value_enum, default_value_t = RelayMode::Auto)]
    pub relay: RelayMode,
    /// The kernel programs log why they deny a connect or drop a packet; the
    /// lines are printed with the target `kernel`. Off, the programs carry
    /// no logging at all (the verifier removes it). Changing it reloads the
    /// programs in place.
    #[arg(long)]
    pub kernel_log: bool,
    /// `PORT=MODE`: the relay for streams to this destination port, overriding
    /// --relay (for example `--relay-port 443=sockmap`). Repeatable.
    #[arg(long = "relay-port", value_parser = parse_relay_port)]
    pub relay_ports: Vec<(u16, RelayMode)>,
    /// Gateway listeners: open connections per listener; further ones are
    /// closed at accept and counted in `gateway_listener_overflow_total`.
    #[arg(long, default_value_t = 100_000, value_parser = clap::value_parser!(u32).range(1..))]
    pub max_connections_per_listener: u32,
    /// Intercepted connections one workload (pod or WorkloadEntry) may hold
    /// open at once; the next ones are reset, logged with the reason
    /// `connection-limit` and counted in
    /// `gateway_workload_connection_refusals_total`. 0: unlimited.
    #[arg(long, default_value_t = 10_000)]
    pub max_connections_per_workload: u32,
    /// Gateway listeners, and plain HTTP from pods: seconds a downstream
    /// connection may carry no bytes (and no HTTP request) before it is
    /// closed; 0: never.
    #[arg(long, default_value_t = 3600)]
    pub idle_timeout_secs: u64,
    /// Write the audit log (one JSON line per connection and per HTTP request)
    /// to this file, appending, instead of stdout.
    #[arg(long)]
    pub access_log: Option<PathBuf>,
    /// Names no ServiceEntry registers: forward them upstream, or answer
    /// NXDOMAIN [default: refuse under REGISTRY_ONLY, forward under ALLOW_ANY or --audit]
    #[arg(long, value_enum)]
    pub dns_unknown: Option<DnsUnknown>,
    /// Domains whose unregistered names are still forwarded when unknown
    /// names are refused (repeatable); the cluster domain always is.
    #[arg(long = "dns-forward-domain")]
    pub dns_forward_domains: Vec<String>,
}

/// Reading the cluster: Istio resources and Services from the API server,
/// and, on a node, its pods.
#[derive(Debug, Args)]
pub struct KubernetesArgs {
    /// Read Istio resources, Services and EndpointSlices from the Kubernetes
    /// API (combined with any --config files).
    #[arg(long)]
    pub kubernetes: bool,
    /// Reach the API server through this kubeconfig instead of the in-cluster
    /// service account.
    #[arg(long, requires = "kubernetes")]
    pub kubeconfig: Option<PathBuf>,
    /// Intercept every pod of this node (the node agent): attach to the
    /// kubelet's pods cgroup and know each connection's pod by its cgroup.
    #[arg(long, requires = "kubernetes")]
    pub intercept_pods: bool,
    /// This node's name, whose pods are watched.
    #[arg(long, env = "NODE_NAME", required_if_eq("intercept_pods", "true"))]
    pub node_name: Option<String>,
    /// This gateway's pod (from the downward API). With it, a Gateway
    /// server's port is the port of a Service that lists this pod in its
    /// EndpointSlices, and the listener binds that port's target port, as
    /// Istio does; without it, or for a port no such Service has, the port
    /// is bound as declared. Read with --kubernetes only.
    #[arg(long, env = "POD_NAME")]
    pub pod_name: Option<String>,
    /// Read the TLS Secrets of --namespace through the API, as Istio's
    /// gateways read the `credentialName` of their servers and
    /// DestinationRules, and keep them as files under --credential-dir
    /// (best on a memory-backed volume).
    #[arg(long, requires_all = ["kubernetes", "credential_dir"])]
    pub credential_secrets: bool,
    /// A Unix socket through which this instance hands its listening
    /// sockets to the next one started with the same path (a rolling
    /// update with maxSurge), and takes them from a running one: no gap
    /// while one replaces the other.
    #[arg(long)]
    pub handover: Option<PathBuf>,
    /// The kubelet's pods cgroup [default: kubepods.slice, kubepods, or the
    /// nested kind layouts, found under the cgroup2 mount].
    #[arg(long)]
    pub cgroup_root: Option<PathBuf>,
    /// Namespaces whose pods are never intercepted (repeatable); pods and
    /// namespaces labelled istio.io/dataplane-mode=none opt out too.
    #[arg(long = "exempt-namespace", default_value = "kube-system")]
    pub exempt_namespaces: Vec<String>,
    /// Milliseconds a connection from a pod the API has not announced yet is
    /// held for that pod to appear; then it is refused (`unknown-workload`).
    #[arg(long, default_value_t = 2000)]
    pub unknown_workload_wait_ms: u64,
    /// `NAMESPACE/NAME` of the DaemonSet this agent belongs to: at SIGTERM the
    /// interception stays pinned while it exists (an upgrade, a drain) and
    /// is removed once it is gone (an uninstall).
    #[arg(long, env = "GATEWAY_DAEMONSET", value_parser = parse_namespaced)]
    pub daemonset: Option<(String, String)>,
    /// The cluster's DNS domain, for Service host names.
    #[arg(long, default_value = "cluster.local")]
    pub cluster_domain: String,
    /// Obtain the certificate of each service account with a pod on this
    /// node through a CertificateSigningRequest that `gateway ca` signs,
    /// kept under --workload-certs and renewed, and the trust bundle into
    /// --mesh-ca.
    #[arg(long, requires_all = ["intercept_pods", "workload_certs", "mesh_ca"])]
    pub workload_certs_from_csr: bool,
    /// Lifetime asked for those certificates, in seconds (Kubernetes'
    /// minimum is 600); each is renewed at two thirds of the lifetime issued.
    #[arg(long, default_value_t = 86_400, value_parser = clap::value_parser!(u64).range(600..))]
    pub workload_cert_lifetime_secs: u64,
    /// A gateway: obtain --cert and --key, the identity of --service-account,
    /// through a CertificateSigningRequest that `gateway ca` signs (renewed,
    /// and presented from the next handshake on), and the trust bundle into
    /// --mesh-ca, before serving.
    #[arg(long, requires_all = ["kubernetes", "cert", "key", "mesh_ca", "service_account"], conflicts_with = "intercept_pods")]
    pub cert_from_csr: bool,
    /// This instance's service account, `NAMESPACE/NAME` (for --cert-from-csr).
    #[arg(long, value_parser = parse_namespaced)]
    pub service_account: Option<(String, String)>,
    /// Namespace of the trust bundle ConfigMap (`gateway-ca-root`) that
    /// `gateway ca` publishes.
    #[arg(long, env = "POD_NAMESPACE", default_value = "gateway-system")]
    pub trust_bundle_namespace: String,
}

/// How AuthorizationPolicies are read and what they see.
#[derive(Debug, Args)]
pub struct AuthzArgs {
    /// Namespace whose AuthorizationPolicies without a target apply mesh-wide
    /// (Istio's root namespace).
    #[arg(long, default_value = "istio-system")]
    pub root_namespace: String,
    /// Trust domain of the principals (`<domain>/ns/<ns>/sa/<sa>`) the node
    /// gives its pods when AuthorizationPolicies match them.
    #[arg(long, default_value = "cluster.local")]
    pub trust_domain: String,
    /// How request paths are normalised before routes and
    /// AuthorizationPolicies match them, and as they are sent on (Istio's
    /// MeshConfig `pathNormalization`).
    #[arg(long, value_enum, default_value_t = crate::authz::PathNormalization::Base)]
    pub path_normalization: crate::authz::PathNormalization,
    /// Proxies in front of a gateway whose `X-Forwarded-For` entries are
    /// trusted for `remoteIpBlocks` (Istio's `numTrustedProxies`).
    #[arg(long, default_value_t = 0)]
    pub num_trusted_proxies: u32,
}

impl AuthzArgs {
    pub fn settings(&self) -> crate::authz::AuthzSettings {
        crate::authz::AuthzSettings {
            root_namespace: self.root_namespace.clone(),
            trust_domain: self.trust_domain.clone(),
            path_normalization: self.path_normalization,
            num_trusted_proxies: self.num_trusted_proxies,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum DnsUnknown {
    Forward,
    Refuse,
}

impl RunArgs {
    /// What the DNS server does with unregistered names: under REGISTRY_ONLY
    /// only the cluster's own domains (and `--dns-forward-domain`) are asked
    /// upstream, so query names cannot carry data out. Node-wide audit mode
    /// forwards them, so the calls it audits can be made at all.
    pub fn unknown_names(&self) -> crate::dns::UnknownNames {
        let refuse = match self.dns_unknown {
            Some(d) => d == DnsUnknown::Refuse,
            None => self.outbound_policy == OutboundPolicy::RegistryOnly && !self.audit,
        };
        if !refuse {
            return crate::dns::UnknownNames::Forward;
        }
        let mut forward_domains: Vec<String> = self.dns_forward_domains.iter().map(|d| d.trim_matches('.').to_ascii_lowercase()).collect();
        forward_domains.push(self.kubernetes.cluster_domain.trim_matches('.').to_ascii_lowercase());
        forward_domains.sort();
        forward_domains.dedup();
        crate::dns::UnknownNames::Refuse { forward_domains }
    }

    /// `--dns-upstream`, or the nameservers of /etc/resolv.conf.
    pub fn dns_upstreams(&self) -> Vec<SocketAddr> {
        if !self.dns_upstreams.is_empty() {
            return self.dns_upstreams.clone();
        }
        let conf = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
        conf.lines()
            .filter_map(|l| l.trim().strip_prefix("nameserver"))
            .filter_map(|ip| ip.trim().parse::<IpAddr>().ok())
            .map(|ip| SocketAddr::new(ip, 53))
            .collect()
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum OutboundPolicy {
    #[value(name = "REGISTRY_ONLY", alias = "registry-only")]
    RegistryOnly,
    #[value(name = "ALLOW_ANY", alias = "allow-any")]
    AllowAny,
}

impl From<OutboundPolicy> for crate::config::resources::sidecar::OutboundMode {
    fn from(p: OutboundPolicy) -> Self {
        match p {
            OutboundPolicy::RegistryOnly => Self::RegistryOnly,
            OutboundPolicy::AllowAny => Self::AllowAny,
        }
    }
}

#[derive(Debug, Args)]
pub struct DetachArgs {
    #[arg(long, default_value = "/sys/fs/bpf/gateway")]
    pub bpffs: PathBuf,
}

fn parse_forward(s: &str) -> Result<(SocketAddr, SocketAddr), String> {
    let (l, u) = s.split_once('=').ok_or("expected LISTEN=UPSTREAM")?;
    Ok((l.parse().map_err(|e| format!("{l}: {e}"))?, u.parse().map_err(|e| format!("{u}: {e}"))?))
}

/// An intercepted cgroup and, optionally, the WorkloadEntry it runs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InterceptCgroup {
    pub path: PathBuf,
    pub workload: Option<(String, String)>,
}

pub(crate) fn parse_namespaced(s: &str) -> Result<(String, String), String> {
    match s.split_once('/') {
        Some((ns, name)) if !ns.is_empty() && !name.is_empty() && !name.contains('/') => Ok((ns.into(), name.into())),
        _ => Err(format!("{s:?} is not NAMESPACE/NAME")),
    }
}

pub(super) fn parse_cgroup(s: &str) -> Result<InterceptCgroup, String> {
    let Some((path, entry)) = s.rsplit_once('=') else {
        return Ok(InterceptCgroup { path: s.into(), workload: None });
    };
    let (ns, name) = entry
        .split_once('/')
        .filter(|(ns, name)| !ns.is_empty() && !name.is_empty() && !name.contains('/'))
        .ok_or_else(|| format!("{entry:?} is not NAMESPACE/NAME of a WorkloadEntry"))?;
    Ok(InterceptCgroup { path: path.into(), workload: Some((ns.to_string(), name.to_string())) })
}

/// `k=v,k2=v2` → map; empty string → empty map.
pub(super) fn parse_labels(s: &str) -> Result<BTreeMap<String, String>, String> {
    let mut out = BTreeMap::new();
    for pair in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').ok_or_else(|| format!("label {pair:?} is not key=value"))?;
        if k.is_empty() {
            return Err(format!("label {pair:?} has an empty key"));
        }
        out.insert(k.to_string(), v.to_string());
    }
    Ok(out)
}

impl ConfigArgs {
    pub fn load_options(&self) -> crate::config::LoadOptions {
        crate::config::LoadOptions {
            default_namespace: self.namespace.clone(),
            instance_labels: self.labels.clone(),
            credential_dir: self.credential_dir.clone(),
            lenient_references: false,
        }
    }
}

impl RunArgs {
    /// The proxy addresses, defaulted, at most one per family.
    pub fn proxy_ips(&self) -> Result<Vec<IpAddr>, String> {
        if self.proxy_addresses.is_empty() {
            return Ok(vec![IpAddr::from([127, 0, 0, 1]), IpAddr::from(std::net::Ipv6Addr::LOCALHOST)]);
        }
        let v4 = self.proxy_addresses.iter().filter(|a| a.is_ipv4()).count();
        let v6 = self.proxy_addresses.len() - v4;
        if v4 > 1 || v6 > 1 {
            return Err("--proxy-address takes at most one IPv4 and one IPv6 address".into());
        }
        Ok(self.proxy_addresses.clone())
    }
}

fn parse_relay_port(s: &str) -> Result<(u16, RelayMode), String> {
    let (port, mode) = s.split_once('=').ok_or("expected PORT=MODE")?;
    let port = port.parse::<u16>().map_err(|e| format!("port {port}: {e}"))?;
    Ok((port, RelayMode::from_str(mode, true)?))
}
