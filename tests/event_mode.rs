//! Event mode end to end: the built binary, run the way the runner runs a
//! container action, against a real Pushgateway (and Prometheus where the
//! question is what a dashboard would see).

mod support;

use std::path::PathBuf;
use std::time::Duration;

use serde_json::Value;
use support::front::{Fault, FaultyFront};
use support::{Action, GitHub, GitHubMock, Prometheus, Pushgateway, fixture, fixture_json};
use wiremock::matchers::{header, method, path};
use wiremock::{Mock, ResponseTemplate};

const SHA: &str = "9f8e7d6c5b4a39281706f5e4d3c2b1a098765432";
const DEPLOYED_AT: f64 = 1_795_170_600.0; // 2026-11-20T10:30:00Z
/// A run id whose event does the upkeep (`dora::plan::upkeep_due`); the
/// fixtures' 7001 does not.
const UPKEEP_RUN: u64 = 7008;

/// An action run that records `workflow_run/<name>` into `pg`, keeping every
/// event (the fixtures' dates must not age out of the default retention),
/// with GitHub REST at `github` (which the recovery-time look-up calls).
fn run_event(pg: &Pushgateway, github: &GitHubMock, name: &str) -> Action {
    Action::new()
        .event("workflow_run", &fixture(&format!("workflow_run/{name}")))
        .input("pushgateway-url", &pg.url)
        .input("retention", "0")
        .input("github-token", "ghs_test")
        .env("GITHUB_API_URL", &github.uri())
}

/// A fresh Pushgateway, and GitHub listing no earlier runs.
async fn no_history() -> (Pushgateway, GitHubMock) {
    let gh = GitHub::new().no_runs().start().await;
    (Pushgateway::start().await, gh)
}

/// A copy of a fixture with some fields replaced (JSON pointer → value), in `dir`.
fn patched(dir: &std::path::Path, rel: &str, changes: &[(&str, Value)]) -> PathBuf {
    let mut v: Value =
        serde_json::from_str(&std::fs::read_to_string(fixture(rel)).unwrap()).unwrap();
    for (pointer, value) in changes {
        *v.pointer_mut(pointer)
            .unwrap_or_else(|| panic!("{pointer} not in {rel}")) = value.clone();
    }
    let out = dir.join(rel.replace('/', "_"));
    std::fs::write(&out, v.to_string()).unwrap();
    out
}

fn rfc3339(unix: i64) -> String {
    jiff::Timestamp::from_second(unix).unwrap().to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_successful_run_becomes_one_group_at_its_own_time() {
    let (pg, gh) = no_history().await;
    let out = run_event(&pg, &gh, "success.json").run_expecting(0).await;
    assert_eq!(out.output("skipped"), "false");
    assert_eq!(out.output("events"), "1");
    assert_eq!(out.output("deployments"), "1");
    assert_eq!(out.output("failures"), "0");
    assert_eq!(out.output("lead-time-seconds"), "1800");
    assert_eq!(out.output("recovery-seconds"), "");
    assert!(out.error_lines().is_empty(), "{}", out.stdout);

    let groups = pg.groups().await;
    assert_eq!(groups.len(), 1, "{groups:#?}");
    let g = &groups[0];
    let expected: Vec<(&str, &str)> = vec![
        ("job", "dora"),
        ("repository", "octo-org/shop"),
        ("run_attempt", "1"),
        ("run_id", "7001"),
        ("workflow", "Deploy"),
    ];
    assert_eq!(
        g.labels
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect::<Vec<_>>(),
        expected
    );
    assert_eq!(g.value("dora_workflow_deploy_event"), 1.0);
    assert_eq!(g.value("dora_workflow_deploy_timestamp"), DEPLOYED_AT);
    assert_eq!(g.value("dora_workflow_lead_time_seconds"), 1800.0);
    let labels = g.sample_labels("dora_workflow_deploy_timestamp");
    for (k, v) in [
        ("status", "success"),
        ("source", "Deploy"),
        ("ref", "main"),
        ("sha", SHA),
        ("environment", "default"),
    ] {
        assert_eq!(
            labels.get(k).map(String::as_str),
            Some(v),
            "label {k} in {labels:?}"
        );
    }

    out.assert_summary_says("### DORA metrics: 1 event recorded");
    out.assert_summary_says(&format!(
        "[`9f8e7d6`](https://github.com/octo-org/shop/commit/{SHA})"
    ));
    out.assert_summary_says("| 30m |");
    assert!(
        out.summary.contains(&pg.url),
        "the summary says where the event went: {}",
        out.summary
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn failures_are_events_without_lead_time() {
    let (pg, gh) = no_history().await;
    for (name, run_id) in [
        ("failure.json", "7002"),
        ("timed_out.json", "7003"),
        ("startup_failure.json", "7004"),
    ] {
        let out = run_event(&pg, &gh, name).run_expecting(0).await;
        assert_eq!(out.counts(), ("1", "0", "1"), "{name}");
        assert_eq!(out.output("lead-time-seconds"), "", "{name}");
        let groups = pg.groups_matching(&[("run_id", run_id)]).await;
        assert_eq!(groups.len(), 1, "{name}");
        assert_eq!(
            groups[0].sample_labels("dora_workflow_deploy_event")["status"],
            "failure",
            "{name}"
        );
        assert!(
            !groups[0]
                .metrics
                .contains_key("dora_workflow_lead_time_seconds"),
            "{name}: {:?}",
            groups[0].metrics
        );
    }
    let failed = pg.groups_matching(&[("run_id", "7002")]).await;
    assert_eq!(
        failed[0].value("dora_workflow_deploy_timestamp"),
        1_795_172_400.0,
        "failure.json finished at 11:00Z"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn runs_that_are_not_deployments_push_nothing_and_say_why() {
    let (pg, gh) = no_history().await;
    for (name, why) in [
        (
            "cancelled.json",
            "conclusion `cancelled` is not a deployment outcome",
        ),
        ("in_progress.json", "not completed"),
        ("pull_request.json", "triggered by `pull_request`"),
        (
            "feature_branch.json",
            "branch `feature/retry` is not a deploy branch",
        ),
    ] {
        let out = run_event(&pg, &gh, name).run_expecting(0).await;
        assert_eq!(out.output("skipped"), "true", "{name}");
        assert_eq!(out.output("events"), "0", "{name}");
        let notices = out.notice_lines();
        assert_eq!(notices.len(), 1, "{name}: {}", out.stdout);
        assert!(notices[0].contains(why), "{name}: {notices:?}");
        assert!(
            // The reason quotes payload values in the action's backticks:
            // the summary shows them as code, as the log does.
            out.summary.contains("nothing recorded") && out.summary.contains(why),
            "{name}: {}",
            out.summary
        );
    }
    assert_eq!(
        pg.groups().await,
        vec![],
        "nothing may be pushed for a non-deployment"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn deploy_branches_widen_what_counts() {
    let (pg, gh) = no_history().await;
    let out = run_event(&pg, &gh, "feature_branch.json")
        .input("deploy-branches", "main, feature/*")
        .run_expecting(0)
        .await;
    assert_eq!(out.output("events"), "1");
    let g = pg.groups_matching(&[("run_id", "7008")]).await;
    assert_eq!(
        g[0].sample_labels("dora_workflow_deploy_event")["ref"],
        "feature/retry"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_source_label_is_never_empty_and_odd_names_survive() {
    let (pg, gh) = no_history().await;
    for (name, run_id, source) in [
        ("empty_name.json", "7009", "deploy.yml"),
        ("no_name_no_path.json", "7010", "workflow-1001"),
        (
            "odd_names.json",
            "7011",
            "Deploy \"prod\" / eu-west ✓ déploiement",
        ),
    ] {
        run_event(&pg, &gh, name)
            .input("deploy-branches", "*")
            .run()
            .await
            .assert_code(0);
        let groups = pg.groups_matching(&[("run_id", run_id)]).await;
        assert_eq!(groups.len(), 1, "{name}");
        assert_eq!(
            groups[0].labels["workflow"], source,
            "{name}: grouping label"
        );
        assert_eq!(
            groups[0].sample_labels("dora_workflow_deploy_event")["source"],
            source,
            "{name}"
        );
    }
    let odd = pg.groups_matching(&[("run_id", "7011")]).await;
    assert_eq!(odd[0].labels["run_attempt"], "2");
    assert_eq!(
        odd[0].sample_labels("dora_workflow_deploy_event")["ref"],
        "release/2026.11"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn payload_times_with_offsets_give_the_right_lead_time() {
    let (pg, gh) = no_history().await;
    let out = run_event(&pg, &gh, "offset_times.json")
        .run_expecting(0)
        .await;
    assert_eq!(out.output("lead-time-seconds"), "1800");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_payload_missing_a_needed_field_fails_naming_file_and_field() {
    let (pg, gh) = no_history().await;
    let file = fixture("workflow_run/missing_updated_at.json");
    let out = run_event(&pg, &gh, "missing_updated_at.json")
        .run_expecting(1)
        .await;
    out.the_error(&[
        &file.display().to_string(),
        "`workflow_run.updated_at` is missing",
    ]);
    assert_eq!(pg.groups().await, vec![]);

    let out = run_event(&pg, &gh, "not_json.json").run_expecting(1).await;
    out.the_error(&["not valid JSON"]);
    assert!(!out.stderr.contains("panicked"), "{}", out.stderr);
    assert_eq!(pg.groups().await, vec![]);

    let out = run_event(&pg, &gh, "success.json")
        .env("GITHUB_EVENT_NAME", "deployment_status")
        .run_expecting(1)
        .await;
    out.the_error(&["not a `deployment_status` payload"]);
    assert_eq!(pg.groups().await, vec![]);
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_inputs_fail_with_one_error_before_anything_is_contacted() {
    let (pg, gh) = no_history().await;
    for (input, value) in [
        ("mode", "deploy"),
        ("dry-run", "yes"),
        ("retention", "90"),
        ("pushgateway-url", "pushgateway:9091"),
        ("cluster-name", "prod eks!"),
    ] {
        let out = run_event(&pg, &gh, "success.json")
            .input(input, value)
            .run_expecting(1)
            .await;
        out.the_error(&[&format!("input `{input}`"), value]);
    }
    let out = Action::new()
        .fixture_event("workflow_run", "success.json")
        .run_expecting(1)
        .await;
    out.the_error(&["input `pushgateway-url`: required"]);
    assert_eq!(
        pg.groups().await,
        vec![],
        "no input error may push anything"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn rerunning_the_same_event_changes_nothing() {
    let (pg, gh) = no_history().await;
    run_event(&pg, &gh, "success.json")
        .run()
        .await
        .assert_code(0);
    let first = pg.groups().await;
    run_event(&pg, &gh, "success.json")
        .run()
        .await
        .assert_code(0);
    let mut second = pg.groups().await;
    assert_eq!(second.len(), 1);
    second[0].push_time_seconds = first[0].push_time_seconds;
    assert_eq!(first, second);
}

#[tokio::test(flavor = "multi_thread")]
async fn concurrent_runs_never_overwrite_each_other() {
    let (pg, gh) = no_history().await;
    let runs = ["success.json", "failure.json", "timed_out.json"]
        .map(|name| run_event(&pg, &gh, name).run());
    let [a, b, c] = runs;
    let (a, b, c) = tokio::join!(a, b, c);
    for out in [a, b, c] {
        out.assert_code(0);
    }
    let ids = pg.label_values("run_id").await;
    assert_eq!(ids, ["7001", "7002", "7003"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn expired_groups_of_this_job_are_pruned_and_nothing_else() {
    let pg = Pushgateway::start().await;
    let now = jiff::Timestamp::now().as_second();
    let day = 86_400;
    let seed = |t: i64| {
        format!(
            "# TYPE dora_workflow_deploy_timestamp gauge\ndora_workflow_deploy_timestamp{{status=\"success\"}} {t}\n"
        )
    };
    assert_eq!(
        pg.put_raw("/metrics/job/dora/run_id/1", &seed(now - 200 * day))
            .await,
        200
    );
    assert_eq!(
        pg.put_raw("/metrics/job/dora/run_id/2", &seed(now - 50 * day))
            .await,
        200
    );
    assert_eq!(
        pg.put_raw("/metrics/job/other/run_id/3", &seed(now - 400 * day))
            .await,
        200
    );
    assert_eq!(
        pg.put_raw(
            "/metrics/job/dora/run_id/4",
            "# TYPE unrelated gauge\nunrelated 1\n"
        )
        .await,
        200
    );

    let action = Action::new();
    // Run 7008: an upkeep event (one in 16 reads what is stored and prunes).
    let payload = patched(
        action.dir(),
        "workflow_run/success.json",
        &[
            ("/workflow_run/id", Value::from(UPKEEP_RUN)),
            (
                "/workflow_run/updated_at",
                Value::String(rfc3339(now - 3_600)),
            ),
            (
                "/workflow_run/head_commit/timestamp",
                Value::String(rfc3339(now - 7_200)),
            ),
        ],
    );
    let out = action
        .event("workflow_run", &payload)
        .input("pushgateway-url", &pg.url)
        .input("retention", "100d")
        .run_expecting(0)
        .await;
    out.assert_summary_says("Pruned 1 group (older than 100d)");
    let mut left: Vec<(String, String)> = pg
        .groups()
        .await
        .into_iter()
        .map(|g| (g.labels["job"].clone(), g.labels["run_id"].clone()))
        .collect();
    left.sort();
    let expected: Vec<(String, String)> = [
        ("dora", "2"),
        ("dora", "4"),
        ("dora", "7008"),
        ("other", "3"),
    ]
    .iter()
    .map(|(a, b)| (a.to_string(), b.to_string()))
    .collect();
    assert_eq!(left, expected);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_event_older_than_retention_is_not_pushed() {
    let (pg, gh) = no_history().await;
    let out = run_event(&pg, &gh, "success.json")
        .input("retention", "1h")
        .run_expecting(0)
        .await;
    assert_eq!(out.output("skipped"), "true");
    assert!(
        out.notice_lines()[0].contains("older than `retention`"),
        "{}",
        out.stdout
    );
    assert_eq!(pg.groups().await, vec![]);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unreachable_pushgateway_fails_within_the_retry_bound() {
    // A port that was free a moment ago: nothing listens there.
    let port = support::process::closed_port();
    let url = format!("http://127.0.0.1:{port}");
    let start = std::time::Instant::now();
    let out = Action::new()
        .fixture_event("workflow_run", "success.json")
        .input("pushgateway-url", &url)
        .input("retention", "0")
        .timeout(Duration::from_secs(60))
        .run()
        .await;
    let took = start.elapsed();
    out.assert_code(1);
    out.the_error(&["pushgateway", "gave up after"]);
    assert!(
        took >= Duration::from_secs(20) && took <= Duration::from_secs(40),
        "retried for {took:?}"
    );

    let gh = GitHub::new().no_runs().start().await;
    let out = Action::new()
        .fixture_event("workflow_run", "success.json")
        .input("pushgateway-url", &url)
        .input("retention", "0")
        .input("github-token", "ghs_test")
        .env("GITHUB_API_URL", &gh.uri())
        .input("fail-on-error", "false")
        .timeout(Duration::from_secs(60))
        .run_expecting(0)
        .await;
    assert!(out.error_lines().is_empty(), "{}", out.stdout);
    assert_eq!(out.warning_lines().len(), 1, "{}", out.stdout);
    assert_eq!(
        out.output("events"),
        "0",
        "an event that was not delivered is not counted"
    );
    out.assert_summary_says("Not delivered");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_rejected_push_fails_and_leaves_no_group_behind() {
    let (pg, gh) = no_history().await;
    // Another group declares the same metric name as a counter: the Pushgateway must refuse our gauge.
    let clash = "# TYPE dora_workflow_deploy_event counter\ndora_workflow_deploy_event 1\n";
    assert_eq!(pg.put_raw("/metrics/job/legacy", clash).await, 200);
    let out = run_event(&pg, &gh, "success.json").run_expecting(1).await;
    let error = out.the_error(&[]);
    assert!(
        error.contains("400"),
        "the error quotes the Pushgateway: {error}"
    );
    let groups = pg.groups().await;
    assert_eq!(
        groups
            .iter()
            .map(|g| g.labels["job"].as_str())
            .collect::<Vec<_>>(),
        ["legacy"],
        "{groups:#?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_event_is_recorded_with_one_put_whatever_the_listing_does() {
    // Run 7001 is no upkeep event: nothing O(stored groups) on its path, so
    // a listing that fails or never answers does not matter.
    for fault in [Fault::status(500, "listing broken"), Fault::Hang] {
        let (pg, gh) = no_history().await;
        let front = FaultyFront::start(Some(&pg.url)).await;
        front.fault(Some("GET"), "/api/v1/metrics", fault.clone(), None);
        let out = Action::new()
            .fixture_event("workflow_run", "success.json")
            .input("pushgateway-url", &front.url)
            .input("retention", "90d")
            .input("github-token", "ghs_test")
            .env("GITHUB_API_URL", &gh.uri())
            .run_expecting(0)
            .await;
        assert_eq!(out.output("events"), "1", "{fault:?}");
        // The PUT, and the warm-up that opened its connection (`/-/ready`).
        let seen = front.seen();
        let targets: Vec<(&str, &str)> = seen
            .iter()
            .map(|s| (s.method.as_str(), s.target.split('/').nth(1).unwrap_or("")))
            .collect();
        assert_eq!(targets, [("GET", "-"), ("PUT", "metrics")], "{seen:?}");
        let groups = pg.groups().await;
        assert_eq!(groups.len(), 1);
        assert_eq!(groups[0].labels["run_id"], "7001");
        out.assert_summary_says("Pruning and upgrades: not on this event (one event in 16");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_rejected_push_on_a_recorded_event_keeps_what_was_recorded() {
    let (pg, gh) = no_history().await;
    // Run 7001 as recorded before (one metric), and another job's group
    // declaring the lead time as a counter: our push of 7001 must clash.
    let before = "# TYPE dora_workflow_deploy_timestamp gauge\ndora_workflow_deploy_timestamp{status=\"success\"} 1795170600\n";
    assert_eq!(pg.put_raw(&run_group_path("dora", 7001), before).await, 200);
    let clash =
        "# TYPE dora_workflow_lead_time_seconds counter\ndora_workflow_lead_time_seconds 1\n";
    assert_eq!(pg.put_raw("/metrics/job/legacy", clash).await, 200);
    let recorded = pg.groups_matching(&[("job", "dora")]).await;
    let out = run_event(&pg, &gh, "success.json").run_expecting(1).await;
    out.the_error(&["400"]);
    // The rejected push left the group's metrics as they were: it is no
    // empty shell, so it is not deleted.
    let ours = pg.groups_matching(&[("job", "dora")]).await;
    assert_eq!(ours.len(), 1, "{ours:#?}");
    assert_eq!(ours[0].metrics, recorded[0].metrics);
    assert!(
        ours[0]
            .metrics
            .contains_key("dora_workflow_deploy_timestamp")
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_dry_run_contacts_no_server_and_shows_the_exposition() {
    let (pg, gh) = no_history().await;
    let out = run_event(&pg, &gh, "success.json")
        .input("dry-run", "true")
        .run_expecting(0)
        .await;
    assert_eq!(pg.groups().await, vec![]);
    assert!(out.stdout.contains(&format!("dora_workflow_deploy_timestamp{{environment=\"default\",ref=\"main\",sha=\"{SHA}\",source=\"Deploy\",status=\"success\"}} 1795170600")), "{}", out.stdout);
    out.assert_summary_says("<details><summary>Exposition that would be pushed</summary>");
    assert_eq!(out.output("events"), "1");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_local_run_prints_outputs_and_summary() {
    let out = Action::new()
        .without_runner_files()
        .fixture_event("workflow_run", "success.json")
        .input("dry-run", "true")
        .run_expecting(0)
        .await;
    assert!(out.stdout.contains("  events=1\n"), "{}", out.stdout);
    assert!(
        out.stdout
            .contains("### DORA metrics: 1 event to record (dry run)"),
        "{}",
        out.stdout
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn help_explains_itself() {
    let text = support::action::help();
    assert!(
        text.contains("INPUT_DRY-RUN=true") && text.contains("Exit status"),
        "{text}"
    );
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_dora-action"))
        .arg("--bogus")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8(out.stdout)
            .unwrap()
            .starts_with("::error::unexpected argument `--bogus`")
    );
}

/// A GitHub REST mock serving the commit of the deployment fixtures.
async fn github_with_commit(token: &str) -> GitHubMock {
    GitHub::new()
        .mock(
            Mock::given(method("GET"))
                .and(path(format!("/repos/octo-org/shop/commits/{SHA}")))
                .and(header("authorization", format!("Bearer {token}").as_str()))
                .respond_with(
                    ResponseTemplate::new(200).set_body_json(fixture_json("github/commit.json")),
                )
                .expect(1),
        )
        .start()
        .await
}

#[tokio::test(flavor = "multi_thread")]
async fn a_deployment_status_looks_up_its_commit_once_and_never_shows_the_token() {
    let token = "ghs_d0raTestT0kenNeverPrinted1234567890";
    let github = github_with_commit(token).await;
    let pg = Pushgateway::start().await;
    let out = Action::new()
        .fixture_event("deployment_status", "success.json")
        .env("GITHUB_API_URL", &github.uri())
        .input("pushgateway-url", &pg.url)
        .input("github-token", token)
        .input("retention", "0")
        .run_expecting(0)
        .await;
    // Commit at 10:00 (committer date), deployed 10:30.
    assert_eq!(out.output("lead-time-seconds"), "1800");
    let g = pg
        .groups_matching(&[("deployment_id", "9001"), ("deployment_status_id", "9101")])
        .await;
    assert_eq!(g.len(), 1);
    assert_eq!(g[0].value("dora_workflow_lead_time_seconds"), 1800.0);
    assert_eq!(
        g[0].sample_labels("dora_workflow_deploy_event")["environment"],
        "production"
    );
    out.assert_summary_says("GitHub API calls: 1.");
    // The only place the token may appear is the mask command, which the runner consumes.
    out.assert_masked(token);
    out.assert_no_secret(&[token]);
    github.verify().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failed_commit_lookup_records_the_deployment_without_lead_time() {
    let github = GitHub::new()
        .every_get(ResponseTemplate::new(404).set_body_string("{\"message\":\"Not Found\"}"))
        .start()
        .await;
    let pg = Pushgateway::start().await;
    let out = Action::new()
        .fixture_event("deployment_status", "failure.json")
        .env("GITHUB_API_URL", &github.uri())
        .input("pushgateway-url", &pg.url)
        .input("retention", "0")
        .run_expecting(0)
        .await;
    assert_eq!((out.output("events"), out.output("failures")), ("1", "1"));
    out.the_warning(&["404"]);
    assert_eq!(
        pg.groups_matching(&[("deployment_status_id", "9102")])
            .await
            .len(),
        1
    );

    let out = Action::new()
        .fixture_event("deployment_status", "in_progress.json")
        .input("pushgateway-url", &pg.url)
        .run_expecting(0)
        .await;
    assert_eq!(out.output("skipped"), "true");
}

#[tokio::test(flavor = "multi_thread")]
async fn prometheus_sees_the_history_by_event_time() {
    let (pg, gh) = no_history().await;
    for name in [
        "success.json",
        "failure.json",
        "timed_out.json",
        "cancelled.json",
    ] {
        run_event(&pg, &gh, name).run().await.assert_code(0);
    }
    let prom = Prometheus::start(&pg).await;
    let deploys = prom
        .query_until(
            "count(dora_workflow_deploy_event{job=\"dora\"})",
            |s| s.first().is_some_and(|s| s.value == 3.0),
            Duration::from_secs(20),
        )
        .await;
    assert_eq!(deploys[0].value, 3.0);
    let failures = prom
        .query("count(dora_workflow_deploy_event{status=\"failure\"})")
        .await;
    assert_eq!(failures[0].value, 2.0);
    // The event's own time is the value, so a window query counts by when it happened.
    let in_window = prom
        .query(&format!(
            "count(dora_workflow_deploy_timestamp{{status=\"success\"}} >= {DEPLOYED_AT})"
        ))
        .await;
    assert_eq!(in_window[0].value, 1.0);
    let lead = prom.query("dora_workflow_lead_time_seconds").await;
    assert_eq!(lead.len(), 1);
    assert_eq!(lead[0].value, 1800.0);
    assert_eq!(lead[0].labels["repository"], "octo-org/shop");
    assert_eq!(lead[0].labels["workflow"], "Deploy");
    assert_eq!(
        lead[0].labels["job"], "dora",
        "honor_labels keeps the group's job"
    );
}

/// The exposition the previous version pushed for a workflow run: today's
/// series, labelled `branch` where today's say `ref`.
fn stored_before_ref(run_id: u64, time: i64, lead: i64, recovery: Option<i64>) -> String {
    use dora_action::dora::{Deploy, EventKey, History, Status, deploy_group};
    let d = Deploy {
        repository: "octo-org/shop".into(),
        source: "Deploy".into(),
        key: EventKey::Run { run_id, attempt: 1 },
        status: Status::Success,
        branch: "main".into(),
        sha: SHA.into(),
        environment: "default".into(),
        time: jiff::Timestamp::from_second(time).unwrap(),
        commit_time: Some(jiff::Timestamp::from_second(time - lead).unwrap()),
        url: None,
        history: History {
            recovery_seconds: recovery,
            ..History::default()
        },
    };
    let text = deploy_group(&d).exposition;
    assert!(text.contains(r#"ref="main""#), "{text}");
    text.replace(r#"ref="main""#, r#"branch="main""#)
}

/// The push path of a run's group (`octo-org/shop` in `@base64`).
fn run_group_path(job: &str, run_id: u64) -> String {
    format!(
        "/metrics/job/{job}/repository@base64/b2N0by1vcmcvc2hvcA==/workflow/Deploy/run_id/{run_id}/run_attempt/1"
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn groups_stored_before_ref_stay_recorded_get_ref_and_are_still_pruned() {
    let (pg, gh) = no_history().await;
    let now = jiff::Timestamp::now().as_second();
    let (hour, day) = (3_600, 86_400);
    // 7008: the very run the event is about (an upkeep event: one in 16 reads
    // what is stored, prunes and upgrades), stored by the previous version
    // with values today's run would not compute (lead 1234 s, recovery 600 s):
    // they are the record and must survive. 6999: an older run. 6998: past
    // retention. `other`: another job's, never touched.
    let seeded = [
        (
            "dora",
            7008,
            stored_before_ref(7008, now - hour, 1_234, Some(600)),
        ),
        (
            "dora",
            6999,
            stored_before_ref(6999, now - 10 * day, 900, None),
        ),
        (
            "dora",
            6998,
            stored_before_ref(6998, now - 200 * day, 60, None),
        ),
        (
            "other",
            6997,
            stored_before_ref(6997, now - 10 * day, 60, None),
        ),
    ];
    for (job, run, body) in &seeded {
        assert_eq!(
            pg.put_raw(&run_group_path(job, *run), body).await,
            200,
            "{body}"
        );
    }
    // Outlives both runs (each action's own dir goes with it).
    let dir = tempfile::tempdir().unwrap();
    let payload = patched(
        dir.path(),
        "workflow_run/success.json",
        &[
            ("/workflow_run/id", Value::from(UPKEEP_RUN)),
            (
                "/workflow_run/updated_at",
                Value::String(rfc3339(now - hour)),
            ),
            (
                "/workflow_run/head_commit/timestamp",
                Value::String(rfc3339(now - 2 * hour)),
            ),
        ],
    );
    let run = |action: Action| {
        action
            .event("workflow_run", &payload)
            .input("pushgateway-url", &pg.url)
            .input("retention", "100d")
            .input("github-token", "ghs_test")
            .env("GITHUB_API_URL", &gh.uri())
            .run()
    };
    let out = run(Action::new()).await;
    out.assert_code(0);
    out.assert_summary_says("Pruned 1 group (older than 100d)");
    out.assert_summary_says("Upgraded 2 groups stored before the `ref` label");
    let expect_after = |groups: Vec<support::Group>| {
        let mut left: Vec<(String, String)> = groups
            .iter()
            .map(|g| (g.labels["job"].clone(), g.labels["run_id"].clone()))
            .collect();
        left.sort();
        assert_eq!(
            left,
            [("dora", "6999"), ("dora", "7008"), ("other", "6997")]
                .map(|(j, r)| (j.to_string(), r.to_string())),
            "no duplicate, the expired one pruned, the other job's kept"
        );
        for g in &groups {
            let labels = g.sample_labels("dora_workflow_deploy_event");
            let (has_ref, has_branch) = (labels.get("ref"), labels.get("branch"));
            if g.labels["job"] == "dora" {
                assert_eq!(
                    (has_ref.map(String::as_str), has_branch),
                    (Some("main"), None),
                    "{labels:?}"
                );
                // Every series of the group carries the same labels.
                for series in g.metrics.values().flatten() {
                    assert_eq!(series.0.get("ref").map(String::as_str), Some("main"));
                }
            } else {
                assert_eq!(
                    (has_ref, has_branch.map(String::as_str)),
                    (None, Some("main"))
                );
            }
        }
        let of = |run: &str| groups.iter().find(|g| g.labels["run_id"] == run).unwrap();
        // The stored record, not a recomputation.
        assert_eq!(of("7008").value("dora_workflow_lead_time_seconds"), 1_234.0);
        assert_eq!(of("7008").value("dora_workflow_recovery_seconds"), 600.0);
        assert_eq!(
            of("7008").value("dora_workflow_deploy_timestamp"),
            (now - hour) as f64
        );
        assert_eq!(of("6999").value("dora_workflow_lead_time_seconds"), 900.0);
    };
    expect_after(pg.groups().await);
    assert_eq!(out.output("events"), "1");
    out.assert_summary_says("0 new, 1 already in the Pushgateway (left as they were)");

    // A re-run after the upgrade: nothing to upgrade, nothing pushed, the same groups.
    let again = run(Action::new()).await;
    again.assert_code(0);
    assert!(!again.summary.contains("Upgraded"), "{}", again.summary);
    expect_after(pg.groups().await);
}
