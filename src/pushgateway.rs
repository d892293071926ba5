//! The Prometheus Pushgateway's HTTP API: list groups, delete a group, PUT a
//! group. Knows grouping keys and paths, not DORA.

use std::collections::BTreeMap;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use reqwest::{Client, StatusCode, Url};
use serde::Deserialize;

use crate::dora::StoredGroup;
use crate::retry::{Attempt, Backoff, retry};
use crate::{Error, Result};

/// Characters left as they are in a path segment (RFC 3986 unreserved).
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// One grouping label as a path pair. Values the path cannot carry (a `/`,
/// or empty) use the Pushgateway's `@base64` form (URL-safe alphabet);
/// everything else is percent-encoded, which keeps paths readable in logs.
fn label_segment(name: &str, value: &str) -> String {
    if value.is_empty() || value.contains('/') {
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

/// A Pushgateway reached over HTTP at `base` (a direct URL, or later the API
/// server's service proxy URL with a client that carries its credentials).
#[derive(Debug, Clone)]
pub struct Pushgateway {
    base: Url,
    http: Client,
    backoff: Backoff,
}

/// How long one request may take before it counts as a failed attempt.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Deserialize)]
struct ApiResponse {
    status: String,
    #[serde(default)]
    data: Vec<BTreeMap<String, serde_json::Value>>,
}

#[derive(Deserialize)]
struct ApiFamily {
    #[serde(default)]
    metrics: Vec<ApiMetric>,
}

#[derive(Deserialize)]
struct ApiMetric {
    value: Option<String>,
}

impl Pushgateway {
    /// A client for the Pushgateway at `base`; a missing trailing `/` is added
    /// so that a path prefix (`https://host/pushgateway`) is kept.
    pub fn new(mut base: Url, http: Client) -> Pushgateway {
        if !base.path().ends_with('/') {
            base.set_path(&format!("{}/", base.path()));
        }
        Pushgateway {
            base,
            http,
            backoff: Backoff::PUSHGATEWAY,
        }
    }

    /// Where it is, for the summary (without credentials).
    pub fn display_url(&self) -> String {
        let mut u = self.base.clone();
        let _ = u.set_password(None);
        let _ = u.set_username("");
        u.to_string()
    }

    fn url(&self, path: &str) -> Result<Url> {
        self.base
            .join(path)
            .map_err(|e| Error::Pushgateway(format!("cannot build URL for {path}: {e}")))
    }

    /// Every group with its grouping labels and metric values (`GET /api/v1/metrics`).
    pub async fn groups(&self) -> Result<Vec<StoredGroup>> {
        let url = self.url("api/v1/metrics")?;
        let body = self
            .send("read groups", || self.http.get(url.clone()))
            .await?;
        parse_groups(&body).map_err(|e| Error::Pushgateway(format!("GET {url}: {e}")))
    }

    /// Replaces a group with `exposition` (`PUT`): the same event pushed
    /// twice leaves the same state.
    pub async fn put(
        &self,
        job: &str,
        grouping: &[(String, String)],
        exposition: &str,
    ) -> Result<()> {
        let path = group_path(job, grouping.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        let url = self.url(&path)?;
        self.send("push", || {
            self.http
                .put(url.clone())
                .header("content-type", "text/plain; version=0.0.4; charset=utf-8")
                .body(exposition.to_string())
        })
        .await
        .map(drop)
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
        let url = self.url(&path)?;
        self.send("delete", || self.http.delete(url.clone()))
            .await
            .map(drop)
    }

    /// Sends a request with the retry policy: connection errors, timeouts
    /// and 5xx are retried; any other non-2xx is final.
    async fn send(
        &self,
        what: &str,
        request: impl Fn() -> reqwest::RequestBuilder,
    ) -> Result<String> {
        retry(self.backoff, || async {
            let response = match request().timeout(REQUEST_TIMEOUT).send().await {
                Ok(r) => r,
                Err(e) => return Attempt::Retry(format!("{what}: {}", describe(&e))),
            };
            let status = response.status();
            let body = response.text().await.unwrap_or_default();
            let detail = || format!("{what}: HTTP {status}: {}", body.trim());
            if status.is_success() {
                Attempt::Done(body)
            } else if status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS {
                Attempt::Retry(detail())
            } else {
                Attempt::Fail(detail())
            }
        })
        .await
        .map_err(Error::Pushgateway)
    }
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
fn parse_groups(body: &str) -> std::result::Result<Vec<StoredGroup>, String> {
    let response: ApiResponse =
        serde_json::from_str(body).map_err(|e| format!("unexpected answer: {e}"))?;
    if response.status != "success" {
        return Err(format!("status `{}`", response.status));
    }
    let mut groups = Vec::new();
    for mut raw in response.data {
        let labels = match raw.remove("labels") {
            Some(v) => serde_json::from_value(v).map_err(|e| format!("group labels: {e}"))?,
            None => continue,
        };
        let mut metrics = BTreeMap::new();
        for (name, value) in raw {
            // `last_push_successful` is a boolean, not a family.
            let Ok(family) = serde_json::from_value::<ApiFamily>(value) else {
                continue;
            };
            let values = family
                .metrics
                .iter()
                .filter_map(|m| m.value.as_deref()?.parse::<f64>().ok())
                .collect();
            metrics.insert(name, values);
        }
        groups.push(StoredGroup { labels, metrics });
    }
    Ok(groups)
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
    }

    #[test]
    fn base64_uses_the_url_safe_alphabet() {
        // `??>` encodes to `Pz8+` in the standard alphabet; a `+` would be read as a space.
        assert_eq!(label_segment("x", "??>/"), "x@base64/Pz8-Lw==");
    }

    #[test]
    fn groups_are_parsed_with_their_metric_values() {
        let body = r#"{"status":"success","data":[{"labels":{"job":"dora","run_id":"1"},"last_push_successful":true,
            "dora_workflow_deploy_timestamp":{"time_stamp":"2026-11-26T23:18:49Z","type":"GAUGE","help":"h","metrics":[{"labels":{"job":"dora"},"value":"1.7e+09"}]},
            "push_time_seconds":{"type":"GAUGE","metrics":[{"labels":{},"value":"1.79e+09"}]}}]}"#;
        let groups = parse_groups(body).unwrap();
        assert_eq!(groups.len(), 1);
        assert_eq!(groups[0].labels["run_id"], "1");
        assert_eq!(
            groups[0].metrics["dora_workflow_deploy_timestamp"],
            vec![1.7e9]
        );
        assert_eq!(groups[0].event_time(), Some(1.7e9));
        assert!(parse_groups("<html>").is_err());
    }

    #[test]
    fn a_path_prefix_in_the_base_url_is_kept() {
        let pg = Pushgateway::new(
            Url::parse("https://u:p@h.example/pg").unwrap(),
            Client::new(),
        );
        assert_eq!(
            pg.url("api/v1/metrics").unwrap().as_str(),
            "https://u:p@h.example/pg/api/v1/metrics"
        );
        assert_eq!(pg.display_url(), "https://h.example/pg/");
    }
}
