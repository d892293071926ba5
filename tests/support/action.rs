//! The action binary run the way a runner runs a container action, and what
//! the run left behind ([`Outcome`]: exit code, output, `GITHUB_OUTPUT`,
//! `GITHUB_STEP_SUMMARY`).

use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tempfile::TempDir;

use super::process::tempdir;

/// Upper bound on one action run; a hung run is killed and the test fails.
const ACTION_TIMEOUT: Duration = Duration::from_secs(120);

/// One run of the `dora-action` binary, set up the way a runner sets up a
/// container action: `INPUT_*` variables, the event payload, `GITHUB_*`
/// context and fresh `GITHUB_OUTPUT` / `GITHUB_STEP_SUMMARY` files.
pub struct Action {
    env: BTreeMap<String, String>,
    dir: TempDir,
    output_file: Option<PathBuf>,
    summary_file: Option<PathBuf>,
    timeout: Duration,
    program: PathBuf,
    memory_limit: Option<u64>,
}

/// What a run left behind.
#[derive(Debug)]
pub struct Outcome {
    /// Exit status; `128 + signal` if the process was killed by a signal.
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
    /// `GITHUB_OUTPUT`, parsed; empty when the run had no runner files.
    pub outputs: BTreeMap<String, String>,
    /// `GITHUB_STEP_SUMMARY` as written; empty when the run had no runner files.
    pub summary: String,
    /// The JSON report the run wrote (output `report-file`), already checked
    /// against the schema and the outputs (see [`super::report`]).
    pub report: Option<serde_json::Value>,
    /// Every file in the run's dir (the workspace) after the run, by relative
    /// path: the dir itself goes with the [`Action`].
    pub files: std::collections::BTreeSet<String>,
    /// With [`Action::memory_limit`]: the process's peak resident memory in
    /// bytes (its `VmHWM`, polled), and whether it passed the limit and was killed.
    pub peak_rss: Option<(u64, bool)>,
}

impl Default for Action {
    fn default() -> Self {
        Self::new()
    }
}

impl Action {
    /// A run with an empty environment (the process env is cleared, so the
    /// host's `GITHUB_*`, `AWS_*` or proxy variables never leak in) plus the
    /// runner context every run has: `GITHUB_ACTIONS=true`,
    /// `GITHUB_REPOSITORY=octo-org/shop`, github.com server and API URLs,
    /// and empty output and summary files in a temp dir of its own.
    pub fn new() -> Action {
        let dir = tempdir("dora-action-");
        let output_file = dir.path().join("github_output");
        let summary_file = dir.path().join("step_summary");
        // The runner creates both files before the step starts.
        File::create(&output_file).expect("create GITHUB_OUTPUT file");
        File::create(&summary_file).expect("create GITHUB_STEP_SUMMARY file");
        let mut action = Action {
            env: BTreeMap::new(),
            dir,
            output_file: Some(output_file.clone()),
            summary_file: Some(summary_file.clone()),
            timeout: ACTION_TIMEOUT,
            program: PathBuf::from(env!("CARGO_BIN_EXE_dora-action")),
            memory_limit: None,
        };
        for (k, v) in [
            ("GITHUB_ACTIONS", "true"),
            ("GITHUB_REPOSITORY", "octo-org/shop"),
            ("GITHUB_SERVER_URL", "https://github.com"),
            ("GITHUB_API_URL", "https://api.github.com"),
        ] {
            action.env.insert(k.to_string(), v.to_string());
        }
        // The runner's workspace is the step's working directory: the JSON
        // report goes there by default, and every run's report is checked.
        let workspace = action.dir.path().display().to_string();
        action.env.insert("GITHUB_WORKSPACE".into(), workspace);
        let output = output_file.display().to_string();
        let summary = summary_file.display().to_string();
        action
            .env("GITHUB_OUTPUT", &output)
            .env("GITHUB_STEP_SUMMARY", &summary)
    }

    /// Sets input `name` as the runner does: `INPUT_` + the name uppercased,
    /// hyphens kept (`pushgateway-url` → `INPUT_PUSHGATEWAY-URL`).
    pub fn input(self, name: &str, value: &str) -> Self {
        let key = format!("INPUT_{}", name.to_uppercase());
        self.env(&key, value)
    }

    /// The triggering event: `GITHUB_EVENT_NAME` and `GITHUB_EVENT_PATH`.
    pub fn event(self, name: &str, payload: &Path) -> Self {
        let path = payload.display().to_string();
        self.env("GITHUB_EVENT_NAME", name)
            .env("GITHUB_EVENT_PATH", &path)
    }

    /// The event `name` with the fixture `tests/fixtures/{name}/{file}` as
    /// its payload: `.fixture_event("workflow_run", "success.json")`.
    pub fn fixture_event(self, name: &str, file: &str) -> Self {
        self.event(name, &super::fixtures::fixture(&format!("{name}/{file}")))
    }

    /// A `workflow_run` event: the success fixture with run id `id` (see
    /// [`super::fixtures::success_with_run_id`]).
    pub fn with_run_id(self, id: u64) -> Self {
        let payload = super::fixtures::success_with_run_id(self.dir(), id);
        self.event("workflow_run", &payload)
    }

    /// A `schedule` event (cron `cron`) of `octo-org/shop`, whose payload
    /// carries the repository and its default branch `main`, written to
    /// this run's dir.
    pub fn scheduled(self, cron: &str) -> Self {
        let payload = self.dir().join("schedule.json");
        let body = serde_json::json!({
            "schedule": cron,
            "repository": {"full_name": "octo-org/shop", "default_branch": "main"}
        });
        std::fs::write(&payload, body.to_string()).expect("write the schedule payload");
        self.event("schedule", &payload)
    }

    /// Sets (or overrides) any environment variable.
    pub fn env(mut self, key: &str, value: &str) -> Self {
        self.env.insert(key.to_string(), value.to_string());
        self
    }

    /// Removes a variable set by [`Action::new`] or earlier calls.
    pub fn unset(mut self, key: &str) -> Self {
        self.env.remove(key);
        self
    }

    /// A local run: no `GITHUB_OUTPUT` / `GITHUB_STEP_SUMMARY`, as outside a
    /// runner. The outcome's `outputs` and `summary` are then empty.
    pub fn without_runner_files(mut self) -> Self {
        self.env.remove("GITHUB_OUTPUT");
        self.env.remove("GITHUB_STEP_SUMMARY");
        self.output_file = None;
        self.summary_file = None;
        self
    }

    /// Overrides the 120 s limit, e.g. to prove a retry loop gives up in time.
    pub fn timeout(mut self, limit: Duration) -> Self {
        self.timeout = limit;
        self
    }

    /// Watches the run's peak resident memory (see [`Outcome::peak_rss`]),
    /// and kills it as soon as it passes `bytes`: a run that reads a huge
    /// answer whole fails its test at the limit, instead of taking the
    /// machine's memory.
    pub fn memory_limit(mut self, bytes: u64) -> Self {
        self.memory_limit = Some(bytes);
        self
    }

    /// Runs another build of the action instead of cargo's, e.g. the static
    /// musl binary the image ships (the benchmark measures that one).
    pub fn program(mut self, path: &Path) -> Self {
        self.program = path.to_path_buf();
        self
    }

    /// The temp dir of this run (working directory of the process), for a
    /// test that needs to put more files next to it.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// [`Action::run`], then [`Outcome::assert_code`]`(code)`.
    pub async fn run_expecting(self, code: i32) -> Outcome {
        let out = self.run().await;
        out.assert_code(code);
        out
    }

    /// [`Action::run`], and how long the run took (for tests of time bounds).
    pub async fn run_timed(self) -> (Outcome, Duration) {
        let start = std::time::Instant::now();
        let out = self.run().await;
        (out, start.elapsed())
    }

    /// Runs the binary (`CARGO_BIN_EXE_dora-action`) with exactly this
    /// environment and waits at most 120 s (see [`Action::timeout`]); a run
    /// that hangs is killed and the test panics. Reads back the output and summary files.
    pub async fn run(self) -> Outcome {
        let mut command = tokio::process::Command::new(&self.program);
        command
            .env_clear()
            .envs(&self.env)
            .current_dir(self.dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let mut child = command.spawn().expect("spawn dora-action");
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let watcher = self.memory_limit.map(|limit| {
            let pid = child.id().expect("a running child has a pid");
            let stop = stop.clone();
            let name = self
                .program
                .file_name()
                .map(|n| n.to_string_lossy().chars().take(15).collect::<String>())
                .unwrap_or_default();
            std::thread::spawn(move || watch_memory(pid, &name, limit, &stop))
        });
        // Drain both pipes concurrently (a full pipe would block the child)
        // and independently of `wait`, so a hung run's output is still shown.
        let stdout = drain(child.stdout.take().expect("piped stdout"));
        let stderr = drain(child.stderr.take().expect("piped stderr"));
        let status = match tokio::time::timeout(self.timeout, child.wait()).await {
            Ok(status) => status.expect("wait for dora-action"),
            Err(_) => {
                // Kill and reap; the pipes then close and the drains finish.
                let _ = child.kill().await;
                panic!(
                    "dora-action did not finish within {:?} and was killed\n\
                     --- stdout ---\n{}\n--- stderr ---\n{}\n--- env ---\n{:#?}",
                    self.timeout,
                    stdout.await.expect("stdout reader"),
                    stderr.await.expect("stderr reader"),
                    self.env
                );
            }
        };
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        let peak_rss = watcher.map(|w| w.join().expect("memory watcher"));
        let stdout = stdout.await.expect("stdout reader");
        let stderr = stderr.await.expect("stderr reader");
        let code = status.code().unwrap_or_else(|| {
            use std::os::unix::process::ExitStatusExt;
            128 + status.signal().unwrap_or(0)
        });
        let outputs = match &self.output_file {
            Some(path) => {
                let text = std::fs::read_to_string(path).unwrap_or_default();
                parse_output_file(&text).unwrap_or_else(|e| {
                    panic!(
                        "GITHUB_OUTPUT is malformed ({e}); the runner would fail the step.\n\
                         --- file ---\n{text}\n--- stderr ---\n{}",
                        stderr
                    )
                })
            }
            None => BTreeMap::new(),
        };
        let summary = self
            .summary_file
            .as_ref()
            .map(|p| std::fs::read_to_string(p).unwrap_or_default())
            .unwrap_or_default();
        let report = self.checked_report(&outputs, &stderr);
        let files = files_below(self.dir.path());
        Outcome {
            code,
            stdout,
            stderr,
            outputs,
            summary,
            report,
            files,
            peak_rss,
        }
    }

    /// The report the output `report-file` names (relative to
    /// `GITHUB_WORKSPACE`, as a later step opens it), parsed; panics when it
    /// is missing, breaks the schema or disagrees with the outputs.
    fn checked_report(
        &self,
        outputs: &BTreeMap<String, String>,
        stderr: &str,
    ) -> Option<serde_json::Value> {
        let named = outputs.get("report-file").filter(|p| !p.is_empty())?;
        let path = match self.env.get("GITHUB_WORKSPACE") {
            Some(ws) => Path::new(ws).join(named),
            None => self.dir.path().join(named),
        };
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
            panic!("output report-file names {named:?}, not readable ({e})\n{stderr}")
        });
        let report: serde_json::Value = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("the report is not JSON ({e}):\n{text}"));
        let broken = super::report::schema_errors(&report);
        assert!(
            broken.is_empty(),
            "the report breaks docs/report.schema.json:\n{}\n--- report ---\n{text}",
            broken.join("\n")
        );
        let wrong = super::report::disagreements(&report, outputs);
        assert!(
            wrong.is_empty(),
            "the report's numbers are not the outputs':\n{}\n--- outputs ---\n{outputs:#?}\n--- report ---\n{text}",
            wrong.join("\n")
        );
        Some(report)
    }
}

/// The files below `dir`, by path relative to it.
fn files_below(dir: &Path) -> std::collections::BTreeSet<String> {
    let mut files = std::collections::BTreeSet::new();
    let mut folders = vec![dir.to_path_buf()];
    while let Some(folder) = folders.pop() {
        for entry in std::fs::read_dir(&folder).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                folders.push(path);
            } else if let Ok(rel) = path.strip_prefix(dir) {
                files.insert(rel.display().to_string());
            }
        }
    }
    files
}

/// The action's `--help` text (the run must succeed).
pub fn help() -> String {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_dora-action"))
        .arg("--help")
        .output()
        .expect("run dora-action --help");
    assert!(out.status.success(), "--help exits 0: {}", out.status);
    String::from_utf8(out.stdout).expect("--help is UTF-8")
}

/// Polls `/proc/<pid>/status` every few milliseconds until `stop`: the
/// highest `VmHWM` (the kernel's own high-water mark of the process's
/// resident memory, so a peak between two polls is not missed) while the
/// process is the action (its `Name`: before `exec` the pid still shows the
/// test process). Kills it with SIGKILL once past `limit`. Returns the peak
/// in bytes and whether it was killed.
fn watch_memory(
    pid: u32,
    name: &str,
    limit: u64,
    stop: &std::sync::atomic::AtomicBool,
) -> (u64, bool) {
    let path = format!("/proc/{pid}/status");
    let mut peak = 0u64;
    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
        if let Ok(status) = std::fs::read_to_string(&path) {
            let field = |key: &str| {
                status
                    .lines()
                    .find_map(|l| l.strip_prefix(key))
                    .map(str::trim)
            };
            if field("Name:") == Some(name)
                && let Some(kib) = field("VmHWM:")
                    .and_then(|v| v.trim_end_matches("kB").trim().parse::<u64>().ok())
            {
                peak = peak.max(kib * 1024);
                if peak > limit {
                    // SAFETY: a signal to our own, not yet reaped, child.
                    unsafe { libc::kill(pid as libc::pid_t, libc::SIGKILL) };
                    return (peak, true);
                }
            }
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    (peak, false)
}

/// Reads a child's pipe to the end on a task of its own, lossily as UTF-8.
fn drain(
    mut pipe: impl tokio::io::AsyncRead + Unpin + Send + 'static,
) -> tokio::task::JoinHandle<String> {
    tokio::spawn(async move {
        let mut bytes = Vec::new();
        let _ = tokio::io::AsyncReadExt::read_to_end(&mut pipe, &mut bytes).await;
        String::from_utf8_lossy(&bytes).into_owned()
    })
}

/// Parses a `GITHUB_OUTPUT` file as the runner does: `name=value` lines and
/// `name<<DELIMITER` … `DELIMITER` blocks (the value is the lines between,
/// joined with `\n`). A line with both forms is `name=value` if `=` comes
/// first. Empty lines between entries are skipped; a later entry for the same
/// name wins. Errors where the runner would fail the step.
pub fn parse_output_file(text: &str) -> Result<BTreeMap<String, String>, String> {
    let mut outputs = BTreeMap::new();
    let mut lines = text.split('\n');
    while let Some(line) = lines.next() {
        if line.is_empty() {
            continue;
        }
        let eq = line.find('=');
        let heredoc = line.find("<<");
        match (eq, heredoc) {
            (Some(i), h) if h.is_none_or(|h| i < h) => {
                let name = &line[..i];
                if name.is_empty() {
                    return Err(format!("empty name in {line:?}"));
                }
                outputs.insert(name.to_string(), line[i + 1..].to_string());
            }
            (_, Some(h)) => {
                let (name, delimiter) = (&line[..h], &line[h + 2..]);
                if name.is_empty() || delimiter.is_empty() {
                    return Err(format!("empty name or delimiter in {line:?}"));
                }
                let mut value = Vec::new();
                loop {
                    match lines.next() {
                        Some(l) if l == delimiter => break,
                        Some(l) => value.push(l),
                        None => {
                            return Err(format!("{name}: delimiter {delimiter:?} never closed"));
                        }
                    }
                }
                outputs.insert(name.to_string(), value.join("\n"));
            }
            _ => return Err(format!("neither name=value nor name<<DELIMITER: {line:?}")),
        }
    }
    Ok(outputs)
}

impl Outcome {
    /// Panics, showing everything the run printed, unless it exited with `code`.
    pub fn assert_code(&self, code: i32) -> &Self {
        if self.code != code {
            panic!(
                "dora-action exited {} (want {code})\n--- stdout ---\n{}\n--- stderr ---\n{}\n\
                 --- outputs ---\n{:#?}\n--- summary ---\n{}",
                self.code, self.stdout, self.stderr, self.outputs, self.summary
            );
        }
        self
    }

    /// Output `name`; panics listing the outputs there are if it is missing.
    pub fn output(&self, name: &str) -> &str {
        self.outputs
            .get(name)
            .map(String::as_str)
            .unwrap_or_else(|| panic!("no output {name:?}; outputs: {:#?}", self.outputs))
    }

    /// Panics, showing the summary, unless it contains `text`.
    pub fn assert_summary_says(&self, text: &str) {
        assert!(self.summary.contains(text), "{}", self.summary);
    }

    /// The outputs `events`, `deployments` and `failures`.
    pub fn counts(&self) -> (&str, &str, &str) {
        (
            self.output("events"),
            self.output("deployments"),
            self.output("failures"),
        )
    }

    /// Panics unless `secret` was `::add-mask::`ed (so the runner hides it in the log).
    pub fn assert_masked(&self, secret: &str) {
        let masked = format!("::add-mask::{secret}");
        assert!(
            self.stdout.lines().any(|l| l == masked),
            "{secret} was not masked: {}",
            self.stdout
        );
    }

    /// Panics if any secret appears in stdout (but for its own `::add-mask::`
    /// command, which the runner consumes), stderr, the summary or the outputs.
    pub fn assert_no_secret(&self, secrets: &[&str]) {
        for secret in secrets.iter().filter(|s| !s.is_empty()) {
            let masked = format!("::add-mask::{secret}");
            let rest: Vec<&str> = self.stdout.lines().filter(|l| *l != masked).collect();
            assert!(
                !rest.join("\n").contains(secret),
                "a secret leaked to stdout: {}",
                self.stdout
            );
            assert!(!self.stderr.contains(secret), "a secret leaked to stderr");
            assert!(
                !self.summary.contains(secret),
                "a secret leaked to the summary"
            );
            assert!(
                self.outputs.values().all(|v| !v.contains(secret)),
                "a secret leaked to the outputs"
            );
        }
    }

    /// The one `::error` line, which must contain every one of `parts`.
    pub fn the_error(&self, parts: &[&str]) -> &str {
        self.the_one("error", self.error_lines(), parts)
    }

    /// The one `::warning` line, which must contain every one of `parts`.
    pub fn the_warning(&self, parts: &[&str]) -> &str {
        self.the_one("warning", self.warning_lines(), parts)
    }

    fn the_one<'a>(&self, kind: &str, lines: Vec<&'a str>, parts: &[&str]) -> &'a str {
        assert_eq!(lines.len(), 1, "want one ::{kind}:: line\n{}", self.stdout);
        for part in parts {
            assert!(
                lines[0].contains(part),
                "the {kind} should say {part:?}: {}",
                lines[0]
            );
        }
        lines[0]
    }

    /// Stdout lines that are `::error` workflow commands.
    pub fn error_lines(&self) -> Vec<&str> {
        self.command_lines("::error")
    }

    /// Stdout lines that are `::warning` workflow commands.
    pub fn warning_lines(&self) -> Vec<&str> {
        self.command_lines("::warning")
    }

    /// Stdout lines that are `::notice` workflow commands.
    pub fn notice_lines(&self) -> Vec<&str> {
        self.command_lines("::notice")
    }

    /// Workflow commands are read from stdout line by line, so only whole
    /// stdout lines starting with the command count.
    fn command_lines(&self, prefix: &str) -> Vec<&str> {
        self.stdout
            .lines()
            .filter(|l| {
                l.strip_prefix(prefix)
                    .is_some_and(|rest| rest.starts_with("::") || rest.starts_with(' '))
            })
            .collect()
    }
}
