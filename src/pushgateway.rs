//! The Prometheus Pushgateway's HTTP API: list groups, delete a group, PUT a
//! group. Knows grouping keys and paths, not DORA.

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE;
use http_body_util::BodyExt;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use reqwest::Method;
use reqwest::header::CONTENT_TYPE;
use reqwest::{Client, StatusCode, Url};
use serde::Deserialize;

use crate::dora::{SmallMap, StoredGroup};
use crate::http::{self, describe};
use crate::inputs::ServiceRef;
use crate::retry::{Attempt, Backoff, retry};
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
    /// Through the Kubernetes API server's service proxy: `base` is the
    /// proxy path (`/api/v1/namespaces/<ns>/services/<name>:<port>/proxy/`),
    /// `endpoint` the API server, for messages.
    ServiceProxy {
        client: kube::Client,
        base: String,
        endpoint: String,
    },
}

impl std::fmt::Debug for Transport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.display())
    }
}

impl Transport {
    /// The API server path of a service's proxy.
    pub fn proxy_path(service: &ServiceRef) -> String {
        let port = service
            .port
            .as_deref()
            .map(|p| format!(":{p}"))
            .unwrap_or_default();
        format!(
            "/api/v1/namespaces/{}/services/{}{port}/proxy/",
            service.namespace, service.name
        )
    }

    /// Where it is, for the summary (never with credentials).
    pub fn display(&self) -> String {
        match self {
            Transport::Http { base, .. } => {
                let mut u = base.clone();
                let _ = u.set_password(None);
                let _ = u.set_username("");
                u.to_string()
            }
            Transport::ServiceProxy { base, endpoint, .. } => {
                format!(
                    "{}{base} (the API server's service proxy)",
                    endpoint.trim_end_matches('/')
                )
            }
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
            Transport::ServiceProxy {
                client,
                base,
                endpoint,
            } => {
                let mut request = ::http::Request::builder()
                    .method(method)
                    .uri(format!("{base}{path}"));
                if body.is_some() {
                    request = request.header(CONTENT_TYPE, EXPOSITION);
                }
                let request = request
                    .body(kube::client::Body::from(
                        body.unwrap_or_default().as_bytes().to_vec(),
                    ))
                    .map_err(|e| format!("cannot build request for {path}: {e}"))?;
                let response = tokio::time::timeout(REQUEST_TIMEOUT, client.send(request))
                    .await
                    .map_err(|_| format!("timed out after {REQUEST_TIMEOUT:?} at {endpoint}"))?
                    .map_err(|e| format!("API server {endpoint}: {e}"))?;
                Ok(Answer::Proxied(response))
            }
        }
    }
}

/// An HTTP answer whose body has not been read yet.
enum Answer {
    Http(reqwest::Response),
    Proxied(::http::Response<kube::client::Body>),
}

impl Answer {
    fn status(&self) -> StatusCode {
        match self {
            Answer::Http(r) => r.status(),
            Answer::Proxied(r) => r.status(),
        }
    }

    /// The next piece of the body as it arrives; `None` at its end.
    async fn chunk(&mut self) -> std::result::Result<Option<bytes::Bytes>, String> {
        match self {
            Answer::Http(r) => r.chunk().await.map_err(|e| describe(&e)),
            Answer::Proxied(r) => loop {
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
            Answer::Proxied(r) => http::redirect_note(r.status(), r.headers()),
        }
    }
}

const EXPOSITION: &str = "text/plain; version=0.0.4; charset=utf-8";

/// A Pushgateway, reached through a [`Transport`].
#[derive(Debug, Clone)]
pub struct Pushgateway {
    transport: Transport,
    backoff: Backoff,
}

/// How long one request may take before it counts as a failed attempt.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// The listing's envelope; its groups are read one by one by [`GroupStream`].
#[derive(Deserialize)]
struct ApiResponse {
    status: String,
}

/// One group of `GET /api/v1/metrics`, read without building a JSON tree:
/// only `labels` and the families named `dora_*` are kept, the rest (the
/// Pushgateway's own `push_time_seconds`, other jobs' metrics) is skipped as
/// it streams by. With thousands of groups that is most of the answer.
struct ApiGroup(StoredGroup);

impl<'de> Deserialize<'de> for ApiGroup {
    fn deserialize<D: serde::Deserializer<'de>>(
        deserializer: D,
    ) -> std::result::Result<Self, D::Error> {
        struct Visit;
        impl<'de> serde::de::Visitor<'de> for Visit {
            type Value = ApiGroup;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a Pushgateway group")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> std::result::Result<ApiGroup, A::Error> {
                let mut group = StoredGroup::default();
                while let Some(key) = map.next_key::<String>()? {
                    if key == "labels" {
                        group.labels = map.next_value()?;
                    } else if key.starts_with("dora_") {
                        let family: ApiFamily = map.next_value()?;
                        if let Some(first) = family.metrics.first().filter(|_| {
                            key.ends_with("_phase")
                                || key.ends_with("_ready")
                                || key == crate::dora::names::DEPLOY_EVENT
                        }) {
                            group.sample_labels.clone_from(&first.labels);
                        }
                        let values = family
                            .metrics
                            .iter()
                            .filter_map(|m| m.value.as_deref()?.parse::<f64>().ok())
                            .collect();
                        group.metrics.insert(key, values);
                    } else {
                        map.next_value::<serde::de::IgnoredAny>()?;
                    }
                }
                Ok(ApiGroup(group))
            }
        }
        deserializer.deserialize_map(Visit)
    }
}

#[derive(Deserialize)]
struct ApiFamily {
    #[serde(default)]
    metrics: Vec<ApiMetric>,
}

#[derive(Deserialize)]
struct ApiMetric {
    value: Option<String>,
    #[serde(default)]
    labels: SmallMap<String>,
}

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
    /// as it arrives (see [`GroupStream`]), so memory holds the groups'
    /// compact form and one group's JSON at a time, never the whole answer.
    pub async fn groups(&self) -> Result<Vec<StoredGroup>> {
        self.listing().await.map(|l| l.groups)
    }

    /// [`Pushgateway::groups`], with the count of groups skipped for their
    /// size (over [`GROUP_LIMIT`]), for the run to warn about.
    pub async fn listing(&self) -> Result<Listing> {
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
            let mut stream = GroupStream::default();
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

    /// Replaces a group with `exposition` (`PUT`): the same event pushed
    /// twice leaves the same state.
    ///
    /// A push the Pushgateway rejects (4xx: a malformed exposition, a metric
    /// whose type clashes with another group's) still leaves the group behind,
    /// empty and marked failed; when the group is `fresh` (it did not exist
    /// before), it is deleted again, best effort. A push that got no answer or
    /// a 5xx leaves no such group, and is not followed by a delete, which
    /// would only wait out a second retry budget against a failing server.
    pub async fn put(
        &self,
        job: &str,
        grouping: &[(String, String)],
        exposition: &str,
        fresh: bool,
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
        if pushed.as_ref().is_err_and(rejected)
            && fresh
            && self
                .send("delete", Method::DELETE, &path, None)
                .await
                .is_err()
        {
            tracing::warn!("could not remove the empty group a rejected push left");
        }
        pushed
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
        if let (Transport::ServiceProxy { .. }, Some(refusal)) =
            (&self.transport, api_server_refusal(status, &text))
        {
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

/// The API server answers for itself (not the Pushgateway) with a
/// `metav1.Status`: word its refusals so the user knows what to fix.
fn api_server_refusal(status: StatusCode, body: &str) -> Option<String> {
    let v: serde_json::Value = serde_json::from_str(body).ok()?;
    if v.get("kind")?.as_str()? != "Status" {
        return None;
    }
    let message = v.get("message").and_then(|m| m.as_str()).unwrap_or("");
    Some(match status {
        StatusCode::UNAUTHORIZED => format!(
            "the API server rejected the EKS token (401 {message}): give the action's IAM role access to the cluster (an EKS access entry, or aws-auth)"
        ),
        StatusCode::FORBIDDEN => format!(
            "the API server forbids it (403): grant get, create and delete on `services/proxy` for the Pushgateway service (examples/rbac.yaml): {message}"
        ),
        StatusCode::NOT_FOUND => format!(
            "the API server has no such service (404): check `pushgateway-service`: {message}"
        ),
        _ => return None,
    })
}

/// Parses `GET /api/v1/metrics` (`{"status":"success","data":[group, ...]}`;
/// each group an object with `labels` and one key per metric family) in one go.
#[cfg(test)]
fn parse_groups(body: &[u8]) -> std::result::Result<Vec<StoredGroup>, String> {
    let mut stream = GroupStream::default();
    stream.feed(body)?;
    stream.finish().map(|l| l.groups)
}

/// An incremental parser of the group listing, fed the answer in pieces as
/// they arrive. It follows the JSON's nesting (strings and escapes
/// included) only to cut out each element of the top-level `data` array;
/// an element is parsed as soon as it is complete ([`ApiGroup`] keeps only
/// what the caller needs) and its bytes dropped. What remains of the answer
/// (`{"status":"success","data":[]}`) is parsed at the end, so a truncated
/// or malformed answer is still an error.
#[derive(Default)]
struct GroupStream {
    /// Nesting depth: 1 inside the top-level object, 2 inside `data`, 3+ inside a group.
    depth: usize,
    in_string: bool,
    escaped: bool,
    /// Inside the top-level `data` array.
    in_data: bool,
    /// The answer without the elements of `data`.
    outer: Vec<u8>,
    /// The group being read (its buffer is reused from group to group).
    element: Vec<u8>,
    /// The group being read passed [`GROUP_LIMIT`].
    oversized: bool,
    groups: Vec<StoredGroup>,
    /// Groups skipped for their size.
    skipped: usize,
}

/// An answer this large without the groups is not a Pushgateway's.
const OUTER_LIMIT: usize = 1 << 20;

/// The most one group of the listing may take (its JSON). A group this
/// action writes is a few KB; a group over the cap is another job's (a
/// thousand series pushed as one group) or a hostile one. It is skipped, not
/// an error: skipping loses nothing (another job's group is never touched;
/// were it one of ours, the event would be pushed again, which replaces the
/// group with the same content, and pruning would wait for a later run),
/// while memory stays bounded by this cap whatever one group holds.
pub const GROUP_LIMIT: usize = 1 << 20;

/// The groups of `GET /api/v1/metrics`.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Listing {
    pub groups: Vec<StoredGroup>,
    /// Groups over [`GROUP_LIMIT`], skipped unread (the run warns about them).
    pub skipped: usize,
}

impl GroupStream {
    fn feed(&mut self, chunk: &[u8]) -> std::result::Result<(), String> {
        for &b in chunk {
            if self.in_data && self.depth >= 3 {
                // Past the cap the group's bytes are no longer kept, only
                // followed to its end (see `GROUP_LIMIT`).
                if self.element.len() < GROUP_LIMIT {
                    self.element.push(b);
                } else {
                    self.oversized = true;
                }
                if self.scan(b) && self.depth == 2 {
                    self.group()?;
                }
                continue;
            }
            if self.in_data && self.depth == 2 && !self.in_string {
                match b {
                    b' ' | b'\t' | b'\n' | b'\r' | b',' => {}
                    b'{' => {
                        self.depth = 3;
                        self.element.push(b);
                    }
                    b']' => {
                        self.depth = 1;
                        self.in_data = false;
                        self.outer.push(b);
                    }
                    other => {
                        return Err(format!(
                            "unexpected answer: a group is not an object (`{}`)",
                            other as char
                        ));
                    }
                }
                continue;
            }
            self.outer.push(b);
            let depth = self.depth;
            if self.scan(b) && b == b'[' && depth == 1 && self.key_is_data() {
                self.in_data = true;
            }
            if self.outer.len() > OUTER_LIMIT {
                return Err("unexpected answer: not a group listing".into());
            }
        }
        Ok(())
    }

    /// Follows strings and nesting; `true` when `b` opened or closed an
    /// object or array (outside strings).
    fn scan(&mut self, b: u8) -> bool {
        if self.in_string {
            match (self.escaped, b) {
                (true, _) => self.escaped = false,
                (false, b'\\') => self.escaped = true,
                (false, b'"') => self.in_string = false,
                _ => {}
            }
            return false;
        }
        match b {
            b'"' => self.in_string = true,
            b'{' | b'[' => {
                self.depth += 1;
                return true;
            }
            b'}' | b']' => {
                self.depth = self.depth.saturating_sub(1);
                return true;
            }
            _ => {}
        }
        false
    }

    /// Whether the array just opened (the last byte of `outer`) is the value of `"data"`.
    fn key_is_data(&self) -> bool {
        let before = &self.outer[..self.outer.len() - 1];
        let before = before.trim_ascii_end();
        before
            .strip_suffix(b":")
            .is_some_and(|k| k.trim_ascii_end().ends_with(b"\"data\""))
    }

    /// One complete group: parsed, kept if it has labels, its bytes dropped.
    fn group(&mut self) -> std::result::Result<(), String> {
        if std::mem::take(&mut self.oversized) {
            self.element.clear();
            self.skipped += 1;
            return Ok(());
        }
        let group: ApiGroup =
            serde_json::from_slice(&self.element).map_err(|e| format!("unexpected answer: {e}"))?;
        self.element.clear();
        if !group.0.labels.is_empty() {
            self.groups.push(group.0);
        }
        Ok(())
    }

    /// The groups, once the whole answer has been fed.
    fn finish(self) -> std::result::Result<Listing, String> {
        let response: ApiResponse =
            serde_json::from_slice(&self.outer).map_err(|e| format!("unexpected answer: {e}"))?;
        if response.status != "success" {
            return Err(format!("status `{}`", response.status));
        }
        Ok(Listing {
            groups: self.groups,
            skipped: self.skipped,
        })
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
    fn the_proxy_path_names_the_service_and_port() {
        let svc = ServiceRef {
            namespace: "observability".into(),
            name: "pushgateway".into(),
            port: Some("9091".into()),
        };
        assert_eq!(
            Transport::proxy_path(&svc),
            "/api/v1/namespaces/observability/services/pushgateway:9091/proxy/"
        );
        let svc = ServiceRef { port: None, ..svc };
        assert_eq!(
            Transport::proxy_path(&svc),
            "/api/v1/namespaces/observability/services/pushgateway/proxy/"
        );
    }

    #[test]
    fn api_server_refusals_are_told_apart_from_pushgateway_answers() {
        let status = r#"{"kind":"Status","apiVersion":"v1","status":"Failure","message":"Unauthorized","reason":"Unauthorized","code":401}"#;
        assert!(
            api_server_refusal(StatusCode::UNAUTHORIZED, status)
                .unwrap()
                .contains("rejected the EKS token")
        );
        assert!(
            api_server_refusal(StatusCode::FORBIDDEN, status)
                .unwrap()
                .contains("services/proxy")
        );
        assert_eq!(
            api_server_refusal(StatusCode::BAD_REQUEST, "text format parsing error"),
            None
        );
    }

    #[test]
    fn groups_are_parsed_with_their_metric_values() {
        let body = r#"{"status":"success","data":[{"labels":{"job":"dora","run_id":"1"},"last_push_successful":true,
            "dora_workflow_deploy_timestamp":{"time_stamp":"2026-11-26T23:18:49Z","type":"GAUGE","help":"h","metrics":[{"labels":{"job":"dora"},"value":"1.7e+09"}]},
            "push_time_seconds":{"type":"GAUGE","metrics":[{"labels":{},"value":"1.79e+09"}]}}]}"#;
        let groups = parse_groups(body.as_bytes()).unwrap();
        assert_eq!(groups.len(), 1);
        assert_eq!(groups[0].labels["run_id"], "1");
        assert_eq!(
            groups[0].metrics["dora_workflow_deploy_timestamp"],
            vec![1.7e9]
        );
        assert_eq!(groups[0].event_time(), Some(1.7e9));
        assert!(parse_groups(b"<html>").is_err());
        // A Flux revision's environment, from its `dora_flux_ready` series:
        // a stored revision can end a canary's recovery in its environment.
        let body = r#"{"status":"success","data":[{"labels":{"job":"dora","kustomization":"apps","revision":"main@sha1:abc"},
            "dora_flux_ready":{"metrics":[{"labels":{"environment":"prod","ready":"true"},"value":"1"}]}}]}"#;
        let groups = parse_groups(body.as_bytes()).unwrap();
        assert_eq!(groups[0].sample_labels["environment"], "prod");
        // A workflow run's series labels, from its `dora_workflow_deploy_event`:
        // tells a group stored before `ref` (with `branch`) from today's.
        let body = r#"{"status":"success","data":[{"labels":{"job":"dora","run_id":"1"},
            "dora_workflow_deploy_event":{"metrics":[{"labels":{"job":"dora","run_id":"1","branch":"main","status":"success"},"value":"1"}]}}]}"#;
        let groups = parse_groups(body.as_bytes()).unwrap();
        assert_eq!(groups[0].sample_labels["branch"], "main");
        assert_eq!(groups[0].metrics["dora_workflow_deploy_event"], vec![1.0]);
    }

    #[test]
    fn the_listing_is_parsed_the_same_whatever_pieces_it_arrives_in() {
        // Braces, brackets, quotes and a `"data":[` inside strings must not
        // confuse the cutting; nor may whitespace between the pieces.
        let body = br#"{ "status" : "success" , "data" : [
            {"labels":{"job":"dora","canary":"a}]\"data\":[{","phase":"x\\"},
             "dora_flagger_canary_phase":{"metrics":[{"labels":{"phase":"Failed"},"value":"1"}]},
             "push_time_seconds":{"metrics":[{"labels":{},"value":"1.7e9"}]}} ,
            {"labels":{}},
            {"labels":{"job":"other","run_id":"2"},"dora_workflow_deploy_timestamp":{"metrics":[{"value":"5"},{"value":"7"}]}}
        ] }"#;
        let whole = parse_groups(body).unwrap();
        assert_eq!(whole.len(), 2, "the group without labels is dropped");
        assert_eq!(whole[0].labels["canary"], "a}]\"data\":[{");
        assert_eq!(whole[0].labels["phase"], "x\\");
        assert_eq!(whole[0].sample_labels["phase"], "Failed");
        assert_eq!(whole[1].event_time(), Some(7.0));
        for size in [1, 2, 3, 7, 64] {
            let mut stream = GroupStream::default();
            for piece in body.chunks(size) {
                stream.feed(piece).unwrap();
            }
            assert_eq!(
                stream.finish().unwrap().groups,
                whole,
                "pieces of {size} bytes"
            );
        }
    }

    #[test]
    fn a_group_over_the_cap_is_skipped_and_counted() {
        let huge = "x".repeat(GROUP_LIMIT + 10);
        let body = format!(
            r#"{{"status":"success","data":[{{"labels":{{"job":"other","g":"1"}},"big":{{"metrics":[{{"labels":{{"v":"{huge}"}},"value":"1"}}]}}}},{{"labels":{{"job":"dora","run_id":"2"}},"dora_workflow_deploy_timestamp":{{"metrics":[{{"value":"5"}}]}}}}]}}"#
        );
        let mut stream = GroupStream::default();
        for piece in body.as_bytes().chunks(64 * 1024) {
            stream.feed(piece).unwrap();
            assert!(
                stream.element.capacity() <= 2 * GROUP_LIMIT,
                "memory stays bounded"
            );
        }
        let listing = stream.finish().unwrap();
        assert_eq!(listing.skipped, 1);
        assert_eq!(listing.groups.len(), 1);
        assert_eq!(listing.groups[0].labels["run_id"], "2");
    }

    #[test]
    fn a_truncated_or_foreign_listing_is_an_error() {
        let body = br#"{"status":"success","data":[{"labels":{"job":"dora"}},{"labels":{"job":"#;
        for end in [body.len(), 40, 30, 5] {
            assert!(parse_groups(&body[..end]).is_err(), "cut at {end}");
        }
        assert!(parse_groups(br#"{"status":"error","data":[]}"#).is_err());
        assert!(parse_groups(br#"{"status":"success","data":[1]}"#).is_err());
        assert!(parse_groups(br#"{"status":"success","data":[{"labels":7}]}"#).is_err());
        assert!(parse_groups(b"").is_err());
        assert_eq!(
            parse_groups(br#"{"status":"success","data":[]}"#).unwrap(),
            vec![]
        );
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
