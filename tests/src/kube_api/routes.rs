//! What a request path names (discovery, or a resource collection, object or subresource) and
//! the verb RBAC would check for it; every request is logged as an [`ApiRequest`].

/// What a path names.
#[derive(Debug, PartialEq, Eq)]
pub enum Route {
    /// `/version`
    Version,
    /// `/api`
    CoreVersions,
    /// `/apis`
    Groups,
    /// `/apis/<group>`
    Group(String),
    /// `/api/v1`, `/apis/<group>/<version>`
    GroupVersion {
        group: String,
        version: String,
    },
    Resource(ResourcePath),
    /// Anything else: 404.
    Unknown,
}

/// A resource path: `/api/v1/namespaces/<ns>/pods/<name>/status` and its shorter forms.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ResourcePath {
    pub group: String,
    pub version: String,
    pub namespace: Option<String>,
    pub plural: String,
    pub name: Option<String>,
    pub subresource: Option<String>,
}

pub fn parse(path: &str) -> Route {
    let segments: Vec<&str> = path
        .trim_start_matches('/')
        .trim_end_matches('/')
        .split('/')
        .collect();
    if segments.iter().any(|s| s.is_empty()) {
        return Route::Unknown;
    }
    match segments.as_slice() {
        ["version"] => Route::Version,
        ["api"] => Route::CoreVersions,
        ["apis"] => Route::Groups,
        ["apis", group] => Route::Group(group.to_string()),
        ["api", version] => Route::GroupVersion {
            group: String::new(),
            version: version.to_string(),
        },
        ["apis", group, version] => Route::GroupVersion {
            group: group.to_string(),
            version: version.to_string(),
        },
        ["api", version, rest @ ..] => resource("", version, rest),
        ["apis", group, version, rest @ ..] => resource(group, version, rest),
        _ => Route::Unknown,
    }
}

fn resource(group: &str, version: &str, rest: &[&str]) -> Route {
    let path = |namespace: Option<&str>, tail: &[&str]| {
        let owned = |s: Option<&&str>| s.map(|s| s.to_string());
        Route::Resource(ResourcePath {
            group: group.to_string(),
            version: version.to_string(),
            namespace: namespace.map(str::to_string),
            plural: tail[0].to_string(),
            name: owned(tail.get(1)),
            subresource: owned(tail.get(2)),
        })
    };
    match rest {
        // A namespace's own subresources: /api/v1/namespaces/<ns>/status (or finalize).
        ["namespaces", _, "status" | "finalize"] => path(None, rest),
        ["namespaces", ns, tail @ ..] if (1..=3).contains(&tail.len()) => path(Some(ns), tail),
        tail if (1..=3).contains(&tail.len()) => path(None, tail),
        _ => Route::Unknown,
    }
}

/// The verb RBAC checks for a resource request.
pub fn rbac_verb(method: &str, has_name: bool, watch: bool) -> &'static str {
    match (method, has_name) {
        ("GET" | "HEAD", _) if watch => "watch",
        ("GET" | "HEAD", true) => "get",
        ("GET" | "HEAD", false) => "list",
        ("POST", _) => "create",
        ("PUT", _) => "update",
        ("PATCH", _) => "patch",
        ("DELETE", true) => "delete",
        ("DELETE", false) => "deletecollection",
        _ => "unknown",
    }
}

/// One request the server answered, named as RBAC names it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiRequest {
    /// `get`, `list`, `watch`, `create`, `update`, `patch`, `delete`, `deletecollection`; for a
    /// non-resource URL (discovery, `/version`) the lower-cased HTTP method.
    pub verb: String,
    /// API group; `""` is the core group.
    pub group: String,
    pub version: String,
    /// Plural resource name; empty for a non-resource URL.
    pub resource: String,
    /// `status`, `approval`, or empty.
    pub subresource: String,
    pub namespace: Option<String>,
    pub name: Option<String>,
    /// The authenticated user name; empty when the token was refused.
    pub user: String,
    pub path: String,
    /// The raw query string.
    pub query: String,
    /// The HTTP status answered (a watch that then sent an `ERROR` event still counts as 200).
    pub code: u16,
}

impl ApiRequest {
    /// A request on a resource (as opposed to discovery or `/version`).
    pub fn is_resource(&self) -> bool {
        !self.resource.is_empty()
    }

    /// The resource as a ClusterRole rule names it: `pods`, `certificatesigningrequests/approval`.
    pub fn rbac_resource(&self) -> String {
        if self.subresource.is_empty() {
            self.resource.clone()
        } else {
            format!("{}/{}", self.resource, self.subresource)
        }
    }

    /// A decoded query parameter.
    pub fn param(&self, name: &str) -> Option<String> {
        let params = super::wire::parse_query(&self.query)?;
        params.into_iter().find(|(k, _)| k == name).map(|(_, v)| v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn res(path: &str) -> ResourcePath {
        match parse(path) {
            Route::Resource(r) => r,
            other => panic!("{path} parsed as {other:?}"),
        }
    }

    #[test]
    fn parses_discovery_and_resource_paths() {
        assert_eq!(parse("/version"), Route::Version);
        assert_eq!(parse("/api"), Route::CoreVersions);
        assert_eq!(parse("/apis/"), Route::Groups);
        assert_eq!(
            parse("/api/v1"),
            Route::GroupVersion {
                group: "".into(),
                version: "v1".into()
            }
        );
        assert_eq!(
            parse("/apis/apps/v1"),
            Route::GroupVersion {
                group: "apps".into(),
                version: "v1".into()
            }
        );
        let p = res("/api/v1/namespaces/ns1/pods/p1/status");
        assert_eq!(
            (
                p.namespace.as_deref(),
                p.plural.as_str(),
                p.name.as_deref(),
                p.subresource.as_deref()
            ),
            (Some("ns1"), "pods", Some("p1"), Some("status"))
        );
        let p = res("/api/v1/pods");
        assert_eq!(
            (p.namespace, p.plural.as_str(), p.name),
            (None, "pods", None)
        );
        let p = res("/api/v1/namespaces/ns1");
        assert_eq!(
            (p.namespace, p.plural.as_str(), p.name.as_deref()),
            (None, "namespaces", Some("ns1"))
        );
        let p = res("/api/v1/namespaces/ns1/status");
        assert_eq!(
            (
                p.plural.as_str(),
                p.name.as_deref(),
                p.subresource.as_deref()
            ),
            ("namespaces", Some("ns1"), Some("status"))
        );
        let p = res("/apis/certificates.k8s.io/v1/certificatesigningrequests/c1/approval");
        assert_eq!(
            (
                p.group.as_str(),
                p.name.as_deref(),
                p.subresource.as_deref()
            ),
            ("certificates.k8s.io", Some("c1"), Some("approval"))
        );
        assert_eq!(parse("/api/v1/namespaces/a/pods/b/c/d"), Route::Unknown);
        assert_eq!(parse("/healthz/x"), Route::Unknown);
        assert_eq!(parse("/api//v1"), Route::Unknown);
    }

    #[test]
    fn names_verbs_as_rbac_does() {
        assert_eq!(rbac_verb("GET", false, false), "list");
        assert_eq!(rbac_verb("GET", false, true), "watch");
        assert_eq!(rbac_verb("GET", true, true), "watch");
        assert_eq!(rbac_verb("GET", true, false), "get");
        assert_eq!(rbac_verb("DELETE", false, false), "deletecollection");
        assert_eq!(rbac_verb("PATCH", true, false), "patch");
    }
}
