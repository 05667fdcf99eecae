//! The admin endpoint: `/healthz`, `/ready` and `/stats`.

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

use crate::interceptor::Interceptor;

pub struct AdminState {
    ready: AtomicBool,
    interceptor: Arc<Interceptor>,
}

impl AdminState {
    pub fn new(interceptor: Arc<Interceptor>) -> Self {
        Self { ready: AtomicBool::new(false), interceptor }
    }

    pub fn set_ready(&self) {
        self.ready.store(true, Ordering::Release);
    }
}

pub struct AdminServer {
    listener: TcpListener,
}

impl AdminServer {
    pub async fn bind(addr: SocketAddr) -> std::io::Result<Self> {
        Ok(Self { listener: TcpListener::bind(addr).await? })
    }

    pub async fn run(self, state: Arc<AdminState>) {
        loop {
            let Ok((stream, _)) = self.listener.accept().await else { continue };
            let state = state.clone();
            tokio::spawn(async move {
                let svc = service_fn(move |req| {
                    let state = state.clone();
                    async move { Ok::<_, Infallible>(route(&req, &state)) }
                });
                let _ = http1::Builder::new().serve_connection(TokioIo::new(stream), svc).await;
            });
        }
    }
}

fn route<B>(req: &Request<B>, state: &AdminState) -> Response<Full<Bytes>> {
    match (req.method(), req.uri().path()) {
        (&Method::GET, "/healthz") => text(StatusCode::OK, "ok\n".into()),
        (&Method::GET, "/ready") if state.ready.load(Ordering::Acquire) => {
            text(StatusCode::OK, "ready\n".into())
        }
        (&Method::GET, "/ready") => text(StatusCode::SERVICE_UNAVAILABLE, "not ready\n".into()),
        (&Method::GET, "/stats") => {
            let body = state
                .interceptor
                .stats()
                .iter()
                .map(|(name, v)| format!("kernel.{name} {v}\n"))
                .collect();
            text(StatusCode::OK, body)
        }
        _ => text(StatusCode::NOT_FOUND, "not found\n".into()),
    }
}

fn text(status: StatusCode, body: String) -> Response<Full<Bytes>> {
    Response::builder()
        .status(status)
        .header("content-type", "text/plain; charset=utf-8")
        .body(Full::new(Bytes::from(body)))
        .expect("static response parts are valid")
}
