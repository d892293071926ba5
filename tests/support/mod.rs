//! Shared harness for the integration tests: real Pushgateway and Prometheus
//! processes, the action binary run the way a runner runs it, and the
//! fixtures.
//!
//! Every integration test file includes it with `mod support;`. The rules it
//! keeps so tests can run twice, and in parallel, on one machine:
//!
//! - each service listens on a free loopback port chosen at start, and a port
//!   clash with a parallel test is detected (our own process must log that it
//!   bound the port) and retried on another port;
//! - each service and each action run gets its own [`tempfile::TempDir`];
//! - each child process is killed when its handle is dropped, which also
//!   happens when a test panics (unwinding runs `Drop`), and, as a last
//!   resort, when the test process dies without unwinding (`PR_SET_PDEATHSIG`);
//! - readiness is polled, never slept for.
//!
//! Not every test binary uses every item, hence the `dead_code` allowance.
#![allow(dead_code)]

pub mod aws;
pub mod commands;
pub mod delay;
pub mod front;
pub mod hostile;
pub mod kube;
pub mod oidc;

use std::collections::BTreeMap;
use std::fs::File;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use reqwest::Url;
use serde_json::Value;
use tempfile::TempDir;

/// Debian's Pushgateway (package `prometheus-pushgateway`, 1.5.x).
const PUSHGATEWAY_BIN: &str = "/usr/bin/prometheus-pushgateway";
/// Debian's Prometheus (package `prometheus`, 2.42.x).
const PROMETHEUS_BIN: &str = "/usr/bin/prometheus";
/// How long a service may take to bind and answer `/-/ready`. Both need well
/// under a second here; the margin is for a loaded CI machine.
const READY_TIMEOUT: Duration = Duration::from_secs(30);
/// Port clashes with parallel tests are rare; a few attempts make them harmless.
const START_ATTEMPTS: usize = 5;
/// How often readiness and `query_until` are polled.
const POLL: Duration = Duration::from_millis(250);
/// Upper bound on one action run; a hung run is killed and the test fails.
const ACTION_TIMEOUT: Duration = Duration::from_secs(120);

/// Path of a file under `tests/fixtures/`, e.g. `fixture("workflow_run/success.json")`.
///
/// Panics if it does not exist, so a typo fails here rather than as a
/// confusing "payload not found" from the action. Build a path by hand to test
/// a missing payload.
pub fn fixture(rel: &str) -> PathBuf {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(rel);
    assert!(path.exists(), "fixture {} does not exist", path.display());
    path
}

/// An HTTP client for talking to the services. No proxy (reqwest is built
/// without `system-proxy`), short timeouts so a wedged service fails the test.
fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .expect("build reqwest client")
}

/// A free loopback port, as the kernel hands them out for `127.0.0.1:0`.
///
/// The listener is closed before the service binds, so another process can
/// take the port in between; [`Service::spawn`] detects that and retries.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("bind 127.0.0.1:0")
        .port()
}

/// A service process that is killed (and reaped) when dropped.
///
/// `std::process` rather than `tokio::process`: `Drop` must kill and wait
/// synchronously, including while a panicking test unwinds, whatever state the
/// runtime is in.
struct Service {
    name: &'static str,
    child: Child,
    log: PathBuf,
}

impl Service {
    /// Starts `bin` with `args(port)` on a free port until one attempt binds
    /// and answers `GET /-/ready` with 200. `dir` holds the log (and is the
    /// working directory, so nothing lands in the repository).
    async fn spawn(
        name: &'static str,
        bin: &str,
        dir: &Path,
        args: impl Fn(u16) -> Vec<String>,
    ) -> (Service, String) {
        assert!(
            Path::new(bin).exists(),
            "{bin} is missing: apt-get install -y prometheus prometheus-pushgateway"
        );
        let mut last_log = String::new();
        for attempt in 1..=START_ATTEMPTS {
            let port = free_port();
            let log = dir.join(format!("{name}-{attempt}.log"));
            let out = File::create(&log).expect("create service log");
            let err = out.try_clone().expect("clone log handle");
            let mut command = Command::new(bin);
            command
                .args(args(port))
                .current_dir(dir)
                .stdin(Stdio::null())
                .stdout(out)
                .stderr(err);
            die_with_parent(&mut command);
            let child = command
                .spawn()
                .unwrap_or_else(|e| panic!("spawn {bin}: {e}"));
            let mut service = Service {
                name,
                child,
                log: log.clone(),
            };
            let url = format!("http://127.0.0.1:{port}");
            let bound = format!("msg=\"Listening on\" address=127.0.0.1:{port}");
            match service.wait_ready(&url, &bound, "/-/ready").await {
                Ok(()) => return (service, url),
                Err(log_text) if log_text.contains("address already in use") => {
                    last_log = log_text;
                    continue; // `service` is dropped (killed) here; next port.
                }
                Err(log_text) => panic!("{name} did not become ready on {url}:\n{log_text}"),
            }
        }
        panic!("{name} hit a port clash {START_ATTEMPTS} times; last log:\n{last_log}")
    }

    /// Polls until our own process has logged `bound` (the line it prints
    /// only after binding its port) and `ready_path` answers 200.
    ///
    /// The log check matters: when a parallel test's service already holds
    /// the port, the ready path answers 200 from *that* process while ours
    /// exits (Pushgateway 1.5 even exits with status 0 on a bind failure).
    /// Pushgateway and Prometheus log `msg="Listening on" address=…`, moto
    /// (Werkzeug) `Running on http://…`, only after a successful bind.
    /// Returns the log text when the process exited or the deadline passed.
    async fn wait_ready(&mut self, url: &str, bound: &str, ready_path: &str) -> Result<(), String> {
        let client = http();
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return Err(format!("(exited: {status})\n{}", self.log_text()));
            }
            if self.log_text().contains(bound) {
                let ready = client.get(format!("{url}{ready_path}")).send().await;
                if matches!(&ready, Ok(r) if r.status() == 200) {
                    return Ok(());
                }
            }
            if Instant::now() > deadline {
                return Err(format!("(timed out)\n{}", self.log_text()));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        // SIGKILL: nothing of these processes is worth a graceful shutdown,
        // and it cannot be ignored. Then reap, so no zombie outlives the test.
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!(
                "--- {} log ({}) ---\n{}",
                self.name,
                self.log.display(),
                self.log_text()
            );
        }
    }
}

/// Asks the kernel to SIGKILL the child when the thread that spawned it dies.
///
/// `Drop` covers panics; this covers the test process being killed outright
/// (a CI timeout, `kill -9`), which would otherwise leave Prometheus running.
/// The trigger is the spawning *thread*: a `#[tokio::test]` body runs on the
/// test's own thread for the whole test, so this never fires early there.
fn die_with_parent(command: &mut Command) {
    use std::os::unix::process::CommandExt;
    unsafe extern "C" {
        fn prctl(option: std::ffi::c_int, ...) -> std::ffi::c_int;
    }
    const PR_SET_PDEATHSIG: std::ffi::c_int = 1;
    const SIGKILL: std::ffi::c_ulong = 9;
    // SAFETY: `prctl(PR_SET_PDEATHSIG, …)` is async-signal-safe and touches
    // no memory of the forked parent, which is what `pre_exec` requires.
    unsafe {
        command.pre_exec(|| {
            prctl(PR_SET_PDEATHSIG, SIGKILL);
            Ok(())
        });
    }
}

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
        let (service, url) = Service::spawn("pushgateway", PUSHGATEWAY_BIN, dir.path(), |port| {
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
        let body: Value = http()
            .get(format!("{}/api/v1/metrics", self.url))
            .send()
            .await
            .and_then(|r| r.error_for_status())
            .expect("GET /api/v1/metrics")
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
        http()
            .get(format!("{}/metrics", self.url))
            .send()
            .await
            .and_then(|r| r.error_for_status())
            .expect("GET /metrics")
            .text()
            .await
            .expect("/metrics body")
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
fn string_map(value: &Value) -> BTreeMap<String, String> {
    value
        .as_object()
        .into_iter()
        .flatten()
        .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
        .collect()
}

/// A sample value as Pushgateway and Prometheus encode it: a JSON string in
/// Go's float syntax (`"1.7e+09"`, `"+Inf"`, `"NaN"`), or a number.
fn parse_value(value: &Value) -> f64 {
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

/// The `workflow_run` object of GitHub's own example payload
/// (`workflow_run/success.json`): the real shape of a run, to change a few
/// values of.
pub fn fixture_run() -> Value {
    let payload: Value = serde_json::from_str(
        &std::fs::read_to_string(fixture("workflow_run/success.json")).expect("read fixture"),
    )
    .expect("fixture is JSON");
    payload["workflow_run"].clone()
}

/// One fixed, whole-second "now" for the whole test binary: times built at
/// different moments must differ by exactly what they say.
pub fn test_now() -> jiff::Timestamp {
    static NOW: std::sync::OnceLock<jiff::Timestamp> = std::sync::OnceLock::new();
    *NOW.get_or_init(|| jiff::Timestamp::from_second(jiff::Timestamp::now().as_second()).unwrap())
}

/// `seconds` before [`test_now`].
pub fn seconds_ago(seconds: i64) -> jiff::Timestamp {
    test_now() - jiff::SignedDuration::from_secs(seconds)
}

/// A run as the REST API lists it ([`fixture_run`]'s shape): finished
/// `finished_ago` seconds before [`test_now`] (created 10 minutes before
/// that), its head commit `sha` committed `committed_ago` seconds before.
pub fn rest_run(
    id: u64,
    conclusion: &str,
    finished_ago: i64,
    sha: &str,
    committed_ago: i64,
) -> Value {
    let mut r = fixture_run();
    r["id"] = serde_json::json!(id);
    r["conclusion"] = serde_json::json!(conclusion);
    r["updated_at"] = serde_json::json!(seconds_ago(finished_ago).to_string());
    r["created_at"] = serde_json::json!(seconds_ago(finished_ago + 600).to_string());
    r["head_sha"] = serde_json::json!(sha);
    r["head_commit"]["id"] = serde_json::json!(sha);
    r["head_commit"]["timestamp"] = serde_json::json!(seconds_ago(committed_ago).to_string());
    r["html_url"] = serde_json::json!(format!(
        "https://github.com/octo-org/shop/actions/runs/{id}"
    ));
    r
}

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
        let (service, url) = Service::spawn("prometheus", PROMETHEUS_BIN, dir.path(), |port| {
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

fn tempdir(prefix: &str) -> TempDir {
    tempfile::Builder::new()
        .prefix(prefix)
        .tempdir()
        .expect("create temp dir")
}

fn port_of(url: &str) -> u16 {
    url.rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .expect("URL ends in :PORT")
}

/// One run of the `dora-action` binary, set up the way a runner sets up a
/// container action: `INPUT_*` variables, the event payload, `GITHUB_*`
/// context and fresh `GITHUB_OUTPUT` / `GITHUB_STEP_SUMMARY` files.
pub struct Action {
    env: BTreeMap<String, String>,
    dir: TempDir,
    output_file: Option<PathBuf>,
    summary_file: Option<PathBuf>,
    timeout: Duration,
    program: PathBuf,
    memory_limit: Option<u64>,
}

/// What a run left behind.
#[derive(Debug)]
pub struct Outcome {
    /// Exit status; `128 + signal` if the process was killed by a signal.
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
    /// `GITHUB_OUTPUT`, parsed; empty when the run had no runner files.
    pub outputs: BTreeMap<String, String>,
    /// `GITHUB_STEP_SUMMARY` as written; empty when the run had no runner files.
    pub summary: String,
    /// With [`Action::memory_limit`]: the process's peak resident memory in
    /// bytes (its `VmHWM`, polled), and whether it passed the limit and was killed.
    pub peak_rss: Option<(u64, bool)>,
}

impl Default for Action {
    fn default() -> Self {
        Self::new()
    }
}

impl Action {
    /// A run with an empty environment (the process env is cleared, so the
    /// host's `GITHUB_*`, `AWS_*` or proxy variables never leak in) plus the
    /// runner context every run has: `GITHUB_ACTIONS=true`,
    /// `GITHUB_REPOSITORY=octo-org/shop`, github.com server and API URLs,
    /// and empty output and summary files in a temp dir of its own.
    pub fn new() -> Action {
        let dir = tempdir("dora-action-");
        let output_file = dir.path().join("github_output");
        let summary_file = dir.path().join("step_summary");
        // The runner creates both files before the step starts.
        File::create(&output_file).expect("create GITHUB_OUTPUT file");
        File::create(&summary_file).expect("create GITHUB_STEP_SUMMARY file");
        let mut action = Action {
            env: BTreeMap::new(),
            dir,
            output_file: Some(output_file.clone()),
            summary_file: Some(summary_file.clone()),
            timeout: ACTION_TIMEOUT,
            program: PathBuf::from(env!("CARGO_BIN_EXE_dora-action")),
            memory_limit: None,
        };
        for (k, v) in [
            ("GITHUB_ACTIONS", "true"),
            ("GITHUB_REPOSITORY", "octo-org/shop"),
            ("GITHUB_SERVER_URL", "https://github.com"),
            ("GITHUB_API_URL", "https://api.github.com"),
        ] {
            action.env.insert(k.to_string(), v.to_string());
        }
        let output = output_file.display().to_string();
        let summary = summary_file.display().to_string();
        action
            .env("GITHUB_OUTPUT", &output)
            .env("GITHUB_STEP_SUMMARY", &summary)
    }

    /// Sets input `name` as the runner does: `INPUT_` + the name uppercased,
    /// hyphens kept (`pushgateway-url` → `INPUT_PUSHGATEWAY-URL`).
    pub fn input(self, name: &str, value: &str) -> Self {
        let key = format!("INPUT_{}", name.to_uppercase());
        self.env(&key, value)
    }

    /// The triggering event: `GITHUB_EVENT_NAME` and `GITHUB_EVENT_PATH`.
    pub fn event(self, name: &str, payload: &Path) -> Self {
        let path = payload.display().to_string();
        self.env("GITHUB_EVENT_NAME", name)
            .env("GITHUB_EVENT_PATH", &path)
    }

    /// Sets (or overrides) any environment variable.
    pub fn env(mut self, key: &str, value: &str) -> Self {
        self.env.insert(key.to_string(), value.to_string());
        self
    }

    /// Removes a variable set by [`Action::new`] or earlier calls.
    pub fn unset(mut self, key: &str) -> Self {
        self.env.remove(key);
        self
    }

    /// A local run: no `GITHUB_OUTPUT` / `GITHUB_STEP_SUMMARY`, as outside a
    /// runner. The outcome's `outputs` and `summary` are then empty.
    pub fn without_runner_files(mut self) -> Self {
        self.env.remove("GITHUB_OUTPUT");
        self.env.remove("GITHUB_STEP_SUMMARY");
        self.output_file = None;
        self.summary_file = None;
        self
    }

    /// Overrides the 120 s limit, e.g. to prove a retry loop gives up in time.
    pub fn timeout(mut self, limit: Duration) -> Self {
        self.timeout = limit;
        self
    }

    /// Watches the run's peak resident memory (see [`Outcome::peak_rss`]),
    /// and kills it as soon as it passes `bytes`: a run that reads a huge
    /// answer whole fails its test at the limit, instead of taking the
    /// machine's memory.
    pub fn memory_limit(mut self, bytes: u64) -> Self {
        self.memory_limit = Some(bytes);
        self
    }

    /// Runs another build of the action instead of cargo's, e.g. the static
    /// musl binary the image ships (the benchmark measures that one).
    pub fn program(mut self, path: &Path) -> Self {
        self.program = path.to_path_buf();
        self
    }

    /// The temp dir of this run (working directory of the process), for a
    /// test that needs to put more files next to it.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Runs the binary (`CARGO_BIN_EXE_dora-action`) with exactly this
    /// environment and waits at most 120 s (see [`Action::timeout`]); a run
    /// that hangs is killed and the test panics. Reads back the output and summary files.
    pub async fn run(self) -> Outcome {
        let mut command = tokio::process::Command::new(&self.program);
        command
            .env_clear()
            .envs(&self.env)
            .current_dir(self.dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let mut child = command.spawn().expect("spawn dora-action");
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let watcher = self.memory_limit.map(|limit| {
            let pid = child.id().expect("a running child has a pid");
            let stop = stop.clone();
            let name = self
                .program
                .file_name()
                .map(|n| n.to_string_lossy().chars().take(15).collect::<String>())
                .unwrap_or_default();
            std::thread::spawn(move || watch_memory(pid, &name, limit, &stop))
        });
        // Drain both pipes concurrently (a full pipe would block the child)
        // and independently of `wait`, so a hung run's output is still shown.
        let stdout = drain(child.stdout.take().expect("piped stdout"));
        let stderr = drain(child.stderr.take().expect("piped stderr"));
        let status = match tokio::time::timeout(self.timeout, child.wait()).await {
            Ok(status) => status.expect("wait for dora-action"),
            Err(_) => {
                // Kill and reap; the pipes then close and the drains finish.
                let _ = child.kill().await;
                panic!(
                    "dora-action did not finish within {:?} and was killed\n\
                     --- stdout ---\n{}\n--- stderr ---\n{}\n--- env ---\n{:#?}",
                    self.timeout,
                    stdout.await.expect("stdout reader"),
                    stderr.await.expect("stderr reader"),
                    self.env
                );
            }
        };
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        let peak_rss = watcher.map(|w| w.join().expect("memory watcher"));
        let stdout = stdout.await.expect("stdout reader");
        let stderr = stderr.await.expect("stderr reader");
        let code = status.code().unwrap_or_else(|| {
            use std::os::unix::process::ExitStatusExt;
            128 + status.signal().unwrap_or(0)
        });
        let outputs = match &self.output_file {
            Some(path) => {
                let text = std::fs::read_to_string(path).unwrap_or_default();
                parse_output_file(&text).unwrap_or_else(|e| {
                    panic!(
                        "GITHUB_OUTPUT is malformed ({e}); the runner would fail the step.\n\
                         --- file ---\n{text}\n--- stderr ---\n{}",
                        stderr
                    )
                })
            }
            None => BTreeMap::new(),
        };
        let summary = self
            .summary_file
            .as_ref()
            .map(|p| std::fs::read_to_string(p).unwrap_or_default())
            .unwrap_or_default();
        Outcome {
            code,
            stdout,
            stderr,
            outputs,
            summary,
            peak_rss,
        }
    }
}

/// Polls `/proc/<pid>/status` every few milliseconds until `stop`: the
/// highest `VmHWM` (the kernel's own high-water mark of the process's
/// resident memory, so a peak between two polls is not missed) while the
/// process is the action (its `Name`: before `exec` the pid still shows the
/// test process). Kills it with SIGKILL once past `limit`. Returns the peak
/// in bytes and whether it was killed.
fn watch_memory(
    pid: u32,
    name: &str,
    limit: u64,
    stop: &std::sync::atomic::AtomicBool,
) -> (u64, bool) {
    let path = format!("/proc/{pid}/status");
    let mut peak = 0u64;
    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
        if let Ok(status) = std::fs::read_to_string(&path) {
            let field = |key: &str| {
                status
                    .lines()
                    .find_map(|l| l.strip_prefix(key))
                    .map(str::trim)
            };
            if field("Name:") == Some(name)
                && let Some(kib) = field("VmHWM:")
                    .and_then(|v| v.trim_end_matches("kB").trim().parse::<u64>().ok())
            {
                peak = peak.max(kib * 1024);
                if peak > limit {
                    // SAFETY: a signal to our own, not yet reaped, child.
                    unsafe { libc::kill(pid as libc::pid_t, libc::SIGKILL) };
                    return (peak, true);
                }
            }
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    (peak, false)
}

/// Reads a child's pipe to the end on a task of its own, lossily as UTF-8.
fn drain(
    mut pipe: impl tokio::io::AsyncRead + Unpin + Send + 'static,
) -> tokio::task::JoinHandle<String> {
    tokio::spawn(async move {
        let mut bytes = Vec::new();
        let _ = tokio::io::AsyncReadExt::read_to_end(&mut pipe, &mut bytes).await;
        String::from_utf8_lossy(&bytes).into_owned()
    })
}

/// Parses a `GITHUB_OUTPUT` file as the runner does: `name=value` lines and
/// `name<<DELIMITER` … `DELIMITER` blocks (the value is the lines between,
/// joined with `\n`). A line with both forms is `name=value` if `=` comes
/// first. Empty lines between entries are skipped; a later entry for the same
/// name wins. Errors where the runner would fail the step.
pub fn parse_output_file(text: &str) -> Result<BTreeMap<String, String>, String> {
    let mut outputs = BTreeMap::new();
    let mut lines = text.split('\n');
    while let Some(line) = lines.next() {
        if line.is_empty() {
            continue;
        }
        let eq = line.find('=');
        let heredoc = line.find("<<");
        match (eq, heredoc) {
            (Some(i), h) if h.is_none_or(|h| i < h) => {
                let name = &line[..i];
                if name.is_empty() {
                    return Err(format!("empty name in {line:?}"));
                }
                outputs.insert(name.to_string(), line[i + 1..].to_string());
            }
            (_, Some(h)) => {
                let (name, delimiter) = (&line[..h], &line[h + 2..]);
                if name.is_empty() || delimiter.is_empty() {
                    return Err(format!("empty name or delimiter in {line:?}"));
                }
                let mut value = Vec::new();
                loop {
                    match lines.next() {
                        Some(l) if l == delimiter => break,
                        Some(l) => value.push(l),
                        None => {
                            return Err(format!("{name}: delimiter {delimiter:?} never closed"));
                        }
                    }
                }
                outputs.insert(name.to_string(), value.join("\n"));
            }
            _ => return Err(format!("neither name=value nor name<<DELIMITER: {line:?}")),
        }
    }
    Ok(outputs)
}

impl Outcome {
    /// Panics, showing everything the run printed, unless it exited with `code`.
    pub fn assert_code(&self, code: i32) -> &Self {
        if self.code != code {
            panic!(
                "dora-action exited {} (want {code})\n--- stdout ---\n{}\n--- stderr ---\n{}\n\
                 --- outputs ---\n{:#?}\n--- summary ---\n{}",
                self.code, self.stdout, self.stderr, self.outputs, self.summary
            );
        }
        self
    }

    /// Output `name`; panics listing the outputs there are if it is missing.
    pub fn output(&self, name: &str) -> &str {
        self.outputs
            .get(name)
            .map(String::as_str)
            .unwrap_or_else(|| panic!("no output {name:?}; outputs: {:#?}", self.outputs))
    }

    /// Panics unless `secret` was `::add-mask::`ed (so the runner hides it in the log).
    pub fn assert_masked(&self, secret: &str) {
        let masked = format!("::add-mask::{secret}");
        assert!(
            self.stdout.lines().any(|l| l == masked),
            "{secret} was not masked: {}",
            self.stdout
        );
    }

    /// Panics if any secret appears in stdout (but for its own `::add-mask::`
    /// command, which the runner consumes), stderr, the summary or the outputs.
    pub fn assert_no_secret(&self, secrets: &[&str]) {
        for secret in secrets.iter().filter(|s| !s.is_empty()) {
            let masked = format!("::add-mask::{secret}");
            let rest: Vec<&str> = self.stdout.lines().filter(|l| *l != masked).collect();
            assert!(
                !rest.join("\n").contains(secret),
                "a secret leaked to stdout: {}",
                self.stdout
            );
            assert!(!self.stderr.contains(secret), "a secret leaked to stderr");
            assert!(
                !self.summary.contains(secret),
                "a secret leaked to the summary"
            );
            assert!(
                self.outputs.values().all(|v| !v.contains(secret)),
                "a secret leaked to the outputs"
            );
        }
    }

    /// Stdout lines that are `::error` workflow commands.
    pub fn error_lines(&self) -> Vec<&str> {
        self.command_lines("::error")
    }

    /// Stdout lines that are `::warning` workflow commands.
    pub fn warning_lines(&self) -> Vec<&str> {
        self.command_lines("::warning")
    }

    /// Stdout lines that are `::notice` workflow commands.
    pub fn notice_lines(&self) -> Vec<&str> {
        self.command_lines("::notice")
    }

    /// Workflow commands are read from stdout line by line, so only whole
    /// stdout lines starting with the command count.
    fn command_lines(&self, prefix: &str) -> Vec<&str> {
        self.stdout
            .lines()
            .filter(|l| {
                l.strip_prefix(prefix)
                    .is_some_and(|rest| rest.starts_with("::") || rest.starts_with(' '))
            })
            .collect()
    }
}
