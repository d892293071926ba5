//! Where a run's events go: the [`pushgateway`] (by URL, or through a
//! tunnel such as the Kubernetes API server's service proxy), a
//! [`remote_write`] store, or, with neither, the [`dry_run`] printer. Each
//! carries out a [`Plan`]; none decides what to record.

pub mod dry_run;
pub mod pushgateway;
pub mod remote_query;
pub mod remote_write;

use futures_util::StreamExt;
use jiff::Timestamp;

use crate::dora::Group;
use crate::dora::incident_plan::IncidentPlan;
use crate::dora::plan::{Plan, Push};
use crate::report::{RemoteWriteState, Report};
use crate::{Error, Failure, Result};
use pushgateway::Pushgateway;
use remote_write::RemoteWrite;

/// Carries out `plan`: writes the remote-write store, then prunes and
/// pushes the Pushgateway (a few PUTs at a time). What was done is counted
/// in `report`.
///
/// Remote-write goes first: if it fails, nothing is pushed to the
/// Pushgateway either, so the next run still sees the events as new and
/// writes both (the store takes a repeated sample as already there).
/// Without a Pushgateway there is nothing to tell what is recorded: every
/// event is completed and written, and the store keeps one sample per series
/// and timestamp.
pub async fn deliver(
    plan: Plan,
    pushgateway: Option<&Pushgateway>,
    remote: Option<&RemoteWrite>,
    job: &str,
    now: Timestamp,
    report: &mut Report,
) -> Result<()> {
    report.new_events = plan.events.len();
    report.already_recorded = plan.already_recorded;
    if let Some(remote) = remote {
        write_remote(&plan, remote, job, now, report).await?;
    }
    let Some(pushgateway) = pushgateway else {
        report.canary_phases = plan.phases.len();
        return Ok(());
    };
    for labels in &plan.delete {
        pushgateway.delete(labels).await?;
        report.pruned += 1;
    }
    report.canary_phases = plan.changed_phases;
    report.upgraded = plan.upgraded;
    push_all(pushgateway, job, &plan.push).await
}

/// The new events at their own times, and every canary phase at the run's
/// time (phases are state).
async fn write_remote(
    plan: &Plan,
    remote: &RemoteWrite,
    job: &str,
    now: Timestamp,
    report: &mut Report,
) -> Result<()> {
    let units: Vec<remote_write::Unit> = plan
        .events
        .iter()
        .map(|(g, t)| remote_series(g, job, *t))
        .chain(plan.phases.iter().map(|g| remote_series(g, job, now)))
        .collect();
    let written = remote.write(&units).await?;
    report.remote_write = Some(RemoteWriteState {
        url: remote.display_url(),
        accepted: written.accepted,
        already_stored: written.already_stored,
        requests: written.requests,
    });
    Ok(())
}

/// Every push, [`PUSH_CONCURRENCY`] at a time. All are tried; the error
/// counts the failed ones and keeps the first one's status and cause.
async fn push_all(pushgateway: &Pushgateway, job: &str, pushes: &[Push]) -> Result<()> {
    let results: Vec<Result<()>> = futures_util::stream::iter(
        pushes
            .iter()
            .map(|p| pushgateway.put(job, &p.group.grouping, &p.group.exposition, p.fresh)),
    )
    .buffer_unordered(PUSH_CONCURRENCY)
    .collect()
    .await;
    let mut failed = results.into_iter().filter_map(Result::err);
    let Some(first) = failed.next() else {
        return Ok(());
    };
    let n = 1 + failed.count();
    // The first failure, its status and cause kept, its text without the
    // `pushgateway: ` the whole error starts with already.
    let first = match first {
        Error::Pushgateway(failure) => failure,
        other => Failure::new(other.to_string()),
    };
    Err(Error::Pushgateway(Failure {
        message: format!(
            "{n} of {} groups not pushed; first: {}",
            pushes.len(),
            first.message
        ),
        ..first
    }))
}

/// One group's series for remote-write, each sample at `time` (milliseconds).
fn remote_series(group: &Group, job: &str, time: Timestamp) -> remote_write::Unit {
    group
        .series(job)
        .into_iter()
        .map(|(labels, value)| remote_write::TimeSeries::new(labels, value, time.as_millisecond()))
        .collect()
}

/// Pushes in flight at once: enough to hide latency, few enough for a small Pushgateway.
const PUSH_CONCURRENCY: usize = 8;

/// Carries out the incidents' part of a run: their groups written to the
/// remote-write store at their own times, then the Pushgateway's withdrawn
/// groups deleted and the new or changed ones pushed. What was done is
/// kept in `report`.
pub async fn deliver_incidents(
    plan: IncidentPlan,
    pushgateway: Option<&Pushgateway>,
    remote: Option<&RemoteWrite>,
    job: &str,
    report: &mut Report,
) -> Result<()> {
    if let Some(remote) = remote.filter(|_| !plan.events.is_empty()) {
        let units: Vec<remote_write::Unit> = plan
            .events
            .iter()
            .map(|(g, t)| remote_series(g, job, *t))
            .collect();
        remote.write(&units).await?;
    }
    if let Some(pushgateway) = pushgateway {
        for (_, labels) in &plan.withdrawn {
            pushgateway.delete(labels).await?;
        }
        push_all(pushgateway, job, &plan.push).await?;
    }
    report.incidents = plan.pinned;
    report.withdrawn = plan.withdrawn.into_iter().map(|(w, _)| w).collect();
    report.reverts = plan.reverts;
    Ok(())
}
