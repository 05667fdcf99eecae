//! Audit mode's metric: the calls allowed that the registry would have
//! refused, by workload, host and reason. The host is what the client named
//! (SNI, Host) or dialled, so it comes from the network: the distinct
//! (workload, host) pairs are capped at [`MAX_SERIES`], and calls beyond
//! them are counted under the host `other`; a host is cut to 253 bytes and
//! any byte that cannot be in a name or an address shown as `_`.

use std::{collections::HashSet, sync::Mutex};

use prometheus_client::{
    encoding::EncodeLabelSet,
    metrics::{counter::Counter, family::Family},
};

use crate::policy::WorkloadIdentity;

/// Distinct (workload, host) pairs kept as series at most.
pub const MAX_SERIES: usize = 1000;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct WouldDenyLabels {
    /// `namespace/name`, as the other metrics name a workload.
    pub workload: String,
    /// The name sent (SNI, Host, lower case, no port) or the dialled
    /// `address:port`; `other` past the cap.
    pub host: String,
    pub reason: &'static str,
}

#[derive(Default)]
pub struct WouldDeny {
    pub family: Family<WouldDenyLabels, Counter>,
    series: Mutex<HashSet<(String, String)>>,
}

impl WouldDeny {
    pub fn count(&self, workload: &WorkloadIdentity, host: String, reason: &'static str) {
        let host = label_safe(&host);
        let workload = format!("{}/{}", workload.namespace, workload.name.as_deref().unwrap_or("unknown"));
        let host = {
            let mut series = self.series.lock().expect("series lock");
            let key = (workload.clone(), host);
            if series.contains(&key) || series.len() < MAX_SERIES {
                let host = key.1.clone();
                series.insert(key);
                host
            } else {
                "other".to_string()
            }
        };
        self.family.get_or_create(&WouldDenyLabels { workload, host, reason }).inc();
    }
}

/// A name or `address:port` as a label value: letters, digits, `.-:[]_`.
fn label_safe(host: &str) -> String {
    host.bytes().take(253).map(|b| if b.is_ascii_alphanumeric() || b".-:[]_".contains(&b) { char::from(b) } else { '_' }).collect()
}
