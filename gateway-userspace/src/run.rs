//! `gateway run`: wire the configuration, the interceptor, the proxy
//! listeners and the admin endpoint together, then serve until SIGINT or
//! SIGTERM.

use std::{net::SocketAddr, os::unix::fs::MetadataExt, sync::Arc, time::Duration};

use anyhow::{Context, bail};
use tokio::{signal::unix::SignalKind, sync::watch};

use crate::{
    access_log::AccessLog,
    admin::{AdminServer, AdminState},
    cli::{DnsUnknown, OutboundPolicy, RunArgs},
    dns::{DnsMemory, DnsServer, DnsSettings, DnsStats, Resolver, UnknownNames},
    interceptor::{InterceptSettings, Interceptor},
    metrics::Metrics,
    policy::{PolicySettings, RegisteredNames},
    proxy::{OrigDstSource, OutboundContext, OutboundListener, mesh::MeshTls, relay_mode::RelayChoice},
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
    };
    let config = match ConfigStore::open(args.config.clone(), args.config_args.load_options(), policy_settings, metrics.clone()) {
        Ok(store) => Arc::new(store),
        Err(StartupError::Invalid(findings)) => {
            for f in findings.iter().filter(|f| f.severity == crate::config::Severity::Error) {
                eprintln!("{f}");
            }
            bail!("refusing to start: the configuration has errors (see above; `gateway validate` shows them all)");
        }
        Err(e) => return Err(e).context("reading the configuration"),
    };

    // Bind first: once the kernel redirects, the listeners are already there.
    let mut listeners = Vec::new();
    for ip in &proxy_ips {
        let addr = SocketAddr::new(*ip, args.proxy_port);
        listeners.push(
            OutboundListener::bind(addr, OrigDstSource::Kernel).with_context(|| format!("binding proxy listener {addr}"))?,
        );
    }
    for (listen, upstream) in &args.forwards {
        let source = OrigDstSource::Fixed(*upstream);
        listeners.push(OutboundListener::bind(*listen, source).with_context(|| format!("binding --forward {listen}"))?);
    }
    let admin = AdminServer::bind(args.admin_address)
        .await
        .with_context(|| format!("binding admin address {}", args.admin_address))?;

    // The DNS server, on each proxy address, for the queries the kernel redirects.
    let dns_memory = Arc::new(DnsMemory::new());
    let dns_stats = Arc::new(DnsStats::new());
    let upstreams = args.dns_upstreams();
    let dns_server = if args.dns_port == 0 {
        None
    } else {
        let settings = DnsSettings {
            listen: proxy_ips.iter().map(|ip| SocketAddr::new(*ip, args.dns_port)).collect(),
            upstreams: upstreams.clone(),
            unknown: match args.dns_unknown {
                DnsUnknown::Forward => UnknownNames::Forward,
                DnsUnknown::Refuse => UnknownNames::Refuse,
            },
            mark: args.socket_mark,
        };
        let names = Arc::new(RegisteredNames { config: config.clone() });
        Some(
            DnsServer::bind(settings, names, dns_memory.clone(), dns_stats.clone())
                .await
                .with_context(|| format!("binding the DNS server on port {}", args.dns_port))?,
        )
    };

    let settings = InterceptSettings {
        bpffs: args.bpffs.clone(),
        cgroups: args.intercept_cgroups.iter().map(|c| c.path.clone()).collect(),
        proxy_addresses: proxy_ips,
        proxy_port: args.proxy_port,
        socket_mark: args.socket_mark,
        dns_port: dns_server.as_ref().map(|_| args.dns_port),
        registry_only: args.outbound_policy == OutboundPolicy::RegistryOnly,
    };
    let interceptor = Arc::new(Interceptor::install(&settings).context("installing the interceptor")?);

    let access_log = match &args.access_log {
        None => AccessLog::spawn(tokio::io::stdout()),
        Some(path) => {
            let file = tokio::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .await
                .with_context(|| format!("opening the access log {}", path.display()))?;
            AccessLog::spawn(file)
        }
    };
    let ctx = Arc::new(OutboundContext {
        orig_dst: interceptor.orig_dst.clone(),
        config: config.clone(),
        metrics: metrics.clone(),
        socket_mark: args.socket_mark,
        connect_timeout: Duration::from_secs(args.connect_timeout),
        sniff_timeout: Duration::from_millis(args.sniff_timeout_ms),
        iptables_original_dst: args.iptables_original_dst,
        access_log,
        listen_addrs: listeners.iter().filter_map(|l| l.address().ok()).collect(),
        dns: dns_memory.clone(),
        resolver: Arc::new(Resolver::new(upstreams, args.socket_mark)),
        rotate: Default::default(),
        originations: Default::default(),
        mesh: args.mesh_ca.clone().map(|ca| MeshTls::new(ca, args.cert.clone(), args.key.clone(), args.workload_certs.clone())),
        relay: RelayChoice { default: args.relay, by_port: args.relay_ports.clone(), maps: Some(interceptor.relay_maps.clone()) },
        revocation_drain: Duration::from_secs(args.revocation_drain_secs),
    });
    let (stop_tx, stop_rx) = watch::channel(false);
    for listener in listeners {
        tracing::info!(address = %listener.address()?, "proxy listening");
        tokio::spawn(listener.run(ctx.clone(), stop_rx.clone()));
    }
    // The gateway role: the Gateways whose selector matches --labels.
    let labels = &args.config_args.labels;
    if !labels.is_empty() {
        let credentials = args.config_args.credential_dir.as_deref();
        let limits = crate::gateway_role::Limits {
            header_read_timeout: Duration::from_millis(args.header_read_timeout_ms),
            max_header_bytes: args.max_header_bytes,
            max_connections_per_listener: args.max_connections_per_listener as usize,
            idle_timeout: Duration::from_secs(args.idle_timeout_secs),
        };
        let ports = crate::gateway_role::serve(labels, &args.config_args.namespace, credentials, limits, ctx.clone()).await?;
        tracing::info!(?labels, ?ports, "serving Gateway listeners");
    }
    if let Some(server) = dns_server {
        tracing::info!(addresses = ?server.local_addrs(), "DNS server listening");
        tokio::spawn(server.run());
    }
    tokio::spawn(watch_files(config.clone(), args.config.clone()));
    tokio::spawn(watch_sighup(config.clone()));
    let dns_stats = (args.dns_port != 0).then_some(dns_stats);
    let admin_state = Arc::new(AdminState::new(interceptor.clone(), config.clone(), metrics, dns_stats));
    tokio::spawn(admin.run(admin_state.clone()));
    admin_state.set_ready();
    tracing::info!(admin = %args.admin_address, cgroups = args.intercept_cgroups.len(), "ready");

    wait_for_signal().await?;
    tracing::info!("stopping; pinned programs keep redirecting, so connections are refused until restart");
    let _ = stop_tx.send(true);
    let _ = tokio::time::timeout(std::time::Duration::from_secs(2), ctx.access_log.flush()).await;
    Ok(())
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
