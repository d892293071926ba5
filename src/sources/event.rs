//! Event mode: the triggering payload's deployment, completed with what
//! GitHub says about it (its workflow's recent runs, its commit's time).

use crate::dora;
use crate::github::GitHub;
use crate::inputs::Inputs;
use crate::sources::lookups;
use crate::sources::payload::{self, Observation, Rules};

/// Event mode: the event's deployment, with what its workflow's recent runs
/// say about it (recovery time, the previous success), from one list call.
/// A `deployment_status` also needs its commit's time (one call). Failed
/// look-ups degrade to warnings: the deployment is still recorded.
pub async fn event_with_history(
    github: &GitHub,
    inputs: &Inputs,
    mut deploy: dora::Deploy,
    payload: Option<&serde_json::Value>,
    event_name: &str,
    warnings: &mut Vec<String>,
) -> Vec<dora::Deploy> {
    if event_name == "deployment_status" {
        match github.commit_time(&deploy.repository, &deploy.sha).await {
            Ok(t) => deploy.commit_time = Some(t),
            Err(e) => warnings.push(format!(
                "commit time of {} unknown, recorded without lead time: {e}",
                deploy.sha
            )),
        }
        return vec![deploy];
    }
    if inputs.github_token.is_none() {
        warnings.push("no `github-token`: the workflow's recent runs were not read, so recovery time and the changes shipped are unknown".into());
        return vec![deploy];
    }
    let Some(workflow_id) = payload
        .and_then(|v| v.pointer("/workflow_run/workflow_id"))
        .and_then(|v| v.as_u64())
    else {
        return vec![deploy];
    };
    let since = deploy
        .time
        .saturating_sub(jiff::SignedDuration::from_secs(inputs.lookback as i64))
        .unwrap_or(deploy.time);
    let default_branch = payload
        .and_then(|v| v.pointer("/repository/default_branch"))
        .and_then(|v| v.as_str());
    let rules = Rules {
        deploy_branches: &inputs.deploy_branches,
        environment: &deploy.environment,
    };
    let runs = match github
        .workflow_runs(
            &deploy.repository,
            &workflow_id.to_string(),
            since,
            Some(&deploy.branch),
            1,
        )
        .await
    {
        Ok(runs) => runs,
        Err(e) => {
            warnings.push(format!(
                "the workflow's recent runs are unknown, so recovery time is too: {e}"
            ));
            return vec![deploy];
        }
    };
    let mut all: Vec<dora::Deploy> = runs
        .into_iter()
        .filter_map(|run| match payload::rest_run(run, &deploy.repository, default_branch, &rules) {
            Ok(Observation::Deploy { deploy, .. }) => Some(*deploy),
            _ => None,
        })
        // The event itself is authoritative (the list shows only a run's latest attempt).
        .filter(|d| !matches!((&d.key, &deploy.key), (dora::EventKey::Run { run_id: a, .. }, dora::EventKey::Run { run_id: b, .. }) if a == b))
        .filter(|d| d.time <= deploy.time)
        .collect();
    all.push(deploy);
    dora::annotate(&mut all);
    let mut event: Vec<dora::Deploy> = all.pop().into_iter().collect();
    // The changes it shipped are asked for now, not once the stored groups
    // tell the event is new: that would put the compare call after the
    // listing on the critical path. Only a re-run of a recorded event pays
    // for it, with one call.
    lookups::changes_of_new(github, &mut event, &[true], warnings).await;
    // Asked once: a failed look-up (already a warning) is not repeated on delivery.
    for d in event.iter_mut().filter(|d| d.history.changes.is_none()) {
        d.history.previous_success_sha = None;
    }
    event
}
