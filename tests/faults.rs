//! The fault matrix (issue 7): what the action does when an outside system
//! misbehaves, end to end with the built binary. For every cell: the exit
//! code the README's "Exit status and errors" documents, exactly one
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

use std::time::{Duration, Instant};

use jiff::Timestamp;
use serde_json::{Value, json};
use support::aws::{AwsCredentials, EksStub, eks_error};
use support::front::{Fault, FaultyFront};
use support::kube::{FakeApiConfig, FakeApiServer};
use support::oidc::OidcStub;
use support::{Action, Group, Outcome, Pushgateway, fixture};
use wiremock::matchers::{any, method, path, path_regex};
use wiremock::{Mock, MockServer, ResponseTemplate};

const TOKEN: &str = "ghs_faultMatrixTokenNeverPrinted0042";
/// The password of a `pushgateway-url` with credentials: error messages
/// quote URLs, and must never quote this.
const PG_PASSWORD: &str = "pgFaultMatrixPassw0rd";
const CLUSTER: &str = "prod-eks";
const REGION: &str = "eu-west-1";
const ROLE: &str = "arn:aws:iam::123456789012:role/dora-action";

/// The documented retry budgets (README; `src/retry.rs`), and the slack a
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

/// GitHub REST that answers every call with an empty run list: no history.
async fn quiet_github() -> MockServer {
    github_answering(
        ResponseTemplate::new(200).set_body_json(json!({"total_count": 0, "workflow_runs": []})),
    )
    .await
}

/// GitHub REST that answers every call with `response`.
async fn github_answering(response: ResponseTemplate) -> MockServer {
    let server = MockServer::start().await;
    Mock::given(any())
        .respond_with(response)
        .mount(&server)
        .await;
    server
}

/// Event mode on the success fixture (run 7001 of `deploy.yml`), keeping
/// every event, with the Pushgateway at `pushgateway_url` and GitHub at `github`.
fn event_run(pushgateway_url: &str, github: &str) -> Action {
    Action::new()
        .event("workflow_run", &fixture("workflow_run/success.json"))
        .input("pushgateway-url", pushgateway_url)
        .input("retention", "0")
        .input("github-token", TOKEN)
        .env("GITHUB_API_URL", github)
}

/// [`event_run`] for run 7008, an upkeep event: one of the one in 16 that
/// read the group listing before pushing (`dora::plan::upkeep_due`).
fn upkeep_event_run(pushgateway_url: &str, github: &str) -> Action {
    let action = event_run(pushgateway_url, github);
    let mut payload: Value = serde_json::from_str(
        &std::fs::read_to_string(fixture("workflow_run/success.json")).unwrap(),
    )
    .unwrap();
    payload["workflow_run"]["id"] = json!(7008);
    let path = action.dir().join("upkeep.json");
    std::fs::write(&path, payload.to_string()).unwrap();
    action.event("workflow_run", &path)
}

/// A scheduled leg of the metrics workflow reading `workflows` (the
/// schedule payload carries the repository and its default branch).
fn leg(pushgateway_url: &str, github: &str, workflows: &str) -> Action {
    let action = Action::new();
    let payload = action.dir().join("schedule.json");
    std::fs::write(
        &payload,
        json!({"schedule": "17 * * * *", "repository": {"full_name": "octo-org/shop", "default_branch": "main"}})
            .to_string(),
    )
    .unwrap();
    action
        .event("schedule", &payload)
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

/// Exactly one `::error::` line, which must contain every one of `parts`.
fn the_error<'a>(out: &'a Outcome, parts: &[&str]) -> &'a str {
    let errors = out.error_lines();
    assert_eq!(errors.len(), 1, "want one ::error:: line\n{}", out.stdout);
    for part in parts {
        assert!(
            errors[0].contains(part),
            "the error should say {part:?}: {}",
            errors[0]
        );
    }
    errors[0]
}

/// Exactly one `::warning::` line, which must contain every one of `parts`.
fn the_warning<'a>(out: &'a Outcome, parts: &[&str]) -> &'a str {
    let warnings = out.warning_lines();
    assert_eq!(
        warnings.len(),
        1,
        "want one ::warning:: line\n{}",
        out.stdout
    );
    for part in parts {
        assert!(
            warnings[0].contains(part),
            "the warning should say {part:?}: {}",
            warnings[0]
        );
    }
    warnings[0]
}

fn assert_within(took: Duration, bound: Duration, what: &str) {
    assert!(
        took <= bound + SLACK,
        "{what}: took {took:?}, the documented bound is {bound:?}"
    );
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
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let pg = seeded_pushgateway().await;
    let before = state(&pg).await;
    let gh = quiet_github().await;
    let start = Instant::now();
    let out = event_run(&pg.url, &gh.uri())
        .input(
            "remote-write-url",
            &format!("http://127.0.0.1:{port}/api/v1/push"),
        )
        .input("remote-write-bearer-token", PG_PASSWORD)
        .timeout(Duration::from_secs(120))
        .run()
        .await;
    let took = start.elapsed();
    out.assert_code(1);
    the_error(&out, &["remote-write", "cannot connect", "gave up after"]);
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
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = with_password(&format!("http://127.0.0.1:{port}"));
    let gh = quiet_github().await;
    let start = Instant::now();
    let out = event_run(&url, &gh.uri())
        .timeout(Duration::from_secs(120))
        .run()
        .await;
    let took = start.elapsed();
    out.assert_code(1);
    the_error(
        &out,
        &["pushgateway", "push", "cannot connect", "gave up after"],
    );
    assert_within(took, PUSHGATEWAY_BUDGET, "a Pushgateway that is down");
    out.assert_masked(PG_PASSWORD);
    out.assert_no_secret(&[TOKEN, PG_PASSWORD]);
}

/// A case of [`retry_budgets_are_kept`].
async fn a_pushgateway_slower_than_the_timeout_fails_within_its_bound() {
    let pg = seeded_pushgateway().await;
    let before = state(&pg).await;
    // Reads are answered; writes never are (a Pushgateway stuck persisting).
    let front = FaultyFront::start(Some(&pg.url)).await;
    front.fault(Some("PUT"), "/metrics/", Fault::Hang, None);
    front.fault(Some("DELETE"), "/metrics/", Fault::Hang, None);
    let gh = quiet_github().await;
    let start = Instant::now();
    let out = event_run(&with_password(&front.url), &gh.uri())
        .timeout(Duration::from_secs(120))
        .run()
        .await;
    let took = start.elapsed();
    out.assert_code(1);
    the_error(&out, &["pushgateway", "push", "timed out"]);
    assert_within(took, PUSHGATEWAY_BUDGET, "a hung push");
    assert!(
        front.seen().iter().any(|s| s.method == "PUT"),
        "the push was tried: {:?}",
        front.seen()
    );
    assert_eq!(state(&pg).await, before);
    out.assert_no_secret(&[TOKEN, PG_PASSWORD]);
}

/// A case of [`retry_budgets_are_kept`].
async fn a_pushgateway_stalling_mid_answer_is_a_timeout_not_a_malformed_answer() {
    let pg = seeded_pushgateway().await;
    let before = state(&pg).await;
    let front = FaultyFront::start(Some(&pg.url)).await;
    front.fault(
        Some("GET"),
        "/api/v1/metrics",
        Fault::StallBody {
            code: 200,
            first: r#"{"status":"success","data":[{"labels":{"job":"#.into(),
        },
        None,
    );
    let gh = quiet_github().await;
    let start = Instant::now();
    let out = upkeep_event_run(&with_password(&front.url), &gh.uri())
        .timeout(Duration::from_secs(120))
        .run()
        .await;
    let took = start.elapsed();
    out.assert_code(1);
    let error = the_error(&out, &["pushgateway", "read groups", "timed out"]);
    assert!(!error.contains("unexpected answer"), "{error}");
    assert_within(took, PUSHGATEWAY_BUDGET, "a stalled listing");
    assert!(
        front.seen().iter().all(|s| s.method == "GET"),
        "nothing is pushed without the stored groups: {:?}",
        front.seen()
    );
    assert_eq!(state(&pg).await, before);
    out.assert_no_secret(&[TOKEN, PG_PASSWORD]);
}

/// A case of [`retry_budgets_are_kept`].
async fn pushgateway_500s_are_retried_within_the_bound_and_leave_no_group() {
    let pg = seeded_pushgateway().await;
    let before = state(&pg).await;
    let gh = quiet_github().await;

    let front = FaultyFront::start(Some(&pg.url)).await;
    front.fault(
        Some("PUT"),
        "/metrics/",
        Fault::status(500, "internal error: persistence failed"),
        None,
    );
    let start = Instant::now();
    let out = event_run(&with_password(&front.url), &gh.uri())
        .timeout(Duration::from_secs(120))
        .run()
        .await;
    let took = start.elapsed();
    out.assert_code(1);
    let error = the_error(&out, &["HTTP 500", "gave up after"]);
    assert!(
        error.starts_with("::error::pushgateway: 1 of 1 groups not pushed; first: push: HTTP 500"),
        "says once which system, then which request: {error}"
    );
    assert_within(took, PUSHGATEWAY_BUDGET, "persistent 500s");
    let puts = front.seen().iter().filter(|s| s.method == "PUT").count();
    assert!(puts > 1, "a 500 is retried: {puts} PUT(s)");
    assert_eq!(state(&pg).await, before);
    out.assert_no_secret(&[TOKEN, PG_PASSWORD]);

    // Two 500s, then the Pushgateway recovers: the run succeeds.
    let front = FaultyFront::start(Some(&pg.url)).await;
    front.fault(
        Some("PUT"),
        "/metrics/",
        Fault::status(500, "internal error"),
        Some(2),
    );
    let out = event_run(&front.url, &gh.uri()).run().await;
    out.assert_code(0);
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
    let pg = seeded_pushgateway().await;
    let before = state(&pg).await;
    let gh = github_answering(rate_limited()).await;
    let start = Instant::now();
    let out = leg(&pg.url, &gh.uri(), "deploy.yml").run().await;
    let took = start.elapsed();
    out.assert_code(1);
    the_error(
        &out,
        &[
            "github api",
            "rate limited (HTTP 403",
            "longer than this action waits",
        ],
    );
    assert!(took <= AT_ONCE, "no point waiting an hour: took {took:?}");
    assert_eq!(gh.received_requests().await.unwrap().len(), 1);
    assert_eq!(state(&pg).await, before);
    out.assert_no_secret(&[TOKEN]);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_rate_limit_in_event_mode_is_a_warning() {
    let pg = Pushgateway::start().await;
    let gh = github_answering(rate_limited()).await;
    let start = Instant::now();
    let out = event_run(&pg.url, &gh.uri()).run().await;
    let took = start.elapsed();
    out.assert_code(0);
    assert!(out.error_lines().is_empty(), "{}", out.stdout);
    the_warning(&out, &["rate limited (HTTP 403"]);
    assert!(took <= AT_ONCE, "took {took:?}");
    assert_eq!(
        pg.groups_matching(&[("run_id", "7001")]).await.len(),
        1,
        "the deployment is recorded without the history"
    );
    out.assert_no_secret(&[TOKEN]);
}

/// A case of [`retry_budgets_are_kept`].
async fn persistent_502s_fail_workflows_mode_within_a_minute() {
    let pg = seeded_pushgateway().await;
    let before = state(&pg).await;
    let gh = github_answering(
        ResponseTemplate::new(502)
            .set_body_string("<html><body><h1>502 Bad Gateway</h1></body></html>"),
    )
    .await;
    let start = Instant::now();
    let out = leg(&pg.url, &gh.uri(), "deploy.yml")
        .timeout(Duration::from_secs(120))
        .run()
        .await;
    let took = start.elapsed();
    out.assert_code(1);
    the_error(&out, &["github api", "HTTP 502", "gave up after"]);
    assert_within(
        took,
        GITHUB_HISTORY_BUDGET,
        "persistent 502s in workflows mode",
    );
    assert!(gh.received_requests().await.unwrap().len() > 1);
    assert_eq!(state(&pg).await, before);
    out.assert_no_secret(&[TOKEN]);
}

/// A case of [`retry_budgets_are_kept`].
async fn persistent_502s_in_event_mode_are_a_warning_within_its_bound() {
    let pg = Pushgateway::start().await;
    let gh = github_answering(ResponseTemplate::new(502).set_body_string("Bad Gateway")).await;
    let start = Instant::now();
    let out = event_run(&pg.url, &gh.uri()).run().await;
    let took = start.elapsed();
    out.assert_code(0);
    assert!(out.error_lines().is_empty(), "{}", out.stdout);
    the_warning(&out, &["HTTP 502", "gave up after"]);
    assert_within(took, GITHUB_EVENT_BUDGET, "persistent 502s in event mode");
    assert_eq!(pg.groups_matching(&[("run_id", "7001")]).await.len(), 1);
    out.assert_no_secret(&[TOKEN]);
}

/// A case of [`retry_budgets_are_kept`].
async fn a_github_timeout_in_event_mode_is_a_warning_within_its_bound() {
    let pg = Pushgateway::start().await;
    let gh = github_answering(
        ResponseTemplate::new(200)
            .set_body_json(json!({"total_count": 0, "workflow_runs": []}))
            .set_delay(Duration::from_secs(60)),
    )
    .await;
    let start = Instant::now();
    let out = event_run(&pg.url, &gh.uri()).run().await;
    let took = start.elapsed();
    out.assert_code(0);
    assert!(out.error_lines().is_empty(), "{}", out.stdout);
    the_warning(&out, &["timed out"]);
    assert_within(took, GITHUB_EVENT_BUDGET, "a GitHub that never answers");
    assert_eq!(pg.groups_matching(&[("run_id", "7001")]).await.len(), 1);
    out.assert_no_secret(&[TOKEN]);
}

/// A case of [`retry_budgets_are_kept`].
async fn a_github_answer_stalling_mid_body_is_a_timeout() {
    let pg = Pushgateway::start().await;
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
    let start = Instant::now();
    let out = event_run(&pg.url, &gh.url).run().await;
    let took = start.elapsed();
    out.assert_code(0);
    let warning = the_warning(&out, &["timed out"]);
    assert!(!warning.contains("unexpected answer"), "{warning}");
    assert_within(took, GITHUB_EVENT_BUDGET, "a stalled GitHub answer");
    assert_eq!(pg.groups_matching(&[("run_id", "7001")]).await.len(), 1);
    out.assert_no_secret(&[TOKEN]);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_malformed_run_list_fails_workflows_mode_at_once() {
    let pg = seeded_pushgateway().await;
    let before = state(&pg).await;
    let gh = github_answering(ResponseTemplate::new(200).set_body_raw(
        r#"{"total_count": 3, "workflow_runs": [{"id": 1,"#,
        "application/json",
    ))
    .await;
    let start = Instant::now();
    let out = leg(&pg.url, &gh.uri(), "deploy.yml").run().await;
    let took = start.elapsed();
    out.assert_code(1);
    the_error(&out, &["github api", "deploy.yml", "unexpected answer"]);
    assert!(
        took <= AT_ONCE,
        "a malformed answer is not retried: {took:?}"
    );
    assert_eq!(state(&pg).await, before);
    out.assert_no_secret(&[TOKEN]);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_malformed_run_is_skipped_with_a_warning() {
    let pg = Pushgateway::start().await;
    let mut broken = listed_run(8802, "success", 2, "deploy.yml");
    broken["updated_at"] = json!("yesterday-ish");
    let runs = vec![listed_run(8801, "success", 1, "deploy.yml"), broken];
    let gh = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(
            "/repos/octo-org/shop/actions/workflows/deploy.yml/runs",
        ))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"total_count": 2, "workflow_runs": runs})),
        )
        .mount(&gh)
        .await;
    Mock::given(method("GET"))
        .and(path_regex("^/repos/octo-org/shop/compare/"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!({"total_commits": 1, "commits": []})),
        )
        .mount(&gh)
        .await;
    let out = leg(&pg.url, &gh.uri(), "deploy.yml").run().await;
    out.assert_code(0);
    the_warning(&out, &["run 8802 skipped", "updated_at"]);
    let ids: Vec<String> = pg
        .groups()
        .await
        .into_iter()
        .map(|g| g.labels["run_id"].clone())
        .collect();
    assert_eq!(ids, ["8801"]);
    out.assert_no_secret(&[TOKEN]);
}

#[tokio::test(flavor = "multi_thread")]
async fn malformed_github_answers_in_event_mode_are_a_warning() {
    let pg = Pushgateway::start().await;
    let gh = github_answering(
        ResponseTemplate::new(200).set_body_raw("<html>Unicorn!</html>", "text/html"),
    )
    .await;
    let start = Instant::now();
    let out = event_run(&pg.url, &gh.uri()).run().await;
    let took = start.elapsed();
    out.assert_code(0);
    assert!(out.error_lines().is_empty(), "{}", out.stdout);
    the_warning(&out, &["unexpected answer"]);
    assert!(took <= AT_ONCE, "took {took:?}");
    assert_eq!(pg.groups_matching(&[("run_id", "7001")]).await.len(), 1);
    out.assert_no_secret(&[TOKEN]);
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

/// Event mode against `cluster-name`, with the Pushgateway given by URL (the
/// cluster is still checked first).
fn cluster_event(pg: &Pushgateway, gh: &MockServer) -> Action {
    Action::new()
        .event("workflow_run", &fixture("workflow_run/success.json"))
        .input("cluster-name", CLUSTER)
        .input("aws-region", REGION)
        .input("pushgateway-url", &pg.url)
        .input("retention", "0")
        .input("github-token", TOKEN)
        .env("GITHUB_API_URL", &gh.uri())
}

#[tokio::test(flavor = "multi_thread")]
async fn sts_access_denied_names_the_role_and_its_trust_policy() {
    let pg = seeded_pushgateway().await;
    let before = state(&pg).await;
    let oidc = OidcStub::start().await;
    let sts = sts_answering(sts_error(
        403,
        "AccessDenied",
        "Not authorized to perform sts:AssumeRoleWithWebIdentity",
    ))
    .await;
    let eks = EksStub::start().await;
    let gh = quiet_github().await;
    let mut action = cluster_event(&pg, &gh)
        .input("role-to-assume", ROLE)
        .env("AWS_ENDPOINT_URL_STS", &sts.uri())
        .env("AWS_ENDPOINT_URL_EKS", &eks.url());
    for (k, v) in oidc.env() {
        action = action.env(k, &v);
    }
    let start = Instant::now();
    let out = action.run().await;
    let took = start.elapsed();
    out.assert_code(1);
    the_error(&out, &["aws", ROLE, "AccessDenied", "trust policy"]);
    assert!(took <= AT_ONCE, "a refusal is not retried: {took:?}");
    assert_eq!(sts.received_requests().await.unwrap().len(), 1);
    assert!(
        eks.requests().await.is_empty(),
        "no EKS call without credentials"
    );
    assert_eq!(state(&pg).await, before);
    out.assert_no_secret(&[oidc.id_token(), oidc.request_token(), TOKEN]);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_expired_web_identity_token_is_named_and_not_retried() {
    let pg = seeded_pushgateway().await;
    let before = state(&pg).await;
    let sts = sts_answering(sts_error(
        400,
        "ExpiredTokenException",
        "Token expired: current date/time 1795170700 must be before the expiration date/time 1795170600",
    ))
    .await;
    let eks = EksStub::start().await;
    let gh = quiet_github().await;
    let action = cluster_event(&pg, &gh);
    let web_identity =
        "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJyZXBvOm9jdG8tb3JnL3Nob3AifQ.c2lnbmF0dXJlRmF1bHRz";
    let token_file = action.dir().join("web-identity-token");
    std::fs::write(&token_file, web_identity).unwrap();
    let start = Instant::now();
    let out = action
        .env(
            "AWS_WEB_IDENTITY_TOKEN_FILE",
            &token_file.display().to_string(),
        )
        .env("AWS_ROLE_ARN", ROLE)
        .env("AWS_ENDPOINT_URL_STS", &sts.uri())
        .env("AWS_ENDPOINT_URL_EKS", &eks.url())
        .run()
        .await;
    let took = start.elapsed();
    out.assert_code(1);
    the_error(&out, &["aws", ROLE, "ExpiredTokenException", "expired"]);
    assert!(took <= AT_ONCE, "took {took:?}");
    assert_eq!(sts.received_requests().await.unwrap().len(), 1);
    assert!(eks.requests().await.is_empty());
    assert_eq!(state(&pg).await, before);
    out.assert_no_secret(&[web_identity, TOKEN]);
}

#[tokio::test(flavor = "multi_thread")]
async fn expired_credentials_are_named_and_not_retried() {
    let pg = seeded_pushgateway().await;
    let before = state(&pg).await;
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
    let gh = quiet_github().await;
    let creds = AwsCredentials::test_session();
    let start = Instant::now();
    let out = cluster_event(&pg, &gh)
        .aws_credentials(&creds)
        .env("AWS_ENDPOINT_URL_EKS", &eks.url())
        .run()
        .await;
    let took = start.elapsed();
    out.assert_code(1);
    the_error(
        &out,
        &[
            "aws",
            "rejected the credentials",
            "ExpiredTokenException",
            "expired",
        ],
    );
    assert!(took <= AT_ONCE, "took {took:?}");
    assert_eq!(eks.requests().await.len(), 1);
    assert_eq!(state(&pg).await, before);
    out.assert_no_secret(&[
        &creds.secret_access_key,
        creds.session_token.as_deref().unwrap(),
        TOKEN,
    ]);
}

/// A case of [`retry_budgets_are_kept`].
async fn eks_throttling_that_never_ends_fails_within_the_aws_bound() {
    let pg = seeded_pushgateway().await;
    let before = state(&pg).await;
    let eks = EksStub::start().await;
    eks.respond(
        CLUSTER,
        eks_error(429, "ThrottlingException", "Rate exceeded"),
    )
    .await;
    let gh = quiet_github().await;
    let start = Instant::now();
    let out = cluster_event(&pg, &gh)
        .aws_credentials(&AwsCredentials::test())
        .env("AWS_ENDPOINT_URL_EKS", &eks.url())
        .timeout(Duration::from_secs(90))
        .run()
        .await;
    let took = start.elapsed();
    out.assert_code(1);
    the_error(
        &out,
        &[
            "aws",
            "DescribeCluster",
            "ThrottlingException",
            "gave up after",
        ],
    );
    assert_within(took, AWS_BUDGET, "endless throttling");
    assert!(eks.requests().await.len() > 1, "throttling is retried");
    assert_eq!(state(&pg).await, before);
    out.assert_no_secret(&[&AwsCredentials::test().secret_access_key, TOKEN]);
}

/// A case of [`retry_budgets_are_kept`].
async fn an_eks_answer_stalling_mid_body_is_a_timeout_within_the_aws_bound() {
    let pg = seeded_pushgateway().await;
    let before = state(&pg).await;
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
    let gh = quiet_github().await;
    let start = Instant::now();
    let out = cluster_event(&pg, &gh)
        .aws_credentials(&AwsCredentials::test())
        .env("AWS_ENDPOINT_URL_EKS", &eks.url)
        .timeout(Duration::from_secs(90))
        .run()
        .await;
    let took = start.elapsed();
    out.assert_code(1);
    let error = the_error(&out, &["aws", "DescribeCluster", "timed out"]);
    assert!(!error.contains("unexpected answer"), "{error}");
    assert_within(took, AWS_BUDGET, "a stalled DescribeCluster");
    assert!(eks.seen().len() > 1, "a timeout is retried");
    assert_eq!(state(&pg).await, before);
    out.assert_no_secret(&[&AwsCredentials::test().secret_access_key, TOKEN]);
}

#[tokio::test(flavor = "multi_thread")]
async fn eks_throttling_in_the_400_shape_is_retried() {
    let pg = Pushgateway::start().await;
    let api = FakeApiServer::start(FakeApiConfig::new(CLUSTER, REGION)).await;
    let eks = EksStub::start().await;
    // Some AWS APIs throttle with 400 and the error type alone.
    eks.fail(CLUSTER, 2, 400, "ThrottlingException", "Rate exceeded")
        .await;
    eks.active(CLUSTER, REGION, &api).await;
    let gh = quiet_github().await;
    let out = cluster_event(&pg, &gh)
        .aws_credentials(&AwsCredentials::test())
        .env("AWS_ENDPOINT_URL_EKS", &eks.url())
        .run()
        .await;
    out.assert_code(0);
    assert_eq!(eks.requests().await.len(), 3);
    assert_eq!(pg.groups_matching(&[("run_id", "7001")]).await.len(), 1);
}

// ----------------------------------------------------------------- API server

/// The success event pushed through the API server's service proxy of `api`.
async fn through_the_cluster(api: &FakeApiServer, gh: &MockServer) -> (Action, EksStub) {
    let eks = EksStub::start().await;
    eks.active(CLUSTER, REGION, api).await;
    let action = Action::new()
        .event("workflow_run", &fixture("workflow_run/success.json"))
        .input("cluster-name", CLUSTER)
        .input("aws-region", REGION)
        .input("retention", "0")
        .input("github-token", TOKEN)
        .env("GITHUB_API_URL", &gh.uri())
        .aws_credentials(&AwsCredentials::test())
        .env("AWS_ENDPOINT_URL_EKS", &eks.url());
    (action, eks)
}

/// The EKS token the action sent (a secret the outputs must not show).
fn eks_token(api: &FakeApiServer) -> String {
    api.requests()
        .first()
        .and_then(|r| r.token.clone())
        .expect("the action called the API server with a token")
}

#[tokio::test(flavor = "multi_thread")]
async fn an_api_server_403_on_the_service_proxy_names_the_rbac_to_grant() {
    let pg = seeded_pushgateway().await;
    let before = state(&pg).await;
    let api = FakeApiServer::start(
        FakeApiConfig::new(CLUSTER, REGION)
            .pushgateway(&pg.url)
            .refuse_proxy(
                403,
                "Forbidden",
                "services \"pushgateway:9091\" is forbidden: User \"dora-action\" cannot get resource \"services/proxy\" in API group \"\" in the namespace \"observability\"",
            ),
    )
    .await;
    let gh = quiet_github().await;
    let (action, _eks) = through_the_cluster(&api, &gh).await;
    let start = Instant::now();
    let out = action.run().await;
    let took = start.elapsed();
    out.assert_code(1);
    the_error(&out, &["pushgateway", "403", "services/proxy", "rbac.yaml"]);
    assert!(took <= AT_ONCE, "a refusal is not retried: {took:?}");
    assert_eq!(state(&pg).await, before);
    out.assert_no_secret(&[
        &eks_token(&api),
        &AwsCredentials::test().secret_access_key,
        TOKEN,
    ]);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_api_server_404_for_the_service_names_the_input() {
    let pg = seeded_pushgateway().await;
    let before = state(&pg).await;
    let api = FakeApiServer::start(FakeApiConfig::new(CLUSTER, REGION).pushgateway(&pg.url)).await;
    let gh = quiet_github().await;
    let (action, _eks) = through_the_cluster(&api, &gh).await;
    let start = Instant::now();
    let out = action
        .input("pushgateway-service", "monitoring/pushgateway:9091")
        .run()
        .await;
    let took = start.elapsed();
    out.assert_code(1);
    the_error(&out, &["pushgateway", "404", "`pushgateway-service`"]);
    assert!(took <= AT_ONCE, "took {took:?}");
    assert_eq!(state(&pg).await, before);
    out.assert_no_secret(&[
        &eks_token(&api),
        &AwsCredentials::test().secret_access_key,
        TOKEN,
    ]);
}

/// A case of [`retry_budgets_are_kept`].
async fn an_api_server_slower_than_the_timeout_fails_within_its_bound() {
    let pg = seeded_pushgateway().await;
    let before = state(&pg).await;
    let api = FakeApiServer::start(
        FakeApiConfig::new(CLUSTER, REGION)
            .pushgateway(&pg.url)
            .stall(Duration::from_secs(300)),
    )
    .await;
    let gh = quiet_github().await;
    let (action, _eks) = through_the_cluster(&api, &gh).await;
    let start = Instant::now();
    let out = action.timeout(Duration::from_secs(120)).run().await;
    let took = start.elapsed();
    out.assert_code(1);
    the_error(&out, &["pushgateway", "timed out", &api.url()]);
    assert_within(took, PUSHGATEWAY_BUDGET, "a hung API server");
    assert!(api.requests().len() > 1, "a timeout is retried");
    assert_eq!(state(&pg).await, before);
    out.assert_no_secret(&[
        &eks_token(&api),
        &AwsCredentials::test().secret_access_key,
        TOKEN,
    ]);
}

// ---------------------------------------------------------------- idempotency

#[tokio::test(flavor = "multi_thread")]
async fn a_deployment_status_recorded_twice_leaves_the_same_state() {
    let pg = Pushgateway::start().await;
    let commit: Value =
        serde_json::from_str(&std::fs::read_to_string(fixture("github/commit.json")).unwrap())
            .unwrap();
    let gh = github_answering(ResponseTemplate::new(200).set_body_json(commit)).await;
    let run = || {
        Action::new()
            .event(
                "deployment_status",
                &fixture("deployment_status/success.json"),
            )
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

fn list(kind: &str, items: Vec<Value>) -> Value {
    json!({"apiVersion": "v1", "kind": format!("{kind}List"), "metadata": {"resourceVersion": "4711"}, "items": items})
}

#[tokio::test(flavor = "multi_thread")]
async fn cluster_mode_run_twice_leaves_the_same_state() {
    let pg = Pushgateway::start().await;
    let revision = format!("main@sha1:{SHA}");
    let kustomization = json!({
        "apiVersion": "kustomize.toolkit.fluxcd.io/v1", "kind": "Kustomization",
        "metadata": {"name": "apps", "namespace": "flux-system"},
        "spec": {"interval": "10m", "path": "./apps", "prune": true, "sourceRef": {"kind": "GitRepository", "name": "flux-system"}},
        "status": {"lastAppliedRevision": revision, "conditions": [{"type": "Ready", "status": "True", "reason": "ReconciliationSucceeded", "lastTransitionTime": "2026-11-20T10:30:00Z"}]}
    });
    let repository = json!({
        "apiVersion": "source.toolkit.fluxcd.io/v1", "kind": "GitRepository",
        "metadata": {"name": "flux-system", "namespace": "flux-system"},
        "spec": {"interval": "1m", "ref": {"branch": "main"}, "url": "https://github.com/octo-org/shop"}
    });
    let canary = |name: &str, phase: &str, at: &str| {
        json!({
            "apiVersion": "flagger.app/v1beta1", "kind": "Canary",
            "metadata": {"name": name, "namespace": "shop"},
            "spec": {"targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": name}},
            "status": {"phase": phase, "lastTransitionTime": at}
        })
    };
    let api = FakeApiServer::start(
        FakeApiConfig::new(CLUSTER, REGION)
            .pushgateway(&pg.url)
            .object(KUSTOMIZATIONS, list("Kustomization", vec![kustomization]))
            .object(GITREPOS, list("GitRepository", vec![repository]))
            .object(
                CANARIES,
                list(
                    "Canary",
                    vec![
                        canary("podinfo", "Failed", "2026-11-20T09:00:00Z"),
                        canary("frontend", "Succeeded", "2026-11-20T11:00:00Z"),
                        canary("backend", "Progressing", "2026-11-20T11:05:00Z"),
                    ],
                ),
            ),
    )
    .await;
    let eks = EksStub::start().await;
    eks.active(CLUSTER, REGION, &api).await;
    let commit: Value =
        serde_json::from_str(&std::fs::read_to_string(fixture("github/commit.json")).unwrap())
            .unwrap();
    let gh = github_answering(ResponseTemplate::new(200).set_body_json(commit)).await;
    let run = || {
        Action::new()
            .env("GITHUB_EVENT_NAME", "schedule")
            .input("cluster-name", CLUSTER)
            .input("aws-region", REGION)
            .input("kustomizations", "flux-system/apps")
            .input("retention", "0")
            .input("github-token", TOKEN)
            .aws_credentials(&AwsCredentials::test())
            .env("AWS_ENDPOINT_URL_EKS", &eks.url())
            .env("GITHUB_API_URL", &gh.uri())
            .run()
    };
    run().await.assert_code(0);
    let first = state(&pg).await;
    // One Flux revision, two canary outcomes, three canary phases.
    assert_eq!(first.len(), 6, "{first:#?}");
    run().await.assert_code(0);
    assert_eq!(state(&pg).await, first);
}

// ---------------------------------------------------------------- concurrency

#[tokio::test(flavor = "multi_thread")]
async fn matrix_legs_and_event_runs_at_once_lose_nothing() {
    let pg = Pushgateway::start().await;
    let gh = MockServer::start().await;
    let workflows = ["deploy-api.yml", "deploy-web.yml", "deploy-worker.yml"];
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
        Mock::given(method("GET"))
            .and(path_regex(format!(
                "^/repos/octo-org/shop/actions/workflows/({}|{})/runs$",
                regex_escape(file),
                workflow_id(file)
            )))
            .respond_with(
                ResponseTemplate::new(200)
                    .set_body_json(json!({"total_count": 3, "workflow_runs": runs}))
                    .set_delay(Duration::from_millis(200)),
            )
            .mount(&gh)
            .await;
        history.push(runs);
    }
    Mock::given(method("GET"))
        .and(path_regex("^/repos/octo-org/shop/compare/"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!({"total_commits": 1, "commits": []})),
        )
        .mount(&gh)
        .await;
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
    let mut ids: Vec<String> = pg
        .groups()
        .await
        .into_iter()
        .map(|g| g.labels["run_id"].clone())
        .collect();
    ids.sort();
    assert_eq!(
        ids,
        [
            "9100", "9101", "9102", "9200", "9201", "9202", "9300", "9301", "9302"
        ]
    );
}

fn regex_escape(s: &str) -> String {
    s.replace('.', "\\.")
}
