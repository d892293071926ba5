//! The query API of the remote-write store (`POST {base}api/v1/query`, the
//! Prometheus HTTP API every compatible store serves): asked, once a run,
//! which events it already holds, so a run without a Pushgateway makes no
//! GitHub look-up for them. Same store, same auth as [`super::remote_write`].

use std::collections::BTreeMap;
use std::time::Duration;

use jiff::Timestamp;
use reqwest::header::CONTENT_TYPE;
use reqwest::{Client, StatusCode, Url};
use serde::Deserialize;

use super::remote_write::{Auth, authorize};
use crate::http;
use crate::retry::{Attempt, Backoff, retry};
use crate::{Error, Failure, Result};

/// The store's query API at `base` (ending in `/`).
#[derive(Debug, Clone)]
pub struct RemoteQuery {
    base: Url,
    auth: Auth,
    http: Client,
    /// Where the URL came from, for the summary.
    origin: &'static str,
}

/// One series of an instant vector: its labels (`__name__` included) and value.
pub type Series = (BTreeMap<String, String>, f64);

/// The most an answer may take: a month of one team's events is a few
/// thousand series of a few hundred bytes each; more is no such answer.
pub const ANSWER_LIMIT: usize = 32 << 20;

/// How long the query may take before it counts as a failed attempt.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

const FORM: &str = "application/x-www-form-urlencoded";

#[derive(Deserialize)]
struct Answer {
    status: String,
    #[serde(default)]
    error: Option<String>,
    #[serde(default)]
    data: Option<Data>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Data {
    result_type: String,
    result: Vec<ApiSeries>,
}

#[derive(Deserialize)]
struct ApiSeries {
    metric: BTreeMap<String, String>,
    /// `[unix seconds, "value"]`.
    value: (f64, String),
}

impl RemoteQuery {
    pub fn new(base: Url, auth: Auth, http: Client, origin: &'static str) -> RemoteQuery {
        RemoteQuery {
            base,
            auth,
            http,
            origin,
        }
    }

    /// Where the URL came from (an input, or derived from which), for the summary.
    pub fn origin(&self) -> &'static str {
        self.origin
    }

    /// Where it is, for the summary (never with credentials).
    pub fn display_url(&self) -> String {
        let mut u = self.base.clone();
        let _ = u.set_password(None);
        let _ = u.set_username("");
        u.to_string()
    }

    /// `query` evaluated at `time` (an instant vector): every series with
    /// its value. Connection errors, timeouts, 429 and 5xx are retried
    /// within the bound; an answer that is no instant vector is an error.
    pub async fn instant(&self, query: &str, time: Timestamp) -> Result<Vec<Series>> {
        let url = self
            .base
            .join("api/v1/query")
            .map_err(|e| Error::RemoteWrite(format!("query: {e}").into()))?;
        let body = form(&[("query", query), ("time", &time.as_second().to_string())]);
        retry(Backoff::STORE_QUERY, || async {
            let request = self
                .http
                .post(url.clone())
                .timeout(REQUEST_TIMEOUT)
                .header(CONTENT_TYPE, FORM)
                .body(body.clone());
            let signed = authorize(
                &self.auth,
                request,
                &url,
                &[("content-type", FORM)],
                body.as_bytes(),
            );
            let response = match http::attempt(signed).await {
                Ok(r) => r,
                Err(attempt) => return attempt,
            };
            let status = response.status();
            if let Some(note) = http::redirect_note(status, response.headers()) {
                return Attempt::Fail(Failure::answered(status, format!("HTTP {status}: {note}")));
            }
            let limit = if status.is_success() {
                ANSWER_LIMIT
            } else {
                http::ERROR_BODY_LIMIT
            };
            let body = match http::read_capped(response, limit).await {
                Ok(body) if body.complete || !status.is_success() => body,
                Ok(_) => {
                    return Attempt::Fail(Failure::answered(
                        status,
                        format!(
                            "the answer is larger than {}: not read further",
                            http::size(ANSWER_LIMIT)
                        ),
                    ));
                }
                Err(e) => return Attempt::Retry(Failure::transport(e)),
            };
            if status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS {
                return Attempt::Retry(Failure::answered(
                    status,
                    format!("HTTP {status}: {}", http::first_line(&body.text(), 200)),
                ));
            }
            match parse(status, &body.bytes) {
                Ok(series) => Attempt::Done(series),
                Err(message) => Attempt::Fail(Failure::answered(status, message)),
            }
        })
        .await
        .map_err(|e| Error::RemoteWrite(e.context(&format!("query {}", self.display_url()))))
    }
}

/// An `application/x-www-form-urlencoded` body.
fn form(pairs: &[(&str, &str)]) -> String {
    pairs
        .iter()
        .map(|(k, v)| {
            format!(
                "{k}={}",
                percent_encoding::utf8_percent_encode(v, percent_encoding::NON_ALPHANUMERIC)
            )
        })
        .collect::<Vec<_>>()
        .join("&")
}

/// The series of an instant-vector answer; the store's own error otherwise.
fn parse(status: StatusCode, body: &[u8]) -> std::result::Result<Vec<Series>, String> {
    let answer: Answer = serde_json::from_slice(body).map_err(|e| {
        format!(
            "HTTP {status}: not a Prometheus API answer ({e}): {}",
            http::first_line(&String::from_utf8_lossy(body), 200)
        )
    })?;
    if answer.status != "success" {
        return Err(format!(
            "HTTP {status}: the store says {}",
            http::first_line(answer.error.as_deref().unwrap_or("(no error)"), 200)
        ));
    }
    let data = answer.data.ok_or("no data in the answer")?;
    if data.result_type != "vector" {
        return Err(format!("a `{}`, not an instant vector", data.result_type));
    }
    Ok(data
        .result
        .into_iter()
        .filter_map(|s| Some((s.metric, s.value.1.parse::<f64>().ok()?)))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_form_encodes_every_reserved_character() {
        assert_eq!(
            form(&[
                ("query", r#"last_over_time({job="a b"}[5s])"#),
                ("time", "7")
            ]),
            "query=last%5Fover%5Ftime%28%7Bjob%3D%22a%20b%22%7D%5B5s%5D%29&time=7"
        );
    }

    #[test]
    fn answers_are_instant_vectors_or_errors() {
        let ok = br#"{"status":"success","data":{"resultType":"vector","result":[
            {"metric":{"__name__":"dora_workflow_deploy_timestamp","run_id":"1"},"value":[1.7e9,"1795170600"]},
            {"metric":{"__name__":"x"},"value":[1.7e9,"NaN"]},
            {"metric":{"__name__":"y"},"value":[1.7e9,"not a number"]}]}}"#;
        let series = parse(StatusCode::OK, ok).unwrap();
        assert_eq!(series.len(), 2, "an unparsable value is dropped");
        assert_eq!(series[0].0["run_id"], "1");
        assert_eq!(series[0].1, 1_795_170_600.0);
        let error = br#"{"status":"error","errorType":"bad_data","error":"parse error"}"#;
        assert_eq!(
            parse(StatusCode::BAD_REQUEST, error).unwrap_err(),
            "HTTP 400 Bad Request: the store says parse error"
        );
        let matrix = br#"{"status":"success","data":{"resultType":"matrix","result":[]}}"#;
        assert!(
            parse(StatusCode::OK, matrix)
                .unwrap_err()
                .contains("matrix")
        );
        assert!(
            parse(StatusCode::OK, b"<html>")
                .unwrap_err()
                .contains("not a Prometheus API answer")
        );
    }
}
