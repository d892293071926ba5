//! Prometheus remote-write 1.0: the durable stores teams already run
//! (Amazon Managed Service for Prometheus, Grafana Mimir, Thanos Receive,
//! VictoriaMetrics, Prometheus itself with `--web.enable-remote-write-receiver`).
//!
//! A request is a protobuf `WriteRequest` (the `prompb` messages, declared
//! here with prost's derive: four small messages do not justify a build-time
//! code generator), snappy block-compressed, with the three headers the
//! protocol requires. Every sample carries its own timestamp, so history and
//! backfill land at the time the events happened.
//!
//! Knows nothing of DORA: it writes [`Unit`]s — the series of one event,
//! accepted or refused together — and says which the store already had.
//! Stores refuse a sample they already hold at that timestamp with a
//! different value, or one older than the series' newest, with 400 (409 on
//! Thanos); for an event that is a re-run writing it again, so such a unit
//! counts as already stored. Prometheus rolls back a whole request for one
//! such sample, so a refused request is split until each unit stands alone:
//! a duplicate never costs the events sent beside it.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, SystemTime};

use prost::Message;
use reqwest::header::RETRY_AFTER;
use reqwest::{Client, StatusCode, Url};

use crate::aws::{self, Credentials};
use crate::http;
use crate::retry::{Attempt, Backoff, retry};
use crate::{Error, Failure, Result};

/// `prometheus.WriteRequest` (remote-write 1.0). Field 3 (metadata) is not sent.
#[derive(Clone, PartialEq, prost::Message)]
pub struct WriteRequest {
    #[prost(message, repeated, tag = "1")]
    pub timeseries: Vec<TimeSeries>,
}

/// `prometheus.TimeSeries`: labels sorted by name, `__name__` among them.
#[derive(Clone, PartialEq, prost::Message)]
pub struct TimeSeries {
    #[prost(message, repeated, tag = "1")]
    pub labels: Vec<Label>,
    #[prost(message, repeated, tag = "2")]
    pub samples: Vec<Sample>,
}

/// `prometheus.Label`.
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct Label {
    #[prost(string, tag = "1")]
    pub name: String,
    #[prost(string, tag = "2")]
    pub value: String,
}

/// `prometheus.Sample`: the timestamp is Unix milliseconds.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Sample {
    #[prost(double, tag = "1")]
    pub value: f64,
    #[prost(int64, tag = "2")]
    pub timestamp: i64,
}

impl TimeSeries {
    /// One sample of the series named by `labels` (any order; sorted here,
    /// as the protocol requires).
    pub fn new(mut labels: Vec<(String, String)>, value: f64, timestamp_ms: i64) -> TimeSeries {
        labels.sort();
        TimeSeries {
            labels: labels
                .into_iter()
                .map(|(name, value)| Label { name, value })
                .collect(),
            samples: vec![Sample {
                value,
                timestamp: timestamp_ms,
            }],
        }
    }
}

/// The series of one event: sent in one request, never split.
pub type Unit = Vec<TimeSeries>;

/// How requests authenticate: the kinds [`crate::http::Auth`] names, SigV4
/// with everything signing needs.
pub type Auth = crate::http::Auth<SigV4Key>;

/// What SigV4 signing (service `aps`) needs: the region and the credentials.
#[derive(Clone)]
pub struct SigV4Key {
    pub region: String,
    pub credentials: Credentials,
}

/// The region only: nothing of the credentials shows.
impl std::fmt::Debug for SigV4Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.region)
    }
}

/// Samples per request at most: Prometheus' own remote-write sender sends
/// 2,000 (`max_samples_per_send`), a size every receiver accepts.
pub const MAX_SAMPLES_PER_REQUEST: usize = 2_000;

const REQUEST_TIMEOUT: Duration = Duration::from_secs(15);

/// The headers remote-write 1.0 requires, in the order they are signed.
pub const PROTOCOL_HEADERS: [(&str, &str); 3] = [
    ("content-encoding", "snappy"),
    ("content-type", "application/x-protobuf"),
    ("x-prometheus-remote-write-version", "0.1.0"),
];

/// What a write did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Written {
    /// Units the store accepted (it may already have held identical samples:
    /// stores accept those silently).
    pub accepted: usize,
    /// Units the store refused as duplicates or out of order: already written.
    pub already_stored: usize,
    /// Requests sent (each retry and split counted).
    pub requests: usize,
}

/// One answer, classified.
enum Answer {
    Stored,
    /// Duplicate or out-of-order samples: the unit (if alone) is already stored.
    Conflict(String),
}

/// A remote-write endpoint.
pub struct RemoteWrite {
    url: Url,
    auth: Auth,
    http: Client,
    backoff: Backoff,
    requests: AtomicUsize,
}

impl RemoteWrite {
    pub fn new(url: Url, auth: Auth, http: Client) -> RemoteWrite {
        RemoteWrite {
            url,
            auth,
            http,
            backoff: Backoff::PUSHGATEWAY,
            requests: AtomicUsize::new(0),
        }
    }

    /// The URL without credentials, for the summary.
    pub fn display_url(&self) -> String {
        let mut url = self.url.clone();
        let _ = url.set_password(None);
        let _ = url.set_username("");
        url.to_string()
    }

    /// Writes every unit: batches of whole units up to
    /// [`MAX_SAMPLES_PER_REQUEST`] samples, one after the other (a store may
    /// want a series' samples in time order). Stops at the first batch that
    /// cannot be written: what was accepted before stays (writing it again is
    /// harmless), and the error says what the store answered.
    pub async fn write(&self, units: &[Unit]) -> Result<Written> {
        let mut written = Written::default();
        for batch in batches(units, MAX_SAMPLES_PER_REQUEST) {
            self.write_split(batch, &mut written).await?;
        }
        written.requests = self.requests.load(Ordering::Relaxed);
        Ok(written)
    }

    /// Sends `units` in one request; on a conflict, halves and retries each
    /// half, so one unit already stored does not hold back the others.
    async fn write_split(&self, units: &[Unit], written: &mut Written) -> Result<()> {
        let mut stack = vec![units];
        while let Some(units) = stack.pop() {
            match self.send(units).await? {
                Answer::Stored => written.accepted += units.len(),
                Answer::Conflict(why) if units.len() == 1 => {
                    tracing::debug!("already stored: {why}");
                    written.already_stored += 1;
                }
                Answer::Conflict(_) => {
                    let (a, b) = units.split_at(units.len() / 2);
                    stack.push(b);
                    stack.push(a);
                }
            }
        }
        Ok(())
    }

    /// One request with the retry policy: connection errors, timeouts, 429
    /// (waiting what `Retry-After` says) and 5xx are retried within the bound.
    async fn send(&self, units: &[Unit]) -> Result<Answer> {
        let body = encode(units);
        let samples: usize = units
            .iter()
            .flatten()
            .map(|s| s.samples.len())
            .sum::<usize>();
        retry(self.backoff, || async {
            self.requests.fetch_add(1, Ordering::Relaxed);
            let response = match http::attempt(self.request(&body)).await {
                Ok(r) => r,
                Err(attempt) => return attempt,
            };
            let status = response.status();
            let retry_after = response
                .headers()
                .get(RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<u64>().ok())
                .map(Duration::from_secs);
            if let Some(note) = http::redirect_note(status, response.headers()) {
                return Attempt::Fail(format!("HTTP {status}: {note}").into());
            }
            // A receiver's answer is empty or one line; read no more than a few KB of it.
            let text = match http::read_capped(response, http::ERROR_BODY_LIMIT).await {
                Ok(body) => body.text(),
                Err(_) => String::new(),
            };
            classify(status, text.trim(), retry_after, &self.auth)
        })
        .await
        .map_err(|e| {
            Error::RemoteWrite(
                format!(
                    "{}: {samples} samples of {} events not written: {e}",
                    self.display_url(),
                    units.len()
                )
                .into(),
            )
        })
    }

    /// The POST for `body`, with the protocol headers and the auth.
    fn request(&self, body: &[u8]) -> Result<reqwest::RequestBuilder> {
        let mut request = self
            .http
            .post(self.url.clone())
            .timeout(REQUEST_TIMEOUT)
            .body(body.to_vec());
        for (name, value) in PROTOCOL_HEADERS {
            request = request.header(name, value);
        }
        authorize(&self.auth, request, &self.url, &PROTOCOL_HEADERS, body)
    }
}

/// `request`, a POST of `body` with `headers` to `url`, authenticated:
/// a bearer token, basic auth, or a SigV4 signature (service `aps`) over
/// the URL, those headers and the body. One rule for every request to
/// the store (writes and queries).
pub fn authorize(
    auth: &Auth,
    request: reqwest::RequestBuilder,
    url: &Url,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Result<reqwest::RequestBuilder> {
    Ok(match auth {
        Auth::None => request,
        Auth::Bearer(token) => request.bearer_auth(token),
        Auth::Basic { username, password } => request.basic_auth(username, Some(password)),
        Auth::SigV4(SigV4Key {
            region,
            credentials,
        }) => {
            let signed = aws::sigv4_headers(
                credentials,
                region,
                "aps",
                "POST",
                url.as_str(),
                headers,
                body,
                SystemTime::now(),
            )?;
            signed
                .into_iter()
                .fold(request, |r, (name, value)| r.header(name, value))
        }
    })
}

/// Whole units, in order, grouped so each batch holds at most `max` samples
/// (a single larger unit goes alone).
pub fn batches(units: &[Unit], max: usize) -> Vec<&[Unit]> {
    let mut out = Vec::new();
    let (mut start, mut samples) = (0, 0);
    for (i, unit) in units.iter().enumerate() {
        let n: usize = unit.iter().map(|s| s.samples.len()).sum();
        if i > start && samples + n > max {
            out.push(&units[start..i]);
            (start, samples) = (i, 0);
        }
        samples += n;
    }
    if start < units.len() {
        out.push(&units[start..]);
    }
    out
}

/// The request body: the `WriteRequest` of every unit's series, snappy
/// block-compressed (not the framed format, which receivers refuse).
pub fn encode(units: &[Unit]) -> Vec<u8> {
    let request = WriteRequest {
        timeseries: units.iter().flatten().cloned().collect(),
    };
    snap::raw::Encoder::new()
        .compress_vec(&request.encode_to_vec())
        .expect("snappy compresses any input held in memory")
}

/// What an answer means for the run. Duplicates and out-of-order samples
/// are how each store words "you sent this already"; a sample too old for
/// the store's window is a refusal the user must fix on the store's side.
fn classify(
    status: StatusCode,
    text: &str,
    retry_after: Option<Duration>,
    auth: &Auth,
) -> Attempt<Answer> {
    let lower = text.to_ascii_lowercase();
    let says = |words: &[&str]| words.iter().any(|w| lower.contains(w));
    let detail = || format!("HTTP {status}: {}", http::first_line(text, 300));
    if status.is_success() {
        return Attempt::Done(Answer::Stored);
    }
    // Before the 5xx retry: some Prometheus versions answer 500 for a sample
    // outside the out-of-order window, which no retry can fix.
    if says(&[
        "out of bounds",
        "too old",
        "timestamp-too-old",
        "too far in the past",
    ]) {
        return Attempt::Fail(Failure::answered(
            status,
            format!(
                "the store refuses samples this old ({}): it keeps only recent samples; allow older ones (Prometheus: `storage.tsdb.out_of_order_time_window`; Mimir: `out_of_order_time_window`) or shorten `lookback`",
                detail()
            ),
        ));
    }
    if matches!(status, StatusCode::BAD_REQUEST | StatusCode::CONFLICT)
        && says(&[
            "out of order",
            "out-of-order",
            "duplicate sample",
            "duplicate-timestamp",
            "duplicate timestamp",
        ])
    {
        return Attempt::Done(Answer::Conflict(detail()));
    }
    match status {
        StatusCode::TOO_MANY_REQUESTS => match retry_after {
            Some(wait) => Attempt::RetryAfter(Failure::answered(status, detail()), wait),
            None => Attempt::Retry(Failure::answered(status, detail())),
        },
        s if s.is_server_error() => Attempt::Retry(Failure::answered(status, detail())),
        StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => Attempt::Fail(Failure::answered(
            status,
            format!(
                "the store refused the request ({}) with auth `{}`: check the `remote-write-*` credentials (Amazon Managed Service for Prometheus: the role needs `aps:RemoteWrite` on the workspace)",
                detail(),
                auth.name()
            ),
        )),
        StatusCode::NOT_FOUND | StatusCode::METHOD_NOT_ALLOWED => Attempt::Fail(Failure::answered(
            status,
            format!(
                "no remote-write receiver at this URL ({}): check `remote-write-url` (Prometheus needs `--web.enable-remote-write-receiver` and the path /api/v1/write)",
                detail()
            ),
        )),
        _ => Attempt::Fail(Failure::answered(status, detail())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unit(n: usize, t: i64) -> Unit {
        (0..n)
            .map(|i| {
                TimeSeries::new(
                    vec![("__name__".into(), "m".into()), ("i".into(), i.to_string())],
                    1.0,
                    t,
                )
            })
            .collect()
    }

    #[test]
    fn labels_are_sorted_by_name() {
        let s = TimeSeries::new(
            vec![
                ("job".into(), "dora".into()),
                ("__name__".into(), "m".into()),
                ("environment".into(), "prod".into()),
            ],
            2.0,
            1_700_000_000_000,
        );
        let names: Vec<&str> = s.labels.iter().map(|l| l.name.as_str()).collect();
        assert_eq!(names, ["__name__", "environment", "job"]);
    }

    #[test]
    fn the_body_is_a_snappy_block_of_the_write_request() {
        let units = vec![unit(2, 1_700_000_000_000)];
        let body = encode(&units);
        let raw = snap::raw::Decoder::new().decompress_vec(&body).unwrap();
        let back = WriteRequest::decode(raw.as_slice()).unwrap();
        assert_eq!(back.timeseries, units[0]);
        assert_eq!(back.timeseries[1].samples[0].timestamp, 1_700_000_000_000);
    }

    #[test]
    fn batches_keep_units_whole_and_within_the_limit() {
        let units: Vec<Unit> = [3, 3, 3, 5, 1].iter().map(|&n| unit(n, 0)).collect();
        let sizes: Vec<usize> = batches(&units, 6).iter().map(|b| b.len()).collect();
        assert_eq!(sizes, [2, 1, 2]);
        // A unit larger than the limit goes alone rather than being split.
        let big = vec![unit(1, 0), unit(9, 0), unit(1, 0)];
        let sizes: Vec<usize> = batches(&big, 4).iter().map(|b| b.len()).collect();
        assert_eq!(sizes, [1, 1, 1]);
        assert!(batches(&[], 4).is_empty());
    }

    #[test]
    fn answers_are_classified() {
        let auth = Auth::None;
        let c = |s: u16, t: &str| classify(StatusCode::from_u16(s).unwrap(), t, None, &auth);
        assert!(matches!(c(204, ""), Attempt::Done(Answer::Stored)));
        // Prometheus, Mimir, Thanos (409) wordings of "already written".
        assert!(matches!(
            c(400, "out of order sample"),
            Attempt::Done(Answer::Conflict(_))
        ));
        assert!(matches!(
            c(400, "duplicate sample for timestamp"),
            Attempt::Done(Answer::Conflict(_))
        ));
        assert!(matches!(
            c(
                400,
                "failed pushing to ingester: user=x: the sample has been rejected because another sample with the same timestamp, but a different value, has already been ingested (err-mimir-sample-duplicate-timestamp)"
            ),
            Attempt::Done(Answer::Conflict(_))
        ));
        assert!(matches!(
            c(409, "add 1 samples: out of order"),
            Attempt::Done(Answer::Conflict(_))
        ));
        // Too old: refused for good, with the fix named, even as a 500.
        for (s, t) in [
            (400, "out of bounds"),
            (500, "too old sample"),
            (400, "err-mimir-sample-timestamp-too-old"),
        ] {
            match c(s, t) {
                Attempt::Fail(e) => assert!(e.message.contains("out_of_order_time_window"), "{e}"),
                _ => panic!("{s} {t} should fail"),
            }
        }
        assert!(matches!(c(503, "unavailable"), Attempt::Retry(_)));
        assert!(matches!(c(429, "slow down"), Attempt::Retry(_)));
        assert!(matches!(
            classify(StatusCode::TOO_MANY_REQUESTS, "", Some(Duration::from_secs(3)), &auth),
            Attempt::RetryAfter(_, d) if d == Duration::from_secs(3)
        ));
        match c(403, "denied") {
            Attempt::Fail(e) => assert!(e.message.contains("aps:RemoteWrite"), "{e}"),
            _ => panic!("403 should fail"),
        }
        match c(404, "404 page not found") {
            Attempt::Fail(e) => assert!(
                e.message.contains("--web.enable-remote-write-receiver"),
                "{e}"
            ),
            _ => panic!("404 should fail"),
        }
        assert!(matches!(c(400, "invalid label"), Attempt::Fail(_)));
    }

    #[test]
    fn the_display_url_has_no_credentials() {
        let rw = RemoteWrite::new(
            Url::parse("https://user:secret@mimir.example/api/v1/push").unwrap(),
            Auth::None,
            Client::new(),
        );
        assert_eq!(rw.display_url(), "https://mimir.example/api/v1/push");
    }
}
