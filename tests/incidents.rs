//! Incidents and reverts end to end: GitHub issues with an incident label
//! (GitHub's own REST and webhook example shapes, `tests/fixtures/issues`
//! and `github/issue.json`) in the GitHub mock, pinned on the deployments
//! of a deploy workflow's history, in workflows mode and on `issues` events;
//! reverts found in the commits a deployment shipped.

mod support;

use serde_json::{Value, json};
use support::{Action, Pushgateway, fixture, rest_run as run, seconds_ago};
use wiremock::matchers::{method, path, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

const TOKEN: &str = "ghs_incidentsTokenNeverPrinted42";
const HOUR: i64 = 3_600;
const DAY: i64 = 86_400;

const A1: &str = "a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1";
const B2: &str = "b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2";
const C3: &str = "c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3";

fn ago(seconds: i64) -> String {
    seconds_ago(seconds).to_string()
}

fn json_fixture(rel: &str) -> Value {
    serde_json::from_str(&std::fs::read_to_string(fixture(rel)).unwrap()).unwrap()
}

/// GitHub's documented issue item, as issue `number` opened `opened_ago`
/// (and closed as completed `closed_ago`) seconds ago, with `body`.
fn issue(number: u64, body: &str, opened_ago: i64, closed_ago: Option<i64>) -> Value {
    let mut i = json_fixture("github/issue.json");
    i["number"] = json!(number);
    i["html_url"] = json!(format!("https://github.com/octo-org/shop/issues/{number}"));
    i["title"] = json!(format!("Incident {number}"));
    i["body"] = json!(body);
    i["created_at"] = json!(ago(opened_ago));
    i["updated_at"] = json!(ago(closed_ago.unwrap_or(opened_ago)));
    if let Some(c) = closed_ago {
        i["state"] = json!("closed");
        i["state_reason"] = json!("completed");
        i["closed_at"] = json!(ago(c));
    }
    i
}

fn commit(sha: &str, committed_ago: i64, message: &str) -> Value {
    json!({"sha": sha, "commit": {"author": {"date": ago(committed_ago)}, "committer": {"date": ago(committed_ago)}, "message": message}})
}

/// `deploy.yml`: a1 (5d ago), b2 (3d ago, ships "Add checkout v2"), c3 (2d
/// ago, reverts b2's commit).
async fn github(issues: Vec<Value>) -> MockServer {
    let server = MockServer::start().await;
    let runs = vec![
        run(7203, "success", 2 * DAY, C3, 2 * DAY + HOUR),
        run(7202, "success", 3 * DAY, B2, 3 * DAY + HOUR),
        run(7201, "success", 5 * DAY, A1, 5 * DAY + HOUR),
    ];
    Mock::given(method("GET"))
        .and(path(
            "/repos/octo-org/shop/actions/workflows/deploy.yml/runs",
        ))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"total_count": runs.len(), "workflow_runs": runs})),
        )
        .mount(&server)
        .await;
    let compare = |commits: Vec<Value>| {
        ResponseTemplate::new(200).set_body_json(json!({"status": "ahead", "ahead_by": commits.len(), "total_commits": commits.len(), "commits": commits}))
    };
    Mock::given(method("GET"))
        .and(path(format!("/repos/octo-org/shop/compare/{A1}...{B2}")))
        .respond_with(compare(vec![commit(B2, 3 * DAY + HOUR, "Add checkout v2")]))
        .mount(&server)
        .await;
    let revert = format!("Revert \"Add checkout v2\"\n\nThis reverts commit {B2}.\n");
    Mock::given(method("GET"))
        .and(path(format!("/repos/octo-org/shop/compare/{B2}...{C3}")))
        .respond_with(compare(vec![commit(C3, 2 * DAY + HOUR, &revert)]))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/repos/octo-org/shop/issues"))
        .and(query_param("labels", "incident"))
        .and(query_param("state", "all"))
        .respond_with(ResponseTemplate::new(200).set_body_json(issues))
        .mount(&server)
        .await;
    server
}

/// The window's incidents: explicit by sha (#41, also reverted) and by run
/// URL (#43), by window (#42), unlinked (#44), closed as not planned (#45),
/// and a pull request with the label (#46).
fn window_issues() -> Vec<Value> {
    let mut not_planned = issue(45, "", DAY / 2, Some(DAY / 2 - 60));
    not_planned["state_reason"] = json!("not_planned");
    let mut pr = issue(46, B2, 2 * DAY, None);
    pr["pull_request"] = json!({"url": "https://api.github.com/repos/octo-org/shop/pulls/46"});
    vec![
        issue(
            41,
            "Checkout is down.\r\n\r\nroot cause: b2b2b2b",
            3 * DAY - HOUR,
            Some(3 * DAY - 3 * HOUR),
        ),
        issue(42, "Carts vanish.", 2 * DAY - 40 * 60, None),
        issue(
            43,
            "Broken by https://github.com/octo-org/shop/actions/runs/7201",
            4 * DAY,
            Some(4 * DAY - HOUR),
        ),
        issue(44, "The CDN is down.", DAY / 2, Some(DAY / 2 - 30 * 60)),
        not_planned,
        pr,
    ]
}

fn leg(pg: &Pushgateway, gh: &MockServer) -> Action {
    let action = Action::new();
    let payload = action.dir().join("schedule.json");
    std::fs::write(&payload, json!({"schedule": "17 * * * *", "repository": {"full_name": "octo-org/shop", "default_branch": "main"}}).to_string()).unwrap();
    action
        .event("schedule", &payload)
        .input("workflows", "deploy.yml")
        .input("environment", "production")
        .input("pushgateway-url", &pg.url)
        .input("github-token", TOKEN)
        .env("GITHUB_API_URL", &gh.uri())
}

async fn incident(pg: &Pushgateway, number: &str) -> Option<support::Group> {
    pg.groups_matching(&[("incident", number)])
        .await
        .into_iter()
        .next()
}

#[tokio::test(flavor = "multi_thread")]
async fn workflows_mode_pins_the_windows_incidents_and_finds_the_revert() {
    let pg = Pushgateway::start().await;
    let gh = github(window_issues()).await;
    let out = leg(&pg, &gh).run().await;
    out.assert_code(0);
    assert_eq!(out.output("events"), "3", "{}", out.stdout);
    assert_eq!(out.output("incidents"), "4", "{}", out.stdout);
    let t = |ago: i64| seconds_ago(ago).as_second() as f64;

    let explicit = incident(&pg, "41").await.expect("incident 41");
    assert_eq!(explicit.labels["repository"], "octo-org/shop");
    let l = explicit.sample_labels("dora_incident_opened_timestamp");
    assert_eq!(
        (l["link"].as_str(), l["sha"].as_str(), l["source"].as_str()),
        ("explicit", B2, "Deploy")
    );
    assert_eq!(
        (l["environment"].as_str(), l["cause"].as_str()),
        ("production", "incident")
    );
    assert_eq!(
        explicit.value("dora_incident_opened_timestamp"),
        t(3 * DAY - HOUR)
    );
    assert_eq!(
        explicit.value("dora_incident_resolved_timestamp"),
        t(3 * DAY - 3 * HOUR)
    );
    assert_eq!(
        explicit.value("dora_change_failure_timestamp"),
        t(3 * DAY),
        "the deployment's own time"
    );
    assert_eq!(
        explicit.value("dora_change_failure_recovery_seconds"),
        (3 * HOUR) as f64
    );

    let window = incident(&pg, "42").await.expect("incident 42");
    let l = window.sample_labels("dora_incident_opened_timestamp");
    assert_eq!((l["link"].as_str(), l["sha"].as_str()), ("window", C3));
    assert!(
        !window
            .metrics
            .contains_key("dora_incident_resolved_timestamp"),
        "open"
    );
    assert!(
        !window
            .metrics
            .contains_key("dora_change_failure_recovery_seconds"),
        "open"
    );

    let by_run = incident(&pg, "43").await.expect("incident 43");
    let l = by_run.sample_labels("dora_incident_opened_timestamp");
    assert_eq!((l["link"].as_str(), l["sha"].as_str()), ("explicit", A1));

    let unlinked = incident(&pg, "44").await.expect("incident 44");
    let l = unlinked.sample_labels("dora_incident_opened_timestamp");
    assert_eq!(l["link"], "none");
    for absent in ["sha", "source", "cause"] {
        assert!(!l.contains_key(absent), "{absent}: {l:?}");
    }
    assert!(
        !unlinked
            .metrics
            .contains_key("dora_change_failure_timestamp"),
        "never counts for CFR"
    );
    for n in ["45", "46"] {
        assert!(incident(&pg, n).await.is_none(), "#{n} is no incident");
    }

    let reverts = pg.groups_matching(&[("revert", C3)]).await;
    assert_eq!(reverts.len(), 1, "{reverts:?}");
    let l = reverts[0].sample_labels("dora_change_failure_timestamp");
    assert_eq!((l["sha"].as_str(), l["cause"].as_str()), (B2, "revert"));
    assert_eq!(
        reverts[0].value("dora_change_failure_timestamp"),
        t(3 * DAY)
    );
    assert_eq!(
        reverts[0].value("dora_change_failure_recovery_seconds"),
        DAY as f64
    );
    out.assert_no_secret(&[TOKEN]);

    // A re-run records the same incidents as they are: nothing pushed again.
    let before = pg.groups().await;
    let again = leg(&pg, &gh).run().await;
    again.assert_code(0);
    assert_eq!(again.output("incidents"), "0", "{}", again.stdout);
    let after = pg.groups().await;
    assert_eq!(after.len(), before.len());
    for g in &before {
        let same = after.iter().find(|a| a.labels == g.labels).unwrap();
        assert_eq!(
            same.push_time_seconds, g.push_time_seconds,
            "{:?}",
            g.labels
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn incidents_of_another_repository_are_read_from_it() {
    let pg = Pushgateway::start().await;
    let gh = github(Vec::new()).await;
    let mut ops = issue(7, "root cause: c3c3c3c", 2 * DAY - HOUR, None);
    ops["html_url"] = json!("https://github.com/octo-org/ops/issues/7");
    Mock::given(method("GET"))
        .and(path("/repos/octo-org/ops/issues"))
        .respond_with(ResponseTemplate::new(200).set_body_json(vec![ops]))
        .mount(&gh)
        .await;
    let out = leg(&pg, &gh)
        .input("incident-repository", "octo-org/ops")
        .run()
        .await;
    out.assert_code(0);
    let g = incident(&pg, "7").await.expect("incident 7");
    assert_eq!(g.labels["repository"], "octo-org/ops");
    assert_eq!(g.sample_labels("dora_incident_opened_timestamp")["sha"], C3);
}

/// An `issues` event payload from `tests/fixtures/issues`, for issue 41
/// opened `opened_ago` seconds ago with `body`.
fn issues_event(action: &str, body: &str, opened_ago: i64) -> Value {
    let mut p = json_fixture(&format!("issues/{action}.json"));
    p["issue"]["body"] = json!(body);
    p["issue"]["created_at"] = json!(ago(opened_ago));
    if !p["issue"]["closed_at"].is_null() {
        p["issue"]["closed_at"] = json!(ago(opened_ago - HOUR));
    }
    p
}

fn on_issue(pg: &Pushgateway, payload: &Value) -> Action {
    let action = Action::new();
    let file = action.dir().join("issues.json");
    std::fs::write(&file, payload.to_string()).unwrap();
    action
        .event("issues", &file)
        .input("environment", "production")
        .input("pushgateway-url", &pg.url)
}

#[tokio::test(flavor = "multi_thread")]
async fn issues_events_open_close_withdraw_and_reopen_an_incident() {
    let pg = Pushgateway::start().await;
    // The deployments, recorded by a workflows-mode run without incidents.
    let gh = github(Vec::new()).await;
    leg(&pg, &gh)
        .input("incident-labels", "")
        .run()
        .await
        .assert_code(0);
    let body = "Checkout 500s. Root cause: b2b2b2b2";
    let opened_ago = 3 * DAY - HOUR;

    let out = on_issue(&pg, &issues_event("opened", body, opened_ago))
        .run()
        .await;
    out.assert_code(0);
    assert_eq!(out.output("incidents"), "1", "{}", out.stdout);
    let g = incident(&pg, "41").await.expect("opened");
    let l = g.sample_labels("dora_incident_opened_timestamp");
    assert_eq!(
        (l["link"].as_str(), l["sha"].as_str()),
        ("explicit", B2),
        "pinned on a stored deployment"
    );
    assert!(!g.metrics.contains_key("dora_incident_resolved_timestamp"));

    let closed = on_issue(&pg, &issues_event("closed", body, opened_ago))
        .run()
        .await;
    closed.assert_code(0);
    let g = incident(&pg, "41").await.expect("closed");
    assert_eq!(
        g.value("dora_incident_resolved_timestamp"),
        seconds_ago(opened_ago - HOUR).as_second() as f64
    );
    assert_eq!(
        g.value("dora_change_failure_recovery_seconds"),
        (2 * HOUR) as f64,
        "3d ago → 3d−2h ago"
    );

    let mut not_planned = issues_event("closed", body, opened_ago);
    not_planned["issue"]["state_reason"] = json!("not_planned");
    on_issue(&pg, &not_planned).run().await.assert_code(0);
    assert!(
        incident(&pg, "41").await.is_none(),
        "closed as not planned: no incident"
    );

    on_issue(&pg, &issues_event("reopened", body, opened_ago))
        .run()
        .await
        .assert_code(0);
    let g = incident(&pg, "41").await.expect("reopened");
    assert!(
        !g.metrics.contains_key("dora_incident_resolved_timestamp"),
        "open again"
    );

    on_issue(&pg, &issues_event("unlabeled", body, opened_ago))
        .run()
        .await
        .assert_code(0);
    assert!(incident(&pg, "41").await.is_none(), "label removed");

    on_issue(&pg, &issues_event("labeled", body, opened_ago))
        .run()
        .await
        .assert_code(0);
    assert!(incident(&pg, "41").await.is_some(), "labelled again");
    on_issue(&pg, &issues_event("deleted", body, opened_ago))
        .run()
        .await
        .assert_code(0);
    assert!(incident(&pg, "41").await.is_none(), "deleted");
    assert_eq!(
        pg.groups().await.len(),
        4,
        "the three deployments and the revert stay"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_pull_request_event_or_an_event_with_incidents_off_records_nothing() {
    let pg = Pushgateway::start().await;
    let mut pr = issues_event("labeled", "", DAY);
    pr["issue"]["pull_request"] =
        json!({"url": "https://api.github.com/repos/octo-org/shop/pulls/41"});
    let out = on_issue(&pg, &pr).run().await;
    out.assert_code(0);
    assert_eq!(out.output("skipped"), "true");
    let off = on_issue(&pg, &issues_event("opened", "", DAY))
        .input("incident-labels", "")
        .run()
        .await;
    off.assert_code(0);
    assert_eq!(off.output("skipped"), "true");
    assert!(pg.groups().await.is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_incident_input_or_payload_is_one_error_naming_it_and_pushes_nothing() {
    let pg = Pushgateway::start().await;
    let mut malformed = issues_event("opened", "", DAY);
    malformed["issue"]["number"] = json!("41");
    let mut no_time = issues_event("opened", "", DAY);
    no_time["issue"]["created_at"] = json!("yesterday");
    let good = issues_event("opened", "", DAY);
    for (what, action, says) in [
        (
            "window",
            on_issue(&pg, &good).input("incident-window", "soon"),
            "input `incident-window`",
        ),
        (
            "labels",
            on_issue(&pg, &good).input("incident-labels", ",\n ,"),
            "input `incident-labels`",
        ),
        ("number", on_issue(&pg, &malformed), "`issue.number`"),
        ("created_at", on_issue(&pg, &no_time), "`created_at`"),
    ] {
        let out = action.run().await;
        out.assert_code(1);
        let errors = out.error_lines();
        assert_eq!(errors.len(), 1, "{what}: {}", out.stdout);
        assert!(errors[0].contains(says), "{what}: {}", errors[0]);
    }
    assert!(pg.groups().await.is_empty(), "nothing pushed");
}
