//! Workflows mode end to end: a deploy workflow's history from the REST API
//! (a GitHub mock with real-shaped runs), recovery time, per-change lead
//! time, rework, API hygiene, and matrix legs running at once.

mod support;

use std::time::Duration;

use jiff::Timestamp;
use serde_json::{Value, json};
use support::github::runs_path;
use support::{
    Action, GitHub, GitHubMock, Pushgateway, commit_json, compare_body, fixture, rest_run as run,
    run_list, seconds_ago,
};
use wiremock::matchers::{method, path, query_param, query_param_is_missing};
use wiremock::{Mock, ResponseTemplate};

const TOKEN: &str = "ghs_workflowsModeTokenNeverPrinted42";
const HOUR: i64 = 3_600;
const DAY: i64 = 86_400;

/// `seconds` before the test binary's fixed "now", as GitHub writes times.
fn ago(seconds: i64) -> String {
    seconds_ago(seconds).to_string()
}

fn commit(sha: &str, committed_ago: i64) -> Value {
    commit_json(sha, ago(committed_ago + 60), ago(committed_ago))
}

/// The history of `deploy.yml`: a success, a failure streak ended by a fix
/// (recovery 3 h, rework), a cancelled run, a pull-request run, a success.
fn history() -> Vec<Value> {
    let mut pr = run(7106, "success", DAY, "f6", DAY + HOUR);
    pr["event"] = json!("pull_request");
    vec![
        run(7107, "success", 2 * DAY, "e5", 2 * DAY + 2 * HOUR),
        pr,
        run(7105, "cancelled", 3 * DAY, "x9", 3 * DAY + HOUR),
        run(
            7104,
            "success",
            4 * DAY - 3 * HOUR,
            "d4",
            4 * DAY - 2 * HOUR,
        ),
        run(7103, "failure", 4 * DAY - HOUR, "c3", 4 * DAY - HOUR - 600),
        run(7102, "failure", 4 * DAY, "b2", 4 * DAY + 600),
        run(7101, "success", 5 * DAY, "a1", 5 * DAY + HOUR),
    ]
}

/// GitHub REST serving `runs` for `deploy.yml` in two pages (Link
/// pagination) and the compares between the successes.
async fn github(runs: Vec<Value>) -> GitHubMock {
    // a1 → d4 shipped b2, c3 and d4 (d4 itself committed 2 h before its deploy at 4d−3h).
    let shipped = vec![
        commit("b2", 4 * DAY + 600),
        commit("c3", 4 * DAY - HOUR - 600),
        commit("d4", 4 * DAY - 2 * HOUR),
    ];
    let gh = GitHub::new()
        .compare("a1", "d4", compare_body(3, shipped))
        .compare(
            "d4",
            "e5",
            compare_body(1, vec![commit("e5", 2 * DAY + 2 * HOUR)]),
        )
        .start()
        .await;
    let base = runs_path("deploy.yml");
    let (first, second) = runs.split_at(runs.len().min(3));
    let next = format!(
        "<{}{base}?page=2>; rel=\"next\", <{}{base}?page=2>; rel=\"last\"",
        gh.uri(),
        gh.uri()
    );
    gh.mount(
        Mock::given(method("GET"))
            .and(path(&base))
            .and(query_param("status", "completed"))
            .and(query_param("per_page", "100"))
            .and(query_param_is_missing("page"))
            .respond_with(
                ResponseTemplate::new(200)
                    .insert_header("link", next.as_str())
                    .set_body_json(json!({"total_count": runs.len(), "workflow_runs": first})),
            ),
    )
    .await;
    gh.mount(
        Mock::given(method("GET"))
            .and(path(&base))
            .and(query_param("page", "2"))
            .respond_with(
                ResponseTemplate::new(200)
                    .set_body_json(json!({"total_count": runs.len(), "workflow_runs": second})),
            ),
    )
    .await;
    gh
}

/// Event mode on the success fixture (run 7001) into `pg`, keeping every
/// event, with GitHub at `gh`.
fn event_run(pg: &Pushgateway, gh: &GitHubMock) -> Action {
    Action::new()
        .fixture_event("workflow_run", "success.json")
        .input("pushgateway-url", &pg.url)
        .input("github-token", TOKEN)
        .input("retention", "0")
        .env("GITHUB_API_URL", &gh.uri())
}

/// A fresh Pushgateway, and GitHub serving [`history`].
async fn with_history() -> (Pushgateway, GitHubMock) {
    let gh = github(history()).await;
    (Pushgateway::start().await, gh)
}

/// A scheduled `dora-metrics.yml` leg reading `workflows` into `pg`; the
/// schedule payload carries the repository (and its default branch).
fn leg(pg: &Pushgateway, gh: &GitHubMock, workflows: &str) -> Action {
    Action::new()
        .scheduled("17 * * * *")
        .input("workflows", workflows)
        .input("pushgateway-url", &pg.url)
        .input("github-token", TOKEN)
        .env("GITHUB_API_URL", &gh.uri())
        // No incidents here (tests/incidents.rs has them): the history only.
        .input("incident-labels", "")
}

#[tokio::test(flavor = "multi_thread")]
async fn history_becomes_events_with_recovery_rework_and_per_change_lead_time() {
    let (pg, gh) = with_history().await;
    let out = leg(&pg, &gh, "deploy.yml").run_expecting(0).await;
    assert_eq!(out.counts(), ("5", "3", "2"));
    assert_eq!(
        out.output("recovery-seconds"),
        (3 * HOUR).to_string(),
        "first failure (4d ago) → the fix (4d−3h ago)"
    );

    let ids = pg.label_values("run_id").await;
    assert_eq!(
        ids,
        ["7101", "7102", "7103", "7104", "7107"],
        "cancelled and pull-request runs are not deployments"
    );
    let fix = &pg.groups_matching(&[("run_id", "7104")]).await[0];
    assert_eq!(
        fix.value("dora_workflow_recovery_seconds"),
        (3 * HOUR) as f64
    );
    assert_eq!(
        fix.value("dora_workflow_rework_timestamp"),
        fix.value("dora_workflow_deploy_timestamp")
    );
    assert_eq!(fix.value("dora_workflow_changes"), 3.0);
    // Lead times of b2, c3, d4 at deploy (4d−3h): 3h10m, 1h50m, 1h → median 1h50m.
    assert_eq!(
        fix.value("dora_workflow_change_lead_time_seconds"),
        (2 * HOUR - 600) as f64
    );
    assert_eq!(
        fix.value("dora_workflow_lead_time_seconds"),
        HOUR as f64,
        "the head commit's lead time stays"
    );
    let first = &pg.groups_matching(&[("run_id", "7101")]).await[0];
    assert!(
        !first.metrics.contains_key("dora_workflow_changes"),
        "no earlier success to compare with"
    );
    assert!(!first.metrics.contains_key("dora_workflow_recovery_seconds"));

    // ⌈7/100⌉ = 1 page, but GitHub paginated: 2 list calls, 2 compares, nothing else.
    assert_eq!(gh.calls("/actions/workflows/deploy.yml/runs").await, 2);
    assert_eq!(gh.calls("/compare/").await, 2);
    assert_eq!(gh.received_requests().await.unwrap().len(), 4);
    for r in gh.received_requests().await.unwrap() {
        assert_eq!(
            r.headers.get("authorization").unwrap(),
            &format!("Bearer {TOKEN}")
        );
    }

    let s = &out.summary;
    assert!(s.contains("5 events recorded over the last 30d"), "{s}");
    assert!(s.contains("| Deploy | 3 | 2 | 40 % (medium) |"), "{s}");
    assert!(s.contains("| 1h 50m (elite) | 3h (high) | 1 of 3 |"), "{s}");
    assert!(s.contains("GitHub API calls: 4."), "{s}");
    out.assert_no_secret(&[TOKEN]);
}

#[tokio::test(flavor = "multi_thread")]
async fn rerunning_changes_nothing_and_looks_nothing_up_again() {
    let (pg, gh) = with_history().await;
    leg(&pg, &gh, "deploy.yml").run().await.assert_code(0);
    let sorted = |mut groups: Vec<support::Group>| {
        groups.sort_by(|a, b| a.labels.cmp(&b.labels));
        groups
    };
    let before = sorted(pg.groups().await);
    let compares = gh.calls("/compare/").await;
    let out = leg(&pg, &gh, "deploy.yml").run_expecting(0).await;
    out.assert_summary_says("0 new, 5 already in the Pushgateway");
    assert_eq!(
        gh.calls("/compare/").await,
        compares,
        "no compare for deployments already stored"
    );
    assert_eq!(
        sorted(pg.groups().await),
        before,
        "not even the push time changed"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_run_from_an_event_and_from_history_is_one_group() {
    let pg = Pushgateway::start().await;
    // The success fixture is run 7001; history lists it too.
    let mut listed = run(
        7001,
        "success",
        0,
        "9f8e7d6c5b4a39281706f5e4d3c2b1a098765432",
        0,
    );
    let payload: Value = serde_json::from_str(
        &std::fs::read_to_string(fixture("workflow_run/success.json")).unwrap(),
    )
    .unwrap();
    for key in ["updated_at", "created_at", "head_commit"] {
        listed[key] = payload["workflow_run"][key].clone();
    }
    let gh = github(vec![listed]).await;
    event_run(&pg, &gh).run().await.assert_code(0);
    let out = leg(&pg, &gh, "deploy.yml")
        .input("retention", "0")
        .input("lookback", "3650d")
        .run_expecting(0)
        .await;
    assert_eq!(pg.groups().await.len(), 1, "no double count");
    out.assert_summary_says("0 new, 1 already");
    // Alone, workflows mode writes the very group event mode wrote, `ref` included.
    let fresh = Pushgateway::start().await;
    leg(&fresh, &gh, "deploy.yml")
        .input("retention", "0")
        .input("lookback", "3650d")
        .run()
        .await
        .assert_code(0);
    let (from_event, from_history) = (pg.groups().await, fresh.groups().await);
    assert_eq!(
        from_event[0].sample_labels("dora_workflow_deploy_event")["ref"],
        "main"
    );
    // Everything but the push time.
    let shape = |g: &[support::Group]| -> Vec<_> {
        g.iter()
            .map(|g| (g.labels.clone(), g.metrics.clone()))
            .collect()
    };
    assert_eq!(shape(&from_history), shape(&from_event));
}

#[tokio::test(flavor = "multi_thread")]
async fn event_mode_computes_recovery_with_one_list_call() {
    let pg = Pushgateway::start().await;
    // The event: run 7001 succeeded at 2026-11-20T10:30Z; before it, two failures on main.
    let earlier = |id: u64, conclusion: &str, finished: &str| {
        let mut r = run(id, conclusion, 0, "b2", 0);
        r["updated_at"] = json!(finished);
        r
    };
    let listed = [
        earlier(6990, "failure", "2026-11-20T09:00:00Z"),
        earlier(6980, "failure", "2026-11-20T08:30:00Z"),
        earlier(6970, "success", "2026-11-19T08:00:00Z"),
    ];
    let at = "2026-11-20T10:00:00Z";
    let gh = GitHub::new()
        .mock(
            Mock::given(method("GET"))
                .and(path(runs_path("1001")))
                .and(query_param("branch", "main"))
                .respond_with(ResponseTemplate::new(200).set_body_json(run_list(&listed)))
                .expect(1),
        )
        .mock(
            Mock::given(method("GET"))
                .and(path(
                    "/repos/octo-org/shop/compare/b2...9f8e7d6c5b4a39281706f5e4d3c2b1a098765432",
                ))
                .respond_with(
                    ResponseTemplate::new(200)
                        .set_body_json(compare_body(1, vec![commit_json("9f8e", at, at)])),
                )
                .expect(1),
        )
        .start()
        .await;
    let out = event_run(&pg, &gh).run_expecting(0).await;
    assert_eq!(out.output("recovery-seconds"), "7200", "08:30 → 10:30");
    let g = &pg.groups_matching(&[("run_id", "7001")]).await[0];
    assert_eq!(g.value("dora_workflow_recovery_seconds"), 7200.0);
    assert_eq!(g.value("dora_workflow_changes"), 1.0);
    assert_eq!(
        pg.groups().await.len(),
        1,
        "event mode records only its own event"
    );
    gh.verify().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn three_matrix_legs_at_once_lose_nothing() {
    let pg = Pushgateway::start().await;
    let mut gh = GitHub::new();
    for (file, first_id) in [
        ("deploy-api.yml", 8100u64),
        ("deploy-web.yml", 8200),
        ("deploy-worker.yml", 8300),
    ] {
        let runs: Vec<Value> = (0..4)
            .map(|i| {
                let mut r = run(
                    first_id + i,
                    if i == 1 { "failure" } else { "success" },
                    (4 - i as i64) * DAY,
                    &format!("s{first_id}{i}"),
                    (4 - i as i64) * DAY + HOUR,
                );
                r["name"] = json!(file.trim_end_matches(".yml"));
                r["path"] = json!(format!(".github/workflows/{file}"));
                r
            })
            .collect();
        gh = gh.slow_runs(file, &runs, Duration::from_millis(200));
    }
    let gh = gh.any_compare(compare_body(1, vec![])).start().await;
    let legs =
        ["deploy-api.yml", "deploy-web.yml", "deploy-worker.yml"].map(|w| leg(&pg, &gh, w).run());
    let [a, b, c] = legs;
    let (a, b, c) = tokio::join!(a, b, c);
    for out in [a, b, c] {
        out.assert_code(0);
        assert_eq!(out.output("events"), "4");
    }
    let groups = pg.groups().await;
    assert_eq!(
        groups.len(),
        12,
        "{:#?}",
        groups.iter().map(|g| &g.labels).collect::<Vec<_>>()
    );
    let mut workflows: Vec<&str> = groups
        .iter()
        .map(|g| g.labels["workflow"].as_str())
        .collect();
    workflows.sort_unstable();
    workflows.dedup();
    assert_eq!(workflows.len(), 3);
}

#[tokio::test(flavor = "multi_thread")]
async fn rate_limits_are_waited_for_within_a_bound() {
    let (pg, gh) = with_history().await;
    let reset = Timestamp::now().as_second() + 2;
    Mock::given(method("GET"))
        .and(path(runs_path("deploy.yml")))
        .and(query_param_is_missing("page"))
        .respond_with(
            ResponseTemplate::new(403)
                .insert_header("x-ratelimit-remaining", "0")
                .insert_header("x-ratelimit-reset", reset.to_string().as_str())
                .set_body_json(json!({"message": "API rate limit exceeded"})),
        )
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&gh)
        .await;
    let start = std::time::Instant::now();
    let out = leg(&pg, &gh, "deploy.yml").run_expecting(0).await;
    assert!(
        start.elapsed() >= Duration::from_secs(1),
        "waited for the reset"
    );
    assert_eq!(out.output("events"), "5");

    let limited = GitHub::new()
        .every_get(
            ResponseTemplate::new(429)
                .insert_header("retry-after", "3600")
                .set_body_json(json!({"message": "secondary rate limit"})),
        )
        .start()
        .await;
    let out = leg(&pg, &limited, "deploy.yml").run_expecting(1).await;
    out.the_error(&["rate limited", "3600s"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn server_errors_are_retried() {
    let (pg, gh) = with_history().await;
    Mock::given(method("GET"))
        .and(path(runs_path("deploy.yml")))
        .respond_with(ResponseTemplate::new(502).set_body_string("Bad Gateway"))
        .up_to_n_times(2)
        .with_priority(1)
        .mount(&gh)
        .await;
    let out = leg(&pg, &gh, "deploy.yml").run_expecting(0).await;
    assert_eq!(out.output("events"), "5");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_default_branch_is_looked_up_when_no_payload_says_it() {
    let (pg, gh) = with_history().await;
    Mock::given(method("GET"))
        .and(path("/repos/octo-org/shop"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"full_name": "octo-org/shop", "default_branch": "main"})),
        )
        .expect(1)
        .mount(&gh)
        .await;
    let out = Action::new()
        .input("mode", "workflows")
        .input("workflows", "deploy.yml")
        .input("pushgateway-url", &pg.url)
        .input("github-token", TOKEN)
        .env("GITHUB_API_URL", &gh.uri())
        .run_expecting(0)
        .await;
    assert_eq!(out.output("events"), "5");
    gh.verify().await;
}

/// The summary without the line that says what this run did (new or already
/// stored): what describes the recorded events.
fn described(summary: &str) -> Vec<&str> {
    summary
        .lines()
        .filter(|l| !l.is_empty())
        .filter(|l| !l.contains("already in the Pushgateway") && !l.contains("GitHub API calls"))
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_rerun_reports_the_numbers_the_first_run_recorded() {
    let (pg, gh) = with_history().await;
    let first = leg(&pg, &gh, "deploy.yml").run_expecting(0).await;
    let again = leg(&pg, &gh, "deploy.yml").run_expecting(0).await;
    assert!(
        again
            .summary
            .contains("0 new, 5 already in the Pushgateway"),
        "{}",
        again.summary
    );
    // The per-change lead times (1h 50m for d4, e5's own) are what the first run reported.
    assert_eq!(again.outputs, first.outputs, "outputs of the re-run");
    assert_eq!(
        described(&again.summary),
        described(&first.summary),
        "summary of the re-run"
    );
    assert!(
        again
            .summary
            .contains("| 1h 50m (elite) | 3h (high) | 1 of 3 |"),
        "{}",
        again.summary
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn fail_on_error_false_turns_github_failures_into_one_warning() {
    // An unknown workflow file (404), then a GitHub that answers 500 for a minute.
    for (what, status) in [("unknown workflow", 404), ("server errors", 500)] {
        let pg = Pushgateway::start().await;
        let gh = GitHub::new()
            .every_get(ResponseTemplate::new(status).set_body_json(json!({"message": "Not Found"})))
            .start()
            .await;
        let out = leg(&pg, &gh, "nope.yml")
            .input("fail-on-error", "false")
            .timeout(Duration::from_secs(100))
            .run_expecting(0)
            .await;
        assert!(out.error_lines().is_empty(), "{what}: {}", out.stdout);
        let warnings = out.warning_lines();
        assert_eq!(
            warnings
                .iter()
                .filter(|w| w.contains("github api") && w.contains("`fail-on-error` is false"))
                .count(),
            1,
            "{what}: {}",
            out.stdout
        );
        assert_eq!(out.output("events"), "0");
        assert!(pg.groups().await.is_empty(), "{what}: nothing pushed");
        out.assert_no_secret(&[TOKEN]);
        // With the default, the same failure fails the step.
        if status == 404 {
            leg(&pg, &gh, "nope.yml").run_expecting(1).await;
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn with_fail_on_error_false_one_unreadable_workflow_costs_no_other() {
    let (pg, gh) = with_history().await;
    let out = leg(&pg, &gh, "deploy.yml\nnope.yml")
        .input("fail-on-error", "false")
        .run_expecting(0)
        .await;
    assert_eq!(out.output("events"), "5", "{}", out.stdout);
    assert_eq!(pg.groups().await.len(), 5);
    assert!(
        out.warning_lines().iter().any(|w| w.contains("nope.yml")),
        "{}",
        out.stdout
    );
}
