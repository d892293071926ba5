//! A real Prometheus (Debian's `prometheus`): scraping a Pushgateway, or
//! receiving remote writes; and its query API.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use reqwest::Url;
use serde_json::Value;
use tempfile::TempDir;

use super::process::{POLL, Service, Spec, http, tempdir};
use super::pushgateway::{Pushgateway, parse_value, string_map};

/// Debian's Prometheus (package `prometheus`, 2.42.x).
const PROMETHEUS_BIN: &str = "/usr/bin/prometheus";

/// A Prometheus server scraping one Pushgateway every second, killed on drop.
pub struct Prometheus {
    /// Base URL, `http://127.0.0.1:PORT`, no trailing slash.
    pub url: String,
    service: Service,
    _dir: TempDir,
}

/// One series of a range query: its labels and its `(time in ms, value)` points.
pub type SeriesPoints = (BTreeMap<String, String>, Vec<(i64, f64)>);

/// One element of an instant-vector query result.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// All labels, including `__name__` when the expression keeps it.
    pub labels: BTreeMap<String, String>,
    pub value: f64,
}

impl Prometheus {
    /// Starts `/usr/bin/prometheus` with a fresh TSDB in a temp dir and a
    /// config that scrapes `pushgateway` every second with `honor_labels:
    /// true` (as the real deployment does: the pushed `job` and `instance`
    /// win over the scrape target's).
    ///
    /// Ready means the HTTP API answers; the first scrape lands some seconds
    /// later (the scrape manager applies new targets on a 5 s tick), so use
    /// [`Prometheus::query_until`] with a ~20 s timeout for the first result.
    pub async fn start(pushgateway: &Pushgateway) -> Prometheus {
        // scrape_timeout must not exceed scrape_interval (default 10 s > 1 s).
        let config = format!(
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1s\n\
             scrape_configs:\n  - job_name: pushgateway\n    honor_labels: true\n    \
             static_configs:\n      - targets: ['{}']\n",
            pushgateway.address()
        );
        Prometheus::launch("dora-prometheus-", &config, &[]).await
    }

    /// Starts `/usr/bin/prometheus` as a remote-write receiver
    /// (`--web.enable-remote-write-receiver`, `POST /api/v1/write`) that
    /// scrapes nothing, with an out-of-order window of `ooo_window` (e.g.
    /// `30d`, or `0s` for none) so history older than its head is accepted,
    /// as a store for backfill must be set up.
    pub async fn receiver(ooo_window: &str) -> Prometheus {
        let config = format!(
            "global:\n  evaluation_interval: 1s\n\
             storage:\n  tsdb:\n    out_of_order_time_window: {ooo_window}\n"
        );
        Prometheus::launch(
            "dora-prometheus-rw-",
            &config,
            &["--web.enable-remote-write-receiver"],
        )
        .await
    }

    /// Prometheus with `config` and a fresh TSDB in a temp dir of its own.
    async fn launch(prefix: &str, config: &str, extra: &[&str]) -> Prometheus {
        let dir = tempdir(prefix);
        let config_file = dir.path().join("prometheus.yml");
        std::fs::write(&config_file, config).expect("write prometheus.yml");
        let data = dir.path().join("data");
        let spec = Spec::prometheus("prometheus", Path::new(PROMETHEUS_BIN));
        let (service, url) = Service::spawn(&spec, dir.path(), |port| {
            let mut args = vec![
                format!("--config.file={}", config_file.display()),
                format!("--storage.tsdb.path={}", data.display()),
                format!("--web.listen-address=127.0.0.1:{port}"),
            ];
            args.extend(extra.iter().map(|a| a.to_string()));
            args
        })
        .await;
        Prometheus {
            url,
            service,
            _dir: dir,
        }
    }

    /// The remote-write URL of a [`Prometheus::receiver`].
    pub fn write_url(&self) -> String {
        format!("{}/api/v1/write", self.url)
    }

    /// Every raw sample of the series `selector` picks in `[start, end]`
    /// (Unix seconds), as `(labels, [(time in ms, value)])`: a range-vector
    /// instant query, so the samples come back at their own timestamps.
    pub async fn samples(&self, selector: &str, window_s: i64, at: i64) -> Vec<SeriesPoints> {
        let promql = format!("{selector}[{window_s}s]");
        let mut url = Url::parse(&format!("{}/api/v1/query", self.url)).expect("query URL");
        url.query_pairs_mut()
            .append_pair("query", &promql)
            .append_pair("time", &at.to_string());
        let body: Value = http()
            .get(url)
            .send()
            .await
            .unwrap_or_else(|e| panic!("query {promql:?}: {e}"))
            .json()
            .await
            .unwrap_or_else(|e| panic!("query {promql:?}: {e}"));
        assert_eq!(body["status"], "success", "query {promql:?}: {body}");
        assert_eq!(
            body["data"]["resultType"], "matrix",
            "query {promql:?}: {body}"
        );
        body["data"]["result"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|r| {
                let points = r["values"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|p| {
                        (
                            (p[0].as_f64().expect("time") * 1000.0).round() as i64,
                            parse_value(&p[1]),
                        )
                    })
                    .collect();
                (string_map(&r["metric"]), points)
            })
            .collect()
    }

    /// Evaluates `promql` now (`/api/v1/query`). A scalar result comes back
    /// as one sample without labels. Panics with Prometheus' error text if
    /// the query is rejected: a bad dashboard expression should fail loudly.
    pub async fn query(&self, promql: &str) -> Vec<Sample> {
        let mut url = Url::parse(&format!("{}/api/v1/query", self.url)).expect("query URL");
        url.query_pairs_mut().append_pair("query", promql);
        let response = http()
            .get(url)
            .send()
            .await
            .unwrap_or_else(|e| panic!("query {promql:?}: {e}"));
        let status = response.status();
        let body: Value = response
            .json()
            .await
            .unwrap_or_else(|e| panic!("query {promql:?}: HTTP {status}, body not JSON: {e}"));
        if body["status"] != "success" {
            panic!(
                "query {promql:?} failed (HTTP {status}): {}: {}",
                body["errorType"].as_str().unwrap_or("?"),
                body["error"].as_str().unwrap_or("?")
            );
        }
        let data = &body["data"];
        match data["resultType"].as_str() {
            Some("vector") => data["result"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|r| Sample {
                    labels: string_map(&r["metric"]),
                    value: parse_value(&r["value"][1]),
                })
                .collect(),
            Some("scalar") => vec![Sample {
                labels: BTreeMap::new(),
                value: parse_value(&data["result"][1]),
            }],
            other => panic!("query {promql:?}: want an instant vector, got {other:?}: {data}"),
        }
    }

    /// Polls [`Prometheus::query`] every 250 ms until `pred` accepts the
    /// result, and returns it. On timeout panics with the last result, so
    /// the failure shows what Prometheus did see.
    pub async fn query_until(
        &self,
        promql: &str,
        pred: impl Fn(&[Sample]) -> bool,
        timeout: Duration,
    ) -> Vec<Sample> {
        let deadline = Instant::now() + timeout;
        loop {
            let result = self.query(promql).await;
            if pred(&result) {
                return result;
            }
            if Instant::now() > deadline {
                panic!(
                    "query {promql:?}: condition not met within {timeout:?}; last result: {result:#?}"
                );
            }
            tokio::time::sleep(POLL).await;
        }
    }
}
