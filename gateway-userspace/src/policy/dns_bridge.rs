//! Where policy meets the DNS server: which names a workload may resolve
//! (and to what), and what the DNS server told it, for the decision.

use std::{net::IpAddr, sync::Arc};

use super::{DnsKnowledge, EgressPolicy, registry::canonical};
use crate::{
    config::resources::service_entry::Resolution,
    dns::{DnsMemory, NameAnswer, NameRegistry},
};

/// Where the policy in force comes from (the live configuration's store):
/// each question is answered with the policy current when it is asked.
pub trait PolicySource: Send + Sync {
    fn current_policy(&self) -> Arc<EgressPolicy>;
}

/// Answers the DNS server's question from the live configuration.
pub struct RegisteredNames {
    pub config: Arc<dyn PolicySource>,
    /// On a node agent, the pods of this node, known by their addresses;
    /// set once they are synced.
    pub pods: Arc<std::sync::OnceLock<Arc<crate::kubernetes::NodeAgent>>>,
    /// Where refused names are recorded.
    pub audit: crate::access_log::AccessLog,
}

impl RegisteredNames {
    /// The querying workload: a pod by its own address, else a WorkloadEntry's.
    fn workload(&self, policy: &EgressPolicy, client: IpAddr) -> super::WorkloadIdentity {
        let pod = self.pods.get().and_then(|pods| pods.by_ip(client));
        pod.map(|p| p.workload).unwrap_or_else(|| policy.identify(client, None))
    }
}

impl NameRegistry for RegisteredNames {
    fn lookup(&self, client: IpAddr, name: &str) -> NameAnswer {
        let policy = &*self.config.current_policy();
        // DNS queries carry no cgroup: by address.
        let workload = self.workload(policy, client);
        let scope = policy.scope_for(&workload);
        let registry = policy.registry_for(&workload.namespace);
        for (svc, host) in registry.by_name(name) {
            if !svc.ports.iter().any(|p| scope.admits(svc, host, p.number)) {
                continue;
            }
            let addresses: Vec<IpAddr> = match svc.resolution {
                Resolution::Static => svc.endpoints.iter().map(|e| e.ip).collect(),
                // Single-address entries in `addresses` are the name's addresses.
                _ => svc.addresses.iter().filter(|c| c.prefix == host_prefix(c.addr)).map(|c| c.addr).collect(),
            };
            let resolve = addresses.is_empty();
            return NameAnswer::Registered { addresses, resolve };
        }
        NameAnswer::Unregistered
    }

    fn refused(&self, client: IpAddr, name: &str, qtype: &str) {
        let workload = self.workload(&self.config.current_policy(), client);
        let record = crate::access_log::DnsRecord::refused(client, workload, name, qtype);
        let audit = self.audit.clone();
        tokio::spawn(async move { audit.write_dns(&record).await });
    }
}

fn host_prefix(ip: IpAddr) -> u8 {
    if ip.is_ipv4() { 32 } else { 128 }
}

impl DnsKnowledge for DnsMemory {
    fn answered(&self, client: IpAddr, name: &str, ip: IpAddr) -> bool {
        DnsMemory::answered(self, client, name, canonical(ip))
    }

    fn names_for(&self, client: IpAddr, ip: IpAddr) -> Vec<String> {
        DnsMemory::names_for(self, client, canonical(ip))
    }
}
