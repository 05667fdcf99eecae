//! Host names: validation, short-name expansion, wildcard matching, and the
//! `namespace/host` form used by Gateway servers.

use serde::Serialize;

/// DNS suffix that short Kubernetes service names expand to.
pub const CLUSTER_DOMAIN: &str = "cluster.local";

/// Why a host is not valid, as a sentence fragment for messages.
pub(crate) fn host_problem(host: &str) -> Option<String> {
    if host.is_empty() {
        return Some("host is empty; give a DNS name such as `example.com`".into());
    }
    if host == "*" {
        return None;
    }
    let body = host.strip_prefix("*.").unwrap_or(host);
    if body.contains('*') {
        return Some(format!(
            "`{host}` has a wildcard that is not a leading `*.`; write it like `*.example.com`"
        ));
    }
    if host.len() > 253 {
        return Some(format!("`{host}` is longer than 253 characters"));
    }
    for label in body.split('.') {
        let ok = !label.is_empty()
            && label.len() <= 63
            && label
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-')
            && !label.starts_with('-')
            && !label.ends_with('-');
        if !ok {
            return Some(format!(
                "`{host}` is not a valid DNS name; labels hold letters, digits and `-` only"
            ));
        }
    }
    None
}

/// Whether `host` is an IP address (allowed where Istio allows addresses).
pub(crate) fn is_ip(host: &str) -> bool {
    host.parse::<std::net::IpAddr>().is_ok()
}

/// Expands a short name the Istio way: `reviews` in namespace `bookinfo`
/// becomes `reviews.bookinfo.svc.cluster.local`. Names with a dot,
/// wildcards and addresses are kept as written (lowercased).
pub fn expand_host(host: &str, namespace: &str) -> String {
    let host = host.to_ascii_lowercase();
    if host.contains('.') || host.starts_with('*') || is_ip(&host) || host.contains(':') {
        host
    } else {
        format!("{host}.{namespace}.svc.{CLUSTER_DOMAIN}")
    }
}

/// Whether `pattern` (possibly `*` or `*.suffix`) matches `host`. A wildcard
/// host is matched as a set: `*.a.com` matches `*.b.a.com` too.
pub fn host_matches(pattern: &str, host: &str) -> bool {
    if pattern == "*" {
        return true;
    }
    if let Some(suffix) = pattern.strip_prefix('*') {
        // suffix starts with '.'
        let host_body = host.strip_prefix('*').unwrap_or(host);
        return host_body.len() > suffix.len() && host_body.ends_with(suffix)
            || (host.starts_with('*') && host_body == suffix);
    }
    !host.starts_with('*') && pattern.eq_ignore_ascii_case(host)
}

/// Whether two host patterns share at least one concrete host.
pub fn hosts_overlap(a: &str, b: &str) -> bool {
    host_matches(a, b) || host_matches(b, a)
}

/// Which namespaces a Gateway server host admits VirtualServices from.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(tag = "kind", content = "namespace", rename_all = "snake_case")]
pub enum NamespaceScope {
    /// `*/` or no prefix: any namespace.
    Any,
    /// `./`: the Gateway's own namespace.
    Own,
    /// `~/`: no namespace (the host is only used for TLS/SNI).
    None,
    /// `ns/`: that namespace.
    Named(String),
}

/// A Gateway server host: namespace scope and host pattern.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct ServerHost {
    pub scope: NamespaceScope,
    pub host: String,
}

impl ServerHost {
    /// Splits `ns/host`; the host part is lowercased.
    pub fn parse(text: &str) -> ServerHost {
        let (scope, host) = match text.split_once('/') {
            Some(("*", h)) => (NamespaceScope::Any, h),
            Some((".", h)) => (NamespaceScope::Own, h),
            Some(("~", h)) => (NamespaceScope::None, h),
            Some((ns, h)) => (NamespaceScope::Named(ns.to_string()), h),
            None => (NamespaceScope::Any, text),
        };
        ServerHost {
            scope,
            host: host.to_ascii_lowercase(),
        }
    }

    /// Whether a VirtualService in `vs_namespace` may bind `host` here, for
    /// a Gateway in `gateway_namespace`.
    pub fn admits(&self, gateway_namespace: &str, vs_namespace: &str, host: &str) -> bool {
        let ns_ok = match &self.scope {
            NamespaceScope::Any => true,
            NamespaceScope::Own => gateway_namespace == vs_namespace,
            NamespaceScope::None => false,
            NamespaceScope::Named(ns) => ns == vs_namespace,
        };
        ns_ok && hosts_overlap(&self.host, host)
    }
}

/// The reserved gateway name meaning "all sidecars in the mesh".
pub const MESH_GATEWAY: &str = "mesh";

/// A VirtualService's reference to a Gateway.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum GatewayRef {
    Mesh,
    Gateway { namespace: String, name: String },
}

impl GatewayRef {
    /// Parses `mesh`, `name` (in `namespace`) or `ns/name`.
    pub fn parse(text: &str, namespace: &str) -> GatewayRef {
        if text == MESH_GATEWAY {
            return GatewayRef::Mesh;
        }
        match text.split_once('/') {
            Some((ns, name)) => GatewayRef::Gateway {
                namespace: ns.into(),
                name: name.into(),
            },
            None => GatewayRef::Gateway {
                namespace: namespace.into(),
                name: text.into(),
            },
        }
    }
}
