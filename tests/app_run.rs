//! A whole run in-process, per mode: `app::begin` then `app::run` with a
//! clients context pointing at fakes (the way kube-rs' controller-rs tests
//! its reconciler against a mock API server): a wiremock GitHub, the real
//! Pushgateway, the fake Kubernetes API server. No process is spawned, so
//! these tests see the run's `Report` itself, not only its outputs.

mod support;

use std::time::SystemTime;

use dora_action::app::{self, Begun, Start};
use dora_action::aws::{self, Credentials};
use dora_action::clients::Clients;
use dora_action::github::GitHub;
use dora_action::inputs::{Inputs, Runner};
use dora_action::report::Report;
use dora_action::sinks::pushgateway::Pushgateway as PushgatewayClient;
use dora_action::{http, kubernetes};
use jiff::Timestamp;
use reqwest::Url;
use serde_json::{Value, json};
use support::kube::{FakeApiConfig, FakeApiServer};
use support::{Pushgateway, fixture, rest_run, test_now};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const CLUSTER: &str = "prod-eks";
const REGION: &str = "eu-west-1";

fn runner(vars: &[(&str, &str)]) -> Runner {
    let vars: Vec<(String, String)> = vars
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    Runner::from_env(&vars).expect("runner context")
}

fn inputs(pairs: &[(&str, &str)]) -> Inputs {
    Inputs::from_env(
        pairs
            .iter()
            .map(|(k, v)| (format!("INPUT_{k}"), v.to_string())),
    )
    .expect("inputs")
}

/// The clients of a run: GitHub at `api`, the Pushgateway at `pushgateway`
/// (none: no sink), a cluster client when given.
fn clients(api: &str, pushgateway: Option<&str>, kube: Option<kube::Client>) -> Clients {
    let http = http::client().unwrap();
    Clients {
        github: GitHub::new(
            Url::parse(api).unwrap(),
            Some("ghs_test".into()),
            http.clone(),
        ),
        pushgateway: pushgateway.map(|u| PushgatewayClient::new(Url::parse(u).unwrap(), http)),
        remote: None,
        remote_query: None,
        kube,
        cluster: None,
    }
}

fn start(inputs: &Inputs, runner: &Runner, now: Timestamp) -> Start {
    match app::begin(inputs, runner, now).expect("begin") {
        Begun::Go(start) => *start,
        Begun::Skip(report) => panic!("skipped: {:?}", report.skipped),
    }
}

async fn run(inputs: &Inputs, runner: &Runner, clients: &Clients) -> Report {
    let now = test_now();
    app::run(inputs, runner, start(inputs, runner, now), clients, now)
        .await
        .expect("run")
}

/// GitHub answering nothing (every look-up a 404: warnings, not failures).
async fn no_history() -> MockServer {
    MockServer::start().await
}

/// The fixture's `workflow_run` success with another run id, in `dir`.
fn run_with_id(dir: &std::path::Path, id: u64) -> std::path::PathBuf {
    let mut v: Value = serde_json::from_str(
        &std::fs::read_to_string(fixture("workflow_run/success.json")).unwrap(),
    )
    .unwrap();
    v["workflow_run"]["id"] = json!(id);
    let path = dir.join(format!("run-{id}.json"));
    std::fs::write(&path, v.to_string()).unwrap();
    path
}

/// Records the event with run `id` twice; the two reports and the groups
/// stored after each run.
async fn event_twice(id: u64) -> [(Report, Vec<support::Group>); 2] {
    let pg = Pushgateway::start().await;
    let gh = no_history().await;
    let dir = tempfile::tempdir().unwrap();
    let payload = run_with_id(dir.path(), id);
    let runner = runner(&[
        ("GITHUB_EVENT_NAME", "workflow_run"),
        ("GITHUB_EVENT_PATH", payload.to_str().unwrap()),
    ]);
    let inputs = inputs(&[("PUSHGATEWAY-URL", &pg.url), ("RETENTION", "0")]);
    let clients = clients(&gh.uri(), Some(&pg.url), None);
    let first = run(&inputs, &runner, &clients).await;
    let first_groups = pg.groups().await;
    let again = run(&inputs, &runner, &clients).await;
    [(first, first_groups), (again, pg.groups().await)]
}

#[tokio::test(flavor = "multi_thread")]
async fn event_mode_records_the_payload_once_and_a_rerun_changes_nothing() {
    // 7001: no upkeep event, so the store is not read: the re-run pushes
    // the same group again. 7008: an upkeep event (one in 16), which reads
    // the store first and finds the event recorded.
    for (id, upkeep) in [(7001, false), (7008, true)] {
        let [(first, groups), (again, after)] = event_twice(id).await;
        assert_eq!((first.new_events, first.already_recorded), (1, 0));
        assert_eq!(first.upkeep_skipped, !upkeep, "run {id}");
        assert_eq!(first.recorded.len(), 1);
        assert_eq!(first.recorded[0].sha.len(), 40);
        assert_eq!(groups.len(), 1, "{groups:#?}");
        assert_eq!(groups[0].labels["run_id"], id.to_string());

        let recounted = if upkeep { (0, 1) } else { (1, 0) };
        assert_eq!(
            (again.new_events, again.already_recorded),
            recounted,
            "run {id}"
        );
        assert_eq!(after.len(), 1);
        assert_eq!(after[0].labels, groups[0].labels);
        assert_eq!(
            after[0].metrics, groups[0].metrics,
            "the same state, run {id}"
        );
        assert_eq!(again.recorded[0].sha, first.recorded[0].sha);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn workflows_mode_records_each_completed_run_of_the_window() {
    let pg = Pushgateway::start().await;
    let gh = MockServer::start().await;
    let runs: Vec<Value> = vec![
        rest_run(9003, "success", 3_600, &"c".repeat(40), 7_200),
        rest_run(9002, "failure", 7_200, &"b".repeat(40), 9_000),
        rest_run(9001, "success", 10_800, &"a".repeat(40), 12_000),
    ];
    Mock::given(method("GET"))
        .and(path(
            "/repos/octo-org/shop/actions/workflows/deploy.yml/runs",
        ))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"total_count": runs.len(), "workflow_runs": runs})),
        )
        .mount(&gh)
        .await;
    let runner = runner(&[
        ("GITHUB_EVENT_NAME", "schedule"),
        ("GITHUB_REPOSITORY", "octo-org/shop"),
    ]);
    let inputs = inputs(&[
        ("PUSHGATEWAY-URL", &pg.url),
        ("WORKFLOWS", "deploy.yml"),
        ("DEPLOY-BRANCHES", "main"),
        ("RETENTION", "0"),
    ]);
    let clients = clients(&gh.uri(), Some(&pg.url), None);

    let report = run(&inputs, &runner, &clients).await;
    assert_eq!(report.new_events, 3, "{:?}", report.warnings);
    assert_eq!(report.window, Some(inputs.lookback));
    let mut ids: Vec<String> = pg
        .groups()
        .await
        .iter()
        .map(|g| g.labels["run_id"].clone())
        .collect();
    ids.sort();
    assert_eq!(ids, ["9001", "9002", "9003"]);
    // One list call, one compare for the success after the first success.
    let calls = gh.received_requests().await.unwrap();
    assert_eq!(report.github_calls, calls.len());
    assert!(
        calls.iter().any(|r| r.url.path().contains("/compare/")),
        "{calls:?}"
    );
}

fn kustomization(name: &str, sha: &str, at: &str) -> Value {
    json!({
        "apiVersion": "kustomize.toolkit.fluxcd.io/v1", "kind": "Kustomization",
        "metadata": {"name": name, "namespace": "flux-system", "generation": 3},
        "spec": {"interval": "10m", "path": format!("./{name}"), "prune": true,
                 "sourceRef": {"kind": "GitRepository", "name": "flux-system"}},
        "status": {
            "lastAppliedRevision": format!("main@sha1:{sha}"), "observedGeneration": 3,
            "conditions": [{"type": "Ready", "status": "True", "reason": "ReconciliationSucceeded",
                            "message": "Applied", "lastTransitionTime": at, "observedGeneration": 3}]
        }
    })
}

#[tokio::test(flavor = "multi_thread")]
async fn cluster_mode_reads_flux_through_the_kubernetes_client_it_is_given() {
    let pg = Pushgateway::start().await;
    let gh = no_history().await;
    let sha = "9f8e7d6c5b4a39281706f5e4d3c2b1a098765432";
    let list = |kind: &str, items: Vec<Value>| json!({"apiVersion": "v1", "kind": format!("{kind}List"), "metadata": {}, "items": items});
    let config = FakeApiConfig::new(CLUSTER, REGION)
        .object(
            "/apis/kustomize.toolkit.fluxcd.io/v1/namespaces/flux-system/kustomizations",
            list(
                "Kustomization",
                vec![kustomization("apps", sha, "2026-11-20T10:30:00Z")],
            ),
        )
        .object(
            "/apis/flagger.app/v1beta1/canaries",
            list("Canary", Vec::new()),
        );
    let api = FakeApiServer::start(config).await;
    let test = support::aws::AwsCredentials::test();
    let creds = Credentials {
        access_key_id: test.access_key_id,
        secret_access_key: test.secret_access_key,
        session_token: test.session_token,
    };
    let token = aws::eks_token(&creds, REGION, CLUSTER, SystemTime::now()).unwrap();
    let kube = kubernetes::client(
        &Url::parse(&api.url()).unwrap(),
        api.ca_pem().as_bytes(),
        &token,
    )
    .unwrap();
    let runner = runner(&[("GITHUB_EVENT_NAME", "schedule")]);
    let inputs = inputs(&[
        ("CLUSTER-NAME", CLUSTER),
        ("KUSTOMIZATIONS", "flux-system/apps"),
        ("PUSHGATEWAY-URL", &pg.url),
        ("RETENTION", "0"),
    ]);
    let clients = clients(&gh.uri(), Some(&pg.url), Some(kube));

    let report = run(&inputs, &runner, &clients).await;
    assert!(report.refusal.is_none(), "{:?}", report.refusal);
    assert_eq!(report.new_events, 1, "{:?}", report.warnings);
    assert_eq!(report.recorded[0].sha, sha);
    assert_eq!(report.recorded[0].environment, CLUSTER);
    let groups = pg.groups().await;
    assert!(
        groups
            .iter()
            .any(|g| g.labels.get("kustomization").map(String::as_str) == Some("apps")),
        "{groups:#?}"
    );
    assert!(
        api.requests().iter().all(|r| r.authorized),
        "{:?}",
        api.requests()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn without_a_sink_the_run_prints_what_it_would_push() {
    let gh = no_history().await;
    let payload = fixture("workflow_run/success.json");
    let runner = runner(&[
        ("GITHUB_EVENT_NAME", "workflow_run"),
        ("GITHUB_EVENT_PATH", payload.to_str().unwrap()),
    ]);
    let inputs = inputs(&[("DRY-RUN", "true")]);
    let clients = clients(&gh.uri(), None, None);

    let report = run(&inputs, &runner, &clients).await;
    assert_eq!(report.new_events, 1);
    let text = report.exposition.expect("a dry run shows the groups");
    assert!(text.contains("# group: job=dora"), "{text}");
    assert!(text.contains("run_id=\"7001\""), "{text}");
    assert!(text.contains("dora_workflow_deploy_timestamp"), "{text}");
}
