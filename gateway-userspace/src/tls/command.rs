//! `gateway certs`: a test PKI in one directory. The CA there is reused when
//! present, so certificates can be added later under the same CA.

use std::{net::IpAddr, path::PathBuf};

use super::{CaFiles, IssueRequest, SpiffeId, TlsError, generate_ca, issue};

/// Arguments of `gateway certs`.
#[derive(Debug, Clone, PartialEq, Eq, clap::Args)]
pub struct CertsArgs {
    /// Directory for `ca.crt`, `ca.key` and the issued `<name>.crt` and
    /// `<name>.key`; an existing CA there is reused.
    #[arg(long)]
    pub out: PathBuf,
    /// SPIFFE trust domain of the workload identities.
    #[arg(long, default_value = "cluster.local")]
    pub trust_domain: String,
    /// A workload identity "<namespace>/<service-account>": a client and
    /// server certificate named "<namespace>-<service-account>" carrying
    /// spiffe://<trust-domain>/ns/<namespace>/sa/<service-account>.
    #[arg(long = "workload", value_name = "NS/SA")]
    pub workloads: Vec<String>,
    /// A plain server certificate "<name>=<host>[,<host>...]", each host a
    /// DNS name or an IP address.
    #[arg(long = "server", value_name = "NAME=HOST,...")]
    pub servers: Vec<String>,
}

/// Creates (or reuses) the CA in `args.out` and issues every requested
/// certificate, printing one line per file written. Every argument is
/// checked before anything is written.
pub fn certs_command(args: &CertsArgs) -> Result<(), TlsError> {
    let requests = plan(args)?;
    let ca = CaFiles::in_dir(&args.out);
    if ca.exist() {
        println!("reusing CA {}", ca.cert.display());
    } else {
        generate_ca(&args.out, &format!("{} test CA", args.trust_domain))?;
        println!("wrote CA {} and {}", ca.cert.display(), ca.key.display());
    }
    for req in &requests {
        let files = issue(&ca, &args.out, req)?;
        let what = match &req.spiffe {
            Some(id) => id.uri(),
            None => names(req).join(","),
        };
        println!(
            "wrote {} and {} for {what}",
            files.cert.display(),
            files.key.display()
        );
    }
    Ok(())
}

/// The certificates the arguments ask for, in argument order.
pub(super) fn plan(args: &CertsArgs) -> Result<Vec<IssueRequest>, TlsError> {
    let mut requests = Vec::new();
    for workload in &args.workloads {
        requests.push(workload_request(&args.trust_domain, workload)?);
    }
    for server in &args.servers {
        requests.push(server_request(server)?);
    }
    if requests.is_empty() {
        tracing::info!("no --workload or --server given: only the CA is made");
    }
    let mut seen = std::collections::HashSet::new();
    for req in &requests {
        if !seen.insert(req.name.as_str()) {
            return Err(TlsError::Settings(format!(
                "two certificates would be named {:?}",
                req.name
            )));
        }
    }
    Ok(requests)
}

/// `"<ns>/<sa>"` to a client and server certificate named `<ns>-<sa>`.
fn workload_request(trust_domain: &str, arg: &str) -> Result<IssueRequest, TlsError> {
    let (namespace, service_account) = arg.split_once('/').ok_or_else(|| {
        TlsError::Settings(format!(
            "--workload {arg:?} is not <namespace>/<service-account>"
        ))
    })?;
    let id = SpiffeId::new(trust_domain, namespace, service_account)?;
    Ok(IssueRequest {
        name: format!("{namespace}-{service_account}"),
        spiffe: Some(id),
        client: true,
        server: true,
        ..IssueRequest::default()
    })
}

/// `"<name>=<host>,<host>"` to a server certificate named `<name>`.
fn server_request(arg: &str) -> Result<IssueRequest, TlsError> {
    let bad = || TlsError::Settings(format!("--server {arg:?} is not <name>=<host>[,<host>...]"));
    let (name, hosts) = arg.split_once('=').ok_or_else(bad)?;
    let mut req = IssueRequest {
        name: name.trim().to_owned(),
        server: true,
        ..IssueRequest::default()
    };
    for host in hosts.split(',').map(str::trim) {
        if host.is_empty() {
            return Err(bad());
        }
        match host.parse::<IpAddr>() {
            Ok(ip) => req.ip_addresses.push(ip),
            Err(_) => req.dns_names.push(host.to_owned()),
        }
    }
    Ok(req)
}

fn names(req: &IssueRequest) -> Vec<String> {
    let ips = req.ip_addresses.iter().map(IpAddr::to_string);
    req.dns_names.iter().cloned().chain(ips).collect()
}
