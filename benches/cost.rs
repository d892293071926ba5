//! What one run costs against the stored history, as whole processes
//! (`cargo bench --bench cost`, release build; not a test:
//! docs/performance.md records the figures).
//!
//! 1. Event mode at 0, 1,000, 10,000 and 50,000 stored groups
//!    (`DORA_BENCH_SIZES`), Pushgateway default flags: the action on an
//!    ordinary event (run 7001) and on an upkeep event (run 7008, one in 16,
//!    which reads the listing, prunes and upgrades), beside a bare PUT of
//!    one group to the same Pushgateway in the same minute. Target: the
//!    ordinary run within 1.5 × the bare PUT + 0.1 s at every size.
//! 2. Workflows mode on a remote-write-only store (a real Prometheus
//!    receiver) holding a month of history (300 runs of `deploy.yml`): the
//!    first run, then a re-run, which asks the store what it holds: GitHub
//!    calls per run (target: the run-list pages only) and wall time.
//!
//! Peak memory is the action process's own (see `common::measure`).
//! `DORA_BENCH_BIN` runs another build (the image's static musl binary).

#[path = "../tests/support/mod.rs"]
#[allow(unused_imports)]
mod support;

#[allow(dead_code, reason = "each benchmark uses its part")]
mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::{MEASURE, PEAK_FILE, peak_mib, seeded_pushgateway};
use serde_json::{Value, json};
use support::{
    Action, GitHub, GitHubMock, Prometheus, commit_json, compare_body, fixture, rest_run,
};
use wiremock::matchers::{method, path, query_param};
use wiremock::{Mock, ResponseTemplate};

/// Repetitions per figure; the table shows medians.
const REPS: usize = 3;
/// Runs of a month of history: one every 2.4 hours.
const MONTH_RUNS: u64 = 300;

fn main() {
    common::main(|| async {
        event_mode().await;
        remote_write_rerun().await;
    });
}

/// The action build to measure, and the wrapper that records its peak.
fn programs() -> (PathBuf, PathBuf) {
    let program = std::env::var_os("DORA_BENCH_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_dora-action")));
    let wrapper = std::env::current_exe().expect("the benchmark's own path");
    (program, wrapper)
}

/// Runs `action` through the wrapper: wall time and peak RSS (MiB).
async fn measured(action: Action) -> (Duration, f64) {
    let (program, wrapper) = programs();
    let peak = tempfile::NamedTempFile::new().expect("temp file");
    let start = Instant::now();
    let out = action
        .program(&wrapper)
        .env(MEASURE, &program.display().to_string())
        .env(PEAK_FILE, &peak.path().display().to_string())
        .timeout(Duration::from_secs(600))
        .run()
        .await;
    let wall = start.elapsed();
    out.assert_code(0);
    (wall, peak_mib(peak.path()))
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn ms(d: Duration) -> String {
    format!("{:.0} ms", d.as_secs_f64() * 1000.0)
}

/// The fixture's `workflow_run` success as run `id`, in `dir`.
fn event_payload(dir: &Path, id: u64) -> PathBuf {
    let mut v: Value = serde_json::from_str(
        &std::fs::read_to_string(fixture("workflow_run/success.json")).unwrap(),
    )
    .unwrap();
    v["workflow_run"]["id"] = json!(id);
    let path = dir.join(format!("run-{id}.json"));
    std::fs::write(&path, v.to_string()).unwrap();
    path
}

/// One bare PUT of a group shaped like an event's, timed.
async fn bare_put(client: &reqwest::Client, pushgateway: &str, i: usize) -> Duration {
    let body = format!(
        "# TYPE dora_workflow_deploy_timestamp gauge\ndora_workflow_deploy_timestamp{{status=\"success\"}} {}\n",
        1_795_170_600 + i
    );
    let start = Instant::now();
    let status = client
        .put(format!(
            "{pushgateway}/metrics/job/dora/repository/bare/run_id/{i}"
        ))
        .body(body)
        .send()
        .await
        .expect("bare PUT")
        .status();
    assert!(status.is_success(), "bare PUT: {status}");
    start.elapsed()
}

async fn event_mode() {
    let sizes: Vec<usize> = std::env::var("DORA_BENCH_SIZES")
        .unwrap_or_else(|_| "0,1000,10000,50000".into())
        .split(',')
        .map(|s| s.trim().parse().expect("DORA_BENCH_SIZES: numbers"))
        .collect();
    let gh = GitHub::new().no_runs().start().await;
    let client = reqwest::Client::new();
    println!("\nEvent mode (Pushgateway default flags; medians of {REPS}):\n");
    println!(
        "| stored groups | bare PUT | event run | target (1.5 × PUT + 0.1 s) | upkeep event run | peak RSS (event / upkeep) |"
    );
    println!("| --- | --- | --- | --- | --- | --- |");
    for stored in sizes {
        let pg = seeded_pushgateway(stored, &[]).await;
        let dir = tempfile::tempdir().expect("temp dir");
        let (mut bare, mut event, mut upkeep) = (Vec::new(), Vec::new(), Vec::new());
        let (mut event_peak, mut upkeep_peak) = (0.0_f64, 0.0_f64);
        for rep in 0..REPS {
            bare.push(bare_put(&client, &pg.url, rep).await);
            let run = |id: u64| {
                Action::new()
                    .event("workflow_run", &event_payload(dir.path(), id))
                    .input("pushgateway-url", &pg.url)
                    .input("retention", "0")
                    .input("github-token", "ghs_bench")
                    .env("GITHUB_API_URL", &gh.uri())
            };
            // Ids 7001 + 16k: ordinary; 7008 + 16k: upkeep events.
            let (wall, peak) = measured(run(7001 + 16 * rep as u64)).await;
            event.push(wall);
            event_peak = event_peak.max(peak);
            let (wall, peak) = measured(run(7008 + 16 * rep as u64)).await;
            upkeep.push(wall);
            upkeep_peak = upkeep_peak.max(peak);
        }
        let (bare, event, upkeep) = (median(bare), median(event), median(upkeep));
        let target = bare.mul_f64(1.5) + Duration::from_millis(100);
        println!(
            "| {stored} | {} | {} | {} {} | {} | {event_peak:.1} / {upkeep_peak:.1} MiB |",
            ms(bare),
            ms(event),
            ms(target),
            if event <= target { "(met)" } else { "(missed)" },
            ms(upkeep),
        );
    }
}

/// GitHub serving a month of `deploy.yml` (100 runs a page, `Link` to the
/// next) and a one-commit compare for every pair of successes.
async fn month_of_history() -> GitHubMock {
    let committed = support::seconds_ago(31 * 86_400).to_string();
    let commit = commit_json("c0ffee", &committed, &committed);
    let gh = GitHub::new()
        .any_compare(compare_body(1, vec![commit]))
        .start()
        .await;
    let runs: Vec<Value> = (0..MONTH_RUNS)
        .map(|i| {
            let finished_ago = (MONTH_RUNS - i) as i64 * 8_640;
            let conclusion = if i % 10 == 9 { "failure" } else { "success" };
            rest_run(
                60_000 + i,
                conclusion,
                finished_ago,
                &format!("{:040x}", 0xdead_0000 + i),
                finished_ago + 3_600,
            )
        })
        .rev()
        .collect();
    let base = "/repos/octo-org/shop/actions/workflows/deploy.yml/runs";
    let pages: Vec<&[Value]> = runs.chunks(100).collect();
    for (n, page) in pages.iter().enumerate() {
        let mut answer = ResponseTemplate::new(200)
            .set_body_json(json!({"total_count": runs.len(), "workflow_runs": page}));
        if n + 1 < pages.len() {
            answer = answer.insert_header(
                "link",
                format!(
                    "<{}{base}?per_page=100&page={}>; rel=\"next\"",
                    gh.uri(),
                    n + 2
                )
                .as_str(),
            );
        }
        let request = Mock::given(method("GET")).and(path(base));
        let request = if n == 0 {
            request.and(wiremock::matchers::query_param_is_missing("page"))
        } else {
            request.and(query_param("page", (n + 1).to_string()))
        };
        request.respond_with(answer).mount(&gh).await;
    }
    gh
}

async fn remote_write_rerun() {
    let gh = month_of_history().await;
    let store = Prometheus::receiver("35d").await;
    println!("\nWorkflows mode, remote-write only, a month of history ({MONTH_RUNS} runs):\n");
    println!("| run | wall time | peak RSS | GitHub calls (run-list pages + compares) |");
    println!("| --- | --- | --- | --- |");
    for run in [
        "first (store empty)",
        "re-run (the store says what it holds)",
    ] {
        let before = gh.received_requests().await.unwrap();
        let action = Action::new()
            .scheduled("0 * * * *")
            .input("workflows", "deploy.yml")
            .input("lookback", "31d")
            // The run-list pages and the compares are what is measured; the
            // window's incidents (one more page) are read in tests/incidents.rs.
            .input("incident-labels", "")
            .input("remote-write-url", &store.write_url())
            .input("github-token", "ghs_bench")
            .env("GITHUB_API_URL", &gh.uri());
        let (wall, peak) = measured(action).await;
        let calls = gh.received_requests().await.unwrap();
        let new = &calls[before.len()..];
        let compares = new
            .iter()
            .filter(|r| r.url.path().contains("/compare/"))
            .count();
        println!(
            "| {run} | {} | {peak:.1} MiB | {} ({} + {compares}) |",
            ms(wall),
            new.len(),
            new.len() - compares,
        );
    }
}
