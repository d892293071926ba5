//! Cluster mode at scale, as a whole process against the test harness's
//! services: 1,000 Canaries and 200 Kustomizations in the fake API server,
//! the in-cluster Pushgateway (real) already holding 10,000 groups, GitHub
//! (mock) answering commit look-ups. Reports wall time, peak memory and API
//! calls of a first run (everything new) and a re-run (nothing new); the
//! peak memory column is cumulative (the larger of the runs so far).
//!
//! `cargo bench --bench scale` (release build). Not a test: nothing here
//! passes or fails on a number; the README records the figures.

#[path = "../tests/support/mod.rs"]
#[allow(unused_imports)]
mod support;

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::aws::{AwsCredentials, EksStub};
use support::kube::{FakeApiConfig, FakeApiServer};
use support::{Action, Pushgateway};
use wiremock::matchers::{method, path_regex};
use wiremock::{Mock, MockServer, ResponseTemplate};

const CLUSTER: &str = "bench-eks";
const REGION: &str = "eu-west-1";

fn list(kind: &str, items: Vec<Value>) -> Value {
    json!({"apiVersion": "v1", "kind": format!("{kind}List"), "metadata": {"resourceVersion": "1"}, "items": items})
}

fn kustomization(i: usize) -> Value {
    let revision = format!("main@sha1:{:040x}", 0xabc000 + i);
    json!({
        "apiVersion": "kustomize.toolkit.fluxcd.io/v1", "kind": "Kustomization",
        "metadata": {"name": format!("app-{i:03}"), "namespace": "flux-system"},
        "spec": {"interval": "10m", "path": format!("./apps/{i}"), "sourceRef": {"kind": "GitRepository", "name": "flux-system"}},
        "status": {"lastAppliedRevision": revision, "conditions": [{"type": "Ready", "status": "True", "reason": "ReconciliationSucceeded", "lastTransitionTime": "2026-11-20T10:30:00Z", "message": "Applied"}]}
    })
}

fn canary(i: usize) -> Value {
    let phase = match i % 10 {
        0 => "Failed",
        1..=3 => "Succeeded",
        _ => "Progressing",
    };
    json!({
        "apiVersion": "flagger.app/v1beta1", "kind": "Canary",
        "metadata": {"name": format!("svc-{i:04}"), "namespace": "shop"},
        "spec": {"targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": format!("svc-{i:04}")}},
        "status": {"phase": phase, "lastTransitionTime": "2026-11-20T11:00:00Z", "canaryWeight": 0, "failedChecks": 0, "iterations": 0}
    })
}

/// Peak resident memory (MiB) of the children this process has waited for:
/// the action runs are the only children reaped before it is read.
fn children_peak_rss_mib() -> f64 {
    // SAFETY: getrusage fills the struct it is given and touches nothing else.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_CHILDREN, &mut usage) };
    usage.ru_maxrss as f64 / 1024.0
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let pg = Pushgateway::start().await;
    // The Pushgateway checks every stored group on each push, so seeding
    // 10,000 groups takes minutes; DORA_BENCH_STORED sets fewer for a quick look.
    let stored: usize = std::env::var("DORA_BENCH_STORED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000);
    let seeded = Instant::now();
    for i in 0..stored {
        let body = format!(
            "# TYPE dora_workflow_deploy_timestamp gauge\ndora_workflow_deploy_timestamp{{status=\"success\"}} {}\n",
            1_795_000_000 + i
        );
        assert_eq!(
            pg.put_raw(
                &format!("/metrics/job/dora/repository/other/run_id/{i}"),
                &body
            )
            .await,
            200
        );
    }
    eprintln!("seeded {stored} groups in {:.1?}", seeded.elapsed());
    let api = FakeApiServer::start(
        FakeApiConfig::new(CLUSTER, REGION)
            .pushgateway(&pg.url)
            .object("/apis/kustomize.toolkit.fluxcd.io/v1/kustomizations", list("Kustomization", (0..200).map(kustomization).collect()))
            .object(
                "/apis/source.toolkit.fluxcd.io/v1/namespaces/flux-system/gitrepositories",
                list("GitRepository", vec![json!({"metadata": {"name": "flux-system", "namespace": "flux-system"}, "spec": {"url": "https://github.com/octo-org/shop"}})]),
            )
            .object("/apis/flagger.app/v1beta1/canaries", list("Canary", (0..1000).map(canary).collect())),
    )
    .await;
    let eks = EksStub::start().await;
    eks.active(CLUSTER, REGION, &api).await;
    let gh = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path_regex("^/repos/octo-org/shop/commits/"))
        .respond_with(ResponseTemplate::new(200).set_body_json(
            json!({"sha": "x", "commit": {"committer": {"date": "2026-11-20T10:00:00Z"}}}),
        ))
        .mount(&gh)
        .await;

    println!(
        "| run | wall time | peak RSS | API server calls | Pushgateway calls (via proxy) | GitHub calls | EKS calls | groups pushed |"
    );
    println!("| --- | --- | --- | --- | --- | --- | --- | --- |");
    for run in ["first (all new)", "re-run (nothing new)"] {
        let (api_before, gh_before, eks_before) = (
            api.requests().len(),
            gh.received_requests().await.unwrap().len(),
            eks.requests().await.len(),
        );
        let start = Instant::now();
        let out = Action::new()
            .env("GITHUB_EVENT_NAME", "schedule")
            .input("cluster-name", CLUSTER)
            .input("aws-region", REGION)
            .input("kustomizations", "*")
            .input("retention", "0")
            .input("github-token", "ghs_bench")
            .aws_credentials(&AwsCredentials::test())
            .env("AWS_ENDPOINT_URL_EKS", &eks.url())
            .env("GITHUB_API_URL", &gh.uri())
            .timeout(Duration::from_secs(600))
            .run()
            .await;
        let wall = start.elapsed();
        out.assert_code(0);
        let requests = api.requests();
        let new = &requests[api_before..];
        let proxied = new
            .iter()
            .filter(|r| r.path_and_query.contains("/proxy/"))
            .count();
        let pushed = new.iter().filter(|r| r.method == "PUT").count();
        println!(
            "| {run} | {:.0} ms | {:.1} MiB | {} | {proxied} | {} | {} | {pushed} |",
            wall.as_secs_f64() * 1000.0,
            children_peak_rss_mib(),
            new.len() - proxied,
            gh.received_requests().await.unwrap().len() - gh_before,
            eks.requests().await.len() - eks_before,
        );
    }
}
