//! A plain-HTTP server on `127.0.0.1:0` (hyper 1) for the fakes that
//! misbehave on purpose ([`super::front`], [`super::hostile`]).
//!
//! It binds port 0 and keeps the socket (no port clash with a parallel
//! test), and stops, with every open connection, hung ones included, when
//! dropped.

use std::convert::Infallible;
use std::future::Future;
use std::net::Ipv4Addr;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::task::{JoinHandle, JoinSet};

/// The body every answer of these servers has.
pub type Body = BoxBody<Bytes, Infallible>;

/// A request's method and target (path and query, still percent-encoded).
pub fn method_and_target(req: &Request<Incoming>) -> (String, String) {
    let target = req
        .uri()
        .path_and_query()
        .map_or_else(|| req.uri().path().to_string(), |p| p.as_str().to_string());
    (req.method().as_str().to_string(), target)
}

/// Sends `method url` with `body` (and its content type) through `client`
/// the way a proxy forwards a request: the answer's status, content type
/// and body, or why it could not be sent.
pub async fn relay(
    client: &reqwest::Client,
    method: &str,
    url: &str,
    content_type: Option<String>,
    body: Bytes,
) -> Result<(u16, Option<String>, Bytes), reqwest::Error> {
    let mut request = client
        .request(method.parse().expect("method"), url)
        .body(body);
    if let Some(ct) = content_type {
        request = request.header("content-type", ct);
    }
    let response = request.send().await?;
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let body = response.bytes().await.unwrap_or_default();
    Ok((status, content_type, body))
}

/// A running server; stops when dropped.
pub struct Server {
    /// `http://127.0.0.1:PORT`, no trailing slash.
    pub url: String,
    pub port: u16,
    task: JoinHandle<()>,
}

impl Drop for Server {
    fn drop(&mut self) {
        // Aborting the accept loop drops its JoinSet, which aborts every
        // connection task.
        self.task.abort();
    }
}

impl Server {
    /// Serves every request with `handle(state, request)`. Ready on return.
    pub async fn start<S, F>(state: Arc<S>, handle: fn(Arc<S>, Request<Incoming>) -> F) -> Server
    where
        S: Send + Sync + 'static,
        F: Future<Output = Result<Response<Body>, Infallible>> + Send + 'static,
    {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .await
            .expect("bind 127.0.0.1:0");
        let port = listener.local_addr().expect("local addr").port();
        let task = tokio::spawn(async move {
            let mut connections = JoinSet::new();
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    continue;
                };
                let state = state.clone();
                connections.spawn(async move {
                    let service = service_fn(move |req| handle(state.clone(), req));
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(tcp), service)
                        .await;
                });
                while connections.try_join_next().is_some() {}
            }
        });
        Server {
            url: format!("http://127.0.0.1:{port}"),
            port,
            task,
        }
    }
}
