//! Command-line interface.

use std::{
    net::{IpAddr, SocketAddr},
    path::PathBuf,
};

use clap::{Args, Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(name = "gateway", version, about = "Egress and ingress gateway for Istio service meshes")]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Intercept the given cgroups and run the proxy.
    Run(RunArgs),
    /// Remove the kernel programs, links and maps pinned under --bpffs.
    Detach(DetachArgs),
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// Istio YAML files or directories of them.
    #[arg(long, required = true, num_args = 1..)]
    pub config: Vec<PathBuf>,
    /// cgroup v2 directories whose processes are intercepted.
    #[arg(long = "intercept-cgroup")]
    pub intercept_cgroups: Vec<PathBuf>,
    /// Address intercepted workloads reach the proxy on; at most one IPv4 and
    /// one IPv6 [default: 127.0.0.1 and ::1].
    #[arg(long = "proxy-address")]
    pub proxy_addresses: Vec<IpAddr>,
    /// Port of the proxy listeners.
    #[arg(long, default_value_t = 15001)]
    pub proxy_port: u16,
    /// Admin endpoint (/healthz, /ready, /stats).
    #[arg(long, default_value = "127.0.0.1:15000")]
    pub admin_address: SocketAddr,
    /// bpffs directory where the kernel programs, links and maps are pinned.
    #[arg(long, default_value = "/sys/fs/bpf/gateway")]
    pub bpffs: PathBuf,
    /// SO_MARK of the proxy's own upstream sockets, which are not intercepted.
    #[arg(long, default_value_t = 1337, value_parser = clap::value_parser!(u32).range(1..))]
    pub socket_mark: u32,
    /// Seconds to wait for an upstream TCP connect.
    #[arg(long, default_value_t = 10)]
    pub connect_timeout: u64,
}

#[derive(Debug, Args)]
pub struct DetachArgs {
    #[arg(long, default_value = "/sys/fs/bpf/gateway")]
    pub bpffs: PathBuf,
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
