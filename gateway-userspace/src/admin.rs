//! The admin endpoint: `/healthz`, `/ready`, `/metrics`, `/stats`,
//! `/config_dump`, `/suggest` and `POST /reload`.

use std::{
    convert::Infallible,
    net::SocketAddr,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
};

use http_body_util::Full;
use hyper::{Method, Request, Response, StatusCode, body::Bytes, server::conn::http1, service::service_fn};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

use crate::{
    dns::DnsStats,
    gateway_role::ListenerStatus,
    interceptor::Interceptor,
    metrics::Metrics,
    reload::{ConfigStore, ReloadOutcome},
};

pub struct AdminState {
    ready: AtomicBool,
    pub interceptor: Option<Arc<Interceptor>>,
    pub config: Arc<ConfigStore>,
    pub metrics: Arc<Metrics>,
    pub dns: Option<Arc<DnsStats>>,
    /// The gateway role's listeners, when it runs.
    pub listeners: std::sync::OnceLock<Arc<ListenerStatus>>,
}

impl AdminState {
    pub fn new(
        interceptor: Option<Arc<Interceptor>>,
        config: Arc<ConfigStore>,
        metrics: Arc<Metrics>,
        dns: Option<Arc<DnsStats>>,
    ) -> Self {
        Self { ready: AtomicBool::new(false), interceptor, config, metrics, dns, listeners: Default::default() }
    }

    /// The gateway role's listeners, once they are served.
    pub fn set_listeners(&self, listeners: Arc<ListenerStatus>) {
        let _ = self.listeners.set(listeners);
    }

    pub fn set_ready(&self) {
        self.ready.store(true, Ordering::Release);
    }
}

pub struct AdminServer {
    listener: TcpListener,
}

impl AdminServer {
    pub async fn bind(addr: SocketAddr, inherited: &mut crate::handover::Inherited) -> std::io::Result<Self> {
        if let Some(listener) = inherited.tcp(addr)? {
            return Ok(Self { listener });
        }
        Ok(Self { listener: TcpListener::bind(addr).await? })
    }

    /// The listening socket, to hand to the next instance.
    pub fn socket(&self) -> &TcpListener {
        &self.listener
    }

    pub async fn run(self, state: Arc<AdminState>) {
        loop {
            let Ok((stream, _)) = self.listener.accept().await else { continue };
            let state = state.clone();
            tokio::spawn(async move {
                let svc = service_fn(move |req| {
                    let state = state.clone();
                    async move { Ok::<_, Infallible>(route(&req, &state).await) }
                });
                let _ = http1::Builder::new().serve_connection(TokioIo::new(stream), svc).await;
            });
        }
    }
}

async fn route<B>(req: &Request<B>, state: &AdminState) -> Response<Full<Bytes>> {
    match (req.method(), req.uri().path()) {
        (&Method::GET, "/healthz") => text(StatusCode::OK, "ok\n".into()),
        (&Method::GET, "/ready") if state.ready.load(Ordering::Acquire) => text(StatusCode::OK, "ready\n".into()),
        (&Method::GET, "/ready") => text(StatusCode::SERVICE_UNAVAILABLE, "not ready\n".into()),
        (&Method::GET, "/metrics") => {
            state.metrics.set_kernel_events(&kernel_stats(state));
            if let Some(dns) = &state.dns {
                state.metrics.set_dns_answers(&dns.snapshot());
            }
            text(StatusCode::OK, state.metrics.encode())
        }
        (&Method::GET, "/stats") => {
            let mut body: String = kernel_stats(state).iter().map(|(name, v)| format!("kernel.{name} {v}\n")).collect();
            if let Some(listeners) = state.listeners.get() {
                for p in &listeners.lock().expect("listener status lock").ports {
                    body.push_str(&format!("listener.{} {} {}\n", p.address, p.kind, p.state));
                }
            }
            text(StatusCode::OK, body)
        }
        (&Method::GET, "/config_dump") => match config_dump(state) {
            Ok(body) => json(StatusCode::OK, body),
            Err(e) => text(StatusCode::INTERNAL_SERVER_ERROR, format!("{e}\n")),
        },
        (&Method::GET, "/suggest") => suggest(req.uri().query(), state),
        (&Method::POST, "/reload") => reload(state).await,
        (_, "/reload") => text(StatusCode::METHOD_NOT_ALLOWED, "use POST\n".into()),
        _ => text(StatusCode::NOT_FOUND, "not found\n".into()),
    }
}

/// The live configuration, and the gateway listeners (with the generation
/// they were last brought to) when the role runs.
fn config_dump(state: &AdminState) -> serde_json::Result<String> {
    let mut dump = serde_json::to_value(&*state.config.current())?;
    if let (Some(listeners), Some(object)) = (state.listeners.get(), dump.as_object_mut()) {
        let view = listeners.lock().expect("listener status lock").clone();
        object.insert("listeners".into(), serde_json::to_value(view)?);
    }
    serde_json::to_string_pretty(&dump)
}

/// `gateway suggest`'s YAML from the refusals this process kept
/// (`suggest/live.rs`); `?namespace=NS` for one namespace.
fn suggest(query: Option<&str>, state: &AdminState) -> Response<Full<Bytes>> {
    let mut namespace = None;
    for pair in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
        match pair.split_once('=') {
            Some(("namespace", ns)) if is_namespace_name(ns) => namespace = Some(ns),
            Some(("namespace", _)) => return text(StatusCode::BAD_REQUEST, "namespace: not a namespace name\n".into()),
            _ => return text(StatusCode::BAD_REQUEST, format!("unknown parameter {pair:?}; only namespace=NS\n")),
        }
    }
    match state.metrics.refusals.render(namespace) {
        Ok(yaml) => respond(StatusCode::OK, "application/yaml", yaml),
        Err(e) => text(StatusCode::INTERNAL_SERVER_ERROR, format!("{e}\n")),
    }
}

/// A Kubernetes namespace name: a DNS label.
fn is_namespace_name(s: &str) -> bool {
    (1..=63).contains(&s.len())
        && s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

async fn reload(state: &AdminState) -> Response<Full<Bytes>> {
    match state.config.reload("admin").await {
        ReloadOutcome::Applied { generation } => {
            json(StatusCode::OK, serde_json::json!({"result": "applied", "generation": generation}).to_string())
        }
        ReloadOutcome::Unchanged { generation } => {
            json(StatusCode::OK, serde_json::json!({"result": "unchanged", "generation": generation}).to_string())
        }
        ReloadOutcome::Rejected { findings } => json(
            StatusCode::UNPROCESSABLE_ENTITY,
            serde_json::json!({
                "result": "rejected",
                "generation": state.config.current().generation,
                "findings": findings,
            })
            .to_string(),
        ),
        ReloadOutcome::Unreadable { error } => json(
            StatusCode::UNPROCESSABLE_ENTITY,
            serde_json::json!({
                "result": "unreadable",
                "generation": state.config.current().generation,
                "error": error,
            })
            .to_string(),
        ),
    }
}

fn text(status: StatusCode, body: String) -> Response<Full<Bytes>> {
    respond(status, "text/plain; charset=utf-8", body)
}

fn json(status: StatusCode, body: String) -> Response<Full<Bytes>> {
    respond(status, "application/json", body)
}

fn respond(status: StatusCode, content_type: &str, body: String) -> Response<Full<Bytes>> {
    Response::builder()
        .status(status)
        .header("content-type", content_type)
        .body(Full::new(Bytes::from(body)))
        .expect("static response parts are valid")
}

fn kernel_stats(state: &AdminState) -> Vec<(&'static str, u64)> {
    state.interceptor.as_ref().map(|i| i.stats()).unwrap_or_default()
}
