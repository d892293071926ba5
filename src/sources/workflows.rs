//! Workflows mode: the deploy workflows' completed runs in the lookback
//! window, from GitHub REST, as events.

use jiff::Timestamp;

use crate::dora;
use crate::github::GitHub;
use crate::inputs::{Branches, Inputs};
use crate::sources::payload::{self, Observation, Rules};
use crate::{Error, Result};

/// Workflows mode: every completed run of each workflow in the lookback
/// window, as events (⌈runs/100⌉ list calls per workflow).
///
/// A GitHub failure fails the run, unless `fail-on-error` is false: then it
/// is returned beside the events of the workflows that could be read (the
/// caller warns), so one unreadable workflow costs no other's events.
pub async fn workflow_history(
    github: &GitHub,
    inputs: &Inputs,
    repository: &str,
    default_branch: Option<String>,
    rules: &Rules<'_>,
    now: Timestamp,
    warnings: &mut Vec<String>,
) -> Result<(Vec<dora::Deploy>, Vec<Error>)> {
    let github_history = github;
    let mut failed = Vec::new();
    let tolerated = |e: Error, failed: &mut Vec<Error>| {
        if e.is_delivery_failure() && !inputs.fail_on_error {
            failed.push(e);
            Ok(())
        } else {
            Err(e)
        }
    };
    let default_branch = match (&inputs.deploy_branches, default_branch) {
        (Branches::DefaultBranch, None) => match github_history.default_branch(repository).await {
            Ok(branch) => Some(branch),
            Err(e) => {
                tolerated(e, &mut failed)?;
                return Ok((Vec::new(), failed));
            }
        },
        (_, known) => known,
    };
    // A single exact branch narrows the listing on GitHub's side.
    let branch = match &inputs.deploy_branches {
        Branches::DefaultBranch => default_branch.clone(),
        Branches::Patterns(p) if p.len() == 1 && !p[0].contains('*') => Some(p[0].clone()),
        Branches::Patterns(_) => None,
    };
    let since = now
        .saturating_sub(jiff::SignedDuration::from_secs(inputs.lookback as i64))
        .unwrap_or(now);
    let mut deploys = Vec::new();
    for workflow in &inputs.workflows {
        let runs = match github_history
            .workflow_runs(repository, workflow, since, branch.as_deref(), usize::MAX)
            .await
        {
            Ok(runs) => runs,
            Err(e) => {
                tolerated(e, &mut failed)?;
                continue;
            }
        };
        for run in runs {
            let id = run.get("id").cloned().unwrap_or_default();
            match payload::rest_run(run, repository, default_branch.as_deref(), rules) {
                Ok(Observation::Deploy { deploy, .. }) => deploys.push(*deploy),
                Ok(Observation::NotADeploy { .. }) => {}
                Err(e) => warnings.push(format!("workflow {workflow}: run {id} skipped: {e}")),
            }
        }
    }
    dora::annotate(&mut deploys);
    Ok((deploys, failed))
}
