//! The Prometheus Pushgateway's HTTP API: list groups, delete a group, PUT a
//! group. Knows grouping keys and paths, not DORA, not Kubernetes: a
//! service proxy reaches it as a [`Tunnel`].

mod listing;

use listing::GroupStream;
pub use listing::{GROUP_LIMIT, Listing};

use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE;
use futures_util::future::BoxFuture;
use http_body_util::BodyExt;
use http_body_util::combinators::UnsyncBoxBody;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use reqwest::Method;
use reqwest::header::CONTENT_TYPE;
use reqwest::{Client, StatusCode, Url};

use crate::http::{self, describe};
use crate::retry::{Attempt, Backoff, retry};
use crate::stored::{Keep, SmallMap, StoredGroup};
use crate::{Error, Failure, Result};

/// Characters left as they are in a path segment (RFC 3986 unreserved).
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// One grouping label as a path pair. Values the path cannot carry (a `/`,
/// empty, or the dot segments `.` and `..`, which URL resolution removes
/// together with the segment before them, silently naming another group)
/// use the Pushgateway's `@base64` form (URL-safe alphabet); everything else
/// is percent-encoded, which keeps paths readable in logs.
fn label_segment(name: &str, value: &str) -> String {
    if value.is_empty() || value.contains('/') || value == "." || value == ".." {
        // Empty values must be encoded as `=`, the padding-only base64 of nothing.
        let encoded = if value.is_empty() {
            "=".to_string()
        } else {
            URL_SAFE.encode(value)
        };
        format!("{name}@base64/{encoded}")
    } else {
        format!("{name}/{}", utf8_percent_encode(value, SEGMENT))
    }
}

/// The path of a group below the Pushgateway's base URL: `metrics/job/<job>/<label>/<value>...`.
pub fn group_path<'a>(job: &str, grouping: impl IntoIterator<Item = (&'a str, &'a str)>) -> String {
    let mut path = format!("metrics/{}", label_segment("job", job));
    for (name, value) in grouping {
        path.push('/');
        path.push_str(&label_segment(name, value));
    }
    path
}

/// How requests reach the Pushgateway.
#[derive(Clone)]
pub enum Transport {
    /// Directly at a base URL (`pushgateway-url`).
    Http { client: Client, base: Url },
    /// Through a [`Tunnel`]: the Kubernetes API server's service proxy.
    Tunnel(Arc<dyn Tunnel>),
}

/// A way to the Pushgateway other than its own URL. The Kubernetes API
/// server's service proxy is one (`kubernetes::ServiceProxy`); the sink
/// knows only this much of it.
pub trait Tunnel: Send + Sync {
    /// Sends one request, its path (`/api/v1/metrics`, `/metrics/job/…`)
    /// from the Pushgateway's root; `Err` when no answer came within `timeout`.
    fn send(
        &self,
        request: ::http::Request<Vec<u8>>,
        timeout: Duration,
    ) -> BoxFuture<'_, std::result::Result<::http::Response<Body>, String>>;

    /// Where it leads, for the summary (never with credentials).
    fn display(&self) -> String;

    /// The tunnel's own refusal of a request (not the Pushgateway's
    /// answer), worded so the user knows what to fix; `None` for an answer
    /// that came from the Pushgateway.
    fn refusal(&self, status: StatusCode, body: &str) -> Option<String>;
}

/// The body of an answer that came through a [`Tunnel`].
pub type Body = UnsyncBoxBody<bytes::Bytes, Box<dyn std::error::Error + Send + Sync>>;

impl std::fmt::Debug for Transport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.display())
    }
}

impl Transport {
    /// Where it is, for the summary (never with credentials).
    pub fn display(&self) -> String {
        match self {
            Transport::Http { base, .. } => {
                let mut u = base.clone();
                let _ = u.set_password(None);
                let _ = u.set_username("");
                u.to_string()
            }
            Transport::Tunnel(tunnel) => tunnel.display(),
        }
    }

    /// One request; `Err` only when no HTTP answer came (connection, timeout).
    /// The body is left to the caller: the group listing is read as it
    /// arrives, everything else is small.
    async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<&str>,
    ) -> std::result::Result<Answer, String> {
        match self {
            Transport::Http { client, base } => {
                let url = base
                    .join(path)
                    .map_err(|e| format!("cannot build URL for {path}: {e}"))?;
                let mut request = client.request(method, url).timeout(REQUEST_TIMEOUT);
                if let Some(body) = body {
                    request = request
                        .header(CONTENT_TYPE, EXPOSITION)
                        .body(body.to_string());
                }
                let response = request.send().await.map_err(|e| describe(&e))?;
                Ok(Answer::Http(response))
            }
            Transport::Tunnel(tunnel) => {
                // An origin-form path (`/api/v1/metrics`): the tunnel puts its own base before it.
                let mut request = ::http::Request::builder()
                    .method(method)
                    .uri(format!("/{path}"));
                if body.is_some() {
                    request = request.header(CONTENT_TYPE, EXPOSITION);
                }
                let request = request
                    .body(body.unwrap_or_default().as_bytes().to_vec())
                    .map_err(|e| format!("cannot build request for {path}: {e}"))?;
                let response = tunnel.send(request, REQUEST_TIMEOUT).await?;
                Ok(Answer::Tunnelled(response))
            }
        }
    }
}

/// An HTTP answer whose body has not been read yet.
enum Answer {
    Http(reqwest::Response),
    Tunnelled(::http::Response<Body>),
}

impl Answer {
    fn status(&self) -> StatusCode {
        match self {
            Answer::Http(r) => r.status(),
            Answer::Tunnelled(r) => r.status(),
        }
    }

    /// The next piece of the body as it arrives; `None` at its end.
    async fn chunk(&mut self) -> std::result::Result<Option<bytes::Bytes>, String> {
        match self {
            Answer::Http(r) => r.chunk().await.map_err(|e| describe(&e)),
            Answer::Tunnelled(r) => loop {
                match r.body_mut().frame().await {
                    None => return Ok(None),
                    Some(Err(e)) => return Err(e.to_string()),
                    Some(Ok(frame)) => {
                        if let Ok(data) = frame.into_data() {
                            return Ok(Some(data));
                        }
                    }
                }
            },
        }
    }

    /// The body up to `limit` bytes (for the small answers: pushes, deletes,
    /// errors); reading stops there, so a huge or endless body costs `limit`.
    async fn bytes(mut self, limit: usize) -> std::result::Result<http::Capped, String> {
        let mut bytes = Vec::new();
        while let Some(chunk) = self.chunk().await? {
            let room = limit - bytes.len();
            if chunk.len() > room {
                bytes.extend_from_slice(&chunk[..room]);
                return Ok(http::Capped {
                    bytes,
                    complete: false,
                });
            }
            bytes.extend_from_slice(&chunk);
        }
        Ok(http::Capped {
            bytes,
            complete: true,
        })
    }

    /// Where a redirect the client did not follow points, if this is one.
    fn redirect_note(&self) -> Option<String> {
        match self {
            Answer::Http(r) => http::redirect_note(r.status(), r.headers()),
            Answer::Tunnelled(r) => http::redirect_note(r.status(), r.headers()),
        }
    }
}

const EXPOSITION: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Every metric family of a group, for [`Pushgateway::is_shell`].
const EVERY_FAMILY: Keep = Keep {
    prefix: "",
    labelled: |_| false,
};

/// The families the Pushgateway adds to every group itself.
const PUSHGATEWAY_OWN: [&str; 2] = ["push_time_seconds", "push_failure_time_seconds"];

/// A Pushgateway, reached through a [`Transport`].
#[derive(Debug, Clone)]
pub struct Pushgateway {
    transport: Transport,
    backoff: Backoff,
}

/// How long one request may take before it counts as a failed attempt.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// How long [`Pushgateway::warm_up`] waits at most.
pub const WARM_UP_TIMEOUT: Duration = Duration::from_secs(1);

impl Pushgateway {
    /// A Pushgateway at a base URL; a missing trailing `/` is added so that a
    /// path prefix (`https://host/pushgateway`) is kept.
    pub fn new(mut base: Url, client: Client) -> Pushgateway {
        if !base.path().ends_with('/') {
            base.set_path(&format!("{}/", base.path()));
        }
        Pushgateway::through(Transport::Http { client, base })
    }

    /// A Pushgateway reached through `transport`.
    pub fn through(transport: Transport) -> Pushgateway {
        Pushgateway {
            transport,
            backoff: Backoff::PUSHGATEWAY,
        }
    }

    /// Where it is, for the summary (without credentials).
    pub fn display_url(&self) -> String {
        self.transport.display()
    }

    /// Every group with its grouping labels and metric values (`GET /api/v1/metrics`).
    ///
    /// The listing is tens of megabytes at ten thousand groups; it is parsed
    /// as it arrives (see the `listing` module), so memory holds the groups'
    /// compact form and one group's JSON at a time, never the whole answer.
    pub async fn groups(&self, keep: &Keep) -> Result<Vec<StoredGroup>> {
        self.listing(keep).await.map(|l| l.groups)
    }

    /// [`Pushgateway::groups`], with the count of groups skipped for their
    /// size (over [`GROUP_LIMIT`]), for the run to warn about.
    pub async fn listing(&self, keep: &Keep) -> Result<Listing> {
        self.listing_of(keep, None).await
    }

    /// The listing, only the group with exactly `only` labels kept when given.
    async fn listing_of(&self, keep: &Keep, only: Option<&SmallMap<String>>) -> Result<Listing> {
        const WHAT: &str = "read groups";
        retry(self.backoff, || async {
            let mut answer = match self
                .transport
                .send(Method::GET, "api/v1/metrics", None)
                .await
            {
                Ok(answer) => answer,
                Err(e) => return Attempt::Retry(format!("{WHAT}: {e}").into()),
            };
            if !answer.status().is_success() {
                return self.refused(WHAT, answer).await;
            }
            let mut stream = GroupStream::new(keep, only);
            loop {
                match answer.chunk().await {
                    Ok(Some(chunk)) => {
                        if let Err(e) = stream.feed(&chunk) {
                            return Attempt::Fail(format!("GET api/v1/metrics: {e}").into());
                        }
                    }
                    Ok(None) => break,
                    Err(e) => {
                        return Attempt::Retry(format!("{WHAT}: reading the answer: {e}").into());
                    }
                }
            }
            match stream.finish() {
                Ok(groups) => Attempt::Done(groups),
                Err(e) => Attempt::Fail(format!("GET api/v1/metrics: {e}").into()),
            }
        })
        .await
        .map_err(Error::Pushgateway)
    }

    /// Opens the connection (TCP, TLS, and through a tunnel the API
    /// server's) with the cheapest request there is, `GET /-/ready`, so the
    /// event's PUT finds it open: run beside the GitHub look-ups, this takes
    /// the handshake off the event's path. One attempt, its outcome ignored:
    /// the PUT that follows reports any failure with its own retries. At
    /// most [`WARM_UP_TIMEOUT`]: a handshake takes a few round trips, and a
    /// server that does not answer by then costs the run no more.
    pub async fn warm_up(&self) {
        let ready = async {
            let answer = self.transport.send(Method::GET, "-/ready", None).await?;
            // Read to its end, so the connection goes back to the pool.
            answer.bytes(http::ERROR_BODY_LIMIT).await.map(|_| ())
        };
        match tokio::time::timeout(WARM_UP_TIMEOUT, ready).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::debug!("warm-up: {e}"),
            Err(_) => tracing::debug!("warm-up: no answer within {WARM_UP_TIMEOUT:?}"),
        }
    }

    /// Replaces a group with `exposition` (`PUT`): the same event pushed
    /// twice leaves the same state.
    ///
    /// A push the Pushgateway rejects (4xx: a malformed exposition, a metric
    /// whose type clashes with another group's) still leaves the group behind,
    /// empty and marked failed, when it did not exist before. So after a
    /// rejection the group is deleted again, best effort, when it is `fresh`
    /// (known not to have existed) or, when that is not known (`None`: the
    /// run did not read the listing), when the listing shows it empty. A
    /// rejected push on an existing group leaves its old metrics, which stay.
    /// A push that got no answer or a 5xx leaves no such group, and is not
    /// followed by a delete, which would only wait out a second retry budget
    /// against a failing server.
    pub async fn put(
        &self,
        job: &str,
        grouping: &[(String, String)],
        exposition: &str,
        fresh: Option<bool>,
    ) -> Result<()> {
        let path = group_path(job, grouping.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        let pushed = self
            .send("push", Method::PUT, &path, Some(exposition))
            .await;
        let rejected = |e: &Error| match e {
            Error::Pushgateway(f) => f
                .status
                .is_some_and(|s| s.is_client_error() && s != StatusCode::TOO_MANY_REQUESTS),
            _ => false,
        };
        if !pushed.as_ref().is_err_and(rejected) {
            return pushed;
        }
        let shell = match fresh {
            Some(fresh) => fresh,
            None => self.is_shell(job, grouping).await,
        };
        if shell
            && self
                .send("delete", Method::DELETE, &path, None)
                .await
                .is_err()
        {
            tracing::warn!("could not remove the empty group a rejected push left");
        }
        pushed
    }

    /// Whether the group is stored holding none but the Pushgateway's own
    /// metrics (what a rejected push leaves of a group that did not exist).
    /// Read only after a rejection: the listing costs what the Pushgateway
    /// holds. An unreadable listing says no: nothing is deleted on a guess.
    async fn is_shell(&self, job: &str, grouping: &[(String, String)]) -> bool {
        let mut labels: SmallMap<String> = grouping.iter().cloned().collect();
        labels.insert("job".to_string(), job.to_string());
        match self.listing_of(&EVERY_FAMILY, Some(&labels)).await {
            Ok(listing) => listing.groups.iter().any(|g| {
                g.labels == labels
                    && g.metrics
                        .iter()
                        .all(|(name, _)| PUSHGATEWAY_OWN.contains(&name))
            }),
            Err(_) => false,
        }
    }

    /// Deletes the group with exactly these labels (including `job`).
    pub async fn delete(&self, labels: &SmallMap<String>) -> Result<()> {
        let job = labels.get("job").map(String::as_str).unwrap_or_default();
        let path = group_path(
            job,
            labels
                .iter()
                .filter(|(k, _)| *k != "job")
                .map(|(k, v)| (k, v.as_str())),
        );
        self.send("delete", Method::DELETE, &path, None).await
    }

    /// Sends a request with the retry policy: connection errors, timeouts,
    /// 429 and 5xx are retried; any other non-2xx is final.
    /// The failure's status is the Pushgateway's own answer; none when it
    /// never answered or the API server refused the request itself.
    async fn send(&self, what: &str, method: Method, path: &str, body: Option<&str>) -> Result<()> {
        retry(self.backoff, || async {
            let answer = match self.transport.send(method.clone(), path, body).await {
                Ok(answer) => answer,
                Err(e) => return Attempt::Retry(format!("{what}: {e}").into()),
            };
            if answer.status().is_success() {
                // The connection is reused only once the body is read to its
                // end; a push's answer is empty, so a few KB are plenty.
                return match answer.bytes(http::ERROR_BODY_LIMIT).await {
                    Ok(_) => Attempt::Done(()),
                    Err(e) => Attempt::Retry(format!("{what}: reading the answer: {e}").into()),
                };
            }
            self.refused(what, answer).await
        })
        .await
        .map_err(Error::Pushgateway)
    }

    /// A non-2xx answer as an attempt's outcome: 429 and 5xx are retried,
    /// the rest is final. Through the service proxy, the API server's own
    /// refusals are worded as such (and carry no status: the Pushgateway
    /// did not answer).
    async fn refused<T>(&self, what: &str, answer: Answer) -> Attempt<T> {
        let status = answer.status();
        let redirect = answer.redirect_note();
        let text = match answer.bytes(http::ERROR_BODY_LIMIT).await {
            Ok(body) => body.text(),
            Err(e) => format!("(unreadable answer: {e})"),
        };
        if let Some(note) = redirect {
            return Attempt::Fail(Failure::answered(
                status,
                format!("{what}: HTTP {status}: {note}"),
            ));
        }
        if let Some(refusal) = match &self.transport {
            Transport::Tunnel(tunnel) => tunnel.refusal(status, &text),
            Transport::Http { .. } => None,
        } {
            return Attempt::Fail(format!("{what}: {refusal}").into());
        }
        let detail = Failure::answered(status, format!("{what}: HTTP {status}: {}", text.trim()));
        if status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS {
            Attempt::Retry(detail)
        } else {
            Attempt::Fail(detail)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_values_are_percent_encoded_and_slashes_use_base64() {
        assert_eq!(
            group_path(
                "dora",
                [
                    ("repository", "octo-org/shop"),
                    ("workflow", "Deploy \"prod\" ✓"),
                    ("run_id", "7001")
                ]
            ),
            "metrics/job/dora/repository@base64/b2N0by1vcmcvc2hvcA==/workflow/Deploy%20%22prod%22%20%E2%9C%93/run_id/7001"
        );
        assert_eq!(group_path("a/b", []), "metrics/job@base64/YS9i");
        assert_eq!(
            group_path("dora", [("env", "")]),
            "metrics/job/dora/env@base64/="
        );
        assert_eq!(
            group_path("..", [("workflow", "."), ("x", "...")]),
            "metrics/job@base64/Li4=/workflow@base64/Lg==/x/..."
        );
    }

    #[test]
    fn base64_uses_the_url_safe_alphabet() {
        // `??>` encodes to `Pz8+` in the standard alphabet; a `+` would be read as a space.
        assert_eq!(label_segment("x", "??>/"), "x@base64/Pz8-Lw==");
    }

    #[test]
    fn a_path_prefix_in_the_base_url_is_kept() {
        let pg = Pushgateway::new(
            Url::parse("https://u:p@h.example/pg").unwrap(),
            Client::new(),
        );
        let Transport::Http { base, .. } = &pg.transport else {
            panic!("a URL makes a direct transport")
        };
        assert_eq!(
            base.join("api/v1/metrics").unwrap().as_str(),
            "https://u:p@h.example/pg/api/v1/metrics"
        );
        assert_eq!(pg.display_url(), "https://h.example/pg/");
    }
}
