//! A fault-injecting HTTP front: a small plain-HTTP server that answers
//! chosen requests with a fault (an error status, no answer at all, or
//! headers and then a stalled body) and forwards every other request to a
//! real service behind it (the real Pushgateway), or answers 404 when there
//! is none. It is what a misbehaving Pushgateway, proxy or GitHub looks like
//! from the action's side, while the state behind it stays real and can be
//! compared before and after.
//!
//! It is a [`Server`]: bound to `127.0.0.1:0`, stopped with every open
//! connection when dropped.

use std::convert::Infallible;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::{Request, Response};

use super::server::{Body, Server, method_and_target, relay};

/// What the front does instead of forwarding a matching request.
#[derive(Debug, Clone)]
pub enum Fault {
    /// Answers this status with these headers and this body.
    Status {
        code: u16,
        headers: Vec<(String, String)>,
        body: String,
    },
    /// Reads the request and never answers: a server slower than any timeout.
    Hang,
    /// Sends `code`, its headers and the first bytes of a body, then nothing
    /// more: a server (or a slow link) that stalls in the middle of an answer.
    StallBody { code: u16, first: String },
}

impl Fault {
    /// `code` with a plain-text body and no extra header.
    pub fn status(code: u16, body: &str) -> Fault {
        Fault::Status {
            code,
            headers: Vec::new(),
            body: body.to_string(),
        }
    }
}

/// Which requests a fault applies to, and how many more times.
#[derive(Debug, Clone)]
struct Rule {
    method: Option<String>,
    path_contains: String,
    fault: Fault,
    remaining: Option<usize>,
}

/// One request as the front saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seen {
    pub method: String,
    /// Path and query as sent.
    pub target: String,
    /// Whether a fault answered it (else it was forwarded).
    pub faulted: bool,
}

struct State {
    upstream: Option<String>,
    rules: Mutex<Vec<Rule>>,
    seen: Mutex<Vec<Seen>>,
    client: reqwest::Client,
}

/// The front; stops when dropped.
pub struct FaultyFront {
    /// `http://127.0.0.1:PORT`, no trailing slash.
    pub url: String,
    state: Arc<State>,
    _server: Server,
}

impl FaultyFront {
    /// Starts a front forwarding to `upstream` (`http://127.0.0.1:PORT`), or
    /// answering 404 to what no fault matches when `None`. Ready on return.
    pub async fn start(upstream: Option<&str>) -> FaultyFront {
        let state = Arc::new(State {
            upstream: upstream.map(|u| u.trim_end_matches('/').to_string()),
            rules: Mutex::new(Vec::new()),
            seen: Mutex::new(Vec::new()),
            client: super::process::http(),
        });
        let server = Server::start(state.clone(), handle).await;
        FaultyFront {
            url: server.url.clone(),
            state,
            _server: server,
        }
    }

    /// From now on, requests with `method` (any when `None`) whose path and
    /// query contain `path_contains` get `fault`, `times` times (always when
    /// `None`). Rules added first are tried first.
    pub fn fault(
        &self,
        method: Option<&str>,
        path_contains: &str,
        fault: Fault,
        times: Option<usize>,
    ) {
        self.state.rules.lock().expect("rules lock").push(Rule {
            method: method.map(str::to_string),
            path_contains: path_contains.to_string(),
            fault,
            remaining: times,
        });
    }

    /// Every request so far, in order.
    pub fn seen(&self) -> Vec<Seen> {
        self.state.seen.lock().expect("seen lock").clone()
    }
}

fn full(code: u16, headers: &[(String, String)], body: impl Into<Bytes>) -> Response<Body> {
    let mut reply = Response::builder().status(code);
    for (k, v) in headers {
        reply = reply.header(k, v);
    }
    reply
        .body(Full::new(body.into()).boxed())
        .expect("fault reply")
}

async fn handle(state: Arc<State>, req: Request<Incoming>) -> Result<Response<Body>, Infallible> {
    let (method, target) = method_and_target(&req);
    let fault = {
        let mut rules = state.rules.lock().expect("rules lock");
        rules
            .iter_mut()
            .find(|r| {
                r.remaining != Some(0)
                    && r.method.as_ref().is_none_or(|m| *m == method)
                    && target.contains(&r.path_contains)
            })
            .map(|r| {
                if let Some(n) = r.remaining.as_mut() {
                    *n -= 1;
                }
                r.fault.clone()
            })
    };
    state.seen.lock().expect("seen lock").push(Seen {
        method: method.clone(),
        target: target.clone(),
        faulted: fault.is_some(),
    });
    let content_type = req
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    // The request body is read in every case, as a server does before it answers.
    let body = req
        .into_body()
        .collect()
        .await
        .map(|c| c.to_bytes())
        .unwrap_or_default();
    match fault {
        Some(Fault::Status {
            code,
            headers,
            body,
        }) => Ok(full(code, &headers, body)),
        Some(Fault::Hang) => {
            std::future::pending::<()>().await;
            unreachable!()
        }
        Some(Fault::StallBody { code, first }) => {
            let chunk: Result<Frame<Bytes>, Infallible> = Ok(Frame::data(Bytes::from(first)));
            let stream = futures_util::stream::StreamExt::chain(
                futures_util::stream::iter([chunk]),
                futures_util::stream::pending(),
            );
            Ok(Response::builder()
                .status(code)
                .header("content-type", "application/json")
                .body(BodyExt::boxed(StreamBody::new(stream)))
                .expect("stalled reply"))
        }
        None => Ok(forward(&state, &method, &target, content_type, body).await),
    }
}

async fn forward(
    state: &State,
    method: &str,
    target: &str,
    content_type: Option<String>,
    body: Bytes,
) -> Response<Body> {
    let Some(upstream) = &state.upstream else {
        return full(404, &[], "no such path behind this front");
    };
    let url = format!("{upstream}{target}");
    match relay(&state.client, method, &url, content_type, body).await {
        Ok((code, content_type, bytes)) => {
            let headers: Vec<(String, String)> = content_type
                .map(|v| vec![("content-type".to_string(), v)])
                .unwrap_or_default();
            full(code, &headers, bytes)
        }
        Err(e) => full(502, &[], format!("front: upstream failed: {e}")),
    }
}
