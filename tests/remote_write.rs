//! Remote-write end to end: a real Prometheus started as a remote-write
//! receiver (with an out-of-order window, as a store for history must be)
//! gets a week of workflow history at the events' own times, and a re-run
//! adds nothing; a stub store shows the protocol (snappy `WriteRequest`,
//! headers), each auth, retries, "already stored" refusals that cost no other
//! event, and refusals that fail the run before the Pushgateway is touched.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};

use dora_action::sinks::remote_write::WriteRequest;
use jiff::Timestamp;
use prost::Message;
use serde_json::{Value, json};
use support::aws::{AwsCredentials, verify_sigv4_header_auth};
use support::{
    Action, GitHub, GitHubMock, Prometheus, Pushgateway, commit_json, compare_body, fixture,
    rest_run as run,
};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

const GITHUB_TOKEN: &str = "ghs_remoteWriteTestTokenNeverPrinted7";
const BEARER: &str = "glc_remoteWriteBearerNeverPrinted_9f8e7d";
const PASSWORD: &str = "basic-auth-password-never-printed-31";
const HOUR: i64 = 3_600;
const DAY: i64 = 86_400;

fn now() -> Timestamp {
    support::test_now()
}

fn ago(seconds: i64) -> Timestamp {
    support::seconds_ago(seconds)
}

/// A week of `deploy.yml`: success, a failure fixed 3 h later (recovery),
/// success, failure. (run id, conclusion, finished ago, sha, committed ago)
const WEEK: [(u64, &str, i64, &str, i64); 5] = [
    (8101, "success", 6 * DAY, "a1", 6 * DAY + HOUR),
    (8102, "failure", 4 * DAY, "b2", 4 * DAY + 600),
    (
        8103,
        "success",
        4 * DAY - 3 * HOUR,
        "c3",
        4 * DAY - 2 * HOUR,
    ),
    (8104, "success", 2 * DAY, "d4", 2 * DAY + 2 * HOUR),
    (8105, "failure", DAY, "e5", DAY + HOUR),
];

async fn github() -> GitHubMock {
    let runs: Vec<Value> = WEEK
        .iter()
        .rev()
        .map(|r| run(r.0, r.1, r.2, r.3, r.4))
        .collect();
    let commit = |sha: &str, ago_s: i64| commit_json(sha, ago(ago_s), ago(ago_s));
    let mut gh = GitHub::new().runs("deploy.yml", &runs);
    for (base, head, commits) in [
        (
            "a1",
            "c3",
            vec![
                commit("b2", 4 * DAY + 600),
                commit("c3", 4 * DAY - 2 * HOUR),
            ],
        ),
        ("c3", "d4", vec![commit("d4", 2 * DAY + 2 * HOUR)]),
    ] {
        gh = gh.compare(base, head, compare_body(commits.len(), commits));
    }
    gh.start().await
}

/// A scheduled leg reading `deploy.yml` history and writing it to `url`.
fn leg(gh: &GitHubMock, url: &str) -> Action {
    Action::new()
        .scheduled("0 * * * *")
        .input("workflows", "deploy.yml")
        .input("lookback", "8d")
        .input("remote-write-url", url)
        .input("github-token", GITHUB_TOKEN)
        .env("GITHUB_API_URL", &gh.uri())
        // No incidents here (tests/incidents.rs has them): the history only.
        .input("incident-labels", "")
}

#[tokio::test]
async fn a_week_of_history_lands_at_the_event_times_and_a_rerun_adds_nothing() {
    let gh = github().await;
    let store = Prometheus::receiver("30d").await;

    let first = leg(&gh, &store.write_url()).run_expecting(0).await;
    first.assert_no_secret(&[GITHUB_TOKEN]);
    first.assert_summary_says("Remote-write to");
    first.assert_summary_says("5 written");

    // Every run is one series with one sample, at the run's own time.
    let window = 8 * DAY;
    let at = now().as_second() + 60;
    let deploys = store
        .samples("dora_workflow_deploy_timestamp", window, at)
        .await;
    let by_run: BTreeMap<String, support::SeriesPoints> = deploys
        .into_iter()
        .map(|(labels, points)| (labels["run_id"].clone(), (labels, points)))
        .collect();
    assert_eq!(by_run.len(), WEEK.len(), "{by_run:#?}");
    for (id, conclusion, finished_ago, sha, _) in WEEK {
        let (labels, points) = &by_run[&id.to_string()];
        let t = ago(finished_ago);
        assert_eq!(
            points,
            &[(t.as_millisecond(), t.as_second() as f64)],
            "run {id}"
        );
        let expected: BTreeMap<String, String> = [
            ("__name__", "dora_workflow_deploy_timestamp"),
            ("job", "dora"),
            ("repository", "octo-org/shop"),
            ("workflow", "Deploy"),
            ("run_id", &id.to_string()),
            ("run_attempt", "1"),
            ("source", "Deploy"),
            ("status", conclusion),
            ("ref", "main"),
            ("sha", sha),
            ("environment", "default"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        assert_eq!(labels, &expected, "run {id}: the Pushgateway path's labels");
    }
    // The recovery (first failure 4 d ago → fix 3 h later) at the fix's time,
    // and the per-change lead time of what the fix shipped (b2 and c3).
    let recovery = store
        .samples("dora_workflow_recovery_seconds", window, at)
        .await;
    let fix = ago(4 * DAY - 3 * HOUR);
    assert_eq!(recovery.len(), 1, "{recovery:#?}");
    assert_eq!(recovery[0].0["run_id"], "8103");
    assert_eq!(recovery[0].1, [(fix.as_millisecond(), (3 * HOUR) as f64)]);
    let changes = store
        .samples(
            "dora_workflow_change_lead_time_seconds{run_id=\"8103\"}",
            window,
            at,
        )
        .await;
    // b2: 4d+600 → 4d−3h = 3h10m; c3: 1 h; median of two = their mean.
    let median = ((3 * HOUR + 600) + HOUR) as f64 / 2.0;
    assert_eq!(
        changes[0].1,
        [(fix.as_millisecond(), median)],
        "{changes:#?}"
    );

    // A re-run writes the same samples again: the store keeps one per
    // series and time, so nothing is added.
    let everything = "{job=\"dora\"}";
    let before = store.samples(everything, window, at).await;
    leg(&gh, &store.write_url()).run_expecting(0).await;
    let after = store.samples(everything, window, at).await;
    assert_eq!(before, after);
    // Per run: event + timestamp (+ lead time, changes, recovery, rework).
    let points: usize = before.iter().map(|(_, p)| p.len()).sum();
    assert!(points >= 2 * WEEK.len(), "{before:#?}");
    assert!(before.iter().all(|(_, p)| p.len() == 1), "{before:#?}");
}

#[tokio::test]
async fn a_rerun_asks_the_store_what_it_holds_and_makes_no_compare_call() {
    let gh = github().await;
    let store = Prometheus::receiver("30d").await;
    let first = leg(&gh, &store.write_url()).run_expecting(0).await;
    assert_eq!(gh.calls("/compare/").await, 2, "a1…c3 and c3…d4");
    let derived = format!(
        "Asked the store what it holds at {}/ (derived from `remote-write-url`",
        store.write_url().trim_end_matches("/api/v1/write")
    );
    first.assert_summary_says(&derived);

    let again = leg(&gh, &store.write_url()).run_expecting(0).await;
    assert_eq!(
        gh.calls("/compare/").await,
        2,
        "no compare call on the re-run"
    );
    assert!(
        again
            .summary
            .contains("0 new, 5 already in the store (left as they were)"),
        "{}",
        again.summary
    );
    again.assert_summary_says("Remote-write to");
    again.assert_summary_says("0 written");
    // The same numbers as the run that recorded them: read back from the store.
    for output in [
        "events",
        "deployments",
        "failures",
        "lead-time-seconds",
        "recovery-seconds",
    ] {
        assert_eq!(again.output(output), first.output(output), "{output}");
    }
    assert!(again.warning_lines().is_empty(), "{}", again.stdout);
    again.assert_no_secret(&[GITHUB_TOKEN]);
}

#[tokio::test]
async fn a_store_that_does_not_answer_queries_is_a_warning_and_every_event_is_looked_up() {
    let gh = github().await;
    let store = Prometheus::receiver("30d").await;
    let query = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/prom/api/v1/query"))
        .respond_with(ResponseTemplate::new(503).set_body_string("overloaded"))
        .mount(&query)
        .await;
    for _ in 0..2 {
        let out = leg(&gh, &store.write_url())
            .input("remote-query-url", &format!("{}/prom", query.uri()))
            .run_expecting(0)
            .await;
        out.the_warning(&["503", "every event is looked up"]);
        out.assert_summary_says("(`remote-query-url`): no answer");
    }
    assert_eq!(
        gh.calls("/compare/").await,
        4,
        "both runs looked every event up"
    );
    assert!(
        query.received_requests().await.unwrap().len() > 2,
        "retried"
    );
}

#[tokio::test]
async fn a_store_without_an_out_of_order_window_is_named_as_the_cause() {
    let gh = github().await;
    // Something recent first, so the store's head starts now and the week is "too old".
    let store = Prometheus::receiver("0s").await;
    let recent = dora_action::sinks::remote_write::encode(&[vec![
        dora_action::sinks::remote_write::TimeSeries::new(
            vec![("__name__".into(), "warmup".into())],
            1.0,
            Timestamp::now().as_millisecond(),
        ),
    ]]);
    let answer = reqwest::Client::new()
        .post(store.write_url())
        .header("content-encoding", "snappy")
        .header("content-type", "application/x-protobuf")
        .header("x-prometheus-remote-write-version", "0.1.0")
        .body(recent)
        .send()
        .await
        .unwrap();
    assert!(answer.status().is_success(), "{answer:?}");

    let out = leg(&gh, &store.write_url()).run_expecting(1).await;
    out.the_error(&["remote-write", "out_of_order_time_window"]);
}

/// How the stub store answers the `n`th request (1-based).
type Answer = dyn Fn(&WriteRequest, usize) -> ResponseTemplate + Send + Sync;

/// A stub store: records every request; answers what `answer` decides.
#[derive(Clone)]
struct Store {
    seen: Arc<Mutex<Vec<Seen>>>,
    answer: Arc<Answer>,
}

#[derive(Debug, Clone)]
struct Seen {
    headers: Vec<(String, String)>,
    path: String,
    body: Vec<u8>,
    request: WriteRequest,
}

impl Respond for Store {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let raw = snap::raw::Decoder::new()
            .decompress_vec(&request.body)
            .expect("a snappy block body");
        let decoded = WriteRequest::decode(raw.as_slice()).expect("a WriteRequest");
        let mut seen = self.seen.lock().unwrap();
        seen.push(Seen {
            headers: request
                .headers
                .iter()
                .map(|(k, v)| (k.as_str().to_string(), v.to_str().unwrap_or("").to_string()))
                .collect(),
            path: request.url.path().to_string(),
            body: request.body.clone(),
            request: decoded.clone(),
        });
        (self.answer)(&decoded, seen.len())
    }
}

impl Store {
    async fn start(
        answer: impl Fn(&WriteRequest, usize) -> ResponseTemplate + Send + Sync + 'static,
    ) -> (MockServer, Store) {
        let server = MockServer::start().await;
        let store = Store {
            seen: Arc::default(),
            answer: Arc::new(answer),
        };
        Mock::given(method("POST"))
            .and(path("/api/v1/push"))
            .respond_with(store.clone())
            .mount(&server)
            .await;
        (server, store)
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

fn header<'a>(seen: &'a Seen, name: &str) -> Option<&'a str> {
    seen.headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

fn run_ids(request: &WriteRequest) -> BTreeSet<String> {
    request
        .timeseries
        .iter()
        .flat_map(|s| &s.labels)
        .filter(|l| l.name == "run_id")
        .map(|l| l.value.clone())
        .collect()
}

#[tokio::test]
async fn the_protocol_headers_and_bearer_or_basic_auth_are_sent() {
    let gh = github().await;
    let (server, store) = Store::start(|_, _| ResponseTemplate::new(204)).await;
    let url = format!("{}/api/v1/push", server.uri());

    let out = leg(&gh, &url)
        .input("remote-write-bearer-token", BEARER)
        .run_expecting(0)
        .await;
    out.assert_masked(BEARER);
    out.assert_no_secret(&[BEARER, GITHUB_TOKEN]);
    let seen = store.seen();
    assert_eq!(seen.len(), 1, "5 events fit one request");
    let s = &seen[0];
    assert_eq!(s.path, "/api/v1/push");
    assert_eq!(header(s, "content-encoding"), Some("snappy"));
    assert_eq!(header(s, "content-type"), Some("application/x-protobuf"));
    assert_eq!(
        header(s, "x-prometheus-remote-write-version"),
        Some("0.1.0")
    );
    assert_eq!(
        header(s, "authorization"),
        Some(format!("Bearer {BEARER}").as_str())
    );
    assert!(header(s, "user-agent").is_some_and(|u| u.starts_with("dora-action/")));
    // Labels sorted by name in every series, as the protocol requires.
    for series in &s.request.timeseries {
        let names: Vec<&str> = series.labels.iter().map(|l| l.name.as_str()).collect();
        let mut sorted = names.clone();
        sorted.sort();
        assert_eq!(names, sorted);
        assert_eq!(series.samples.len(), 1);
    }
    assert_eq!(run_ids(&s.request).len(), WEEK.len());
    assert!(!s.body.is_empty());

    let (server, store) = Store::start(|_, _| ResponseTemplate::new(200)).await;
    let out = leg(&gh, &format!("{}/api/v1/push", server.uri()))
        .input("remote-write-username", "tenant-1")
        .input("remote-write-password", PASSWORD)
        .run_expecting(0)
        .await;
    out.assert_no_secret(&[PASSWORD, GITHUB_TOKEN]);
    use base64::Engine;
    let basic = base64::engine::general_purpose::STANDARD.encode(format!("tenant-1:{PASSWORD}"));
    assert_eq!(
        header(&store.seen()[0], "authorization"),
        Some(format!("Basic {basic}").as_str())
    );
}

#[tokio::test]
async fn sigv4_requests_verify_with_an_independent_signer() {
    let gh = github().await;
    let (server, store) = Store::start(|_, _| ResponseTemplate::new(204)).await;
    let creds = AwsCredentials::test_session();
    let out = leg(&gh, &format!("{}/api/v1/push", server.uri()))
        .input("remote-write-auth", "sigv4")
        .input("aws-region", "eu-west-2")
        .aws_credentials(&creds)
        .run_expecting(0)
        .await;
    let secret = creds.secret_access_key.clone();
    let token = creds.session_token.clone().unwrap();
    out.assert_no_secret(&[&secret, &token, GITHUB_TOKEN]);
    let s = &store.seen()[0];
    let authorization = header(s, "authorization").unwrap();
    assert!(
        authorization.contains("/eu-west-2/aps/aws4_request"),
        "{authorization}"
    );
    // The protocol headers are signed, so a proxy cannot change them unseen.
    assert!(
        authorization.contains(
            "SignedHeaders=content-encoding;content-type;host;x-amz-date;x-amz-security-token;x-prometheus-remote-write-version,"
        ),
        "{authorization}"
    );
    verify_sigv4_header_auth(
        "POST",
        &s.path,
        None,
        &s.headers,
        &s.body,
        &creds,
        "aps",
        "eu-west-2",
        Timestamp::now(),
    )
    .unwrap_or_else(|e| panic!("signature does not verify: {e}"));
}

#[tokio::test]
async fn an_event_already_stored_costs_no_other_and_server_errors_are_retried() {
    let gh = github().await;
    // 503 first; then any request holding run 8102 is refused as a duplicate.
    let accepted: Arc<Mutex<BTreeSet<String>>> = Arc::default();
    let kept = accepted.clone();
    let (server, store) = Store::start(move |request, n| {
        if n == 1 {
            return ResponseTemplate::new(503).set_body_string("ingester unavailable");
        }
        let ids = run_ids(request);
        if ids.contains("8102") {
            ResponseTemplate::new(400)
                .set_body_string("duplicate sample for timestamp; last value: 1, incoming value: 2")
        } else {
            kept.lock().unwrap().extend(ids);
            ResponseTemplate::new(204)
        }
    })
    .await;
    let out = leg(&gh, &format!("{}/api/v1/push", server.uri()))
        .run_expecting(0)
        .await;
    let all: BTreeSet<String> = WEEK.iter().map(|r| r.0.to_string()).collect();
    let mut expected = all.clone();
    expected.remove("8102");
    assert_eq!(
        *accepted.lock().unwrap(),
        expected,
        "the others were written"
    );
    out.assert_summary_says("4 written (1 already stored)");
    // 1 refused (503) + 1 whole batch + the halving down to run 8102 alone.
    let seen = store.seen();
    assert!(
        seen.len() >= 4 && seen.len() <= 2 + 2 * WEEK.len(),
        "{} requests",
        seen.len()
    );
    assert!(out.warning_lines().is_empty(), "{}", out.stdout);
}

#[tokio::test]
async fn a_refusal_fails_the_run_before_the_pushgateway_is_touched() {
    let gh = github().await;
    let pg = Pushgateway::start().await;
    let (server, _store) =
        Store::start(|_, _| ResponseTemplate::new(401).set_body_string("invalid token")).await;
    let out = leg(&gh, &format!("{}/api/v1/push", server.uri()))
        .input("pushgateway-url", &pg.url)
        .input("remote-write-bearer-token", BEARER)
        .run_expecting(1)
        .await;
    out.assert_no_secret(&[BEARER, GITHUB_TOKEN]);
    out.the_error(&["remote-write", "bearer token"]);
    // Nothing in the Pushgateway: the next run still sees every event as new.
    assert!(pg.groups().await.is_empty());

    // Alongside a Pushgateway that works, both get the events.
    let (server, store) = Store::start(|_, _| ResponseTemplate::new(204)).await;
    leg(&gh, &format!("{}/api/v1/push", server.uri()))
        .input("pushgateway-url", &pg.url)
        .run_expecting(0)
        .await;
    assert_eq!(pg.groups().await.len(), WEEK.len());
    assert_eq!(run_ids(&store.seen()[0].request).len(), WEEK.len());
    // Re-run: the Pushgateway has them all, so nothing new is written anywhere.
    leg(&gh, &format!("{}/api/v1/push", server.uri()))
        .input("pushgateway-url", &pg.url)
        .run_expecting(0)
        .await;
    assert_eq!(
        store.seen().len(),
        1,
        "no request for events already recorded"
    );
}

/// Event mode, the common case: the triggering run lands in the store at its
/// own time (not the collector's clock), written once however often the
/// job is re-run.
#[tokio::test]
async fn event_mode_writes_the_run_at_its_own_time() {
    let store = Prometheus::receiver("30d").await;
    let mut payload: Value = serde_json::from_str(
        &std::fs::read_to_string(fixture("workflow_run/success.json")).unwrap(),
    )
    .unwrap();
    let finished = ago(2 * HOUR);
    payload["workflow_run"]["updated_at"] = json!(finished.to_string());
    payload["workflow_run"]["head_commit"]["timestamp"] = json!(ago(3 * HOUR).to_string());
    let run_id = payload["workflow_run"]["id"].to_string();
    for _ in 0..2 {
        let action = Action::new();
        let file = action.dir().join("event.json");
        std::fs::write(&file, payload.to_string()).unwrap();
        action
            .event("workflow_run", &file)
            .input("remote-write-url", &store.write_url())
            .input("deploy-branches", "*")
            .run_expecting(0)
            .await;
    }
    let at = now().as_second() + 60;
    let lead = store
        .samples(
            &format!("dora_workflow_lead_time_seconds{{run_id=\"{run_id}\"}}"),
            DAY,
            at,
        )
        .await;
    assert_eq!(lead.len(), 1, "{lead:#?}");
    assert_eq!(lead[0].1, [(finished.as_millisecond(), HOUR as f64)]);
}

/// `retention` prunes the Pushgateway; with remote-write alone an old event
/// (GitHub's example run, years ago) is written, not skipped for its age.
#[tokio::test]
async fn retention_does_not_skip_old_events_when_only_remote_write_is_used() {
    let (server, store) = Store::start(|_, _| ResponseTemplate::new(204)).await;
    let out = Action::new()
        .fixture_event("workflow_run", "success.json")
        .input("remote-write-url", &format!("{}/api/v1/push", server.uri()))
        .input("deploy-branches", "*")
        .run_expecting(0)
        .await;
    assert!(out.notice_lines().is_empty(), "{}", out.stdout);
    assert_eq!(store.seen().len(), 1);
    assert_eq!(run_ids(&store.seen()[0].request).len(), 1);
}
