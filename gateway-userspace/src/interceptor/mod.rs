//! The interceptor: kernel programs that send pods' outbound connections to
//! the proxy, pinned in bpffs so they keep working while userspace restarts.
//!
//! - `probe.rs`: what the programs need from the kernel, and the verdict
//!   when some is missing (`probe_kernel.rs` asks the kernel).
//! - `pins.rs`: where everything lives under `--bpffs`.
//! - `load.rs`: the embedded object, its stamp, loading it with the pinned
//!   maps it can keep (`map_reuse.rs` decides which).
//! - `install.rs`: puts a loaded build in place, on a first start or over
//!   another build's programs while their links stay attached
//!   (`bpf_syscall.rs` swaps a link's program).
//! - `attach.rs`: attach the pinned programs to cgroups, pin the links.
//! - `kernel_log.rs`: the programs' log level, and printing their lines.
//! - `orig_dst.rs`: the proxy's lookup of an accepted socket's original destination.
//! - `relay_maps.rs`: the kernel relay's maps, for `--relay sockmap`.
//! - `exempt.rs`: the pod cgroups that are never intercepted.
//! - `cgroups.rs`: the cgroup2 mount, cgroup ids, and the proxy's own cgroup.

mod attach;
mod bpf_syscall;
pub mod cgroups;
mod exempt;
mod install;
pub mod kernel_log;
mod load;
mod map_reuse;
mod orig_dst;
mod pins;
pub mod probe;
mod probe_kernel;
mod relay_maps;
#[cfg(test)]
mod tests;

use std::{net::IpAddr, path::PathBuf};

use aya::maps::{Array, Map, MapData, PerCpuArray};
use gateway_common::{
    PROXY_BACKSTOP, PROXY_DENY_UDP, PROXY_HAS_V4, PROXY_HAS_V6, ProxyConfig, Stat, map_names,
};
pub use exempt::ExemptCgroups;
pub use orig_dst::OrigDstLookup;
pub use pins::PinLayout;
pub use relay_maps::RelayMaps;

#[derive(Debug, thiserror::Error)]
pub enum InterceptorError {
    #[error("{0} is not on a bpf filesystem (mount one with `mount -t bpf bpf /sys/fs/bpf`)")]
    NotBpffs(PathBuf),
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("loading the kernel programs: {0}")]
    Load(#[from] aya::EbpfError),
    #[error("kernel program {name}: {source}")]
    Program { name: String, source: aya::programs::ProgramError },
    #[error("pinning {path}: {source}")]
    Pin { path: PathBuf, source: aya::pin::PinError },
    #[error("link {path}: {source}")]
    Link { path: PathBuf, source: aya::programs::links::LinkError },
    #[error("map {name}: {source}")]
    Map { name: &'static str, source: aya::maps::MapError },
    #[error("{0} is not a cgroup v2 directory")]
    NotCgroup2(PathBuf),
    #[error("kernel object: {0}")]
    Object(String),
    #[error(transparent)]
    KernelTooOld(#[from] probe::KernelTooOld),
    #[error("replacing the program of link {path}: {source}")]
    LinkUpdate { path: PathBuf, source: std::io::Error },
}

/// What the kernel programs need to know, set on every start.
#[derive(Clone, Debug)]
pub struct InterceptSettings {
    pub bpffs: PathBuf,
    pub proxy_addresses: Vec<IpAddr>,
    pub proxy_port: u16,
    /// The cgroup the proxy runs in: its own sockets are left alone.
    pub proxy_cgroup: u64,
    /// Cgroup levels at which pod cgroups sit, for exemptions; `None`: none.
    pub exempt_levels: Option<(u32, u32)>,
    /// The proxy's DNS server port; `None` leaves port 53 alone.
    pub dns_port: Option<u16>,
    /// REGISTRY_ONLY at node level: deny UDP but DNS, drop what is not bound
    /// for the proxy.
    pub registry_only: bool,
    /// The programs log why they deny or drop (`--kernel-log`); off, the
    /// log lines are dead code the verifier removes.
    pub kernel_log: bool,
}

/// The running interceptor: pinned kernel state plus the handles the proxy uses.
pub struct Interceptor {
    pub orig_dst: std::sync::Arc<OrigDstLookup>,
    /// The kernel relay's maps; `None` when this kernel lacks the relay.
    pub relay_maps: Option<std::sync::Arc<RelayMaps>>,
    pub exempt: std::sync::Arc<ExemptCgroups>,
    stats: PerCpuArray<MapData, u64>,
    layout: PinLayout,
}

impl Interceptor {
    /// Puts this build's programs and maps in place and writes the proxy
    /// settings. Pins of this build are reused as they are. Pins of another
    /// build are replaced in place, their links kept attached (`install.rs`);
    /// with no links attached they are simply cleared first. `attach` then
    /// makes the set of intercepted cgroups exact.
    ///
    /// First of all the kernel is probed: a missing required feature is an
    /// error naming it; a missing relay feature leaves the relay out.
    pub fn install(settings: &InterceptSettings) -> Result<Self, InterceptorError> {
        let relay = check_kernel()?;
        let layout = PinLayout::new(&settings.bpffs);
        layout.ensure_bpffs()?;
        let _lock = layout.lock()?;
        let cfg = proxy_config(settings);
        let log_level = kernel_log::level(settings.kernel_log);
        let (stamp, pinned) = (load::build_stamp(log_level), load::pinned_stamp(&layout));
        if layout.is_complete(relay) && pinned == Some(stamp) {
            tracing::info!(bpffs = %layout.root.display(), "reusing pinned kernel programs and maps");
        } else {
            if !layout.has_links() {
                layout.clear()?;
                layout.ensure_bpffs()?;
            }
            tracing::info!(stamp = format!("{stamp:016x}"), pinned = ?pinned.map(|p| format!("{p:016x}")), "installing this build's kernel programs");
            install::install_build(&layout, &cfg, relay, log_level)?;
        }
        write_proxy_config(&layout, &cfg)?;
        log_verified(&layout, relay);
        let orig_dst = std::sync::Arc::new(OrigDstLookup::open(&layout)?);
        let stats = PerCpuArray::try_from(Map::PerCpuArray(open_map(&layout, map_names::STATS)?))
            .map_err(|source| InterceptorError::Map { name: map_names::STATS, source })?;
        let relay_maps = if relay { Some(std::sync::Arc::new(RelayMaps::open(&layout)?)) } else { None };
        let exempt = std::sync::Arc::new(ExemptCgroups::open(&layout)?);
        Ok(Self { orig_dst, relay_maps, exempt, stats, layout })
    }

    /// Makes the attached cgroups exactly `cgroups`: new ones are attached,
    /// pinned links of listed ones are kept, others are detached.
    pub fn attach(&self, cgroups: &[PathBuf]) -> Result<(), InterceptorError> {
        attach::reconcile(&self.layout, cgroups)
    }

    /// Removes every link, program and map pinned under `bpffs`.
    pub fn detach(bpffs: &std::path::Path) -> Result<(), InterceptorError> {
        let layout = PinLayout::new(bpffs);
        if !layout.root.exists() {
            return Ok(());
        }
        let lock = layout.lock()?;
        layout.clear()?;
        drop(lock);
        layout.remove_root()
    }

    /// Prints the kernel programs' log lines (`--kernel-log`) until the
    /// process ends.
    pub fn spawn_kernel_log(&self) -> Result<(), InterceptorError> {
        kernel_log::spawn(&self.layout)
    }

    /// Kernel counters summed over CPUs, by name.
    pub fn stats(&self) -> Vec<(&'static str, u64)> {
        Stat::ALL
            .iter()
            .map(|s| {
                let total = self
                    .stats
                    .get(&(*s as u32), 0)
                    .map(|v| v.iter().sum())
                    .unwrap_or(0);
                (s.name(), total)
            })
            .collect()
    }
}

/// One line: how many instructions the verifier processed for each pinned
/// program (kernels from 5.16 say; older ones show `?`), and their size.
fn log_verified(layout: &PinLayout, relay: bool) {
    let counts: Vec<String> = load::programs(relay)
        .map(|name| match aya::programs::ProgramInfo::from_pin(layout.prog(name)) {
            Ok(info) => {
                let verified = info.verified_instruction_count().map_or("?".into(), |n| n.to_string());
                let bytes = info.size_translated().map_or("?".into(), |n| n.to_string());
                format!("{name}={verified}/{bytes}B")
            }
            Err(e) => format!("{name}=({e})"),
        })
        .collect();
    tracing::info!(programs = %counts.join(" "), "verifier: processed instructions / translated size per program");
}

/// Probes the kernel; `Ok(relay)` says whether the kernel relay can run.
fn check_kernel() -> Result<bool, InterceptorError> {
    let pretend_var = std::env::var("GATEWAY_KERNEL_PRETEND_MISSING").ok();
    let pretend = probe::pretend_missing(pretend_var.as_deref());
    if !pretend.is_empty() {
        tracing::warn!(features = ?pretend, "GATEWAY_KERNEL_PRETEND_MISSING: probing these as missing");
    }
    let release = probe_kernel::kernel_release();
    let verdict = probe::Verdict::judge(&probe_kernel::probe_all(&pretend));
    if let Some(err) = verdict.error(&release) {
        return Err(err.into());
    }
    if let Some(note) = verdict.relay_note() {
        tracing::warn!(kernel = %release, "{note}");
    } else {
        tracing::info!(kernel = %release, "kernel features probed: all present");
    }
    Ok(verdict.relay_available())
}

fn proxy_config(s: &InterceptSettings) -> ProxyConfig {
    let mut cfg = ProxyConfig {
        port: s.proxy_port,
        dns_port: s.dns_port.unwrap_or(0),
        proxy_cgroup: s.proxy_cgroup,
        ..Default::default()
    };
    if let Some((min, max)) = s.exempt_levels {
        (cfg.exempt_level_min, cfg.exempt_level_max) = (min, max);
    }
    if s.registry_only {
        cfg.flags |= PROXY_DENY_UDP | PROXY_BACKSTOP;
    }
    for ip in &s.proxy_addresses {
        match ip {
            IpAddr::V4(v4) => {
                cfg.addr4 = v4.octets();
                cfg.flags |= PROXY_HAS_V4;
            }
            IpAddr::V6(v6) => {
                cfg.addr6 = v6.octets();
                cfg.flags |= PROXY_HAS_V6;
            }
        }
    }
    cfg
}

pub(crate) fn open_map(layout: &PinLayout, name: &'static str) -> Result<MapData, InterceptorError> {
    MapData::from_pin(layout.map(name)).map_err(|source| InterceptorError::Map { name, source })
}

fn write_proxy_config(layout: &PinLayout, cfg: &ProxyConfig) -> Result<(), InterceptorError> {
    let name = map_names::PROXY_CONFIG;
    let mut array: Array<MapData, ProxyConfig> =
        Array::try_from(Map::Array(open_map(layout, name)?))
            .map_err(|source| InterceptorError::Map { name, source })?;
    array.set(0, cfg, 0).map_err(|source| InterceptorError::Map { name, source })
}
