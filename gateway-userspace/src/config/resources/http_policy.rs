//! Policies attached to an HTTP route: retries, fault injection,
//! mirroring and CORS.

use super::common::{Destination, StringMatch, destination, percent, string_match};
use super::http_route::status_code;
use crate::config::decode::Cx;
use crate::config::yaml::Node;
use serde::Serialize;
use std::time::Duration;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Retries {
    pub attempts: u32,
    pub per_try_timeout: Option<Duration>,
    pub retry_on: Option<String>,
    pub retry_remote_localities: Option<bool>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Fault {
    pub delay: Option<FaultDelay>,
    pub abort: Option<FaultAbort>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FaultDelay {
    pub fixed_delay: Duration,
    pub percentage: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FaultAbort {
    pub http_status: Option<u16>,
    pub grpc_status: Option<String>,
    pub percentage: f64,
}

/// Traffic copied to another destination, for `percentage` of requests.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Mirror {
    pub destination: Destination,
    pub percentage: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CorsPolicy {
    pub allow_origins: Vec<StringMatch>,
    pub allow_methods: Vec<String>,
    pub allow_headers: Vec<String>,
    pub expose_headers: Vec<String>,
    pub max_age: Option<Duration>,
    pub allow_credentials: Option<bool>,
}

pub(crate) fn retries(cx: &mut Cx<'_>, n: &Node, p: &str) -> Option<Retries> {
    let mut f = cx.map(n, p)?;
    let r = Retries {
        attempts: f
            .int(cx, "attempts", 0, i64::from(i32::MAX))
            .map_or(0, |a| a as u32),
        per_try_timeout: f.duration(cx, "perTryTimeout"),
        retry_on: f.string(cx, "retryOn"),
        retry_remote_localities: f.boolean(cx, "retryRemoteLocalities"),
    };
    f.ignore(&["retryIgnorePreviousHosts", "backoff"]);
    f.finish(cx);
    Some(r)
}

pub(crate) fn fault(cx: &mut Cx<'_>, n: &Node, p: &str) -> Option<Fault> {
    let mut f = cx.map(n, p)?;
    let delay = f.get(cx, "delay", |cx, n, p| {
        let mut d = cx.map(n, p)?;
        let fixed = d.req(cx, "fixedDelay", |cx, n, p| cx.duration(n, p));
        let pct = d.get(cx, "percentage", percent).unwrap_or(100.0);
        d.ignore(&["percent", "exponentialDelay"]);
        d.finish(cx);
        Some(FaultDelay {
            fixed_delay: fixed?,
            percentage: pct,
        })
    });
    let abort = f.get(cx, "abort", |cx, n, p| {
        let mut a = cx.map(n, p)?;
        let http_status = a.get(cx, "httpStatus", status_code);
        let grpc_status = a.string(cx, "grpcStatus");
        let pct = a.get(cx, "percentage", percent).unwrap_or(100.0);
        a.ignore(&["http2Error"]);
        a.finish(cx);
        Some(FaultAbort {
            http_status,
            grpc_status,
            percentage: pct,
        })
    });
    f.finish(cx);
    Some(Fault { delay, abort })
}

pub(crate) fn mirror_policy(cx: &mut Cx<'_>, n: &Node, p: &str) -> Option<Mirror> {
    let mut f = cx.map(n, p)?;
    let d = f.req(cx, "destination", destination);
    let pct = f.get(cx, "percentage", percent).unwrap_or(100.0);
    f.finish(cx);
    Some(Mirror {
        destination: d?,
        percentage: pct,
    })
}

pub(crate) fn cors(cx: &mut Cx<'_>, n: &Node, p: &str) -> Option<CorsPolicy> {
    let mut f = cx.map(n, p)?;
    let mut allow_origins = f.list(cx, "allowOrigins", string_match);
    let legacy = f.strings(cx, "allowOrigin");
    allow_origins.extend(legacy.into_iter().map(StringMatch::Exact));
    let c = CorsPolicy {
        allow_origins,
        allow_methods: f.strings(cx, "allowMethods"),
        allow_headers: f.strings(cx, "allowHeaders"),
        expose_headers: f.strings(cx, "exposeHeaders"),
        max_age: f.duration(cx, "maxAge"),
        allow_credentials: f.boolean(cx, "allowCredentials"),
    };
    f.ignore(&["unmatchedPreflights"]);
    f.finish(cx);
    Some(c)
}
