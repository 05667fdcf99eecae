//! HTTP routes of a VirtualService: matches, destinations, redirects,
//! direct responses, rewrites, retries, faults, mirroring and CORS.

use super::common::{
    Destination, Headers, Labels, Pattern, StringMatch, destination, headers, labels, percent, regex,
    string_match, string_match_map,
};
use super::http_policy::{CorsPolicy, Fault, Mirror, Retries, cors, fault, mirror_policy, retries};
use super::virtual_service::{check_weights, gateway_ref, weight};
use crate::config::decode::{Cx, IstioEnum, istio_enum};
use crate::config::findings::Code;
use crate::config::hosts::GatewayRef;
use crate::config::yaml::Node;
use serde::Serialize;
use std::collections::BTreeMap;
use std::time::Duration;

/// One HTTP route: conditions and what to do with matching requests.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HttpRoute {
    pub name: Option<String>,
    pub matches: Vec<HttpMatch>,
    pub route: Vec<HttpRouteDestination>,
    pub redirect: Option<Redirect>,
    pub direct_response: Option<DirectResponse>,
    pub delegate: Option<Delegate>,
    pub rewrite: Option<Rewrite>,
    pub timeout: Option<Duration>,
    pub retries: Option<Retries>,
    pub fault: Option<Fault>,
    pub mirrors: Vec<Mirror>,
    pub cors_policy: Option<CorsPolicy>,
    pub headers: Option<Headers>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HttpMatch {
    pub name: Option<String>,
    pub uri: Option<StringMatch>,
    pub scheme: Option<StringMatch>,
    pub method: Option<StringMatch>,
    pub authority: Option<StringMatch>,
    pub headers: BTreeMap<String, StringMatch>,
    pub without_headers: BTreeMap<String, StringMatch>,
    pub query_params: BTreeMap<String, StringMatch>,
    pub port: Option<u16>,
    pub source_labels: Labels,
    pub gateways: Vec<GatewayRef>,
    pub ignore_uri_case: bool,
    pub source_namespace: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HttpRouteDestination {
    pub destination: Destination,
    pub weight: Option<u32>,
    pub headers: Option<Headers>,
}

istio_enum!(
    /// Which port a redirect keeps.
    RedirectPortSelection { FromProtocolDefault = "FROM_PROTOCOL_DEFAULT", FromRequestPort = "FROM_REQUEST_PORT" }
);

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Redirect {
    pub uri: Option<String>,
    pub authority: Option<String>,
    pub port: Option<u16>,
    pub derive_port: Option<RedirectPortSelection>,
    pub scheme: Option<String>,
    pub redirect_code: u16,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ResponseBody {
    String(String),
    /// Base64 text as written.
    Bytes(String),
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DirectResponse {
    pub status: u16,
    pub body: Option<ResponseBody>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Delegate {
    pub name: String,
    pub namespace: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Rewrite {
    pub uri: Option<String>,
    pub authority: Option<String>,
    /// `(match, rewrite)` of `uriRegexRewrite`.
    pub uri_regex: Option<(Pattern, String)>,
}

pub(crate) fn http_route(cx: &mut Cx<'_>, n: &Node, p: &str) -> Option<HttpRoute> {
    let mut f = cx.map(n, p)?;
    let name = f.string(cx, "name");
    let matches = f.list(cx, "match", http_match);
    let mut weights = Vec::new();
    let route = f.list(cx, "route", |cx, n, p| {
        let r = http_route_destination(cx, n, p);
        weights.push(r.as_ref().and_then(|r| r.weight));
        r
    });
    let redirect = f.get(cx, "redirect", redirect);
    let direct_response = f.get(cx, "directResponse", direct_response);
    let delegate = f.get(cx, "delegate", delegate);
    let rewrite = f.get(cx, "rewrite", rewrite);
    let timeout = f.duration(cx, "timeout");
    let retries = f.get(cx, "retries", retries);
    let fault = f.get(cx, "fault", fault);
    let mirror = f.get(cx, "mirror", destination);
    let mirror_percentage = f.get(cx, "mirrorPercentage", percent);
    let mut mirrors = f.list(cx, "mirrors", mirror_policy);
    let cors_policy = f.get(cx, "corsPolicy", cors);
    let headers = f.get(cx, "headers", headers);
    f.ignore(&["mirrorPercent", "mirror_percent"]);
    let actions: Vec<&str> = ["route", "redirect", "directResponse", "delegate"]
        .into_iter()
        .filter(|k| f.has(k))
        .collect();
    let pos = f.pos;
    f.finish(cx);
    check_weights(cx, &format!("{p}.route"), &weights);
    match actions.len() {
        0 => cx.report(
            Code::MissingField,
            pos,
            p,
            "an HTTP route needs one of `route`, `redirect`, `directResponse` or `delegate`",
        ),
        1 => {}
        _ => {
            let field = format!("{p}.{}", actions[1]);
            let msg = format!(
                "`{}` and `{}` cannot be combined; keep one of them",
                actions[0], actions[1]
            );
            cx.report(Code::ConflictingFields, cx.pos_of(&field), &field, msg);
        }
    }
    if let Some(d) = mirror {
        mirrors.insert(
            0,
            Mirror {
                destination: d,
                percentage: mirror_percentage.unwrap_or(100.0),
            },
        );
    }
    Some(HttpRoute {
        name,
        matches,
        route,
        redirect,
        direct_response,
        delegate,
        rewrite,
        timeout,
        retries,
        fault,
        mirrors,
        cors_policy,
        headers,
    })
}

fn http_match(cx: &mut Cx<'_>, n: &Node, p: &str) -> Option<HttpMatch> {
    let mut f = cx.map(n, p)?;
    let m = HttpMatch {
        name: f.string(cx, "name"),
        uri: f.get(cx, "uri", string_match),
        scheme: f.get(cx, "scheme", string_match),
        method: f.get(cx, "method", string_match),
        authority: f.get(cx, "authority", string_match),
        headers: f.get(cx, "headers", string_match_map).unwrap_or_default(),
        without_headers: f
            .get(cx, "withoutHeaders", string_match_map)
            .unwrap_or_default(),
        query_params: f
            .get(cx, "queryParams", string_match_map)
            .unwrap_or_default(),
        port: f.get(cx, "port", |cx, n, p| cx.port(n, p, false)),
        source_labels: f.get(cx, "sourceLabels", labels).unwrap_or_default(),
        gateways: f.list(cx, "gateways", gateway_ref),
        ignore_uri_case: f.boolean(cx, "ignoreUriCase").unwrap_or(false),
        source_namespace: f.string(cx, "sourceNamespace"),
    };
    f.ignore(&["statPrefix"]);
    f.finish(cx);
    Some(m)
}

fn http_route_destination(cx: &mut Cx<'_>, n: &Node, p: &str) -> Option<HttpRouteDestination> {
    let mut f = cx.map(n, p)?;
    let destination = f.req(cx, "destination", destination);
    let weight = f.get(cx, "weight", weight);
    let headers = f.get(cx, "headers", headers);
    f.finish(cx);
    Some(HttpRouteDestination {
        destination: destination?,
        weight,
        headers,
    })
}

pub(crate) fn status_code(cx: &mut Cx<'_>, n: &Node, p: &str) -> Option<u16> {
    cx.int(n, p, 200, 599).and_then(|v| u16::try_from(v).ok())
}

fn redirect(cx: &mut Cx<'_>, n: &Node, p: &str) -> Option<Redirect> {
    let mut f = cx.map(n, p)?;
    let r = Redirect {
        uri: f.string(cx, "uri"),
        authority: f.string(cx, "authority"),
        port: f.get(cx, "port", |cx, n, p| cx.port(n, p, false)),
        derive_port: f.enumeration(cx, "derivePort"),
        scheme: f.string(cx, "scheme"),
        redirect_code: f
            .get(cx, "redirectCode", |cx, n, p| cx.int(n, p, 300, 399))
            .map_or(301, |c| c as u16),
    };
    f.finish(cx);
    Some(r)
}

fn direct_response(cx: &mut Cx<'_>, n: &Node, p: &str) -> Option<DirectResponse> {
    let mut f = cx.map(n, p)?;
    let status = f.req(cx, "status", status_code);
    let body = f.get(cx, "body", |cx, n, p| {
        let mut b = cx.map(n, p)?;
        let s = b.string(cx, "string").map(ResponseBody::String);
        let bytes = b.string(cx, "bytes").map(ResponseBody::Bytes);
        b.finish(cx);
        s.or(bytes)
    });
    f.finish(cx);
    Some(DirectResponse {
        status: status?,
        body,
    })
}

fn delegate(cx: &mut Cx<'_>, n: &Node, p: &str) -> Option<Delegate> {
    let mut f = cx.map(n, p)?;
    let name = f.req(cx, "name", |cx, n, p| cx.string(n, p));
    let namespace = f
        .string(cx, "namespace")
        .unwrap_or_else(|| cx.namespace.clone());
    f.finish(cx);
    Some(Delegate {
        name: name?,
        namespace,
    })
}

fn rewrite(cx: &mut Cx<'_>, n: &Node, p: &str) -> Option<Rewrite> {
    let mut f = cx.map(n, p)?;
    let uri = f.string(cx, "uri");
    let authority = f.string(cx, "authority");
    let uri_regex = f.get(cx, "uriRegexRewrite", |cx, n, p| {
        let mut r = cx.map(n, p)?;
        let m = r.req(cx, "match", |cx, n, p| regex(cx, n, p, Pattern::anywhere));
        let w = r.req(cx, "rewrite", |cx, n, p| cx.string(n, p));
        r.finish(cx);
        Some((m?, w?))
    });
    let both = f.has("uri") && f.has("uriRegexRewrite");
    f.finish(cx);
    if both {
        let field = format!("{p}.uriRegexRewrite");
        cx.report(
            Code::ConflictingFields,
            cx.pos_of(&field),
            &field,
            "`uri` and `uriRegexRewrite` cannot be combined; keep one",
        );
    }
    Some(Rewrite {
        uri,
        authority,
        uri_regex,
    })
}
