//! Cluster mode at scale, as a whole process against the test harness's
//! services: 1,000 Canaries and 200 Kustomizations in the fake API server,
//! the in-cluster Pushgateway (real) already holding 10,000 groups, GitHub
//! (mock) answering commit look-ups. Reports wall time, peak memory and API
//! calls of a first run (everything new) and a re-run (nothing new).
//!
//! `cargo bench --bench scale` (release build). Not a test: nothing here
//! passes or fails on a number; the README records the figures.
//!
//! `DORA_BENCH_BIN` runs another build of the action: the README's figures
//! are of the static musl binary the image ships
//! (`cargo build --release --target x86_64-unknown-linux-musl`), whose
//! allocator differs from glibc's. `DORA_BENCH_STORED` sets the number of
//! stored groups, `DORA_BENCH_PUSHGATEWAY_FLAGS` the measured Pushgateway's
//! extra flags.

#[path = "../tests/support/mod.rs"]
#[allow(unused_imports)]
mod support;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use futures_util::StreamExt;

use serde_json::{Value, json};
use support::cluster::Cluster;
use support::{Action, GitHub, Pushgateway, commit_json};

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
async fn seeded_pushgateway(stored: usize) -> Pushgateway {
    let seeder = Pushgateway::start_with(&["--push.disable-consistency-check"], None).await;
    let seeded = Instant::now();
    let statuses: Vec<u16> = futures_util::stream::iter((0..stored).map(|i| {
        let pg = &seeder;
        async move {
            let body = format!(
                "# TYPE dora_workflow_deploy_timestamp gauge\ndora_workflow_deploy_timestamp{{status=\"success\"}} {}\n",
                1_795_000_000 + i
            );
            pg.put_raw(
                &format!("/metrics/job/dora/repository/other/run_id/{i}"),
                &body,
            )
            .await
        }
    }))
    .buffer_unordered(SEED_CONCURRENCY)
    .collect()
    .await;
    // Without the check a push is accepted (202) and applied afterwards.
    assert!(
        statuses.iter().all(|s| matches!(s, 200 | 202)),
        "seeding failed"
    );
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("seeded.data");
    seeder.persist(&file);
    // DORA_BENCH_PUSHGATEWAY_FLAGS: flags of the measured Pushgateway, e.g.
    // `--push.disable-consistency-check` to see a first run without the check.
    let flags = std::env::var("DORA_BENCH_PUSHGATEWAY_FLAGS").unwrap_or_default();
    let flags: Vec<&str> = flags.split_whitespace().collect();
    let pg = Pushgateway::start_with(&flags, Some(&file)).await;
    assert_eq!(pg.groups().await.len(), stored, "groups held after seeding");
    eprintln!("seeded {stored} groups in {:.1?}", seeded.elapsed());
    pg
}

/// The peak the wrapper recorded, in MiB.
fn peak_mib(file: &std::path::Path) -> f64 {
    let kib: f64 = std::fs::read_to_string(file)
        .expect("the wrapper wrote the peak")
        .trim()
        .parse()
        .expect("a number");
    kib / 1024.0
}

/// Pushes in flight while seeding.
const SEED_CONCURRENCY: usize = 8;

/// In a run's environment: the benchmark binary itself is the program the
/// harness starts, and it starts this one (the action) and records its peak.
///
/// Why the detour: the kernel carries a process's memory high-water mark
/// across `exec`, so a child spawned by this (large) benchmark process
/// reports at least the benchmark's own resident size. A grandchild spawned
/// by a freshly started small wrapper reports its own.
const MEASURE: &str = "DORA_BENCH_MEASURE";
/// Where the wrapper writes the action's peak resident memory (KiB).
const PEAK_FILE: &str = "DORA_BENCH_PEAK_FILE";

/// The wrapper: runs the program named in [`MEASURE`] with the same
/// environment (less these two variables) and standard streams, waits for
/// it, writes its `ru_maxrss`, and exits with its status.
fn measure(program: std::ffi::OsString) -> i32 {
    let peak_file = std::env::var_os(PEAK_FILE).expect("DORA_BENCH_PEAK_FILE is set");
    #[allow(
        clippy::zombie_processes,
        reason = "reaped by wait4 below, which also reports its resource usage"
    )]
    let child = std::process::Command::new(program)
        .env_remove(MEASURE)
        .env_remove(PEAK_FILE)
        .spawn()
        .expect("spawn the action");
    let mut status = 0;
    // SAFETY: wait4 on our own child, filling a status int and a rusage struct.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let waited = unsafe { libc::wait4(child.id() as libc::pid_t, &mut status, 0, &mut usage) };
    assert!(waited > 0, "wait4: {}", std::io::Error::last_os_error());
    std::fs::write(peak_file, usage.ru_maxrss.to_string()).expect("write the peak");
    if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status)
    } else {
        128 + libc::WTERMSIG(status)
    }
}

fn main() {
    if let Some(program) = std::env::var_os(MEASURE) {
        std::process::exit(measure(program));
    }
    support::process::block_on(bench());
}

async fn bench() {
    let stored = support::process::knob("DORA_BENCH_STORED", 10_000);
    let pg = seeded_pushgateway(stored).await;
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
