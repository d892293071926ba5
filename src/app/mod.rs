//! One run, in the order the data flows: inputs → [`begin`] (what the
//! inputs and the payload decide before any call) → [`connect`] (the
//! clients context) → [`run`]: the sources collect events, the stored
//! groups say which are new, the sinks record them, the report says what
//! happened. The only module that decides what happens in which order:
//! `collect` runs the sources, `record` reads what is stored, plans and
//! delivers.

mod collect;
mod record;

use collect::{Collected, collect, collect_issue};
use record::{Found, Read, print, record, retention};

use jiff::Timestamp;
use reqwest::Url;

use crate::actions;
use crate::clients::{Clients, Connected, connect};
use crate::dora;
use crate::dora::incident::Observed;
use crate::inputs::{Inputs, Mode, ReportFile, Runner, Settings, resolve};
use crate::report::Report;
use crate::sinks::pushgateway::Pushgateway;
use crate::sources::incidents;
use crate::sources::payload::{self, Observation, Rules};
use crate::{Error, Result};

/// The whole action, from environment pairs to an exit code. Every failure
/// ends here as one `::error::` line (or a `::warning::` when
/// `fail-on-error: false` allows it) and exit 1.
pub async fn main(vars: Vec<(String, String)>) -> u8 {
    mask_secrets(&vars);
    let runner = match Runner::from_env(&vars) {
        Ok(r) => r,
        Err(e) => return fail(&e, None),
    };
    let inputs = match Inputs::from_env(vars) {
        Ok(i) => i,
        Err(e) => return fail(&e, Some(&runner.files)),
    };
    if let Some(password) = inputs.pushgateway_url.as_ref().and_then(Url::password) {
        actions::mask(password);
    }
    let report = match execute(&inputs, &runner, Timestamp::now()).await {
        Ok(r) => r,
        Err(e) => return fail(&e, Some(&runner.files)),
    };
    let mut report = report;
    let written = write_report(&mut report, &inputs, &runner)
        .and_then(|()| runner.files.write_outputs(&report.outputs().pairs()))
        .and_then(|()| runner.files.write_summary(&report.markdown()));
    match (written, &report.refusal) {
        (Err(e), _) => fail(&e, None),
        (Ok(()), Some(refusal)) => {
            actions::error(refusal);
            1
        }
        (Ok(()), None) => 0,
    }
}

/// Writes the JSON report where `report-file` says (first, so the output
/// `report-file` names a file that is there), creating its folders, and
/// records its path: relative to the workspace when it is inside it, since a
/// container action sees the workspace at `/github/workspace` while the
/// later steps on the host see it elsewhere, and both start in it.
fn write_report(report: &mut Report, inputs: &Inputs, runner: &Runner) -> Result<()> {
    let workspace = runner.env.get("GITHUB_WORKSPACE").map(std::path::Path::new);
    let path = match (&inputs.report_file, workspace) {
        (ReportFile::Off, _) | (ReportFile::Default, None) => return Ok(()),
        (ReportFile::Default, Some(ws)) => ws.join("dora-report.json"),
        (ReportFile::Path(p), Some(ws)) => ws.join(p),
        (ReportFile::Path(p), None) => p.clone(),
    };
    let named = workspace
        .and_then(|ws| path.strip_prefix(ws).ok())
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(&path);
    report.report_file = Some(named.to_path_buf());
    let value = crate::report::json::report_json(report, &report.outputs(), Timestamp::now());
    let text = serde_json::to_string_pretty(&value).expect("a JSON value serialises");
    let failed = |e: std::io::Error| Error::Runner {
        path: path.display().to_string(),
        message: format!("cannot write the report (`report-file`): {e}"),
    };
    if let Some(folder) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(folder).map_err(failed)?;
    }
    std::fs::write(&path, text + "\n").map_err(failed)
}

/// Masks the secrets the environment brings, before anything could print them.
fn mask_secrets(vars: &[(String, String)]) {
    const SECRETS: [&str; 6] = [
        "INPUT_GITHUB-TOKEN",
        "INPUT_REMOTE-WRITE-BEARER-TOKEN",
        "INPUT_REMOTE-WRITE-PASSWORD",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "ACTIONS_ID_TOKEN_REQUEST_TOKEN",
    ];
    for (name, value) in vars {
        if SECRETS.contains(&name.as_str()) && !value.trim().is_empty() {
            actions::mask(value.trim());
        }
    }
    // A password in a URL input (or the runner's API URL), even one too
    // broken to parse.
    let keys = crate::inputs::URL_INPUTS
        .iter()
        .map(|name| format!("INPUT_{}", name.to_uppercase()))
        .chain(["GITHUB_API_URL".to_string()]);
    for key in keys {
        for (_, value) in vars.iter().filter(|(k, _)| *k == key) {
            for secret in crate::inputs::url_credentials(value.trim()) {
                actions::mask(&secret);
            }
        }
    }
}

/// Reports a failure: one `::error::` line, and a summary line when possible.
fn fail(e: &Error, files: Option<&actions::RunnerFiles>) -> u8 {
    actions::error(&e.to_string());
    if let Some(files) = files.filter(|f| f.summary.is_some()) {
        let _ = files.write_summary(&crate::report::failed_markdown(&e.to_string()));
    }
    1
}

/// `--help` before the input list, which comes from the input table
/// ([`crate::inputs::INPUTS`]), so it cannot miss an input.
const HELP_HEAD: &str = "\
dora-action: delivery signals as DORA metrics in Prometheus

A GitHub container action. It reads its inputs from INPUT_* variables and the
event from GITHUB_EVENT_NAME / GITHUB_EVENT_PATH, the way the runner passes
them; records the triggering deployment (event mode), the deploy workflows'
history from the REST API (workflows mode), or Flux revisions and Flagger
canary outcomes (cluster mode) in a Pushgateway, one group per event, reached
by URL or inside an EKS cluster through the API server, and/or in a durable
store through Prometheus remote-write (Amazon Managed Service for Prometheus,
Mimir, Thanos, VictoriaMetrics, Prometheus); and writes step outputs
(GITHUB_OUTPUT) and a job summary (GITHUB_STEP_SUMMARY), or prints both when
those are unset.

Usage: dora-action [--help | --version]

Run locally on an example event, without any server:
  env GITHUB_EVENT_NAME=workflow_run GITHUB_EVENT_PATH=examples/workflow_run.json \\
  INPUT_DRY-RUN=true dora-action

Inputs (INPUT_<NAME>, hyphens kept; see action.yml and docs/inputs-outputs.md):
";

const HELP_TAIL: &str = "
Exit status: 0 recorded or skipped, 1 an error (one ::error:: line says which).
";

/// The whole `--help` text.
pub fn help() -> String {
    format!("{HELP_HEAD}{}{HELP_TAIL}", crate::inputs::help_inputs())
}

/// The panic hook's report: one `::error::` line.
///
/// Never `println!` here: when stdout is what failed (a closed pipe, a full
/// disk), a panic inside the hook aborts the process with a bare message.
/// The runner reads workflow commands from stderr too.
pub fn report_panic(info: &str) {
    use std::io::Write;
    let line = format!(
        "::error::dora-action crashed (a bug, please report it): {}\n",
        actions::escape_data(info)
    );
    let mut stdout = std::io::stdout().lock();
    if stdout
        .write_all(line.as_bytes())
        .and_then(|()| stdout.flush())
        .is_err()
    {
        let _ = std::io::stderr().write_all(line.as_bytes());
    }
}

/// Diagnostics go to stderr, terse by default; `RUNNER_DEBUG=1` (the
/// runner's "debug logging" switch) or `RUST_LOG` turns on more.
pub fn init_logging(vars: &[(String, String)]) {
    let debug = vars.iter().any(|(k, v)| k == "RUNNER_DEBUG" && v == "1");
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        tracing_subscriber::EnvFilter::new(if debug { "dora_action=debug" } else { "warn" })
    });
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(|| actions::LogWriter)
        .with_ansi(false)
        .without_time()
        .with_target(false)
        .init();
}

/// A run from validated inputs: [`begin`], [`connect`], [`run`].
pub async fn execute(inputs: &Inputs, runner: &Runner, now: Timestamp) -> Result<Report> {
    let start = match begin(inputs, runner, now)? {
        Begun::Skip(report) => return Ok(*report),
        Begun::Go(start) => *start,
    };
    match connect(inputs, runner, start.mode).await? {
        Connected::Skip { reason, cluster } => {
            let mut report = start.report;
            report.cluster = cluster;
            Ok(skip(report, reason))
        }
        Connected::Ready(clients) => run(inputs, runner, start, &clients, now).await,
    }
}

/// What a run knows before it contacts anything.
pub struct Start {
    pub mode: Mode,
    /// The deployments' environment: the `environment` input, else the cluster's name.
    pub environment: String,
    /// The report so far (payload warnings among it).
    pub report: Report,
    /// Event mode: the payload's deployment and the payload.
    pub event: Option<(dora::Deploy, serde_json::Value)>,
    /// Event mode on an `issues` event: the incident it records or withdraws.
    pub issue: Option<Observed>,
}

/// A run goes on, or ends before any call with this report.
pub enum Begun {
    Skip(Box<Report>),
    Go(Box<Start>),
}

/// Everything the inputs and the payload decide before any call: the
/// mode, the requirements it has, and in event mode the deployment (a
/// payload that is no deployment, or one retention would prune at once,
/// ends the run here).
pub fn begin(inputs: &Inputs, runner: &Runner, now: Timestamp) -> Result<Begun> {
    let event_name = runner.event_name.as_deref().unwrap_or("");
    let Settings { mode, environment } = resolve(inputs, runner)?;
    let mut report = Report {
        job: inputs.job.clone(),
        dry_run: inputs.dry_run,
        retention: inputs.retention,
        server_url: runner.server_url.clone(),
        window: (mode == Mode::Workflows).then_some(inputs.lookback),
        charts: matches!(mode, Mode::Workflows | Mode::Cluster),
        ..Report::default()
    };
    if mode == Mode::Event && event_name == "issues" {
        let start = Start {
            mode,
            environment,
            report,
            event: None,
            issue: None,
        };
        return begin_issue(inputs, runner, start);
    }
    // Event mode reads its payload before any call: a non-deployment ends the run without one.
    let mut event = None;
    if mode == Mode::Event {
        let (path, value) = payload::read_payload(runner.event_path.as_deref())?;
        let rules = Rules {
            deploy_branches: &inputs.deploy_branches,
            environment: &environment,
        };
        match payload::parse_value(event_name, &value, &rules)
            .map_err(|message| Error::Payload { path, message })?
        {
            Observation::NotADeploy { reason } => {
                return Ok(Begun::Skip(Box::new(skip(report, reason))));
            }
            Observation::Deploy { deploy, warnings } => {
                report.warnings = warnings;
                if let Some(reason) = pruned_at_once(inputs, &deploy, now) {
                    if !inputs.dry_run {
                        return Ok(Begun::Skip(Box::new(skip(report, reason))));
                    }
                    // A dry run still shows what the event looks like (the README's example gets older every day).
                    report
                        .warnings
                        .push(format!("{reason}: a real run records nothing"));
                }
                event = Some((*deploy, value));
            }
        }
    }
    Ok(Begun::Go(Box::new(Start {
        mode,
        environment,
        report,
        event,
        issue: None,
    })))
}

/// Event mode on an `issues` event: the incident it records or withdraws,
/// or (an event that is no incident's) the end of the run.
fn begin_issue(inputs: &Inputs, runner: &Runner, start: Start) -> Result<Begun> {
    Ok(
        match incidents::read_event(inputs, runner.event_path.as_deref())? {
            Err(reason) => Begun::Skip(Box::new(skip(start.report, reason))),
            Ok(issue) => Begun::Go(Box::new(Start {
                issue: Some(issue),
                ..start
            })),
        },
    )
}

/// Why an event would be pruned by the same run that records it, if it would.
fn pruned_at_once(inputs: &Inputs, d: &dora::Deploy, now: Timestamp) -> Option<String> {
    (!retention(inputs).keeps(d.time, now)).then(|| {
        format!(
            "the event ({}) is older than `retention` and would be pruned at once",
            d.time
        )
    })
}

/// One run with its clients: collect, record, report.
pub async fn run(
    inputs: &Inputs,
    runner: &Runner,
    start: Start,
    clients: &Clients,
    now: Timestamp,
) -> Result<Report> {
    let Start {
        mode,
        environment,
        mut report,
        event,
        issue,
    } = start;
    report.cluster = clients.cluster.clone();
    report.destination = clients.pushgateway.as_ref().map(Pushgateway::display_url);
    let github = &clients.github;
    let mut collected = match issue {
        Some(issue) => collect_issue(clients, issue).await,
        None => {
            collect(
                inputs,
                runner,
                (mode, &environment),
                event,
                clients,
                now,
                &mut report.warnings,
            )
            .await?
        }
    };
    for e in &collected.failed {
        actions::warning(&format!("{e} (not failing: `fail-on-error` is false)"));
    }
    // `fail-on-error: false` and nothing read: there is nothing to deliver.
    // The run ends here, reported as failed (outputs count nothing).
    if !collected.failed.is_empty() && collected.deploys.is_empty() {
        report.failure = collected.failed.first().map(Error::to_string);
        for w in &report.warnings {
            actions::warning(w);
        }
        report.github_calls = github.calls();
        return Ok(report);
    }
    if mode != Mode::Event {
        let retention = retention(inputs);
        collected.deploys.retain(|d| retention.keeps(d.time, now));
    }
    let Collected {
        mut deploys,
        phases,
        deferred,
        stored,
        upkeep,
        observed,
        ..
    } = collected;
    let found = Found {
        phases: &phases,
        read: Read {
            done: stored,
            upkeep,
        },
        observed,
        environment: &environment,
    };
    if clients.pushgateway.is_none() && clients.remote.is_none() {
        print(inputs, github, &mut deploys, found, now, &mut report).await;
    } else {
        match record(inputs, clients, &mut deploys, found, now, &mut report).await {
            Ok(()) => {}
            Err(e) if e.is_delivery_failure() && !inputs.fail_on_error => {
                actions::warning(&format!("{e} (not failing: `fail-on-error` is false)"));
                report.failure = Some(e.to_string());
            }
            Err(e) => return Err(e),
        }
    }
    finish(&mut report, deploys, deferred, github.calls());
    Ok(report)
}

/// The end of a run that recorded: the warnings shown, what was recorded kept.
fn finish(
    report: &mut Report,
    deploys: Vec<dora::Deploy>,
    deferred: Option<Error>,
    github_calls: usize,
) {
    // Commit times are known now (a Flux revision's was looked up on delivery).
    for d in deploys.iter().filter(|d| d.has_future_commit()) {
        report.warnings.push(format!(
            "commit {} is dated after the deployment finished: recorded without lead time",
            d.sha
        ));
    }
    for w in &report.warnings {
        actions::warning(w);
    }
    report.github_calls = github_calls;
    report.recorded = deploys;
    // A source the cluster refused fails the run, after the others' events were delivered.
    report.refusal = deferred.map(|e| e.to_string());
}

/// Ends a run that records nothing: a notice saying why, and the summary's reason.
pub fn skip(mut report: Report, reason: String) -> Report {
    actions::notice(&format!("nothing recorded: {reason}"));
    report.skipped = Some(reason);
    report
}
