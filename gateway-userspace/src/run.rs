//! `gateway run`: wire the configuration, the interceptor, the proxy
//! listeners and the admin endpoint together, then serve until SIGINT or
//! SIGTERM.

use std::{net::SocketAddr, os::unix::fs::MetadataExt, sync::Arc, time::Duration};

use anyhow::{Context, bail};
use tokio::{signal::unix::SignalKind, sync::watch};

use crate::{
    access_log::AccessLog,
    admin::{AdminServer, AdminState},
    cli::{OutboundPolicy, RunArgs},
    handover::{Inherited, Kind, offer},
    dns::{DnsMemory, DnsServer, DnsSettings, DnsStats, Resolver},
    interceptor::{InterceptSettings, Interceptor, cgroups},
    kubernetes::{
        ClusterConfig, NodeAgent,
        client::connect,
        credential_secrets::CredentialSecrets,
        events::FindingEvents,
        gateway_ports::{GatewayPod, PortMap},
        pod_cgroups,
        pods::Enrollment,
        uninstall::{OnStop, on_stop},
    },
    metrics::Metrics,
    policy::{PolicySettings, RegisteredNames},
    proxy::{OrigDstSource, OutboundListener, ProxyInputs, Settings, mesh_identity::MeshTls},
    transport::relay_mode::RelayChoice,
    reload::{ConfigStore, StartupError, watch_files, watch_sighup},
};

pub async fn run(args: RunArgs) -> anyhow::Result<()> {
    raise_open_files_limit();
    let proxy_ips = args.proxy_ips().map_err(anyhow::Error::msg)?;
    let metrics = Arc::new(Metrics::default());
    let mut cgroup_workloads = std::collections::HashMap::new();
    for cg in &args.intercept_cgroups {
        if let Some(entry) = &cg.workload {
            let id = std::fs::metadata(&cg.path)
                .with_context(|| format!("--intercept-cgroup {}", cg.path.display()))?
                .ino();
            cgroup_workloads.insert(id, entry.clone());
        }
    }
    let policy_settings = PolicySettings {
        default_namespace: args.config_args.namespace.clone(),
        outbound_mode: args.outbound_policy.into(),
        cgroup_workloads,
        authz: args.authz.settings(),
    };
    let mut load_options = args.config_args.load_options();
    load_options.lenient_references = args.kubernetes.kubernetes;
    let config = match ConfigStore::open(args.config.clone(), load_options, policy_settings, metrics.clone()) {
        Ok(store) => Arc::new(store),
        Err(StartupError::Invalid(findings)) => {
            for f in findings.iter().filter(|f| f.severity == crate::config::Severity::Error) {
                eprintln!("{f}");
            }
            bail!("refusing to start: the configuration has errors (see above; `gateway validate` shows them all)");
        }
        Err(e) => return Err(e).context("reading the configuration"),
    };

    let kube = match args.kubernetes.kubernetes {
        true => Some(connect(args.kubernetes.kubeconfig.as_deref()).await.context("reaching the Kubernetes API")?),
        false => None,
    };
    // Interception (and the proxy listeners it sends connections to) only
    // where asked for: a gateway Deployment needs neither bpffs nor privileges.
    let intercepting = !args.intercept_cgroups.is_empty() || args.kubernetes.intercept_pods;
    let proxying = intercepting || args.iptables_original_dst;
    // A running instance hands its sockets over (an update): both serve
    // them until this one is ready.
    let mut inherited = match &args.kubernetes.handover {
        Some(path) => Inherited::receive(path).context("taking over from the running instance")?,
        None => Inherited::default(),
    };
    if inherited.from_predecessor() {
        tracing::info!("listening sockets taken over from the running instance");
    }
    // Bind first: once the kernel redirects, the listeners are already there.
    let mut listeners = Vec::new();
    let wanted = proxy_ips.iter().filter(|_| proxying).map(|ip| (SocketAddr::new(*ip, args.proxy_port), OrigDstSource::Kernel));
    for (addr, source) in wanted.chain(args.forwards.iter().map(|(l, u)| (*l, OrigDstSource::Fixed(*u)))) {
        let listener = match inherited.tcp(addr)? {
            Some(handed) => OutboundListener::inherited(handed, source),
            None => OutboundListener::bind(addr, source).with_context(|| format!("binding proxy listener {addr}"))?,
        };
        listeners.push(listener);
    }
    let admin = AdminServer::bind(args.admin_address, &mut inherited)
        .await
        .with_context(|| format!("binding admin address {}", args.admin_address))?;

    let access_log = match &args.access_log {
        None => AccessLog::spawn(std::io::stdout()),
        Some(path) => {
            let file = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .with_context(|| format!("opening the access log {}", path.display()))?;
            AccessLog::spawn(file)
        }
    }
    .context("starting the access log's writer")?;
    // The DNS server, on each proxy address, for the queries the kernel redirects.
    let dns_memory = Arc::new(DnsMemory::new());
    let dns_stats = Arc::new(DnsStats::new());
    let upstreams = args.dns_upstreams();
    let dns_pods = Arc::new(std::sync::OnceLock::new());
    let dns_server = if args.dns_port == 0 || !proxying {
        None
    } else {
        let settings = DnsSettings {
            listen: proxy_ips.iter().map(|ip| SocketAddr::new(*ip, args.dns_port)).collect(),
            upstreams: upstreams.clone(),
            unknown: args.unknown_names(),
            mark: args.socket_mark,
        };
        let names = Arc::new(RegisteredNames { config: config.clone(), pods: dns_pods.clone(), audit: access_log.clone() });
        Some(
            DnsServer::bind_inheriting(settings, names, dns_memory.clone(), dns_stats.clone(), &mut inherited)
                .await
                .with_context(|| format!("binding the DNS server on port {}", args.dns_port))?,
        )
    };

    let pods_cgroup = match args.kubernetes.intercept_pods {
        true => Some(pods_cgroup(&args).context("finding the kubelet's pods cgroup")?),
        false => None,
    };
    // The kernel programs and maps: for interception, and for the kernel
    // relay. An instance that only relays runs without them (copying) where
    // it lacks the privileges: a gateway Deployment needs no bpffs.
    let wants_kernel_relay = [args.relay].iter().chain(args.relay_ports.iter().map(|(_, m)| m)).any(|m| m.uses_kernel());
    let interceptor = if intercepting || (wants_kernel_relay && may_load_bpf()) {
        let installed = own_cgroup_id().and_then(|proxy_cgroup| {
            let settings = InterceptSettings {
                bpffs: args.bpffs.clone(),
                proxy_addresses: proxy_ips.clone(),
                proxy_port: args.proxy_port,
                proxy_cgroup,
                exempt_levels: pods_cgroup.as_ref().map(|(_, level)| (level + 1, level + 2)),
                dns_port: dns_server.as_ref().map(|_| args.dns_port),
                registry_only: args.outbound_policy == OutboundPolicy::RegistryOnly,
                kernel_log: args.kernel_log,
            };
            Ok(Interceptor::install(&settings)?)
        });
        match installed {
            Ok(i) => Some(Arc::new(i)),
            Err(e) if intercepting => return Err(e.context("installing the interceptor")),
            Err(e) => {
                tracing::warn!(error = %format!("{e:#}"), "kernel relay unavailable; decided streams are copied");
                None
            }
        }
    } else {
        None
    };
    if intercepting && !proxy_ips.iter().any(|ip| ip.is_ipv6()) {
        tracing::warn!("no IPv6 --proxy-address: intercepted IPv6 connects are refused");
    }
    // Alive from here on (/healthz), ready later (/ready).
    let admin_state = Arc::new(AdminState::new(interceptor.clone(), config.clone(), metrics.clone(), (args.dns_port != 0).then(|| dns_stats.clone())));
    // What the next instance takes over (`--handover`): every listening socket.
    let mut offers = vec![offer(Kind::Tcp, admin.socket().local_addr()?, admin.socket())?];
    tokio::spawn(admin.run(admin_state.clone()));
    // The pods of this node: synced, with opted-out pods exempted in the
    // kernel, before the pods cgroup is attached, so no opted-out pod sees a gap.
    let node_agent = match (&kube, &pods_cgroup) {
        (Some(client), Some((root, _))) => {
            let enrollment = Enrollment { exempt_namespaces: args.kubernetes.exempt_namespaces.iter().cloned().collect() };
            let node = args.kubernetes.node_name.clone().unwrap_or_default();
            let exempt = interceptor.as_ref().map(|i| i.exempt.clone());
            let agent = NodeAgent::start(client.clone(), &node, root.clone(), enrollment, exempt);
            tracing::info!(node, pods_cgroup = %root.display(), "waiting for this node's pods");
            tokio::select! {
                _ = agent.wait_synced() => {}
                r = wait_for_signal() => return r,
            }
            let _ = dns_pods.set(agent.clone());
            if let (true, Some(dir), Some(mesh_ca)) = (args.kubernetes.workload_certs_from_csr, &args.workload_certs, &args.mesh_ca) {
                let settings = crate::kubernetes::workload_certs::WorkloadCertSettings {
                    dir: dir.clone(),
                    mesh_ca: mesh_ca.clone(),
                    trust_domain: args.authz.trust_domain.clone(),
                    lifetime: Duration::from_secs(args.kubernetes.workload_cert_lifetime_secs),
                    bundle_namespace: args.kubernetes.trust_bundle_namespace.clone(),
                };
                crate::kubernetes::workload_certs::start(client.clone(), agent.clone(), settings);
            }
            Some(agent)
        }
        _ => None,
    };
    if let Some(interceptor) = &interceptor {
        let mut cgroups: Vec<_> = args.intercept_cgroups.iter().map(|c| c.path.clone()).collect();
        cgroups.extend(pods_cgroup.as_ref().map(|(root, _)| root.clone()));
        if args.kernel_log {
            interceptor.spawn_kernel_log().context("reading the kernel programs' log")?;
        }
        interceptor.attach(&cgroups).context("attaching the kernel programs")?;
    }

    let settings = Settings {
        socket_mark: args.socket_mark,
        connect_timeout: Duration::from_secs(args.connect_timeout),
        sniff_timeout: Duration::from_millis(args.sniff_timeout_ms),
        unknown_workload_wait: Duration::from_millis(args.kubernetes.unknown_workload_wait_ms),
        revocation_drain: Duration::from_secs(args.revocation_drain_secs),
        relay: RelayChoice { default: args.relay, by_port: args.relay_ports.clone(), maps: interceptor.as_ref().and_then(|i| i.relay_maps.clone()) },
        iptables_original_dst: args.iptables_original_dst,
        listen_addrs: listeners.iter().filter_map(|l| l.address().ok()).collect(),
        audit: args.audit,
        header_read_timeout: Duration::from_millis(args.header_read_timeout_ms),
        http_idle_timeout: Duration::from_secs(args.idle_timeout_secs),
    };
    let inputs = Arc::new(ProxyInputs {
        settings: Arc::new(settings),
        config: config.clone(),
        metrics: metrics.clone(),
        access_log,
        orig_dst: interceptor.as_ref().map(|i| i.orig_dst.clone()),
        pods: node_agent.clone(),
        dns: dns_memory.clone(),
        resolver: Arc::new(Resolver::new(upstreams, args.socket_mark)),
        originations: Default::default(),
        mesh: args.mesh_ca.clone().map(|ca| MeshTls::new(ca, args.cert.clone(), args.key.clone(), args.workload_certs.clone())),
        rotate: Default::default(),
        workload_limits: crate::proxy::workload_limit::WorkloadLimits::new(args.max_connections_per_workload as usize),
        pools: Default::default(),
    });
    tokio::spawn(inputs.pools.clone().follow(config.subscribe()));
    let (stop_tx, stop_rx) = watch::channel(false);
    for listener in &listeners {
        offers.push(offer(Kind::Tcp, listener.address()?, listener.socket())?);
    }
    for listener in listeners {
        tracing::info!(address = %listener.address()?, "proxy listening");
        tokio::spawn(listener.run(inputs.clone(), stop_rx.clone()));
    }
    // A gateway's own mesh identity from the cluster, there before any
    // ISTIO_MUTUAL listener needs it.
    if let (Some(client), true) = (&kube, args.kubernetes.cert_from_csr) {
        let own = crate::kubernetes::workload_certs::own_settings(&args)?;
        tokio::select! {
            () = crate::kubernetes::workload_certs::start_own(client.clone(), own) => {}
            r = wait_for_signal() => return r,
        }
    }
    // The gateway role: the Gateways whose selector matches --labels.
    let labels = &args.config_args.labels;
    let mut gateway_ports = None;
    if !labels.is_empty() {
        let limits = crate::gateway_role::Limits {
            header_read_timeout: Duration::from_millis(args.header_read_timeout_ms),
            max_header_bytes: args.max_header_bytes,
            max_connections_per_listener: args.max_connections_per_listener as usize,
            idle_timeout: Duration::from_secs(args.idle_timeout_secs),
        };
        let port_map = match (&kube, &args.kubernetes.pod_name) {
            (Some(_), Some(pod)) => {
                let (tx, rx) = watch::channel(PortMap::default());
                gateway_ports = Some((GatewayPod { namespace: args.config_args.namespace.clone(), name: pod.clone() }, tx));
                Some(rx)
            }
            (Some(_), None) => {
                tracing::warn!("no --pod-name (POD_NAME): Gateway servers are bound on their declared ports, not their Service's target ports");
                None
            }
            (None, _) => None,
        };
        let status = crate::gateway_role::serve(labels, &args.config_args.namespace, limits, inputs.clone(), port_map).await;
        let ports: Vec<_> = status.lock().expect("listener status lock").ports.iter().map(|p| (p.address, p.state)).collect();
        tracing::info!(?labels, ?ports, "serving Gateway listeners; they follow the configuration");
        admin_state.set_listeners(status);
    }
    if let Some(server) = dns_server {
        tracing::info!(addresses = ?server.local_addrs(), "DNS server listening");
        offers.extend(server.offer()?);
        tokio::spawn(server.run());
    }
    tokio::spawn(watch_files(config.clone(), args.config.clone(), args.config_args.credential_dir.clone()));
    tokio::spawn(watch_sighup(config.clone()));
    // Ready once the first configuration from the API is in force.
    if let Some(client) = &kube {
        let instance = args.kubernetes.node_name.clone().unwrap_or_else(|| "gateway".into());
        let events = Arc::new(FindingEvents::new(client.clone(), &instance));
        // Credentials first: the first configuration from the API then
        // finds the files its servers name.
        if let (true, Some(dir)) = (args.kubernetes.credential_secrets, &args.config_args.credential_dir) {
            let secrets = CredentialSecrets::start(client.clone(), &args.config_args.namespace, dir.clone(), config.clone());
            tokio::select! {
                _ = wait_until(|| secrets.is_written(), || "the first complete list of the Secrets from the API server".into()) => {}
                r = wait_for_signal() => return r,
            }
        }
        let cluster = ClusterConfig::start(client.clone(), &args.kubernetes.cluster_domain, config.clone(), events, gateway_ports);
        tokio::select! {
            _ = wait_until(|| cluster.is_applied(), || format!("the first complete lists from the API server; pending: {:?}", cluster.pending())) => {}
            r = wait_for_signal() => return r,
        }
    }
    admin_state.set_ready();
    inherited.announce_ready();
    if let Some(path) = &args.kubernetes.handover {
        crate::handover::serve(path.clone(), offers, stop_tx.clone()).with_context(|| format!("serving the handover at {}", path.display()))?;
    }
    tracing::info!(admin = %args.admin_address, cgroups = args.intercept_cgroups.len(), pods = node_agent.is_some(), "ready");

    wait_for_signal().await?;
    match (&kube, args.kubernetes.intercept_pods) {
        (Some(client), true) if on_stop(client, args.kubernetes.daemonset.as_ref()).await == OnStop::Detach => {
            tracing::info!("the DaemonSet is gone: removing the interception");
            Interceptor::detach(&args.bpffs).context("detaching")?;
        }
        _ if *stop_tx.borrow() => tracing::info!("stopping; the next instance took the listening sockets over and serves"),
        _ => tracing::info!("stopping; pinned programs keep redirecting, so connections are refused until restart"),
    }
    let _ = stop_tx.send(true);
    let _ = tokio::time::timeout(std::time::Duration::from_secs(2), inputs.access_log.flush()).await;
    Ok(())
}

/// The kubelet's pods cgroup (`--cgroup-root`, else found) and its level.
fn pods_cgroup(args: &RunArgs) -> anyhow::Result<(std::path::PathBuf, u32)> {
    let mount = cgroups::cgroup2_mount()?;
    let root = match &args.kubernetes.cgroup_root {
        Some(dir) => dir.clone(),
        None => pod_cgroups::find_pods_root(&mount)?,
    };
    pod_cgroups::check_not_root(&mount, &root)?;
    cgroups::cgroup_id(&root)?;
    let level = cgroups::level(&mount, &root).with_context(|| format!("{} is not below {}", root.display(), mount.display()))?;
    Ok((root, level))
}

/// Whether this process holds CAP_BPF or CAP_SYS_ADMIN (bits 39 and 21 of
/// its effective set): without either, loading kernel programs cannot work.
fn may_load_bpf() -> bool {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let effective = status.lines().find_map(|l| l.strip_prefix("CapEff:")).and_then(|v| u64::from_str_radix(v.trim(), 16).ok());
    let may = effective.is_some_and(|caps| caps & (1 << 39 | 1 << 21) != 0);
    if !may {
        tracing::info!("no CAP_BPF: decided streams are copied, not relayed in the kernel");
    }
    may
}

/// The cgroup id of the cgroup this process runs in.
fn own_cgroup_id() -> anyhow::Result<u64> {
    let mount = cgroups::cgroup2_mount()?;
    Ok(cgroups::cgroup_id(&cgroups::own_cgroup(&mount)?)?)
}

/// Waits until the first configuration from the API server is in force,
/// saying now and then what it still waits for (a missing CRD shows here).
/// Returns once `done` holds; until then says every 5 s what it waits for.
async fn wait_until(done: impl Fn() -> bool, waiting_for: impl Fn() -> String) {
    let mut said = tokio::time::Instant::now();
    while !done() {
        if said.elapsed() >= Duration::from_secs(5) {
            tracing::warn!("not ready: waiting for {}", waiting_for());
            said = tokio::time::Instant::now();
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A proxy holds two descriptors per connection: use all the system allows.
fn raise_open_files_limit() {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    if let Ok((soft, hard)) = getrlimit(Resource::RLIMIT_NOFILE)
        && soft < hard && setrlimit(Resource::RLIMIT_NOFILE, hard, hard).is_err() {
            tracing::warn!(soft, hard, "could not raise the open-files limit");
        }
}

async fn wait_for_signal() -> anyhow::Result<()> {
    let mut term = tokio::signal::unix::signal(SignalKind::terminate())?;
    tokio::select! {
        r = tokio::signal::ctrl_c() => r?,
        _ = term.recv() => {}
    }
    Ok(())
}
