//! Wires the pieces together: inputs → payload → core → outside systems →
//! outputs and summary. The only module that decides what happens in which order.

use std::path::PathBuf;

use jiff::Timestamp;
use reqwest::{Client, Url};

use crate::actions::{self, RunnerFiles};
use crate::dora;
use crate::github::GitHub;
use crate::inputs::{Inputs, Mode};
use crate::payload::{self, Observation, Rules};
use crate::pushgateway::Pushgateway;
use crate::report::Report;
use crate::{Error, Result};

/// The runner's context, from the `GITHUB_*` variables.
#[derive(Debug, Clone)]
pub struct Runner {
    pub event_name: Option<String>,
    pub event_path: Option<PathBuf>,
    pub api_url: Url,
    pub server_url: String,
    pub files: RunnerFiles,
}

impl Runner {
    /// Reads the runner context from environment pairs; unset or empty
    /// variables fall back to github.com (a local run).
    pub fn from_env(vars: &[(String, String)]) -> Result<Runner> {
        let get = |name: &str| {
            vars.iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.trim().to_string())
                .filter(|v| !v.is_empty())
        };
        let api = get("GITHUB_API_URL").unwrap_or_else(|| "https://api.github.com".into());
        let api_url = Url::parse(&api)
            .map_err(|e| Error::input("GITHUB_API_URL", format!("invalid value `{api}`: {e}")))?;
        Ok(Runner {
            event_name: get("GITHUB_EVENT_NAME"),
            event_path: get("GITHUB_EVENT_PATH").map(PathBuf::from),
            api_url,
            server_url: get("GITHUB_SERVER_URL").unwrap_or_else(|| "https://github.com".into()),
            files: RunnerFiles {
                output: get("GITHUB_OUTPUT").map(PathBuf::from),
                summary: get("GITHUB_STEP_SUMMARY").map(PathBuf::from),
            },
        })
    }
}

/// The whole action, from environment pairs to an exit code. Every failure
/// ends here as one `::error::` line (or a `::warning::` when
/// `fail-on-error: false` allows it) and exit 1.
pub async fn main(vars: Vec<(String, String)>) -> u8 {
    // Before anything could print them: secrets among the inputs.
    for (name, value) in &vars {
        if name == "INPUT_GITHUB-TOKEN" && !value.trim().is_empty() {
            actions::mask(value.trim());
        }
    }
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
    let report = match run(&inputs, &runner, Timestamp::now()).await {
        Ok(r) => r,
        Err(e) => return fail(&e, Some(&runner.files)),
    };
    let written = runner
        .files
        .write_outputs(&report.outputs().pairs())
        .and_then(|()| runner.files.write_summary(&report.markdown()));
    match written {
        Ok(()) => 0,
        Err(e) => fail(&e, None),
    }
}

/// Reports a failure: one `::error::` line, and a summary line when possible.
fn fail(e: &Error, files: Option<&RunnerFiles>) -> u8 {
    actions::error(&e.to_string());
    if let Some(files) = files.filter(|f| f.summary.is_some()) {
        let _ = files.write_summary(&format!("### DORA metrics: failed\n\n{e}\n"));
    }
    1
}

/// One run: validates what the inputs imply, reads the event, records it.
pub async fn run(inputs: &Inputs, runner: &Runner, now: Timestamp) -> Result<Report> {
    let event_name = runner.event_name.as_deref().unwrap_or("");
    match (inputs.mode, event_name) {
        (Mode::Auto | Mode::Event, "workflow_run" | "deployment_status") => {}
        (Mode::Event, "") => {
            return Err(Error::input(
                "mode",
                "`event` needs GITHUB_EVENT_NAME and GITHUB_EVENT_PATH (set by the runner)",
            ));
        }
        (Mode::Event, other) => {
            return Err(Error::input(
                "mode",
                format!(
                    "`event` records `workflow_run` and `deployment_status` events; this run was triggered by `{other}`"
                ),
            ));
        }
        (Mode::Auto, other) => {
            let other = if other.is_empty() {
                "no event".to_string()
            } else {
                format!("event `{other}`")
            };
            return Err(Error::input(
                "mode",
                format!(
                    "`auto` chose cluster mode for {other}, which this version does not support yet; trigger the workflow on `workflow_run` or `deployment_status`"
                ),
            ));
        }
        (Mode::Workflows | Mode::Cluster, _) => unreachable!("refused by Inputs::parse"),
    }
    let pushgateway_url = match (&inputs.pushgateway_url, inputs.dry_run) {
        (Some(url), _) => Some(url.clone()),
        (None, true) => None,
        (None, false) => {
            return Err(Error::input(
                "pushgateway-url",
                "required: the URL of the Pushgateway to push to (or set `dry-run: true`)",
            ));
        }
    };
    let path = runner.event_path.clone().ok_or_else(|| {
        Error::input(
            "mode",
            "GITHUB_EVENT_PATH is not set: there is no event payload to read",
        )
    })?;
    let payload_error = |message: String| Error::Payload {
        path: path.display().to_string(),
        message,
    };
    let bytes = tokio::fs::read(&path)
        .await
        .map_err(|e| payload_error(format!("cannot read: {e}")))?;
    let environment = inputs
        .environment
        .clone()
        .or_else(|| inputs.cluster_name.clone())
        .unwrap_or_else(|| "default".into());
    let rules = Rules {
        deploy_branches: &inputs.deploy_branches,
        environment: &environment,
    };
    let observation = payload::parse(event_name, &bytes, &rules).map_err(payload_error)?;

    let http = Client::builder()
        .user_agent(concat!("dora-action/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| Error::Pushgateway(format!("cannot set up HTTP: {e}")))?;
    let mut report = Report {
        job: inputs.job.clone(),
        dry_run: inputs.dry_run,
        retention: inputs.retention,
        server_url: runner.server_url.clone(),
        destination: pushgateway_url
            .as_ref()
            .filter(|_| !inputs.dry_run)
            .map(|u| Pushgateway::new(u.clone(), http.clone()).display_url()),
        ..Report::default()
    };
    let (mut deploy, warnings) = match observation {
        Observation::NotADeploy { reason } => {
            actions::notice(&format!("nothing recorded: {reason}"));
            report.skipped = Some(reason);
            return Ok(report);
        }
        Observation::Deploy { deploy, warnings } => (*deploy, warnings),
    };
    report.warnings = warnings;

    if deploy.commit_time.is_none() && event_name == "deployment_status" {
        let github = GitHub::new(
            runner.api_url.clone(),
            inputs.github_token.clone(),
            http.clone(),
        );
        match github.commit_time(&deploy.repository, &deploy.sha).await {
            Ok(t) => deploy.commit_time = Some(t),
            Err(e) => report.warnings.push(format!(
                "commit time of {} unknown, recorded without lead time: {e}",
                deploy.sha
            )),
        }
        report.github_calls = github.calls();
    }
    if deploy.has_future_commit() {
        report.warnings.push(format!(
            "commit {} is dated after the deployment finished: recorded without lead time",
            deploy.sha
        ));
    }
    for w in &report.warnings {
        actions::warning(w);
    }
    if let Some(retention) = inputs.retention
        && deploy.time.as_second() < now.as_second() - retention as i64
    {
        let reason = format!(
            "the event ({}) is older than `retention` and would be pruned at once",
            deploy.time
        );
        if !inputs.dry_run {
            actions::notice(&format!("nothing recorded: {reason}"));
            report.skipped = Some(reason);
            return Ok(report);
        }
        // A dry run still shows what the event looks like (the README's example gets older every day).
        actions::warning(&format!("{reason}: a real run records nothing"));
        report
            .warnings
            .push(format!("{reason}: a real run records nothing"));
    }

    let group = dora::deploy_group(&deploy);
    report.recorded = vec![deploy];
    match pushgateway_url.filter(|_| !inputs.dry_run) {
        None => {
            let header = group
                .grouping
                .iter()
                .fold(format!("# group: job={}", inputs.job), |h, (k, v)| {
                    format!("{h} {k}={v:?}")
                });
            let text = format!("{header}\n{}", group.exposition);
            println!("{text}");
            report.exposition = Some(text);
        }
        Some(url) => {
            let pushgateway = Pushgateway::new(url, http);
            match deliver(&pushgateway, inputs, &group, now).await {
                Ok(pruned) => report.pruned = pruned,
                Err(e) if e.is_delivery_failure() && !inputs.fail_on_error => {
                    actions::warning(&format!("{e} (not failing: `fail-on-error` is false)"));
                    report.failure = Some(e.to_string());
                }
                Err(e) => return Err(e),
            }
        }
    }
    Ok(report)
}

/// Reads the stored groups, prunes this job's expired ones, then pushes the
/// event's group with one PUT. Returns how many groups were pruned.
///
/// The Pushgateway keeps an empty group behind after rejecting a push (400);
/// if the group did not exist before, that shell is deleted again, so a
/// failed run leaves no trace of the event.
async fn deliver(
    pushgateway: &Pushgateway,
    inputs: &Inputs,
    group: &dora::Group,
    now: Timestamp,
) -> Result<usize> {
    let stored = pushgateway.groups().await?;
    let mut pruned = 0;
    if let Some(retention) = inputs.retention {
        for expired in dora::expired(&stored, &inputs.job, now, retention) {
            pushgateway.delete(&expired.labels).await?;
            pruned += 1;
        }
    }
    let labels = group.labels(&inputs.job);
    let existed = stored.iter().any(|g| g.labels == labels);
    if let Err(e) = pushgateway
        .put(&inputs.job, &group.grouping, &group.exposition)
        .await
    {
        if !existed && pushgateway.delete(&labels).await.is_err() {
            tracing::warn!("could not remove the empty group a failed push may have left");
        }
        return Err(e);
    }
    Ok(pruned)
}
