//! HTTP/1 connections to upstream targets, kept and reused per target.

use std::collections::HashMap;

use http_body_util::{BodyExt, Full, combinators::BoxBody};
use hyper::{
    Request, Response, StatusCode,
    body::Bytes,
    client::conn::http1::SendRequest,
};
use hyper_util::rt::TokioIo;
use tokio::sync::Mutex;

use super::{addrs::UpstreamAddr, origination::Origination, upstream::Dialer};
use crate::policy::Target;

pub type Body = BoxBody<Bytes, hyper::Error>;

/// An upstream connection in HTTP/1.1, or HTTP/2 for requests that need it
/// end to end (gRPC: streams and trailers).
enum Sender {
    H1(SendRequest<Body>),
    H2(hyper::client::conn::http2::SendRequest<Body>),
}

impl Sender {
    fn is_closed(&self) -> bool {
        match self {
            Sender::H1(s) => s.is_closed(),
            Sender::H2(s) => s.is_closed(),
        }
    }
}

/// Connections by target, TLS server name (when originated) and HTTP version.
#[derive(Default)]
pub struct UpstreamPool {
    conns: Mutex<HashMap<(Target, Option<String>, bool), (Sender, UpstreamAddr)>>,
}

impl UpstreamPool {
    /// Sends `req` over a kept connection to `target`, opening one if needed.
    /// A connect failure is 503, as Envoy answers it; a failed exchange 502.
    ///
    /// With `tls`, the connection speaks TLS to the target (origination); a
    /// failed handshake (an untrusted certificate, say) is 503.
    pub async fn send(
        &self,
        dialer: Dialer<'_>,
        target: &Target,
        tls: Option<Origination>,
        req: Request<Body>,
    ) -> Result<(Response<Body>, UpstreamAddr), StatusCode> {
        // HTTP/2 upstream for HTTP/2 requests in clear (gRPC); HTTP/1.1 otherwise.
        let h2 = req.version() == hyper::Version::HTTP_2 && tls.is_none();
        let key = (target.clone(), tls.as_ref().map(|(_, name)| name.clone()), h2);
        let mut pool = self.conns.lock().await;
        let reusable = pool.get(&key).is_some_and(|(s, _)| !s.is_closed());
        if !reusable {
            let (stream, addr) = dialer.connect(target).await.map_err(|e| {
                tracing::debug!(?target, error = %e, "upstream connect failed");
                StatusCode::SERVICE_UNAVAILABLE
            })?;
            let builder = {
                let mut b = hyper::client::conn::http1::Builder::new();
                b.preserve_header_case(true);
                b
            };
            let sender = match tls {
                None if h2 => {
                    let (sender, conn) = hyper::client::conn::http2::handshake(hyper_util::rt::TokioExecutor::new(), TokioIo::new(stream))
                        .await
                        .map_err(|_| StatusCode::BAD_GATEWAY)?;
                    tokio::spawn(async move {
                        let _ = conn.await;
                    });
                    Sender::H2(sender)
                }
                None => {
                    let (sender, conn) = builder.handshake(TokioIo::new(stream)).await.map_err(|_| StatusCode::BAD_GATEWAY)?;
                    tokio::spawn(async move {
                        let _ = conn.await;
                    });
                    Sender::H1(sender)
                }
                Some((config, name)) => {
                    let handshake = crate::tls::originate(stream, &name, config);
                    let tls_stream = tokio::time::timeout(dialer.timeout, handshake)
                        .await
                        .map_err(|_| StatusCode::SERVICE_UNAVAILABLE)?
                        .map_err(|e| {
                            tracing::warn!(?target, server_name = %name, error = %e, "TLS origination failed");
                            StatusCode::SERVICE_UNAVAILABLE
                        })?;
                    let (sender, conn) = builder.handshake(TokioIo::new(tls_stream)).await.map_err(|_| StatusCode::BAD_GATEWAY)?;
                    tokio::spawn(async move {
                        let _ = conn.await;
                    });
                    Sender::H1(sender)
                }
            };
            pool.insert(key.clone(), (sender, addr));
        }
        let (sender, addr) = pool.get_mut(&key).expect("inserted above");
        let addr = *addr;
        let fut = match sender {
            Sender::H1(s) => {
                s.ready().await.map_err(|_| StatusCode::BAD_GATEWAY)?;
                futures_either(s.send_request(req))
            }
            Sender::H2(s) => {
                s.ready().await.map_err(|_| StatusCode::BAD_GATEWAY)?;
                futures_either(s.send_request(req))
            }
        };
        drop(pool);
        let resp = fut.await.map_err(|e| {
            tracing::debug!(error = %e, "upstream request failed");
            StatusCode::BAD_GATEWAY
        })?;
        Ok((resp.map(|b| b.boxed()), addr))
    }
}

/// A plain-text response; `denied` adds the reason header of a denial.
pub fn text(status: StatusCode, body: String, denied: Option<&str>) -> Response<Body> {
    let mut b = Response::builder().status(status).header("content-type", "text/plain; charset=utf-8");
    if let Some(reason) = denied {
        b = b.header(super::deny::DENIED_HEADER, reason);
    }
    b.body(Full::new(Bytes::from(body)).map_err(|never| match never {}).boxed())
        .expect("static response parts are valid")
}

/// Both senders' futures as one boxed type.
fn futures_either<F>(f: F) -> std::pin::Pin<Box<dyn std::future::Future<Output = hyper::Result<Response<hyper::body::Incoming>>> + Send>>
where
    F: std::future::Future<Output = hyper::Result<Response<hyper::body::Incoming>>> + Send + 'static,
{
    Box::pin(f)
}
