//! The process's edge: environment pairs in, an exit code out. Masks the
//! secrets the environment brings before anything could print them, runs
//! [`app::execute`](crate::app::execute), writes the outputs and the summary,
//! and turns every failure into one `::error::` line; also `--help`, the
//! panic hook's report and the log set-up that `main.rs` wires in.

use jiff::Timestamp;
use reqwest::Url;

use crate::Error;
use crate::actions;
use crate::app::execute;
use crate::inputs::{Inputs, Runner};

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
    let written = runner
        .files
        .write_outputs(&report.outputs().pairs())
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
    // A password in a URL input, even one too broken to parse.
    for name in crate::inputs::URL_INPUTS {
        let key = format!("INPUT_{}", name.to_uppercase());
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

Inputs (INPUT_<NAME>, hyphens kept; see action.yml and README.md):
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
