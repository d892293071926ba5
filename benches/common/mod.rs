//! What the benchmarks share: a Pushgateway seeded with many groups, and
//! the wrapper that measures a whole action process's peak memory.

use std::time::Instant;

use futures_util::StreamExt;

use super::support::Pushgateway;

/// A Pushgateway holding `stored` groups shaped like this action's (one
/// timestamp each, another repository's), started with `flags`. Seeded fast
/// with the consistency check off and persisted, then restarted on that
/// file with `flags` only.
pub async fn seeded_pushgateway(stored: usize, flags: &[&str]) -> Pushgateway {
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
    let pg = Pushgateway::start_with(flags, Some(&file)).await;
    assert_eq!(pg.groups().await.len(), stored, "groups held after seeding");
    eprintln!("seeded {stored} groups in {:.1?}", seeded.elapsed());
    pg
}

/// The peak the wrapper recorded, in MiB.
pub fn peak_mib(file: &std::path::Path) -> f64 {
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
pub const MEASURE: &str = "DORA_BENCH_MEASURE";
/// Where the wrapper writes the action's peak resident memory (KiB).
pub const PEAK_FILE: &str = "DORA_BENCH_PEAK_FILE";

/// The wrapper: runs the program named in [`MEASURE`] with the same
/// environment (less these two variables) and standard streams, waits for
/// it, writes its `ru_maxrss`, and exits with its status.
pub fn measure(program: std::ffi::OsString) -> i32 {
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

/// A benchmark's `main`: the wrapper of [`measure`] when started as one,
/// else `bench` on a multi-threaded runtime.
pub fn main<F: std::future::Future<Output = ()>>(bench: impl FnOnce() -> F) {
    if let Some(program) = std::env::var_os(MEASURE) {
        std::process::exit(measure(program));
    }
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime")
        .block_on(bench());
}
