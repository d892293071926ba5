//! Service processes: a binary started on a free loopback port, waited for
//! (our own process must log that it bound the port, and answer a ready
//! path), retried on a port clash, and killed when its handle is dropped.
//! Also the small pieces every helper shares: an HTTP client, temp dirs.

use std::fs::File;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tempfile::TempDir;

/// How long a service may take to bind and answer its ready path. All need
/// well under a second here; the margin is for a loaded CI machine.
const READY_TIMEOUT: Duration = Duration::from_secs(30);
/// Port clashes with parallel tests are rare; a few attempts make them harmless.
const START_ATTEMPTS: usize = 5;
/// How often `query_until`-style loops poll.
pub const POLL: Duration = Duration::from_millis(250);

/// An HTTP client for talking to the services. No proxy (reqwest is built
/// without `system-proxy`), short timeouts so a wedged service fails the test.
pub fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .expect("build reqwest client")
}

/// A free loopback port, as the kernel hands them out for `127.0.0.1:0`.
///
/// The listener is closed before the service binds, so another process can
/// take the port in between; [`Service::spawn`] detects that and retries.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("bind 127.0.0.1:0")
        .port()
}

/// A loopback port nothing listens on: one that was free a moment ago.
pub fn closed_port() -> u16 {
    free_port()
}

/// How to start one kind of service and tell that it is up.
pub struct Spec<'a> {
    /// Short name, for logs and failure messages (`pushgateway`, `moto`).
    pub name: &'static str,
    pub bin: &'a Path,
    /// Extra environment variables for the process.
    pub env: &'a [(&'a str, &'a str)],
    /// The log line our process prints only after binding `port`.
    pub bound: fn(u16) -> String,
    /// The path that answers 200 once the service is ready.
    pub ready_path: &'a str,
    /// Log text that means the port was taken (retry on another one).
    pub clash: &'a str,
}

impl Spec<'_> {
    /// Pushgateway and Prometheus: `msg="Listening on" address=…`, `/-/ready`.
    pub fn prometheus<'a>(name: &'static str, bin: &'a Path) -> Spec<'a> {
        Spec {
            name,
            bin,
            env: &[],
            bound: |port| format!("msg=\"Listening on\" address=127.0.0.1:{port}"),
            ready_path: "/-/ready",
            clash: "address already in use",
        }
    }
}

/// A service process that is killed (and reaped) when dropped.
///
/// `std::process` rather than `tokio::process`: `Drop` must kill and wait
/// synchronously, including while a panicking test unwinds, whatever state the
/// runtime is in.
pub struct Service {
    name: &'static str,
    pub child: Child,
    log: PathBuf,
}

impl Service {
    /// Starts `spec.bin` with `args(port)` on a free port until one attempt
    /// binds and answers `spec.ready_path` with 200. `dir` holds the log (and
    /// is the working directory, so nothing lands in the repository).
    pub async fn spawn(
        spec: &Spec<'_>,
        dir: &Path,
        args: impl Fn(u16) -> Vec<String>,
    ) -> (Service, String) {
        let (name, bin) = (spec.name, spec.bin.display());
        assert!(
            spec.bin.exists(),
            "{bin} is missing: apt-get install -y prometheus prometheus-pushgateway"
        );
        let mut last_log = String::new();
        for attempt in 1..=START_ATTEMPTS {
            let port = free_port();
            let log = dir.join(format!("{name}-{attempt}.log"));
            let out = File::create(&log).expect("create service log");
            let err = out.try_clone().expect("clone log handle");
            let mut command = Command::new(spec.bin);
            command
                .args(args(port))
                .envs(spec.env.iter().copied())
                .current_dir(dir)
                .stdin(Stdio::null())
                .stdout(out)
                .stderr(err);
            die_with_parent(&mut command);
            let child = command
                .spawn()
                .unwrap_or_else(|e| panic!("spawn {bin}: {e}"));
            let mut service = Service {
                name,
                child,
                log: log.clone(),
            };
            let url = format!("http://127.0.0.1:{port}");
            match service
                .wait_ready(&url, &(spec.bound)(port), spec.ready_path)
                .await
            {
                Ok(()) => return (service, url),
                Err(log_text) if log_text.contains(spec.clash) => {
                    last_log = log_text;
                    continue; // `service` is dropped (killed) here; next port.
                }
                Err(log_text) => panic!("{name} did not become ready on {url}:\n{log_text}"),
            }
        }
        panic!("{name} hit a port clash {START_ATTEMPTS} times; last log:\n{last_log}")
    }

    /// Polls until our own process has logged `bound` (the line it prints
    /// only after binding its port) and `ready_path` answers 200.
    ///
    /// The log check matters: when a parallel test's service already holds
    /// the port, the ready path answers 200 from *that* process while ours
    /// exits (Pushgateway 1.5 even exits with status 0 on a bind failure).
    /// Pushgateway and Prometheus log `msg="Listening on" address=…`, moto
    /// (Werkzeug) `Running on http://…`, only after a successful bind.
    /// Returns the log text when the process exited or the deadline passed.
    async fn wait_ready(&mut self, url: &str, bound: &str, ready_path: &str) -> Result<(), String> {
        let client = http();
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return Err(format!("(exited: {status})\n{}", self.log_text()));
            }
            if self.log_text().contains(bound) {
                let ready = client.get(format!("{url}{ready_path}")).send().await;
                if matches!(&ready, Ok(r) if r.status() == 200) {
                    return Ok(());
                }
            }
            if Instant::now() > deadline {
                return Err(format!("(timed out)\n{}", self.log_text()));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        // SIGKILL: nothing of these processes is worth a graceful shutdown,
        // and it cannot be ignored. Then reap, so no zombie outlives the test.
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!(
                "--- {} log ({}) ---\n{}",
                self.name,
                self.log.display(),
                self.log_text()
            );
        }
    }
}

/// Asks the kernel to SIGKILL the child when the thread that spawned it dies.
///
/// `Drop` covers panics; this covers the test process being killed outright
/// (a CI timeout, `kill -9`), which would otherwise leave Prometheus running.
/// The trigger is the spawning *thread*: a `#[tokio::test]` body runs on the
/// test's own thread for the whole test, so this never fires early there.
fn die_with_parent(command: &mut Command) {
    use std::os::unix::process::CommandExt;
    unsafe extern "C" {
        fn prctl(option: std::ffi::c_int, ...) -> std::ffi::c_int;
    }
    const PR_SET_PDEATHSIG: std::ffi::c_int = 1;
    const SIGKILL: std::ffi::c_ulong = 9;
    // SAFETY: `prctl(PR_SET_PDEATHSIG, …)` is async-signal-safe and touches
    // no memory of the forked parent, which is what `pre_exec` requires.
    unsafe {
        command.pre_exec(|| {
            prctl(PR_SET_PDEATHSIG, SIGKILL);
            Ok(())
        });
    }
}

/// A number from the environment variable `name` (a benchmark's
/// `DORA_BENCH_*` knob), or `default` when unset or not a number.
pub fn knob(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Runs `future` to completion on a multi-thread runtime of its own: a
/// benchmark's `main`.
pub fn block_on<F: std::future::Future>(future: F) -> F::Output {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime")
        .block_on(future)
}

/// A fresh temp dir named `prefix…`, removed when dropped.
pub fn tempdir(prefix: &str) -> TempDir {
    tempfile::Builder::new()
        .prefix(prefix)
        .tempdir()
        .expect("create temp dir")
}

/// The port of `http://127.0.0.1:PORT`.
pub fn port_of(url: &str) -> u16 {
    url.rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .expect("URL ends in :PORT")
}
