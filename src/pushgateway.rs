//! The Prometheus Pushgateway's HTTP API: list groups, delete a group, PUT a
//! group. Knows grouping keys and paths, not DORA.

use std::collections::BTreeMap;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE;
use http::Method;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use reqwest::header::CONTENT_TYPE;
use reqwest::{Client, StatusCode, Url};
use serde::Deserialize;

use crate::dora::StoredGroup;
use crate::inputs::ServiceRef;
use crate::retry::{Attempt, Backoff, retry};
use crate::{Error, Result};

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
    async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<&str>,
    ) -> std::result::Result<(StatusCode, bytes::Bytes), String> {
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
                let status = response.status();
                // A body that stops coming (the request timeout covers it) is no
                // answer, to be retried, not an empty and so "malformed" one.
                let body = response.bytes().await.map_err(|e| describe(&e))?;
                Ok((status, body))
            }
            Transport::ServiceProxy {
                client,
                base,
                endpoint,
            } => {
                let mut request = http::Request::builder()
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
                let status = response.status();
                let bytes = response
                    .into_body()
                    .collect_bytes()
                    .await
                    .map_err(|e| format!("reading the answer: {e}"))?;
                Ok((status, bytes))
            }
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

#[derive(Deserialize)]
struct ApiResponse {
    status: String,
    #[serde(default)]
    data: Vec<ApiGroup>,
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
                        if let Some(first) =
                            family.metrics.first().filter(|_| key.ends_with("_phase"))
                        {
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
    labels: BTreeMap<String, String>,
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
    pub async fn groups(&self) -> Result<Vec<StoredGroup>> {
        let body = self
            .send("read groups", Method::GET, "api/v1/metrics", None)
            .await?;
        parse_groups(&body).map_err(|e| Error::Pushgateway(format!("GET api/v1/metrics: {e}")))
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
        let (pushed, last_status) = self
            .send_answered("push", Method::PUT, &path, Some(exposition))
            .await;
        if pushed.is_err()
            && fresh
            && last_status
                .is_some_and(|s| s.is_client_error() && s != StatusCode::TOO_MANY_REQUESTS)
            && self
                .send("delete", Method::DELETE, &path, None)
                .await
                .is_err()
        {
            tracing::warn!("could not remove the empty group a rejected push left");
        }
        pushed.map(drop)
    }

    /// Deletes the group with exactly these labels (including `job`).
    pub async fn delete(&self, labels: &BTreeMap<String, String>) -> Result<()> {
        let job = labels.get("job").map(String::as_str).unwrap_or_default();
        let path = group_path(
            job,
            labels
                .iter()
                .filter(|(k, _)| *k != "job")
                .map(|(k, v)| (k.as_str(), v.as_str())),
        );
        self.send("delete", Method::DELETE, &path, None)
            .await
            .map(drop)
    }

    /// Sends a request with the retry policy: connection errors, timeouts,
    /// 429 and 5xx are retried; any other non-2xx is final. Through the
    /// service proxy, the API server's own refusals are worded as such.
    async fn send(
        &self,
        what: &str,
        method: Method,
        path: &str,
        body: Option<&str>,
    ) -> Result<bytes::Bytes> {
        self.send_answered(what, method, path, body).await.0
    }

    /// [`Pushgateway::send`], also returning the status of the Pushgateway's
    /// last answer (none when it never answered, or the API server refused
    /// the request itself).
    async fn send_answered(
        &self,
        what: &str,
        method: Method,
        path: &str,
        body: Option<&str>,
    ) -> (Result<bytes::Bytes>, Option<StatusCode>) {
        let last_status = std::cell::Cell::new(None);
        let result = retry(self.backoff, || async {
            let (status, answer) = match self.transport.send(method.clone(), path, body).await {
                Ok(answer) => answer,
                Err(e) => return Attempt::Retry(format!("{what}: {e}")),
            };
            if status.is_success() {
                // The answer stays bytes: the group listing can be tens of megabytes.
                return Attempt::Done(answer);
            }
            let text = String::from_utf8_lossy(&answer);
            if let (Transport::ServiceProxy { .. }, Some(refusal)) =
                (&self.transport, api_server_refusal(status, &text))
            {
                return Attempt::Fail(format!("{what}: {refusal}"));
            }
            last_status.set(Some(status));
            let detail = || format!("{what}: HTTP {status}: {}", text.trim());
            if status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS {
                Attempt::Retry(detail())
            } else {
                Attempt::Fail(detail())
            }
        })
        .await
        .map_err(Error::Pushgateway);
        (result, last_status.get())
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

/// A reqwest error in one line, with its cause (reqwest's own text omits it).
pub fn describe(e: &reqwest::Error) -> String {
    let mut text = if e.is_timeout() {
        "timed out".to_string()
    } else if e.is_connect() {
        "cannot connect".to_string()
    } else {
        "request failed".to_string()
    };
    if let Some(url) = e.url() {
        text.push_str(&format!(" to {}", url.as_str()));
    }
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        text.push_str(&format!(": {s}"));
        source = s.source();
    }
    text
}

/// Parses `GET /api/v1/metrics`: each group is an object with `labels` and
/// one key per metric family (values are strings).
fn parse_groups(body: &[u8]) -> std::result::Result<Vec<StoredGroup>, String> {
    let response: ApiResponse =
        serde_json::from_slice(body).map_err(|e| format!("unexpected answer: {e}"))?;
    if response.status != "success" {
        return Err(format!("status `{}`", response.status));
    }
    Ok(response
        .data
        .into_iter()
        .map(|g| g.0)
        .filter(|g| !g.labels.is_empty())
        .collect())
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
