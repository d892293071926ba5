//! Cluster mode at scale, as a whole process against the test harness's
//! services: 1,000 Canaries and 200 Kustomizations in the fake API server,
//! the in-cluster Pushgateway (real) already holding 10,000 groups, GitHub
//! (mock) answering commit look-ups. Reports wall time, peak memory and API
//! calls of a first run (everything new) and a re-run (nothing new).
//!
//! `cargo bench --bench scale` (release build). Not a test: nothing here
//! passes or fails on a number; docs/performance.md records the figures.
//!
//! `DORA_BENCH_BIN` runs another build of the action: docs/performance.md's figures
//! are of the static musl binary the image ships
//! (`cargo build --release --target x86_64-unknown-linux-musl`), whose
//! allocator differs from glibc's. `DORA_BENCH_STORED` sets the number of
//! stored groups, `DORA_BENCH_PUSHGATEWAY_FLAGS` the measured Pushgateway's
//! extra flags.

#[path = "../tests/support/mod.rs"]
#[allow(unused_imports)]
mod support;

#[allow(dead_code, reason = "each benchmark uses its part")]
mod common;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use common::{MEASURE, PEAK_FILE, peak_mib, seeded_pushgateway};
use serde_json::{Value, json};
use support::cluster::Cluster;
use support::{Action, GitHub, commit_json};

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

/// A Pushgateway holding `stored` groups of another repository's runs.
///
/// Pushgateway 1.5 checks every stored group on each push (~0.1 s each at
/// 10,000 groups), so seeding through a Pushgateway like the measured one
/// takes ten minutes. A seeding Pushgateway runs with that check off
/// (`--push.disable-consistency-check`, safe for these uniform groups),
/// writes its persistence file on a graceful stop, and the measured one, with
/// default flags, starts from that file: it holds the same groups as if they
/// had been pushed to it. `DORA_BENCH_STORED` sets fewer groups.
fn main() {
    common::main(bench);
}

async fn bench() {
    let stored = support::process::knob("DORA_BENCH_STORED", 10_000);
    // DORA_BENCH_PUSHGATEWAY_FLAGS: flags of the measured Pushgateway, e.g.
    // `--push.disable-consistency-check` to see a first run without the check.
    let flags = std::env::var("DORA_BENCH_PUSHGATEWAY_FLAGS").unwrap_or_default();
    let pg = seeded_pushgateway(stored, &flags.split_whitespace().collect::<Vec<_>>()).await;
    let git_repository = json!({"metadata": {"name": "flux-system", "namespace": "flux-system"}, "spec": {"url": "https://github.com/octo-org/shop"}});
    let c = Cluster::new(CLUSTER, REGION)
        .object(
            "/apis/kustomize.toolkit.fluxcd.io/v1/kustomizations",
            list("Kustomization", (0..200).map(kustomization).collect()),
        )
        .object(
            "/apis/source.toolkit.fluxcd.io/v1/namespaces/flux-system/gitrepositories",
            list("GitRepository", vec![git_repository]),
        )
        .object(
            "/apis/flagger.app/v1beta1/canaries",
            list("Canary", (0..1000).map(canary).collect()),
        )
        .start_with(Some(&pg))
        .await;
    let (api, eks) = (&c.api, &c.eks);
    let at = "2026-11-20T10:00:00Z";
    let gh = GitHub::new()
        .any_commit(commit_json("x", at, at))
        .start()
        .await;

    // The binary users run is the image's static musl build; cargo's own
    // (glibc) build is the fallback, and its allocator peaks differently.
    let program = std::env::var_os("DORA_BENCH_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_dora-action")));
    eprintln!("measuring {}", program.display());
    let wrapper = std::env::current_exe().expect("the benchmark's own path");
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
        let peak_file = tempfile::NamedTempFile::new().expect("temp file");
        let out = c
            .signed_in(Action::new())
            .program(&wrapper)
            .env(MEASURE, &program.display().to_string())
            .env(PEAK_FILE, &peak_file.path().display().to_string())
            .env("GITHUB_EVENT_NAME", "schedule")
            .input("kustomizations", "*")
            .input("retention", "0")
            .input("github-token", "ghs_bench")
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
            peak_mib(peak_file.path()),
            new.len() - proxied,
            gh.received_requests().await.unwrap().len() - gh_before,
            eks.requests().await.len() - eks_before,
        );
    }
}
