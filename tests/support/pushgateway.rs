//! A real Pushgateway (Debian's `prometheus-pushgateway`) on a free loopback
//! port, and its groups as `GET /api/v1/metrics` reports them.

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::Value;
use tempfile::TempDir;

use super::process::{Service, Spec, http, port_of, tempdir};

/// Debian's Pushgateway (package `prometheus-pushgateway`, 1.5.x).
const PUSHGATEWAY_BIN: &str = "/usr/bin/prometheus-pushgateway";

/// A Pushgateway on a free loopback port, killed on drop.
pub struct Pushgateway {
    /// Base URL, `http://127.0.0.1:PORT`, no trailing slash.
    pub url: String,
    port: u16,
    service: Service,
    _dir: TempDir,
}

/// A label set: name → value, sorted so assertions compare whole sets.
pub type Labels = BTreeMap<String, String>;

/// One Pushgateway group as `GET /api/v1/metrics` reports it.
#[derive(Debug, Clone, PartialEq)]
pub struct Group {
    /// The grouping key: `job` plus the labels of the push path.
    pub labels: BTreeMap<String, String>,
    /// Metric name → samples (labels, value), in the order Pushgateway lists them.
    ///
    /// Sample labels are verbatim: Pushgateway adds the grouping labels and
    /// `instance=""` to every sample. Histograms and summaries are flattened
    /// to `_bucket`/`quantile`, `_sum` and `_count` samples as in the text format.
    /// Pushgateway's own `push_time_seconds` and `push_failure_time_seconds`
    /// are left out (they change on every push): see the two fields below.
    pub metrics: BTreeMap<String, Vec<(Labels, f64)>>,
    /// `push_time_seconds`: Unix time of the last successful push, 0 if none.
    pub push_time_seconds: f64,
    /// Whether the last push to this group succeeded. A rejected push (400)
    /// still creates the group, with no metrics and this set to false.
    pub last_push_successful: bool,
}

impl Group {
    /// The single value of metric `name`; panics unless it has exactly one sample.
    pub fn value(&self, name: &str) -> f64 {
        match self.metrics.get(name).map(Vec::as_slice) {
            Some([(_, value)]) => *value,
            other => panic!(
                "group {:?}: want one sample of {name}, got {other:?}",
                self.labels
            ),
        }
    }

    /// The labels of the single sample of metric `name` (same rule as [`Group::value`]).
    pub fn sample_labels(&self, name: &str) -> &BTreeMap<String, String> {
        match self.metrics.get(name).map(Vec::as_slice) {
            Some([(labels, _)]) => labels,
            other => panic!(
                "group {:?}: want one sample of {name}, got {other:?}",
                self.labels
            ),
        }
    }
}

impl Pushgateway {
    /// Starts `/usr/bin/prometheus-pushgateway` on a free loopback port and
    /// waits until it is ready, with a fresh, empty store.
    ///
    /// The persistence file is put in the temp dir on purpose: Debian's
    /// build defaults `--persistence.file` to the shared
    /// `/var/lib/prometheus/pushgateway.data`, which would leak groups from
    /// one test (or a manual run) into the next. Killed with SIGKILL, the
    /// Pushgateway never writes it anyway.
    pub async fn start() -> Pushgateway {
        Pushgateway::start_with(&[], None).await
    }

    /// Starts a Pushgateway with more flags, holding the groups of a
    /// persistence file an earlier one wrote ([`Pushgateway::persist`]; the
    /// file is copied, never changed), or a fresh store (`None`).
    pub async fn start_with(flags: &[&str], stored: Option<&Path>) -> Pushgateway {
        let dir = tempdir("dora-pushgateway-");
        let store = dir.path().join("pushgateway.data");
        if let Some(stored) = stored {
            std::fs::copy(stored, &store)
                .unwrap_or_else(|e| panic!("copy {}: {e}", stored.display()));
        }
        let spec = Spec::prometheus("pushgateway", Path::new(PUSHGATEWAY_BIN));
        let (service, url) = Service::spawn(&spec, dir.path(), |port| {
            let mut args = vec![
                format!("--web.listen-address=127.0.0.1:{port}"),
                format!("--persistence.file={}", store.display()),
            ];
            args.extend(flags.iter().map(|f| f.to_string()));
            args
        })
        .await;
        let port = port_of(&url);
        Pushgateway {
            url,
            port,
            service,
            _dir: dir,
        }
    }

    /// Stops the Pushgateway gracefully (SIGTERM: it writes its persistence
    /// file on the way out) and copies that file to `to`.
    pub fn persist(mut self, to: &Path) {
        let pid = self.service.child.id() as libc::pid_t;
        // SAFETY: kill(2) on our own child, which is not reaped yet.
        assert_eq!(unsafe { libc::kill(pid, libc::SIGTERM) }, 0, "SIGTERM");
        let status = self.service.child.wait().expect("wait for the Pushgateway");
        assert!(status.success(), "the Pushgateway stopped with {status}");
        std::fs::copy(self._dir.path().join("pushgateway.data"), to)
            .unwrap_or_else(|e| panic!("copy the persistence file to {}: {e}", to.display()));
    }

    /// `host:port`, the form a Prometheus scrape target takes.
    pub fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Every group the Pushgateway holds (`GET /api/v1/metrics`), parsed.
    pub async fn groups(&self) -> Vec<Group> {
        let body: Value = self
            .get("/api/v1/metrics")
            .await
            .json()
            .await
            .expect("/api/v1/metrics is JSON");
        let data = body["data"].as_array().unwrap_or_else(|| {
            panic!("/api/v1/metrics: no data array: {body}");
        });
        data.iter().map(parse_group).collect()
    }

    /// The groups whose grouping labels include all of `labels`.
    pub async fn groups_matching(&self, labels: &[(&str, &str)]) -> Vec<Group> {
        self.groups()
            .await
            .into_iter()
            .filter(|g| {
                labels
                    .iter()
                    .all(|(k, v)| g.labels.get(*k).map(String::as_str) == Some(*v))
            })
            .collect()
    }

    /// The value of grouping label `label` in every group, sorted; panics
    /// if a group lacks it.
    pub async fn label_values(&self, label: &str) -> Vec<String> {
        let mut values: Vec<String> = self
            .groups()
            .await
            .iter()
            .map(|g| g.labels[label].clone())
            .collect();
        values.sort();
        values
    }

    /// `PUT {url}{path}` with `body` in the text exposition format; returns
    /// the HTTP status. For seeding groups a test needs to exist beforehand,
    /// e.g. `put_raw("/metrics/job/dora/run_id/1", "x 1\n")`.
    pub async fn put_raw(&self, path: &str, body: &str) -> u16 {
        http()
            .put(format!("{}{path}", self.url))
            .header("content-type", "text/plain; version=0.0.4")
            .body(body.to_string())
            .send()
            .await
            .unwrap_or_else(|e| panic!("PUT {path}: {e}"))
            .status()
            .as_u16()
    }

    /// The raw `/metrics` exposition (what Prometheus scrapes), for tests
    /// that lint it or look for absent series.
    pub async fn scrape(&self) -> String {
        self.get("/metrics")
            .await
            .text()
            .await
            .expect("/metrics body")
    }

    /// `GET {url}{path}`, which must answer 2xx.
    async fn get(&self, path: &str) -> reqwest::Response {
        http()
            .get(format!("{}{path}", self.url))
            .send()
            .await
            .and_then(|r| r.error_for_status())
            .unwrap_or_else(|e| panic!("GET {path}: {e}"))
    }
}

/// Parses one element of `/api/v1/metrics`' `data` array: `labels`,
/// `last_push_successful`, and one key per metric family.
fn parse_group(value: &Value) -> Group {
    let object = value.as_object().expect("group is an object");
    let mut group = Group {
        labels: string_map(&value["labels"]),
        metrics: BTreeMap::new(),
        push_time_seconds: 0.0,
        last_push_successful: value["last_push_successful"].as_bool().unwrap_or(false),
    };
    for (name, family) in object {
        if name == "labels" || name == "last_push_successful" {
            continue;
        }
        let mut samples = Vec::new();
        for metric in family["metrics"].as_array().into_iter().flatten() {
            let labels = string_map(&metric["labels"]);
            flatten_metric(name, &labels, metric, &mut samples);
        }
        match name.as_str() {
            "push_time_seconds" => {
                group.push_time_seconds = samples.first().map_or(0.0, |(_, _, v)| *v);
            }
            "push_failure_time_seconds" => {}
            _ => {
                for (sample_name, labels, value) in samples {
                    group
                        .metrics
                        .entry(sample_name)
                        .or_default()
                        .push((labels, value));
                }
            }
        }
    }
    group
}

/// One metric of the JSON API as text-format samples: `value` for gauges,
/// counters and untyped; `buckets`/`quantiles` + `sum` + `count` for
/// histograms and summaries.
fn flatten_metric(
    name: &str,
    labels: &BTreeMap<String, String>,
    metric: &Value,
    out: &mut Vec<(String, BTreeMap<String, String>, f64)>,
) {
    if let Some(v) = metric.get("value") {
        out.push((name.to_string(), labels.clone(), parse_value(v)));
        return;
    }
    for (key, suffix, label) in [("buckets", "_bucket", "le"), ("quantiles", "", "quantile")] {
        if let Some(map) = metric.get(key).and_then(Value::as_object) {
            for (bound, v) in map {
                let mut labels = labels.clone();
                labels.insert(label.to_string(), bound.clone());
                out.push((format!("{name}{suffix}"), labels, parse_value(v)));
            }
        }
    }
    for key in ["sum", "count"] {
        if let Some(v) = metric.get(key) {
            out.push((format!("{name}_{key}"), labels.clone(), parse_value(v)));
        }
    }
}

/// A `{"k": "v", ...}` object as a map; anything else as an empty map.
pub(super) fn string_map(value: &Value) -> BTreeMap<String, String> {
    value
        .as_object()
        .into_iter()
        .flatten()
        .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
        .collect()
}

/// A sample value as Pushgateway and Prometheus encode it: a JSON string in
/// Go's float syntax (`"1.7e+09"`, `"+Inf"`, `"NaN"`), or a number.
pub(super) fn parse_value(value: &Value) -> f64 {
    if let Some(n) = value.as_f64() {
        return n;
    }
    let text = value
        .as_str()
        .unwrap_or_else(|| panic!("sample value {value}"));
    match text {
        "+Inf" | "Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        "NaN" => f64::NAN,
        _ => text
            .parse()
            .unwrap_or_else(|e| panic!("sample value {text:?}: {e}")),
    }
}
