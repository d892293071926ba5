//! The fault matrix (issue 7): what the action does when an outside system
//! misbehaves, end to end with the built binary. For every cell: the exit
//! code docs/operations.md's "Exit status and errors" documents, exactly one
//! `::error::` naming what failed (or the `::warning::` of a failure that
//! only degrades the run), the real Pushgateway's state unchanged by a failed
//! run (compared before and after, so no group is half-pushed), no secret in
//! any output stream, and retries that give up within the documented bound.
//!
//! Faults come from a [`FaultyFront`] in front of the real Pushgateway (or
//! alone, as a broken GitHub), wiremock (GitHub REST, STS answering AWS's
//! XML errors — moto checks no signatures and cannot refuse — and the EKS
//! stub), and the fake API server's `refuse_proxy` / `stall`.
//!
//! Cells covered elsewhere are not repeated here:
//!
//! | system | fault | test |
//! | --- | --- | --- |
//! | Pushgateway | down (nothing listening) | `event_mode::an_unreachable_pushgateway_fails_within_the_retry_bound`; with credentials in the URL: [`a_pushgateway_that_is_down_leaks_no_credentials`] |
//! | Pushgateway | slow past the request timeout | [`a_pushgateway_slower_than_the_timeout_fails_within_its_bound`] |
//! | Pushgateway | stalls in the middle of an answer | [`a_pushgateway_stalling_mid_answer_is_a_timeout_not_a_malformed_answer`] |
//! | Pushgateway | 500 (persistent, and twice then fine) | [`pushgateway_500s_are_retried_within_the_bound_and_leave_no_group`] |
//! | Pushgateway | 400 (rejected push) | `event_mode::a_rejected_push_fails_and_leaves_no_group_behind` |
//! | GitHub | 403 rate limit, reset within a minute (waited for) | `workflows_mode::rate_limits_are_waited_for_within_a_bound` |
//! | GitHub | 429 `retry-after: 3600` | `workflows_mode::rate_limits_are_waited_for_within_a_bound` |
//! | GitHub | 403 rate limit, reset an hour away | [`a_distant_rate_limit_reset_fails_workflows_mode_at_once`], [`a_rate_limit_in_event_mode_is_a_warning`] |
//! | GitHub | 502 twice, then fine | `workflows_mode::server_errors_are_retried` |
//! | GitHub | 502 persistent | [`persistent_502s_fail_workflows_mode_within_a_minute`], [`persistent_502s_in_event_mode_are_a_warning_within_its_bound`] |
//! | GitHub | timeout | [`a_github_timeout_in_event_mode_is_a_warning_within_its_bound`] |
//! | GitHub | answer stalled mid-body | [`a_github_answer_stalling_mid_body_is_a_timeout`] |
//! | GitHub | malformed JSON | [`a_malformed_run_list_fails_workflows_mode_at_once`], [`a_malformed_run_is_skipped_with_a_warning`], [`malformed_github_answers_in_event_mode_are_a_warning`] |
//! | STS | AccessDenied (role trust) | [`sts_access_denied_names_the_role_and_its_trust_policy`] |
//! | STS | expired web identity token | [`an_expired_web_identity_token_is_named_and_not_retried`] |
//! | EKS | expired credentials | [`expired_credentials_are_named_and_not_retried`] |
//! | EKS | AccessDenied | `eks::access_denied_names_the_missing_permission` |
//! | EKS | ThrottlingException 429, twice then fine | `eks::eks_throttling_is_retried` |
//! | EKS | ThrottlingException in the 400 shape, twice then fine | [`eks_throttling_in_the_400_shape_is_retried`] |
//! | EKS | ThrottlingException that never ends | [`eks_throttling_that_never_ends_fails_within_the_aws_bound`] |
//! | EKS | answer stalled mid-body | [`an_eks_answer_stalling_mid_body_is_a_timeout_within_the_aws_bound`] |
//! | API server | 401 (token rejected) | `eks::a_rejected_eks_token_is_a_clear_error_and_pushes_nothing` |
//! | API server | 403 on the service proxy | [`an_api_server_403_on_the_service_proxy_names_the_rbac_to_grant`] |
//! | API server | 403 on a list (cluster mode) | `cluster_mode::rbac_refusal_names_what_to_grant_and_loses_no_other_event` |
//! | API server | 404 on the Pushgateway service | [`an_api_server_404_for_the_service_names_the_input`] |
//! | API server | 404 on a list (CRD missing) | `cluster_mode::a_missing_crd_skips_that_source_and_keeps_the_others` |
//! | API server | timeout (service proxy; cluster mode's list calls share the AWS budget and are not timed here) | [`an_api_server_slower_than_the_timeout_fails_within_its_bound`] |
//! | remote-write | down (nothing listening) | [`a_remote_write_store_that_is_down_fails_within_its_bound_and_pushes_nothing`] |
//! | remote-write | 503 then fine, 401, duplicates, too old | `remote_write::*` |
//! | idempotency | event mode, `workflow_run` | `event_mode::rerunning_the_same_event_changes_nothing` |
//! | idempotency | event mode, `deployment_status` | [`a_deployment_status_recorded_twice_leaves_the_same_state`] |
//! | idempotency | workflows mode | `workflows_mode::rerunning_changes_nothing_and_looks_nothing_up_again` |
//! | idempotency | cluster mode | [`cluster_mode_run_twice_leaves_the_same_state`] |
//! | concurrency | three event runs at once | `event_mode::concurrent_runs_never_overwrite_each_other` |
//! | concurrency | three workflows legs at once | `workflows_mode::three_matrix_legs_at_once_lose_nothing` |
//! | concurrency | three legs and two event runs at once, writing the same groups | [`matrix_legs_and_event_runs_at_once_lose_nothing`] |
//!
//! The cases that wait out a retry budget (15 to 60 s) run side by side in
//! one test, [`retry_budgets_are_kept`], so the file takes about as long as
//! its longest case (a minute); the others are tests of their own.

mod support;

use std::time::Duration;

use jiff::Timestamp;
use serde_json::{Value, json};
use support::aws::{AwsCredentials, EksStub, eks_error};
use support::cluster::{Cluster, ClusterStack};
use support::fixtures::{Canary, Kustomization, git_repository, k8s_list};
use support::front::{Fault, FaultyFront, Seen};
use support::kube::FakeApiConfig;
use support::oidc::OidcStub;
use support::{
    Action, GitHub, GitHubMock, Group, Pushgateway, compare_body, fixture, fixture_json,
};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const TOKEN: &str = "ghs_faultMatrixTokenNeverPrinted0042";
/// The password of a `pushgateway-url` with credentials: error messages
/// quote URLs, and must never quote this.
const PG_PASSWORD: &str = "pgFaultMatrixPassw0rd";
const CLUSTER: &str = "prod-eks";
const REGION: &str = "eu-west-1";
const ROLE: &str = "arn:aws:iam::123456789012:role/dora-action";

/// The documented retry budgets (docs/operations.md; `src/retry.rs`), and the slack a
/// loaded machine needs to start the process and the servers.
const PUSHGATEWAY_BUDGET: Duration = Duration::from_secs(30);
const AWS_BUDGET: Duration = Duration::from_secs(20);
const GITHUB_EVENT_BUDGET: Duration = Duration::from_secs(15);
const GITHUB_HISTORY_BUDGET: Duration = Duration::from_secs(60);
const SLACK: Duration = Duration::from_secs(4);
/// A failure that is not retried is reported at once.
const AT_ONCE: Duration = Duration::from_secs(5);

/// The Pushgateway's state as the comparisons see it: every group with its
/// metrics, sorted by labels, with the push time (which changes on every
/// push, and is not the event's) left out.
async fn state(pg: &Pushgateway) -> Vec<Group> {
    let mut groups = pg.groups().await;
    for g in &mut groups {
        g.push_time_seconds = 0.0;
    }
    groups.sort_by(|a, b| a.labels.cmp(&b.labels));
    groups
}

/// A Pushgateway holding one group of another job, so that "unchanged"
/// is not the same as "empty".
async fn seeded_pushgateway() -> Pushgateway {
    let pg = Pushgateway::start().await;
    let seed = "# TYPE other_job_up gauge\nother_job_up 1\n";
    assert_eq!(pg.put_raw("/metrics/job/other/instance/a", seed).await, 200);
    pg
}

/// `url` with a user and [`PG_PASSWORD`] in it.
fn with_password(url: &str) -> String {
    url.replacen("http://", &format!("http://dora:{PG_PASSWORD}@"), 1)
}

/// Event mode on the success fixture (run 7001 of `deploy.yml`), keeping
/// every event, with the Pushgateway at `pushgateway_url` and GitHub at `github`.
fn event_run(pushgateway_url: &str, github: &str) -> Action {
    Action::new()
        .fixture_event("workflow_run", "success.json")
        .input("pushgateway-url", pushgateway_url)
        .input("retention", "0")
        .input("github-token", TOKEN)
        .env("GITHUB_API_URL", github)
}

/// [`event_run`] for run 7008, an upkeep event: one of the one in 16 that
/// read the group listing before pushing (`dora::plan::upkeep_due`).
fn upkeep_event_run(pushgateway_url: &str, github: &str) -> Action {
    event_run(pushgateway_url, github).with_run_id(7008)
}

/// A scheduled leg of the metrics workflow reading `workflows` (the
/// schedule payload carries the repository and its default branch).
fn leg(pushgateway_url: &str, github: &str, workflows: &str) -> Action {
    Action::new()
        .scheduled("17 * * * *")
        .input("workflows", workflows)
        .input("pushgateway-url", pushgateway_url)
        .input("github-token", TOKEN)
        .env("GITHUB_API_URL", github)
        // No incidents here (tests/incidents.rs has them): the history only.
        .input("incident-labels", "")
}

/// A run of `deploy.yml` as the REST API lists it (the fixture's shape),
/// finished `days` ago on `main`.
fn listed_run(id: u64, conclusion: &str, days: i64, workflow: &str) -> Value {
    let now = Timestamp::now().as_second();
    let at = |s: i64| Timestamp::from_second(s).unwrap().to_string();
    let mut r = support::fixture_run();
    r["id"] = json!(id);
    r["conclusion"] = json!(conclusion);
    r["updated_at"] = json!(at(now - days * 86_400));
    r["created_at"] = json!(at(now - days * 86_400 - 600));
    r["head_commit"]["timestamp"] = json!(at(now - days * 86_400 - 3_600));
    r["name"] = json!(workflow.trim_end_matches(".yml"));
    r["path"] = json!(format!(".github/workflows/{workflow}"));
    r["workflow_id"] = json!(workflow_id(workflow));
    r
}

/// A stable id per workflow file (event mode lists a workflow's runs by id).
fn workflow_id(workflow: &str) -> u64 {
    2000 + workflow.bytes().map(u64::from).sum::<u64>()
}

fn assert_within(took: Duration, bound: Duration, what: &str) {
    assert!(
        took <= bound + SLACK,
        "{what}: took {took:?}, the documented bound is {bound:?}"
    );
}

/// Event mode with GitHub at `github` (failing): a warning naming `parts`,
/// the deployment recorded all the same, no secret shown. Returns the
/// warning and how long the run took.
async fn warns_in_event_mode(github: &str, parts: &[&str]) -> (String, Duration) {
    let pg = Pushgateway::start().await;
    let (out, took) = event_run(&pg.url, github).run_timed().await;
    out.assert_code(0);
    assert!(out.error_lines().is_empty(), "{}", out.stdout);
    let warning = out.the_warning(parts).to_string();
    assert_eq!(
        pg.groups_matching(&[("run_id", "7001")]).await.len(),
        1,
        "the deployment is recorded without the history"
    );
    out.assert_no_secret(&[TOKEN]);
    (warning, took)
}

/// Workflows mode (`deploy.yml`) with GitHub at `github` (failing), into a
/// seeded Pushgateway: exit 1, one error naming `parts`, the Pushgateway
/// unchanged, no secret shown. Returns how long the run took.
async fn fails_workflows_mode(github: &str, parts: &[&str]) -> Duration {
    let pg = seeded_pushgateway().await;
    let before = state(&pg).await;
    let (out, took) = leg(&pg.url, github, "deploy.yml").run_timed().await;
    out.assert_code(1);
    out.the_error(parts);
    assert_eq!(state(&pg).await, before);
    out.assert_no_secret(&[TOKEN]);
    took
}

/// `event` (the Pushgateway URL, GitHub's) through a faulty front (with
/// `faults`) of a seeded Pushgateway, with credentials in its URL: what every Pushgateway fault
/// must give. Exit 1, one error naming `parts`, within the Pushgateway
/// bound (`what`), the Pushgateway unchanged, no secret shown. Returns the
/// Pushgateway, the error line and what the front saw.
async fn fails_within_the_pushgateway_bound(
    event: fn(&str, &str) -> Action,
    faults: impl FnOnce(&FaultyFront),
    parts: &[&str],
    what: &str,
) -> (Pushgateway, String, Vec<Seen>) {
    let pg = seeded_pushgateway().await;
    let front = FaultyFront::start(Some(&pg.url)).await;
    faults(&front);
    let before = state(&pg).await;
    let gh = GitHubMock::quiet().await;
    let (out, took) = event(&with_password(&front.url), &gh.uri())
        .run_timed()
        .await;
    out.assert_code(1);
    let error = out.the_error(parts).to_string();
    assert_within(took, PUSHGATEWAY_BUDGET, what);
    assert_eq!(state(&pg).await, before);
    out.assert_no_secret(&[TOKEN, PG_PASSWORD]);
    (pg, error, front.seen())
}

// ------------------------------------------------------------- retry budgets

/// Spawns each case on its own task and waits for all of them; panics
/// naming the cases that failed (each one's own panic message is printed
/// as it happens).
macro_rules! side_by_side {
    ($($case:ident),* $(,)?) => {{
        let cases = vec![$((stringify!($case), tokio::spawn($case()))),*];
        let mut failed = Vec::new();
        for (name, handle) in cases {
            if handle.await.is_err() {
                failed.push(name);
            }
        }
        assert!(failed.is_empty(), "failed cases (see their panics above): {failed:?}");
    }};
}

/// The cases that wait out a retry budget (15 to 60 s each) run side by
/// side in one test: the harness runs only as many tests at once as there
/// are cores (two on the CI machine), so as separate tests they would wait
/// one after another for over two minutes; together they take about as long
/// as the longest, a minute.
#[tokio::test(flavor = "multi_thread")]
async fn retry_budgets_are_kept() {
    side_by_side!(
        a_pushgateway_that_is_down_leaks_no_credentials,
        a_pushgateway_slower_than_the_timeout_fails_within_its_bound,
        a_pushgateway_stalling_mid_answer_is_a_timeout_not_a_malformed_answer,
        pushgateway_500s_are_retried_within_the_bound_and_leave_no_group,
        persistent_502s_fail_workflows_mode_within_a_minute,
        persistent_502s_in_event_mode_are_a_warning_within_its_bound,
        a_github_timeout_in_event_mode_is_a_warning_within_its_bound,
        a_github_answer_stalling_mid_body_is_a_timeout,
        an_eks_answer_stalling_mid_body_is_a_timeout_within_the_aws_bound,
        eks_throttling_that_never_ends_fails_within_the_aws_bound,
        an_api_server_slower_than_the_timeout_fails_within_its_bound,
        a_remote_write_store_that_is_down_fails_within_its_bound_and_pushes_nothing,
    );
}

// ---------------------------------------------------------------- remote-write

/// A case of [`retry_budgets_are_kept`]: remote-write goes first, so a store
/// that is down fails the run within its bound and the Pushgateway beside it
/// is left as it was (the next run sees the event as new and writes both).
/// The other remote-write answers are `remote_write`'s tests.
async fn a_remote_write_store_that_is_down_fails_within_its_bound_and_pushes_nothing() {
    let port = support::process::closed_port();
    let pg = seeded_pushgateway().await;
    let before = state(&pg).await;
    let gh = GitHubMock::quiet().await;
    let (out, took) = event_run(&pg.url, &gh.uri())
        .input(
            "remote-write-url",
            &format!("http://127.0.0.1:{port}/api/v1/push"),
        )
        .input("remote-write-bearer-token", PG_PASSWORD)
        .run_timed()
        .await;
    out.assert_code(1);
    out.the_error(&["remote-write", "cannot connect", "gave up after"]);
    assert_within(
        took,
        PUSHGATEWAY_BUDGET,
        "a remote-write store that is down",
    );
    assert_eq!(
        state(&pg).await,
        before,
        "nothing pushed to the Pushgateway"
    );
    out.assert_no_secret(&[TOKEN, PG_PASSWORD]);
}

// ---------------------------------------------------------------- Pushgateway

/// A case of [`retry_budgets_are_kept`]. `event_mode` has the bound and
/// `fail-on-error: false`; this adds credentials in the URL, which the
/// connection errors quote.
async fn a_pushgateway_that_is_down_leaks_no_credentials() {
    // A port that was free a moment ago: nothing listens there.
    let port = support::process::closed_port();
    let url = with_password(&format!("http://127.0.0.1:{port}"));
    let gh = GitHubMock::quiet().await;
    let (out, took) = event_run(&url, &gh.uri()).run_timed().await;
    out.assert_code(1);
    out.the_error(&["pushgateway", "push", "cannot connect", "gave up after"]);
    assert_within(took, PUSHGATEWAY_BUDGET, "a Pushgateway that is down");
    out.assert_masked(PG_PASSWORD);
    out.assert_no_secret(&[TOKEN, PG_PASSWORD]);
}

/// A case of [`retry_budgets_are_kept`].
async fn a_pushgateway_slower_than_the_timeout_fails_within_its_bound() {
    // Reads are answered; writes never are (a Pushgateway stuck persisting).
    let hang = |front: &FaultyFront| {
        front.fault(Some("PUT"), "/metrics/", Fault::Hang, None);
        front.fault(Some("DELETE"), "/metrics/", Fault::Hang, None);
    };
    let parts = ["pushgateway", "push", "timed out"];
    let (_, _, seen) =
        fails_within_the_pushgateway_bound(event_run, hang, &parts, "a hung push").await;
    let tried = seen.iter().any(|s| s.method == "PUT");
    assert!(tried, "the push was tried: {seen:?}");
}

/// A case of [`retry_budgets_are_kept`].
async fn a_pushgateway_stalling_mid_answer_is_a_timeout_not_a_malformed_answer() {
    let stall = |front: &FaultyFront| {
        let first = r#"{"status":"success","data":[{"labels":{"job":"#.into();
        let fault = Fault::StallBody { code: 200, first };
        front.fault(Some("GET"), "/api/v1/metrics", fault, None);
    };
    let parts = ["pushgateway", "read groups", "timed out"];
    let (_, error, seen) =
        fails_within_the_pushgateway_bound(upkeep_event_run, stall, &parts, "a stalled listing")
            .await;
    assert!(!error.contains("unexpected answer"), "{error}");
    let reads_only = seen.iter().all(|s| s.method == "GET");
    assert!(
        reads_only,
        "nothing is pushed without the stored groups: {seen:?}"
    );
}

/// A case of [`retry_budgets_are_kept`].
async fn pushgateway_500s_are_retried_within_the_bound_and_leave_no_group() {
    let fail = |front: &FaultyFront| {
        let fault = Fault::status(500, "internal error: persistence failed");
        front.fault(Some("PUT"), "/metrics/", fault, None);
    };
    let parts = ["HTTP 500", "gave up after"];
    let (pg, error, seen) =
        fails_within_the_pushgateway_bound(event_run, fail, &parts, "persistent 500s").await;
    assert!(
        error.starts_with("::error::pushgateway: 1 of 1 groups not pushed; first: push: HTTP 500"),
        "says once which system, then which request: {error}"
    );
    let puts = seen.iter().filter(|s| s.method == "PUT").count();
    assert!(puts > 1, "a 500 is retried: {puts} PUT(s)");

    let gh = GitHubMock::quiet().await;

    // Two 500s, then the Pushgateway recovers: the run succeeds.
    let front = FaultyFront::start(Some(&pg.url)).await;
    front.fault(
        Some("PUT"),
        "/metrics/",
        Fault::status(500, "internal error"),
        Some(2),
    );
    let out = event_run(&front.url, &gh.uri()).run_expecting(0).await;
    assert!(out.error_lines().is_empty(), "{}", out.stdout);
    assert_eq!(pg.groups_matching(&[("run_id", "7001")]).await.len(), 1);
}

// --------------------------------------------------------------------- GitHub

/// A primary rate limit: 403, no requests left, reset an hour from now.
fn rate_limited() -> ResponseTemplate {
    let reset = Timestamp::now().as_second() + 3_600;
    ResponseTemplate::new(403)
        .insert_header("x-ratelimit-limit", "5000")
        .insert_header("x-ratelimit-remaining", "0")
        .insert_header("x-ratelimit-reset", reset.to_string().as_str())
        .set_body_json(json!({
            "message": "API rate limit exceeded for installation ID 4711.",
            "documentation_url": "https://docs.github.com/rest/overview/resources-in-the-rest-api#rate-limiting"
        }))
}

#[tokio::test(flavor = "multi_thread")]
async fn a_distant_rate_limit_reset_fails_workflows_mode_at_once() {
    let gh = GitHubMock::answering(rate_limited()).await;
    let parts = [
        "github api",
        "rate limited (HTTP 403",
        "longer than this action waits",
    ];
    let took = fails_workflows_mode(&gh.uri(), &parts).await;
    assert!(took <= AT_ONCE, "no point waiting an hour: took {took:?}");
    assert_eq!(gh.received_requests().await.unwrap().len(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_rate_limit_in_event_mode_is_a_warning() {
    let gh = GitHubMock::answering(rate_limited()).await;
    let (_, took) = warns_in_event_mode(&gh.uri(), &["rate limited (HTTP 403"]).await;
    assert!(took <= AT_ONCE, "took {took:?}");
}

/// A case of [`retry_budgets_are_kept`].
async fn persistent_502s_fail_workflows_mode_within_a_minute() {
    let gh = GitHubMock::answering(
        ResponseTemplate::new(502)
            .set_body_string("<html><body><h1>502 Bad Gateway</h1></body></html>"),
    )
    .await;
    let took = fails_workflows_mode(&gh.uri(), &["github api", "HTTP 502", "gave up after"]).await;
    assert_within(
        took,
        GITHUB_HISTORY_BUDGET,
        "persistent 502s in workflows mode",
    );
    assert!(gh.received_requests().await.unwrap().len() > 1);
}

/// A case of [`retry_budgets_are_kept`].
async fn persistent_502s_in_event_mode_are_a_warning_within_its_bound() {
    let gh = GitHubMock::answering(ResponseTemplate::new(502).set_body_string("Bad Gateway")).await;
    let (_, took) = warns_in_event_mode(&gh.uri(), &["HTTP 502", "gave up after"]).await;
    assert_within(took, GITHUB_EVENT_BUDGET, "persistent 502s in event mode");
}

/// A case of [`retry_budgets_are_kept`].
async fn a_github_timeout_in_event_mode_is_a_warning_within_its_bound() {
    let gh = GitHubMock::answering(
        ResponseTemplate::new(200)
            .set_body_json(json!({"total_count": 0, "workflow_runs": []}))
            .set_delay(Duration::from_secs(60)),
    )
    .await;
    let (_, took) = warns_in_event_mode(&gh.uri(), &["timed out"]).await;
    assert_within(took, GITHUB_EVENT_BUDGET, "a GitHub that never answers");
}

/// A case of [`retry_budgets_are_kept`].
async fn a_github_answer_stalling_mid_body_is_a_timeout() {
    let gh = FaultyFront::start(None).await;
    gh.fault(
        Some("GET"),
        "/repos/",
        Fault::StallBody {
            code: 200,
            first: r#"{"total_count": 2, "workflow_runs": [{"id": "#.into(),
        },
        None,
    );
    let (warning, took) = warns_in_event_mode(&gh.url, &["timed out"]).await;
    assert!(!warning.contains("unexpected answer"), "{warning}");
    assert_within(took, GITHUB_EVENT_BUDGET, "a stalled GitHub answer");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_malformed_run_list_fails_workflows_mode_at_once() {
    let gh = GitHubMock::answering(ResponseTemplate::new(200).set_body_raw(
        r#"{"total_count": 3, "workflow_runs": [{"id": 1,"#,
        "application/json",
    ))
    .await;
    let parts = ["github api", "deploy.yml", "unexpected answer"];
    let took = fails_workflows_mode(&gh.uri(), &parts).await;
    assert!(
        took <= AT_ONCE,
        "a malformed answer is not retried: {took:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_malformed_run_is_skipped_with_a_warning() {
    let pg = Pushgateway::start().await;
    let mut broken = listed_run(8802, "success", 2, "deploy.yml");
    broken["updated_at"] = json!("yesterday-ish");
    let runs = vec![listed_run(8801, "success", 1, "deploy.yml"), broken];
    let gh = GitHub::new()
        .runs("deploy.yml", &runs)
        .any_compare(compare_body(1, vec![]))
        .start()
        .await;
    let out = leg(&pg.url, &gh.uri(), "deploy.yml").run_expecting(0).await;
    out.the_warning(&["run 8802 skipped", "updated_at"]);
    let ids = pg.label_values("run_id").await;
    assert_eq!(ids, ["8801"]);
    out.assert_no_secret(&[TOKEN]);
}

#[tokio::test(flavor = "multi_thread")]
async fn malformed_github_answers_in_event_mode_are_a_warning() {
    let gh = GitHubMock::answering(
        ResponseTemplate::new(200).set_body_raw("<html>Unicorn!</html>", "text/html"),
    )
    .await;
    let (_, took) = warns_in_event_mode(&gh.uri(), &["unexpected answer"]).await;
    assert!(took <= AT_ONCE, "took {took:?}");
}

// ------------------------------------------------------------------ AWS (STS, EKS)

/// An STS Query-API error as AWS sends it (XML, `ErrorResponse`).
fn sts_error(status: u16, code: &str, message: &str) -> ResponseTemplate {
    let body = format!(
        "<ErrorResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\">\n  \
         <Error>\n    <Type>Sender</Type>\n    <Code>{code}</Code>\n    <Message>{message}</Message>\n  </Error>\n  \
         <RequestId>4f1a7c3e-0000-4000-8000-000000000001</RequestId>\n</ErrorResponse>\n"
    );
    ResponseTemplate::new(status).set_body_raw(body, "text/xml")
}

/// An STS stub answering every `AssumeRoleWithWebIdentity` with `response`.
async fn sts_answering(response: ResponseTemplate) -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/"))
        .respond_with(response)
        .mount(&server)
        .await;
    server
}

/// An STS stub answering every `AssumeRoleWithWebIdentity` with an error,
/// and an EKS stub (which the run must not reach).
async fn refusing_sts(status: u16, code: &str, message: &str) -> (MockServer, EksStub) {
    let sts = sts_answering(sts_error(status, code, message)).await;
    (sts, EksStub::start().await)
}

/// Event mode against `cluster-name`, with the Pushgateway given by URL (the
/// cluster is still checked first).
fn cluster_event(pg: &Pushgateway, gh: &GitHubMock) -> Action {
    Action::new()
        .fixture_event("workflow_run", "success.json")
        .input("cluster-name", CLUSTER)
        .input("aws-region", REGION)
        .input("pushgateway-url", &pg.url)
        .input("retention", "0")
        .input("github-token", TOKEN)
        .env("GITHUB_API_URL", &gh.uri())
}

/// [`cluster_event`] into a seeded Pushgateway with `edit` applied (the
/// AWS side failing): exit 1, one error naming `parts`, the Pushgateway
/// unchanged, neither `secrets` nor the GitHub token shown. Returns the
/// error and how long the run took.
async fn fails_in_aws(
    edit: impl FnOnce(Action) -> Action,
    parts: &[&str],
    secrets: &[&str],
) -> (String, Duration) {
    let pg = seeded_pushgateway().await;
    let before = state(&pg).await;
    let gh = GitHubMock::quiet().await;
    let (out, took) = edit(cluster_event(&pg, &gh)).run_timed().await;
    out.assert_code(1);
    let error = out.the_error(parts).to_string();
    assert_eq!(state(&pg).await, before);
    out.assert_no_secret(&[secrets, &[TOKEN]].concat());
    (error, took)
}

#[tokio::test(flavor = "multi_thread")]
async fn sts_access_denied_names_the_role_and_its_trust_policy() {
    let oidc = OidcStub::start().await;
    let (sts, eks) = refusing_sts(
        403,
        "AccessDenied",
        "Not authorized to perform sts:AssumeRoleWithWebIdentity",
    )
    .await;
    let assume = |action: Action| {
        let action = action
            .input("role-to-assume", ROLE)
            .env("AWS_ENDPOINT_URL_STS", &sts.uri())
            .env("AWS_ENDPOINT_URL_EKS", &eks.url());
        oidc.env()
            .into_iter()
            .fold(action, |a, (k, v)| a.env(k, &v))
    };
    let parts = ["aws", ROLE, "AccessDenied", "trust policy"];
    let secrets = [oidc.id_token(), oidc.request_token()];
    let (_, took) = fails_in_aws(assume, &parts, &secrets).await;
    assert!(took <= AT_ONCE, "a refusal is not retried: {took:?}");
    assert_eq!(sts.received_requests().await.unwrap().len(), 1);
    assert!(
        eks.requests().await.is_empty(),
        "no EKS call without credentials"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_expired_web_identity_token_is_named_and_not_retried() {
    let (sts, eks) = refusing_sts(400, "ExpiredTokenException", "Token expired: current date/time 1795170700 must be before the expiration date/time 1795170600").await;
    let web_identity =
        "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJyZXBvOm9jdG8tb3JnL3Nob3AifQ.c2lnbmF0dXJlRmF1bHRz";
    let exchange = |action: Action| {
        let token_file = action.dir().join("web-identity-token");
        std::fs::write(&token_file, web_identity).unwrap();
        action
            .env(
                "AWS_WEB_IDENTITY_TOKEN_FILE",
                &token_file.display().to_string(),
            )
            .env("AWS_ROLE_ARN", ROLE)
            .env("AWS_ENDPOINT_URL_STS", &sts.uri())
            .env("AWS_ENDPOINT_URL_EKS", &eks.url())
    };
    let parts = ["aws", ROLE, "ExpiredTokenException", "expired"];
    let (_, took) = fails_in_aws(exchange, &parts, &[web_identity]).await;
    assert!(took <= AT_ONCE, "took {took:?}");
    assert_eq!(sts.received_requests().await.unwrap().len(), 1);
    assert!(eks.requests().await.is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn expired_credentials_are_named_and_not_retried() {
    let eks = EksStub::start().await;
    eks.respond(
        CLUSTER,
        eks_error(
            403,
            "ExpiredTokenException",
            "The security token included in the request is expired",
        ),
    )
    .await;
    let creds = AwsCredentials::test_session();
    let signed = |action: Action| {
        action
            .aws_credentials(&creds)
            .env("AWS_ENDPOINT_URL_EKS", &eks.url())
    };
    let parts = [
        "aws",
        "rejected the credentials",
        "ExpiredTokenException",
        "expired",
    ];
    let secrets = [
        creds.secret_access_key.as_str(),
        creds.session_token.as_deref().unwrap(),
    ];
    let (_, took) = fails_in_aws(signed, &parts, &secrets).await;
    assert!(took <= AT_ONCE, "took {took:?}");
    assert_eq!(eks.requests().await.len(), 1);
}

/// [`cluster_event`] with the test credentials, EKS at `eks`, 90 s at most.
fn against_eks(eks: &str) -> impl FnOnce(Action) -> Action + '_ {
    move |action| {
        action
            .aws_credentials(&AwsCredentials::test())
            .env("AWS_ENDPOINT_URL_EKS", eks)
            .timeout(Duration::from_secs(90))
    }
}

/// A case of [`retry_budgets_are_kept`].
async fn eks_throttling_that_never_ends_fails_within_the_aws_bound() {
    let eks = EksStub::start().await;
    eks.respond(
        CLUSTER,
        eks_error(429, "ThrottlingException", "Rate exceeded"),
    )
    .await;
    let parts = [
        "aws",
        "DescribeCluster",
        "ThrottlingException",
        "gave up after",
    ];
    let secrets = [AwsCredentials::test().secret_access_key];
    let secrets = secrets.each_ref().map(String::as_str);
    let (_, took) = fails_in_aws(against_eks(&eks.url()), &parts, &secrets).await;
    assert_within(took, AWS_BUDGET, "endless throttling");
    assert!(eks.requests().await.len() > 1, "throttling is retried");
}

/// A case of [`retry_budgets_are_kept`].
async fn an_eks_answer_stalling_mid_body_is_a_timeout_within_the_aws_bound() {
    let eks = FaultyFront::start(None).await;
    eks.fault(
        Some("GET"),
        &format!("/clusters/{CLUSTER}"),
        Fault::StallBody {
            code: 200,
            first: r#"{"cluster": {"name": "prod-eks", "status": "#.into(),
        },
        None,
    );
    let parts = ["aws", "DescribeCluster", "timed out"];
    let secrets = [AwsCredentials::test().secret_access_key];
    let secrets = secrets.each_ref().map(String::as_str);
    let (error, took) = fails_in_aws(against_eks(&eks.url), &parts, &secrets).await;
    assert!(!error.contains("unexpected answer"), "{error}");
    assert_within(took, AWS_BUDGET, "a stalled DescribeCluster");
    assert!(eks.seen().len() > 1, "a timeout is retried");
}

#[tokio::test(flavor = "multi_thread")]
async fn eks_throttling_in_the_400_shape_is_retried() {
    let pg = Pushgateway::start().await;
    let c = Cluster::new(CLUSTER, REGION).start_with(None).await;
    // Some AWS APIs throttle with 400 and the error type alone.
    c.eks
        .fail(CLUSTER, 2, 400, "ThrottlingException", "Rate exceeded")
        .await;
    let gh = GitHubMock::quiet().await;
    c.signed_in(cluster_event(&pg, &gh)).run_expecting(0).await;
    assert_eq!(c.eks.requests().await.len(), 3);
    assert_eq!(pg.groups_matching(&[("run_id", "7001")]).await.len(), 1);
}

// ----------------------------------------------------------------- API server

/// The success event through the service proxy of a cluster whose API
/// server is set up by `api` (its Pushgateway seeded), `edit` applied to the
/// run: exit 1, one error naming `parts`, the Pushgateway unchanged, no
/// secret shown (the EKS token included). Returns the cluster, the error and
/// how long the run took.
async fn fails_through_the_cluster(
    api: impl FnOnce(FakeApiConfig) -> FakeApiConfig,
    edit: impl FnOnce(Action) -> Action,
    parts: &[&str],
) -> (ClusterStack, String, Duration) {
    let c = Cluster::new(CLUSTER, REGION)
        .pushgateway(seeded_pushgateway().await)
        .api(api)
        .start()
        .await;
    let before = state(&c.pg).await;
    let gh = GitHubMock::quiet().await;
    let action = c
        .signed_in(Action::new())
        .fixture_event("workflow_run", "success.json")
        .input("retention", "0")
        .input("github-token", TOKEN)
        .env("GITHUB_API_URL", &gh.uri());
    let (out, took) = edit(action).run_timed().await;
    out.assert_code(1);
    let error = out.the_error(parts).to_string();
    assert_eq!(state(&c.pg).await, before);
    out.assert_no_secret(&[
        &c.eks_token(),
        &AwsCredentials::test().secret_access_key,
        TOKEN,
    ]);
    (c, error, took)
}

#[tokio::test(flavor = "multi_thread")]
async fn an_api_server_403_on_the_service_proxy_names_the_rbac_to_grant() {
    let refuse = |a: FakeApiConfig| {
        a.refuse_proxy(
            403,
            "Forbidden",
            "services \"pushgateway:9091\" is forbidden: User \"dora-action\" cannot get resource \"services/proxy\" in API group \"\" in the namespace \"observability\"",
        )
    };
    let parts = ["pushgateway", "403", "services/proxy", "rbac.yaml"];
    let (_, _, took) = fails_through_the_cluster(refuse, |a| a, &parts).await;
    assert!(took <= AT_ONCE, "a refusal is not retried: {took:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_api_server_404_for_the_service_names_the_input() {
    let other = |a: Action| a.input("pushgateway-service", "monitoring/pushgateway:9091");
    let parts = ["pushgateway", "404", "`pushgateway-service`"];
    let (_, _, took) = fails_through_the_cluster(|a| a, other, &parts).await;
    assert!(took <= AT_ONCE, "took {took:?}");
}

/// A case of [`retry_budgets_are_kept`].
async fn an_api_server_slower_than_the_timeout_fails_within_its_bound() {
    let stall = |a: FakeApiConfig| a.stall(Duration::from_secs(300));
    let parts = ["pushgateway", "timed out"];
    let (c, error, took) = fails_through_the_cluster(stall, |a| a, &parts).await;
    let url = c.api.url();
    assert!(
        error.contains(&url),
        "the error should say {url:?}: {error}"
    );
    assert_within(took, PUSHGATEWAY_BUDGET, "a hung API server");
    assert!(c.api.requests().len() > 1, "a timeout is retried");
}

// ---------------------------------------------------------------- idempotency

#[tokio::test(flavor = "multi_thread")]
async fn a_deployment_status_recorded_twice_leaves_the_same_state() {
    let pg = Pushgateway::start().await;
    let commit = fixture_json("github/commit.json");
    let gh = GitHubMock::answering(ResponseTemplate::new(200).set_body_json(commit)).await;
    let run = || {
        Action::new()
            .fixture_event("deployment_status", "success.json")
            .env("GITHUB_API_URL", &gh.uri())
            .input("pushgateway-url", &pg.url)
            .input("github-token", TOKEN)
            .input("retention", "0")
            .run()
    };
    run().await.assert_code(0);
    let first = state(&pg).await;
    assert_eq!(first.len(), 1, "{first:#?}");
    let out = run().await;
    out.assert_code(0);
    assert_eq!(state(&pg).await, first);
}

const KUSTOMIZATIONS: &str =
    "/apis/kustomize.toolkit.fluxcd.io/v1/namespaces/flux-system/kustomizations";
const GITREPOS: &str = "/apis/source.toolkit.fluxcd.io/v1/namespaces/flux-system/gitrepositories";
const CANARIES: &str = "/apis/flagger.app/v1beta1/canaries";
const SHA: &str = "9f8e7d6c5b4a39281706f5e4d3c2b1a098765432";

#[tokio::test(flavor = "multi_thread")]
async fn cluster_mode_run_twice_leaves_the_same_state() {
    let revision = format!("main@sha1:{SHA}");
    let kustomization = Kustomization::ready("apps", &revision, "2026-11-20T10:30:00Z").json();
    let repository = git_repository("https://github.com/octo-org/shop");
    let canaries = [
        Canary::new("podinfo", "Failed", "2026-11-20T09:00:00Z").json(),
        Canary::new("frontend", "Succeeded", "2026-11-20T11:00:00Z").json(),
        Canary::new("backend", "Progressing", "2026-11-20T11:05:00Z").json(),
    ];
    let c = Cluster::new(CLUSTER, REGION)
        .object(
            KUSTOMIZATIONS,
            k8s_list("Kustomization", vec![kustomization]),
        )
        .object(GITREPOS, k8s_list("GitRepository", vec![repository]))
        .object(CANARIES, k8s_list("Canary", canaries.to_vec()))
        .start()
        .await;
    let commit = fixture_json("github/commit.json");
    let gh = GitHubMock::answering(ResponseTemplate::new(200).set_body_json(commit)).await;
    let run = || {
        c.signed_in(Action::new())
            .env("GITHUB_EVENT_NAME", "schedule")
            .input("kustomizations", "flux-system/apps")
            .input("retention", "0")
            .input("github-token", TOKEN)
            .env("GITHUB_API_URL", &gh.uri())
            .run()
    };
    run().await.assert_code(0);
    let first = state(&c.pg).await;
    // One Flux revision, two canary outcomes, three canary phases.
    assert_eq!(first.len(), 6, "{first:#?}");
    run().await.assert_code(0);
    assert_eq!(state(&c.pg).await, first);
}

// ---------------------------------------------------------------- concurrency

#[tokio::test(flavor = "multi_thread")]
async fn matrix_legs_and_event_runs_at_once_lose_nothing() {
    let pg = Pushgateway::start().await;
    let workflows = ["deploy-api.yml", "deploy-web.yml", "deploy-worker.yml"];
    let mut gh = GitHub::new();
    let mut history = Vec::new();
    for (n, file) in workflows.iter().enumerate() {
        let first = 9100 + 100 * n as u64;
        let runs: Vec<Value> = (0..3)
            .map(|i| {
                let conclusion = if i == 1 { "failure" } else { "success" };
                listed_run(first + i, conclusion, 3 - i as i64, file)
            })
            .collect();
        // Legs list by file name, event mode by the workflow's id.
        let slow = Duration::from_millis(200);
        gh = gh
            .slow_runs(file, &runs, slow)
            .slow_runs(&workflow_id(file).to_string(), &runs, slow);
        history.push(runs);
    }
    let gh = gh.any_compare(compare_body(1, vec![])).start().await;
    // The worker's last two runs also arrive as workflow_run events while
    // its leg reads them: two processes write the same groups at once.
    let events = [&history[2][1], &history[2][2]].map(|run| {
        let action = Action::new();
        let mut payload: Value = serde_json::from_str(
            &std::fs::read_to_string(fixture("workflow_run/success.json")).unwrap(),
        )
        .unwrap();
        payload["workflow_run"] = (*run).clone();
        payload["workflow"]["id"] = run["workflow_id"].clone();
        payload["workflow"]["name"] = run["name"].clone();
        payload["workflow"]["path"] = run["path"].clone();
        let file = action.dir().join("event.json");
        std::fs::write(&file, payload.to_string()).unwrap();
        action
            .event("workflow_run", &file)
            .input("pushgateway-url", &pg.url)
            .input("github-token", TOKEN)
            .env("GITHUB_API_URL", &gh.uri())
            .run()
    });
    let legs = workflows.map(|w| leg(&pg.url, &gh.uri(), w).run());
    let [a, b, c] = legs;
    let [d, e] = events;
    let (a, b, c, d, e) = tokio::join!(a, b, c, d, e);
    for out in [&a, &b, &c, &d, &e] {
        out.assert_code(0);
        assert!(out.error_lines().is_empty(), "{}", out.stdout);
        assert!(out.warning_lines().is_empty(), "{}", out.stdout);
    }
    let ids = pg.label_values("run_id").await;
    assert_eq!(
        ids,
        [
            "9100", "9101", "9102", "9200", "9201", "9202", "9300", "9301", "9302"
        ]
    );
}
