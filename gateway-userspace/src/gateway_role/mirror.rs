//! A route's `mirrors`: a copy of a sampled request goes to each mirror
//! destination, its Host suffixed `-shadow` as Envoy does, and its answer is
//! dropped. The client's request is not held up by it.

use http_body_util::BodyExt;
use hyper::{Request, body::Body as _, header::HeaderValue};

use super::forward::{Exchange, REPLAY_BUFFER, forward, replay};
use crate::{
    access_log::RequestRecord,
    config::resources::http_route::HttpRoute,
    policy::RouteChoice,
    transport::{
        addrs::{ClientAddr, OrigDstAddr},
        http_pool::Body,
        random_u64,
    },
};

/// Sends copies of `req` to the mirrors that sample it; returns `req` to
/// go on. A body too large to copy is not mirrored.
pub async fn copy_to_mirrors(x: &Exchange, req: Request<Body>, choice: &RouteChoice, route: &HttpRoute) -> Request<Body> {
    let sampled: Vec<RouteChoice> = route
        .mirrors
        .iter()
        .filter(|m| (random_u64() % 10_000) as f64 / 100.0 < m.percentage)
        .map(|m| RouteChoice { destination: m.destination.host.as_str().into(), port: m.destination.port, subset: m.destination.subset.as_deref().map(Into::into), ..choice.clone() })
        .collect();
    if sampled.is_empty() || req.body().size_hint().upper().is_none_or(|n| n > REPLAY_BUFFER as u64) {
        return req;
    }
    let (parts, body) = req.into_parts();
    let body = match body.collect().await {
        Ok(b) => b.to_bytes(),
        Err(e) => {
            tracing::debug!(error = %e, "request body not read; not mirrored");
            return Request::from_parts(parts, http_body_util::Empty::new().map_err(|never| match never {}).boxed());
        }
    };
    for mirror in sampled {
        let mut shadow = replay(&parts, body.clone());
        shadow_host(&mut shadow);
        let x = x.clone();
        tokio::spawn(async move {
            let mut record = RequestRecord::new(ClientAddr(x.peer), OrigDstAddr(x.peer), &x.ctx.workload, &shadow, None);
            let resp = forward(&x, shadow, mirror.clone(), &mut record).await;
            let status = resp.status();
            let _ = resp.into_body().collect().await;
            tracing::debug!(destination = %mirror.destination, %status, "mirrored");
        });
    }
    replay(&parts, body)
}

/// `host[:port]` becomes `host-shadow[:port]`.
pub(super) fn shadow_host<B>(req: &mut Request<B>) {
    let Some(host) = req.headers().get(hyper::header::HOST).and_then(|h| h.to_str().ok()) else { return };
    let shadow = match host.rsplit_once(':').filter(|(_, p)| p.chars().all(|c| c.is_ascii_digit())) {
        Some((h, port)) => format!("{h}-shadow:{port}"),
        None => format!("{host}-shadow"),
    };
    if let Ok(v) = HeaderValue::from_str(&shadow) {
        req.headers_mut().insert(hyper::header::HOST, v);
    }
}
