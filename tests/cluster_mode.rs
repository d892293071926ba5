//! Cluster mode end to end: Flux Kustomizations (with their GitRepository)
//! and Flagger Canaries served by the fake API server, read with list calls
//! through the EKS token, recorded in the real Pushgateway through the
//! service proxy.

mod support;

use serde_json::{Value, json};
use support::aws::AwsCredentials;
use support::cluster::{Cluster, ClusterStack};
use support::fixtures::{Canary, Kustomization, git_repository, k8s_list};
use support::{Action, GitHub, GitHubMock};
use wiremock::matchers::method;
use wiremock::{Mock, MockServer, ResponseTemplate};

const CLUSTER: &str = "prod-eks";
const REGION: &str = "eu-west-1";
const SHA: &str = "9f8e7d6c5b4a39281706f5e4d3c2b1a098765432";
const KUSTOMIZATIONS: &str =
    "/apis/kustomize.toolkit.fluxcd.io/v1/namespaces/flux-system/kustomizations";
const GITREPOS: &str = "/apis/source.toolkit.fluxcd.io/v1/namespaces/flux-system/gitrepositories";
const CANARIES: &str = "/apis/flagger.app/v1beta1/canaries";

/// The cluster stack with these objects, and GitHub serving the fixture commit.
struct Scene {
    stack: ClusterStack,
    gh: GitHubMock,
}

impl std::ops::Deref for Scene {
    type Target = ClusterStack;

    fn deref(&self) -> &ClusterStack {
        &self.stack
    }
}

async fn cluster(objects: Vec<(&str, Value)>) -> Scene {
    let mut cluster = Cluster::new(CLUSTER, REGION);
    for (path, value) in objects {
        cluster = cluster.object(path, value);
    }
    Scene {
        stack: cluster.start().await,
        gh: GitHub::new().fixture_commit().start().await,
    }
}

impl Scene {
    /// A scheduled run: `auto` picks cluster mode.
    fn run(&self) -> Action {
        self.signed_in(Action::new())
            .env("GITHUB_EVENT_NAME", "schedule")
            .input("kustomizations", "flux-system/apps")
            .input("retention", "0")
            .input("github-token", "ghs_cluster")
            .env("GITHUB_API_URL", &self.gh.uri())
    }

    async fn commit_lookups(&self) -> usize {
        self.gh.received_requests().await.unwrap().len()
    }
}

/// The GitRepository every Kustomization here is built from.
fn flux_source() -> (&'static str, Value) {
    let repository = git_repository("ssh://git@github.com/octo-org/shop");
    (GITREPOS, k8s_list("GitRepository", vec![repository]))
}

/// `apps`, Ready since 10:30 with [`SHA`] applied.
fn apps_applied() -> Value {
    let revision = format!("main@sha1:{SHA}");
    Kustomization::ready("apps", &revision, "2026-11-20T10:30:00Z").json()
}

fn standard_objects() -> Vec<(&'static str, Value)> {
    vec![
        (
            KUSTOMIZATIONS,
            k8s_list(
                "Kustomization",
                vec![
                    apps_applied(),
                    Kustomization::ready(
                        "infra",
                        "main@sha1:0000000000000000000000000000000000000001",
                        "2026-11-20T10:00:00Z",
                    )
                    .json(),
                ],
            ),
        ),
        flux_source(),
        (
            CANARIES,
            k8s_list(
                "Canary",
                vec![
                    Canary::new("podinfo", "Failed", "2026-11-20T09:00:00Z").json(),
                    Canary::new("frontend", "Succeeded", "2026-11-20T11:00:00Z").json(),
                    Canary::new("backend", "Progressing", "2026-11-20T11:05:00Z").json(),
                ],
            ),
        ),
    ]
}

#[tokio::test(flavor = "multi_thread")]
async fn flux_revisions_and_canary_outcomes_become_events() {
    let c = cluster(standard_objects()).await;
    let out = c.run().run_expecting(0).await;
    assert_eq!(out.counts(), ("3", "2", "1"));
    assert_eq!(
        out.output("lead-time-seconds"),
        "1800",
        "flux: applied 10:30, committed 10:00"
    );

    let flux = c.pg.groups_matching(&[("kustomization", "apps")]).await;
    assert_eq!(flux.len(), 1, "only the named Kustomization is read");
    assert_eq!(flux[0].labels["revision"], format!("main@sha1:{SHA}"));
    assert_eq!(
        flux[0].value("dora_flux_applied_timestamp"),
        1_795_170_600.0
    );
    assert_eq!(flux[0].value("dora_flux_ready"), 1.0);
    assert_eq!(flux[0].value("dora_flux_lead_time_seconds"), 1800.0);
    let labels = flux[0].sample_labels("dora_flux_applied_timestamp");
    assert_eq!(
        (
            labels["repository"].as_str(),
            labels["sha"].as_str(),
            labels["environment"].as_str()
        ),
        ("octo-org/shop", SHA, CLUSTER)
    );

    let failed =
        c.pg.groups_matching(&[("canary", "podinfo"), ("phase", "Failed")])
            .await;
    assert_eq!(failed.len(), 1);
    assert_eq!(
        failed[0].value("dora_flagger_canary_timestamp"),
        1_795_165_200.0
    );
    assert_eq!(
        failed[0].sample_labels("dora_flagger_canary_timestamp")["status"],
        "failure"
    );
    assert_eq!(
        c.pg.groups_matching(&[("canary", "frontend"), ("phase", "Succeeded")])
            .await
            .len(),
        1
    );
    let phases: Vec<String> =
        c.pg.groups()
            .await
            .iter()
            .filter(|g| g.metrics.contains_key("dora_flagger_canary_phase"))
            .map(|g| {
                format!(
                    "{}={}",
                    g.labels["canary"],
                    g.sample_labels("dora_flagger_canary_phase")["phase"]
                )
            })
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect();
    assert_eq!(
        phases,
        [
            "backend=Progressing",
            "frontend=Succeeded",
            "podinfo=Failed"
        ]
    );

    let requests = c.api.requests();
    assert!(requests.iter().all(|r| r.authorized));
    assert!(
        requests.iter().any(|r| r
            .path_and_query
            .starts_with(&format!("{KUSTOMIZATIONS}?limit="))),
        "list calls: {requests:#?}"
    );
    assert!(
        requests
            .iter()
            .any(|r| r.path_and_query.starts_with(&format!("{CANARIES}?limit=")))
    );
    assert_eq!(c.commit_lookups().await, 1, "one look-up per new revision");

    // Nothing changed: the re-run reads the stored groups and pushes nothing.
    let puts = |c: &Scene| {
        c.api
            .requests()
            .iter()
            .filter(|r| r.method == "PUT")
            .count()
    };
    let before = puts(&c);
    let out = c.run().run_expecting(0).await;
    assert_eq!(
        puts(&c),
        before,
        "no event and no unchanged canary phase is pushed again"
    );
    out.assert_summary_says("0 new, 3 already");
    assert_eq!(c.commit_lookups().await, 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn every_rollback_counts_once_and_recovery_spans_runs() {
    let c = cluster(vec![(
        CANARIES,
        k8s_list(
            "Canary",
            vec![Canary::new("podinfo", "Failed", "2026-11-20T09:00:00Z").json()],
        ),
    )])
    .await;
    c.run().run().await.assert_code(0);
    // Runs again before anything changed: the same rollback is not counted twice.
    let out = c.run().run_expecting(0).await;
    out.assert_summary_says("0 new, 1 already");
    // A second rollback, then a promotion: each its own event.
    c.api.set_object(
        CANARIES,
        k8s_list(
            "Canary",
            vec![Canary::new("podinfo", "Failed", "2026-11-20T09:30:00Z").json()],
        ),
    );
    c.run().run().await.assert_code(0);
    c.api.set_object(
        CANARIES,
        k8s_list(
            "Canary",
            vec![Canary::new("podinfo", "Succeeded", "2026-11-20T11:00:00Z").json()],
        ),
    );
    let out = c.run().run_expecting(0).await;
    assert_eq!(
        out.output("recovery-seconds"),
        "7200",
        "first Failed 09:00 → Succeeded 11:00"
    );
    let outcomes = c.pg.groups_matching(&[("canary", "podinfo")]).await;
    let mut kept: Vec<String> = outcomes
        .iter()
        .filter_map(|g| {
            g.labels
                .get("transition")
                .map(|t| format!("{}@{t}", g.labels["phase"]))
        })
        .collect();
    kept.sort();
    assert_eq!(
        kept,
        [
            "Failed@1795165200",
            "Failed@1795167000",
            "Succeeded@1795172400"
        ]
    );
    let success =
        c.pg.groups_matching(&[("canary", "podinfo"), ("phase", "Succeeded")])
            .await;
    assert_eq!(success[0].value("dora_flagger_recovery_seconds"), 7200.0);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_revision_not_ready_is_recorded_and_replaced_once_ready() {
    let revision = format!("main@sha1:{SHA}");
    let c = cluster(vec![
        (
            KUSTOMIZATIONS,
            k8s_list(
                "Kustomization",
                vec![Kustomization::failing("apps", &revision, "2026-11-20T10:20:00Z").json()],
            ),
        ),
        flux_source(),
    ])
    .await;
    let out = c.run().run_expecting(0).await;
    assert_eq!(
        (out.output("events"), out.output("deployments")),
        ("0", "0"),
        "not Ready is not a deployment"
    );
    let g = c.pg.groups_matching(&[("kustomization", "apps")]).await;
    assert_eq!(g[0].value("dora_flux_ready"), 0.0);
    assert_eq!(g[0].sample_labels("dora_flux_ready")["ready"], "false");
    assert_eq!(
        c.commit_lookups().await,
        0,
        "no look-up for a revision that is not deployed"
    );

    c.api.set_object(
        KUSTOMIZATIONS,
        k8s_list(
            "Kustomization",
            vec![Kustomization::ready("apps", &revision, "2026-11-20T10:30:00Z").json()],
        ),
    );
    let out = c.run().run_expecting(0).await;
    assert_eq!(out.output("deployments"), "1");
    let g = c.pg.groups_matching(&[("kustomization", "apps")]).await;
    assert_eq!(
        g.len(),
        1,
        "the same (kustomization, revision) group, replaced"
    );
    assert_eq!(g[0].value("dora_flux_ready"), 1.0);
    assert_eq!(g[0].value("dora_flux_lead_time_seconds"), 1800.0);
    c.run().run().await.assert_code(0);
    assert_eq!(
        c.commit_lookups().await,
        1,
        "a revision already recorded is never looked up again"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_missing_crd_skips_that_source_and_keeps_the_others() {
    // No Flagger: the canaries path answers 404.
    let c = cluster(vec![
        (
            KUSTOMIZATIONS,
            k8s_list("Kustomization", vec![apps_applied()]),
        ),
        flux_source(),
    ])
    .await;
    let out = c.run().run_expecting(0).await;
    let warnings = out.warning_lines();
    assert!(
        warnings
            .iter()
            .any(|w| w.contains("canaries.flagger.app is not installed")),
        "{warnings:?}"
    );
    assert_eq!(
        c.pg.groups_matching(&[("kustomization", "apps")])
            .await
            .len(),
        1
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn rbac_refusal_names_what_to_grant_and_loses_no_other_event() {
    let forbidden = json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": "canaries.flagger.app is forbidden: User \"dora-action\" cannot list resource \"canaries\" in API group \"flagger.app\" at the cluster scope",
        "reason": "Forbidden", "details": {"group": "flagger.app", "kind": "canaries"}, "code": 403});
    let mut objects = standard_objects();
    objects.retain(|(p, _)| *p != CANARIES);
    objects.push((CANARIES, forbidden));
    let c = cluster(objects).await;
    let out = c.run().run_expecting(1).await;
    out.the_error(&["grant `list` on `canaries.flagger.app`"]);
    assert_eq!(
        c.pg.groups_matching(&[("kustomization", "apps")])
            .await
            .len(),
        1,
        "Flux's events were still delivered"
    );
    assert_eq!(out.output("events"), "1");
}

#[tokio::test(flavor = "multi_thread")]
async fn cluster_mode_needs_a_cluster() {
    let out = Action::new()
        .env("GITHUB_EVENT_NAME", "schedule")
        .input("pushgateway-url", "http://127.0.0.1:9")
        .run_expecting(1)
        .await;
    out.the_error(&["input `cluster-name`: required"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_thousand_canaries_and_two_hundred_kustomizations_in_one_run() {
    let kustomizations: Vec<Value> = (0..200)
        .map(|i| {
            let sha = format!("{:040x}", 0xabc000 + i);
            let mut k = Kustomization::ready(
                &format!("app-{i:03}"),
                &format!("main@sha1:{sha}"),
                "2026-11-20T10:30:00Z",
            )
            .json();
            k["metadata"]["namespace"] = json!("flux-system");
            k
        })
        .collect();
    let canaries: Vec<Value> = (0..1000)
        .map(|i| match i % 10 {
            0 => Canary::new(&format!("svc-{i:04}"), "Failed", "2026-11-20T09:00:00Z").json(),
            1..=3 => {
                Canary::new(&format!("svc-{i:04}"), "Succeeded", "2026-11-20T11:00:00Z").json()
            }
            _ => Canary::new(
                &format!("svc-{i:04}"),
                "Progressing",
                "2026-11-20T11:05:00Z",
            )
            .json(),
        })
        .collect();
    let c = cluster(vec![
        (
            "/apis/kustomize.toolkit.fluxcd.io/v1/kustomizations",
            k8s_list("Kustomization", kustomizations),
        ),
        flux_source(),
        (CANARIES, k8s_list("Canary", canaries)),
    ])
    .await;
    let out = c.run().input("kustomizations", "*").run_expecting(0).await;
    // 200 revisions + 100 rollbacks + 300 promotions.
    assert_eq!(out.counts(), ("600", "500", "100"));
    assert_eq!(c.commit_lookups().await, 200, "one look-up per revision");
    let groups = c.pg.groups().await;
    assert_eq!(
        groups.len(),
        200 + 400 + 1000,
        "events and one phase per canary"
    );
    let lists = c.api.requests_to("?limit=");
    assert_eq!(lists, 3, "list calls, not one call per object");
}

/// `pushgateway-service: none` and Amazon Managed Service for Prometheus:
/// the events go only to remote-write, signed (SigV4, service `aps`) with the
/// credentials of the EKS check; the API server sees list calls, no proxy.
#[tokio::test(flavor = "multi_thread")]
async fn remote_write_alone_is_signed_with_the_clusters_credentials() {
    use dora_action::sinks::remote_write::WriteRequest;
    use prost::Message;

    let c = cluster(standard_objects()).await;
    let store = MockServer::start().await;
    Mock::given(method("POST"))
        .and(wiremock::matchers::path(
            "/workspaces/ws-1/api/v1/remote_write",
        ))
        .respond_with(ResponseTemplate::new(200))
        .mount(&store)
        .await;
    let out = c
        .run()
        .input("pushgateway-service", "none")
        .input(
            "remote-write-url",
            &format!("{}/workspaces/ws-1/api/v1/remote_write", store.uri()),
        )
        .input("remote-write-auth", "sigv4")
        .run_expecting(0)
        .await;
    out.assert_no_secret(&[&AwsCredentials::test().secret_access_key]);
    assert!(c.pg.groups().await.is_empty(), "no Pushgateway");
    assert!(
        c.api
            .requests()
            .iter()
            .all(|r| !r.path_and_query.contains("/proxy/")),
        "no service-proxy call"
    );

    let received = store.received_requests().await.unwrap();
    assert_eq!(received.len(), 1);
    let r = &received[0];
    let headers: Vec<(String, String)> = r
        .headers
        .iter()
        .map(|(k, v)| (k.as_str().to_string(), v.to_str().unwrap().to_string()))
        .collect();
    support::aws::verify_sigv4_header_auth(
        "POST",
        r.url.path(),
        None,
        &headers,
        &r.body,
        &AwsCredentials::test(),
        "aps",
        REGION,
        jiff::Timestamp::now(),
    )
    .unwrap_or_else(|e| panic!("SigV4: {e}"));

    let raw = snap::raw::Decoder::new().decompress_vec(&r.body).unwrap();
    let request = WriteRequest::decode(raw.as_slice()).unwrap();
    let find = |name: &str, label: (&str, &str)| {
        request
            .timeseries
            .iter()
            .find(|s| {
                s.labels
                    .iter()
                    .any(|l| l.name == "__name__" && l.value == name)
                    && s.labels
                        .iter()
                        .any(|l| l.name == label.0 && l.value == label.1)
            })
            .unwrap_or_else(|| panic!("no {name} with {label:?}: {request:#?}"))
    };
    // Each at its event's own time: applied 10:30, rolled back 09:00.
    let applied = find("dora_flux_applied_timestamp", ("kustomization", "apps"));
    assert_eq!(applied.samples[0].timestamp, 1_795_170_600_000);
    assert_eq!(applied.samples[0].value, 1_795_170_600.0);
    let lead = find("dora_flux_lead_time_seconds", ("kustomization", "apps"));
    assert_eq!(lead.samples[0].value, 1800.0);
    let rollback = find("dora_flagger_canary_timestamp", ("canary", "podinfo"));
    assert_eq!(rollback.samples[0].timestamp, 1_795_165_200_000);
    // Phases: state, at the run's time, one per canary.
    let phases = request
        .timeseries
        .iter()
        .filter(|s| {
            s.labels
                .iter()
                .any(|l| l.value == "dora_flagger_canary_phase")
        })
        .count();
    assert_eq!(phases, 3);
}
