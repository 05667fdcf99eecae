//! `DestinationRule` (networking.istio.io): traffic policy and subsets for
//! a host.

use super::common::{Labels, Meta, export_to, host, labels, port_selector, workload_selector};
use super::gateway::resolve_path;
use crate::config::decode::{Cx, IstioEnum, istio_enum};
use crate::config::findings::Code;
use crate::config::yaml::Node;
use serde::Serialize;
use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::Duration;

/// A DestinationRule resource.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DestinationRule {
    pub meta: Meta,
    /// Host, short name expanded; may be a wildcard.
    pub host: String,
    pub traffic_policy: Option<TrafficPolicy>,
    pub subsets: Vec<Subset>,
    pub export_to: Vec<String>,
    pub workload_selector: Option<Labels>,
}

impl DestinationRule {
    pub fn subset(&self, name: &str) -> Option<&Subset> {
        self.subsets.iter().find(|s| s.name == name)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Subset {
    pub name: String,
    pub labels: Labels,
    pub traffic_policy: Option<TrafficPolicy>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct TrafficPolicy {
    pub load_balancer: Option<LoadBalancer>,
    pub connection_pool: Option<ConnectionPool>,
    pub outlier_detection: Option<OutlierDetection>,
    pub tls: Option<ClientTls>,
    pub port_level_settings: Vec<PortTrafficPolicy>,
}

/// Policy for one destination port.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PortTrafficPolicy {
    pub port: Option<u16>,
    pub load_balancer: Option<LoadBalancer>,
    pub connection_pool: Option<ConnectionPool>,
    pub outlier_detection: Option<OutlierDetection>,
    pub tls: Option<ClientTls>,
}

istio_enum!(
    SimpleLb {
        Unspecified = "UNSPECIFIED", LeastConn = "LEAST_CONN", Random = "RANDOM",
        Passthrough = "PASSTHROUGH", RoundRobin = "ROUND_ROBIN", LeastRequest = "LEAST_REQUEST",
    }
);

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LoadBalancer {
    pub simple: Option<SimpleLb>,
    pub consistent_hash: Option<ConsistentHash>,
    pub warmup_duration: Option<Duration>,
}

/// Key of a consistent-hash load balancer.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ConsistentHash {
    HttpHeaderName(String),
    HttpCookie {
        name: String,
        path: Option<String>,
        ttl: Option<Duration>,
    },
    UseSourceIp,
    HttpQueryParameterName(String),
}

istio_enum!(
    H2UpgradePolicy { Default = "DEFAULT", DoNotUpgrade = "DO_NOT_UPGRADE", Upgrade = "UPGRADE" }
);

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ConnectionPool {
    pub tcp_max_connections: Option<u32>,
    pub tcp_connect_timeout: Option<Duration>,
    pub tcp_max_connection_duration: Option<Duration>,
    pub tcp_idle_timeout: Option<Duration>,
    pub http1_max_pending_requests: Option<u32>,
    pub http2_max_requests: Option<u32>,
    pub max_requests_per_connection: Option<u32>,
    pub max_retries: Option<u32>,
    pub http_idle_timeout: Option<Duration>,
    pub h2_upgrade_policy: Option<H2UpgradePolicy>,
    pub use_client_protocol: Option<bool>,
    pub max_concurrent_streams: Option<u32>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct OutlierDetection {
    pub consecutive_5xx_errors: Option<u32>,
    pub consecutive_gateway_errors: Option<u32>,
    pub consecutive_local_origin_failures: Option<u32>,
    pub split_external_local_origin_errors: Option<bool>,
    pub interval: Option<Duration>,
    pub base_ejection_time: Option<Duration>,
    pub max_ejection_percent: Option<u32>,
    pub min_health_percent: Option<u32>,
}

istio_enum!(
    /// How connections to the upstream use TLS.
    ClientTlsMode { Disable = "DISABLE", Simple = "SIMPLE", Mutual = "MUTUAL", IstioMutual = "ISTIO_MUTUAL" }
);

/// TLS origination towards the destination.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ClientTls {
    pub mode: ClientTlsMode,
    pub client_certificate: Option<PathBuf>,
    pub private_key: Option<PathBuf>,
    pub ca_certificates: Option<PathBuf>,
    pub credential_name: Option<String>,
    pub subject_alt_names: Vec<String>,
    pub sni: Option<String>,
    pub insecure_skip_verify: Option<bool>,
}

pub(crate) fn decode(cx: &mut Cx<'_>, spec: &Node, meta: Meta) -> Option<DestinationRule> {
    let mut f = cx.map(spec, "spec")?;
    let host = f.req(cx, "host", |cx, n, p| host(cx, n, p, true));
    let traffic_policy = f.get(cx, "trafficPolicy", traffic_policy);
    let mut seen = BTreeSet::new();
    let subsets = f.list(cx, "subsets", |cx, n, p| {
        let s = subset(cx, n, p)?;
        if !seen.insert(s.name.clone()) {
            let field = format!("{p}.name");
            let msg = format!(
                "subset `{}` is defined twice; give each subset a unique name",
                s.name
            );
            cx.report(Code::DuplicateSubset, cx.pos_of(&field), &field, msg);
            return None;
        }
        Some(s)
    });
    let export_to = export_to(cx, &mut f);
    let workload_selector = f.get(cx, "workloadSelector", workload_selector);
    f.finish(cx);
    Some(DestinationRule {
        meta,
        host: host?,
        traffic_policy,
        subsets,
        export_to,
        workload_selector,
    })
}

fn subset(cx: &mut Cx<'_>, n: &Node, p: &str) -> Option<Subset> {
    let mut f = cx.map(n, p)?;
    let name = f.req(cx, "name", |cx, n, p| cx.string(n, p));
    let labels = f.get(cx, "labels", labels).unwrap_or_default();
    let traffic_policy = f.get(cx, "trafficPolicy", traffic_policy);
    f.finish(cx);
    Some(Subset {
        name: name?,
        labels,
        traffic_policy,
    })
}

fn traffic_policy(cx: &mut Cx<'_>, n: &Node, p: &str) -> Option<TrafficPolicy> {
    let mut f = cx.map(n, p)?;
    let t = TrafficPolicy {
        load_balancer: f.get(cx, "loadBalancer", load_balancer),
        connection_pool: f.get(cx, "connectionPool", connection_pool),
        outlier_detection: f.get(cx, "outlierDetection", outlier_detection),
        tls: f.get(cx, "tls", client_tls),
        port_level_settings: f.list(cx, "portLevelSettings", port_policy),
    };
    f.ignore(&["tunnel", "proxyProtocol"]);
    f.finish(cx);
    Some(t)
}

fn port_policy(cx: &mut Cx<'_>, n: &Node, p: &str) -> Option<PortTrafficPolicy> {
    let mut f = cx.map(n, p)?;
    let t = PortTrafficPolicy {
        port: f.get(cx, "port", port_selector),
        load_balancer: f.get(cx, "loadBalancer", load_balancer),
        connection_pool: f.get(cx, "connectionPool", connection_pool),
        outlier_detection: f.get(cx, "outlierDetection", outlier_detection),
        tls: f.get(cx, "tls", client_tls),
    };
    f.finish(cx);
    Some(t)
}

fn load_balancer(cx: &mut Cx<'_>, n: &Node, p: &str) -> Option<LoadBalancer> {
    let mut f = cx.map(n, p)?;
    let simple = f.enumeration(cx, "simple");
    let consistent_hash = f.get(cx, "consistentHash", consistent_hash);
    let warmup_duration = f.duration(cx, "warmupDurationSecs");
    let both = f.has("simple") && f.has("consistentHash");
    f.ignore(&["localityLbSetting", "warmup"]);
    f.finish(cx);
    if both {
        let field = format!("{p}.consistentHash");
        cx.report(
            Code::ConflictingFields,
            cx.pos_of(&field),
            &field,
            "`simple` and `consistentHash` cannot be combined; keep one",
        );
    }
    Some(LoadBalancer {
        simple,
        consistent_hash,
        warmup_duration,
    })
}

fn consistent_hash(cx: &mut Cx<'_>, n: &Node, p: &str) -> Option<ConsistentHash> {
    let mut f = cx.map(n, p)?;
    let header = f
        .string(cx, "httpHeaderName")
        .map(ConsistentHash::HttpHeaderName);
    let cookie = f.get(cx, "httpCookie", |cx, n, p| {
        let mut c = cx.map(n, p)?;
        let name = c.req(cx, "name", |cx, n, p| cx.string(n, p));
        let path = c.string(cx, "path");
        let ttl = c.duration(cx, "ttl");
        c.ignore(&["attributes"]);
        c.finish(cx);
        Some(ConsistentHash::HttpCookie {
            name: name?,
            path,
            ttl,
        })
    });
    let source_ip = f
        .boolean(cx, "useSourceIp")
        .filter(|b| *b)
        .map(|_| ConsistentHash::UseSourceIp);
    let query = f
        .string(cx, "httpQueryParameterName")
        .map(ConsistentHash::HttpQueryParameterName);
    f.ignore(&["ringHash", "maglev", "minimumRingSize"]);
    f.finish(cx);
    header.or(cookie).or(source_ip).or(query)
}

fn count(cx: &mut Cx<'_>, n: &Node, p: &str) -> Option<u32> {
    cx.int(n, p, 0, i64::from(i32::MAX)).map(|v| v as u32)
}

fn connection_pool(cx: &mut Cx<'_>, n: &Node, p: &str) -> Option<ConnectionPool> {
    let mut f = cx.map(n, p)?;
    let mut pool = ConnectionPool::default();
    f.get(cx, "tcp", |cx, n, p| {
        let mut t = cx.map(n, p)?;
        pool.tcp_max_connections = t.get(cx, "maxConnections", count);
        pool.tcp_connect_timeout = t.duration(cx, "connectTimeout");
        pool.tcp_max_connection_duration = t.duration(cx, "maxConnectionDuration");
        pool.tcp_idle_timeout = t.duration(cx, "idleTimeout");
        t.ignore(&["tcpKeepalive"]);
        t.finish(cx);
        Some(())
    });
    f.get(cx, "http", |cx, n, p| {
        let mut h = cx.map(n, p)?;
        pool.http1_max_pending_requests = h.get(cx, "http1MaxPendingRequests", count);
        pool.http2_max_requests = h.get(cx, "http2MaxRequests", count);
        pool.max_requests_per_connection = h.get(cx, "maxRequestsPerConnection", count);
        pool.max_retries = h.get(cx, "maxRetries", count);
        pool.http_idle_timeout = h.duration(cx, "idleTimeout");
        pool.h2_upgrade_policy = h.enumeration(cx, "h2UpgradePolicy");
        pool.use_client_protocol = h.boolean(cx, "useClientProtocol");
        pool.max_concurrent_streams = h.get(cx, "maxConcurrentStreams", count);
        h.finish(cx);
        Some(())
    });
    f.finish(cx);
    Some(pool)
}

fn outlier_detection(cx: &mut Cx<'_>, n: &Node, p: &str) -> Option<OutlierDetection> {
    let mut f = cx.map(n, p)?;
    let pct = |cx: &mut Cx<'_>, n: &Node, p: &str| cx.int(n, p, 0, 100).map(|v| v as u32);
    let o = OutlierDetection {
        consecutive_5xx_errors: f.get(cx, "consecutive5xxErrors", count),
        consecutive_gateway_errors: f.get(cx, "consecutiveGatewayErrors", count),
        consecutive_local_origin_failures: f.get(cx, "consecutiveLocalOriginFailures", count),
        split_external_local_origin_errors: f.boolean(cx, "splitExternalLocalOriginErrors"),
        interval: f.duration(cx, "interval"),
        base_ejection_time: f.duration(cx, "baseEjectionTime"),
        max_ejection_percent: f.get(cx, "maxEjectionPercent", pct),
        min_health_percent: f.get(cx, "minHealthPercent", pct),
    };
    f.ignore(&["consecutiveErrors"]);
    f.finish(cx);
    Some(o)
}

fn file_path(cx: &mut Cx<'_>, n: &Node, p: &str) -> Option<PathBuf> {
    cx.string(n, p).map(|s| resolve_path(cx.file, &s))
}

fn client_tls(cx: &mut Cx<'_>, n: &Node, p: &str) -> Option<ClientTls> {
    let mut f = cx.map(n, p)?;
    let t = ClientTls {
        mode: f.enumeration(cx, "mode").unwrap_or(ClientTlsMode::Disable),
        client_certificate: f.get(cx, "clientCertificate", file_path),
        private_key: f.get(cx, "privateKey", file_path),
        ca_certificates: f.get(cx, "caCertificates", file_path),
        credential_name: f.string(cx, "credentialName"),
        subject_alt_names: f.strings(cx, "subjectAltNames"),
        sni: f.string(cx, "sni"),
        insecure_skip_verify: f.boolean(cx, "insecureSkipVerify"),
    };
    f.ignore(&["caCrl"]);
    let pos = f.pos;
    f.finish(cx);
    if t.mode == ClientTlsMode::Mutual && t.credential_name.is_none() {
        for (value, key) in [
            (&t.client_certificate, "clientCertificate"),
            (&t.private_key, "privateKey"),
        ] {
            if value.is_none() {
                let msg = format!("MUTUAL origination needs `{key}` (or `credentialName`)");
                cx.report(Code::MissingField, pos, &format!("{p}.{key}"), msg);
            }
        }
    }
    Some(t)
}
