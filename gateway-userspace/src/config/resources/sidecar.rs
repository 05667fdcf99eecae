//! `Sidecar` (networking.istio.io): which hosts a workload may reach and
//! what happens to traffic to unknown hosts.

use super::common::{Destination, Labels, Meta, destination, workload_selector};
use super::gateway::{Protocol, protocol, server_host};
use crate::config::decode::{Cx, IstioEnum, istio_enum};
use crate::config::findings::Code;
use crate::config::hosts::ServerHost;
use crate::config::yaml::Node;
use serde::Serialize;

istio_enum!(
    /// What to do with traffic to hosts not in the registry.
    OutboundMode { RegistryOnly = "REGISTRY_ONLY", AllowAny = "ALLOW_ANY" }
);

istio_enum!(
    CaptureMode { Default = "DEFAULT", IpTables = "IPTABLES", None = "NONE" }
);

/// A Sidecar resource.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Sidecar {
    pub meta: Meta,
    /// Workloads this applies to; `None` means every workload of the
    /// namespace.
    pub workload_selector: Option<Labels>,
    pub ingress: Vec<IngressListener>,
    pub egress: Vec<EgressListener>,
    pub outbound_traffic_policy: Option<OutboundTrafficPolicy>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ListenerPort {
    pub number: u16,
    pub protocol: Option<Protocol>,
    pub name: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EgressListener {
    pub port: Option<ListenerPort>,
    pub bind: Option<String>,
    pub capture_mode: Option<CaptureMode>,
    /// `namespace/host` entries.
    pub hosts: Vec<ServerHost>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct IngressListener {
    pub port: ListenerPort,
    pub bind: Option<String>,
    pub capture_mode: Option<CaptureMode>,
    pub default_endpoint: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OutboundTrafficPolicy {
    pub mode: OutboundMode,
    pub egress_proxy: Option<Destination>,
}

pub(crate) fn decode(cx: &mut Cx<'_>, spec: &Node, meta: Meta) -> Option<Sidecar> {
    let mut f = cx.map(spec, "spec")?;
    let workload_selector = f.get(cx, "workloadSelector", workload_selector);
    let ingress = f.list(cx, "ingress", ingress_listener);
    let egress = f.list(cx, "egress", egress_listener);
    let outbound_traffic_policy = f.get(cx, "outboundTrafficPolicy", |cx, n, p| {
        let mut o = cx.map(n, p)?;
        let mode = o.enumeration(cx, "mode").unwrap_or(OutboundMode::AllowAny);
        let egress_proxy = o.get(cx, "egressProxy", destination);
        o.finish(cx);
        Some(OutboundTrafficPolicy { mode, egress_proxy })
    });
    f.ignore(&["inboundConnectionPool"]);
    f.finish(cx);
    Some(Sidecar {
        meta,
        workload_selector,
        ingress,
        egress,
        outbound_traffic_policy,
    })
}

fn listener_port(cx: &mut Cx<'_>, n: &Node, p: &str) -> Option<ListenerPort> {
    let mut f = cx.map(n, p)?;
    let number = f.req(cx, "number", |cx, n, p| cx.port(n, p, false));
    let protocol = f.get(cx, "protocol", protocol);
    let name = f.string(cx, "name");
    f.ignore(&["targetPort"]);
    f.finish(cx);
    Some(ListenerPort {
        number: number?,
        protocol,
        name,
    })
}

fn egress_listener(cx: &mut Cx<'_>, n: &Node, p: &str) -> Option<EgressListener> {
    let mut f = cx.map(n, p)?;
    let port = f.get(cx, "port", listener_port);
    let bind = f.string(cx, "bind");
    let capture_mode = f.enumeration(cx, "captureMode");
    let hosts = f.req(cx, "hosts", |cx, n, p| {
        Some(cx.nonempty_list(n, p, "host", |cx, n, p| {
            let has_ns = matches!(&n.value, crate::config::yaml::Value::Str(s) if s.contains('/'));
            if !has_ns {
                let s = cx.string(n, p)?;
                let msg =
                    format!("`{s}` has no namespace; write it as `namespace/host`, e.g. `*/{s}`");
                cx.report(Code::InvalidHost, n.pos, p, msg);
                return None;
            }
            server_host(cx, n, p)
        }))
    });
    f.finish(cx);
    Some(EgressListener {
        port,
        bind,
        capture_mode,
        hosts: hosts?,
    })
}

fn ingress_listener(cx: &mut Cx<'_>, n: &Node, p: &str) -> Option<IngressListener> {
    let mut f = cx.map(n, p)?;
    let port = f.req(cx, "port", listener_port);
    let bind = f.string(cx, "bind");
    let capture_mode = f.enumeration(cx, "captureMode");
    let default_endpoint = f.string(cx, "defaultEndpoint");
    f.ignore(&["tls", "connectionPool"]);
    f.finish(cx);
    Some(IngressListener {
        port: port?,
        bind,
        capture_mode,
        default_endpoint,
    })
}
