//! A hostile HTTP server: answers what a test scripts (any status, any
//! headers, a `Link` or `Location` naming another server, a body of
//! hundreds of megabytes or one that never ends) and records every request
//! it gets with its headers, so a test can assert that a credential never
//! reached it. Huge bodies are generated as they are sent, never held.
//!
//! It is a [`Server`]: bound to `127.0.0.1:0`, stopped with every open
//! connection when dropped.

use std::convert::Infallible;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::{Request, Response};

use super::server::{Body, Server, method_and_target};

/// What the server answers.
#[derive(Debug, Clone)]
pub enum Reply {
    /// A whole answer.
    Full {
        code: u16,
        headers: Vec<(String, String)>,
        body: String,
    },
    /// `code`, then `head`, then `size` more bytes of `fill` (`None`: never
    /// ending), sent in 64 KiB pieces as fast as the client reads them.
    Huge {
        code: u16,
        content_type: String,
        head: String,
        fill: u8,
        size: Option<u64>,
        tail: String,
    },
}

impl Reply {
    /// `code` with a JSON body.
    pub fn json(code: u16, body: &serde_json::Value) -> Reply {
        Reply::Full {
            code,
            headers: vec![("content-type".into(), "application/json".into())],
            body: body.to_string(),
        }
    }

    /// A redirect to `location`.
    pub fn redirect(code: u16, location: &str) -> Reply {
        Reply::Full {
            code,
            headers: vec![("location".into(), location.into())],
            body: String::new(),
        }
    }

    /// `code` with `size` bytes of `x` (`None`: without end).
    pub fn huge(code: u16, size: Option<u64>) -> Reply {
        Reply::Huge {
            code,
            content_type: "text/plain".into(),
            head: String::new(),
            fill: b'x',
            size,
            tail: String::new(),
        }
    }

    /// A JSON answer that starts with `head` and never ends: a string value
    /// that goes on forever (`head` should open it).
    pub fn endless_json(head: &str) -> Reply {
        Reply::Huge {
            code: 200,
            content_type: "application/json".into(),
            head: head.into(),
            fill: b'a',
            size: None,
            tail: String::new(),
        }
    }
}

/// One request as the server saw it.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: String,
    pub target: String,
    /// Every header, names lowercase.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

type Handler = dyn Fn(&str, &str) -> Reply + Send + Sync;

struct State {
    handler: Box<Handler>,
    seen: Mutex<Vec<Seen>>,
}

/// The server; stops when dropped.
pub struct HostileServer {
    /// `http://127.0.0.1:PORT`, no trailing slash.
    pub url: String,
    pub port: u16,
    state: Arc<State>,
    _server: Server,
}

impl HostileServer {
    /// Starts a server answering each request with `handler(method, path_and_query)`.
    pub async fn start(handler: impl Fn(&str, &str) -> Reply + Send + Sync + 'static) -> Self {
        let state = Arc::new(State {
            handler: Box::new(handler),
            seen: Mutex::new(Vec::new()),
        });
        let server = Server::start(state.clone(), handle).await;
        HostileServer {
            url: server.url.clone(),
            port: server.port,
            state,
            _server: server,
        }
    }

    /// A server that answers everything with 200 `{}` and only records:
    /// the "foreign" server a credential must never reach.
    pub async fn foreign() -> Self {
        Self::start(|_, _| Reply::json(200, &serde_json::json!({}))).await
    }

    /// Every request so far.
    pub fn seen(&self) -> Vec<Seen> {
        self.state.seen.lock().expect("seen lock").clone()
    }

    /// Panics, listing them, if any request reached this server.
    pub fn assert_untouched(&self, what: &str) {
        let seen = self.seen();
        assert!(
            seen.is_empty(),
            "{what}: the foreign server got {} request(s): {:#?}",
            seen.len(),
            seen
        );
    }
}

async fn handle(state: Arc<State>, req: Request<Incoming>) -> Result<Response<Body>, Infallible> {
    let (method, target) = method_and_target(&req);
    let headers = req
        .headers()
        .iter()
        .map(|(k, v)| {
            (
                k.as_str().to_string(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect();
    let body = req
        .into_body()
        .collect()
        .await
        .map(|c| c.to_bytes().to_vec())
        .unwrap_or_default();
    let reply = (state.handler)(&method, &target);
    state.seen.lock().expect("seen lock").push(Seen {
        method,
        target,
        headers,
        body,
    });
    Ok(match reply {
        Reply::Full {
            code,
            headers,
            body,
        } => {
            let mut r = Response::builder().status(code);
            for (k, v) in headers {
                r = r.header(k, v);
            }
            r.body(Full::new(Bytes::from(body)).boxed()).expect("reply")
        }
        Reply::Huge {
            code,
            content_type,
            head,
            fill,
            size,
            tail,
        } => {
            const PIECE: usize = 64 * 1024;
            let piece = Bytes::from(vec![fill; PIECE]);
            let head = Bytes::from(head);
            let tail = Bytes::from(tail);
            // (sent so far of the fill, whether head and tail went out)
            let stream = futures_util::stream::unfold(
                (0u64, false, false),
                move |(sent, head_sent, tail_sent)| {
                    let (piece, head, tail) = (piece.clone(), head.clone(), tail.clone());
                    async move {
                        if !head_sent {
                            return Some((
                                Ok::<_, Infallible>(Frame::data(head)),
                                (sent, true, false),
                            ));
                        }
                        match size {
                            Some(total) if sent >= total => {
                                if tail_sent {
                                    None
                                } else {
                                    Some((Ok(Frame::data(tail)), (sent, true, true)))
                                }
                            }
                            Some(total) => {
                                let n = (total - sent).min(PIECE as u64) as usize;
                                Some((
                                    Ok(Frame::data(piece.slice(..n))),
                                    (sent + n as u64, true, false),
                                ))
                            }
                            None => {
                                Some((Ok(Frame::data(piece)), (sent + PIECE as u64, true, false)))
                            }
                        }
                    }
                },
            );
            Response::builder()
                .status(code)
                .header("content-type", content_type)
                .body(BodyExt::boxed(StreamBody::new(stream)))
                .expect("huge reply")
        }
    })
}
