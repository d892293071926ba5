//! The delivery of a run's events (being split into `dora::plan` and
//! `sinks`); the runner context and the mode are in `inputs` now.

use jiff::Timestamp;

use std::collections::BTreeMap;

use crate::dora;
use crate::github::GitHub;
use crate::http;
use crate::inputs::Inputs;
use crate::pushgateway::{self, Listing, Pushgateway};
use crate::remote_write::{self, RemoteWrite};
use crate::report::{RemoteWriteState, Report};
use crate::sources::lookups;
use crate::{Error, Failure, Result};
use futures_util::StreamExt;

/// `# group: job=dora repository="…" …`, the line a dry run prints above each group.
pub(crate) fn group_header(job: &str, group: &dora::Group) -> String {
    group
        .grouping
        .iter()
        .fold(format!("# group: job={job}"), |h, (k, v)| {
            format!("{h} {k}={v:?}")
        })
}

/// Reads the stored groups (unless the caller did), finds which events are
/// new, completes them (see [`complete`]), writes them to the remote-write
/// store, prunes this job's expired groups, then pushes each new event with
/// one PUT (a few at a time), and the canary phases. Events already stored
/// are left as they are: re-running changes nothing.
///
/// Remote-write goes first: if it fails, nothing is pushed to the
/// Pushgateway either, so the next run still sees the events as new and
/// writes both (the store takes a repeated sample as already there).
/// Without a Pushgateway there is nothing to tell what is recorded: every
/// event is completed and written, and the store keeps one sample per series
/// and timestamp.
///
/// The Pushgateway keeps an empty group behind after rejecting a push (400);
/// if the group did not exist before, that shell is deleted again, so a
/// failed push leaves no trace of the event.
#[allow(
    clippy::too_many_arguments,
    reason = "each is a distinct piece of the run; a struct would only rename them"
)]
pub(crate) async fn deliver(
    pushgateway: Option<&Pushgateway>,
    stored: Option<Result<Listing>>,
    remote: Option<&RemoteWrite>,
    github: &GitHub,
    inputs: &Inputs,
    deploys: &mut [dora::Deploy],
    phases: Vec<dora::CanaryPhase>,
    now: Timestamp,
    report: &mut Report,
) -> Result<()> {
    let listing = match (stored, pushgateway) {
        (Some(read), _) => read?,
        (None, Some(p)) => p.listing().await?,
        (None, None) => Listing::default(),
    };
    if listing.skipped > 0 {
        report.warnings.push(format!(
            "{} stored groups larger than {} were skipped unread (the groups this action writes are a few KB)",
            listing.skipped,
            http::size(pushgateway::GROUP_LIMIT)
        ));
    }
    let stored = listing.groups;
    // Stored groups by their labels: a look-up per event, not a scan of
    // every stored group (thousands of both on a first cluster-mode run).
    let by_labels: BTreeMap<&dora::SmallMap<String>, &dora::StoredGroup> =
        stored.iter().map(|g| (&g.labels, g)).collect();
    let new: Vec<bool> = deploys
        .iter()
        .map(|d| {
            let labels = dora::SmallMap::from(dora::group_labels(d, &inputs.job));
            !by_labels
                .get(&labels)
                .is_some_and(|g| dora::is_recorded(g, d))
        })
        .collect();
    lookups::complete(github, deploys, &stored, &new, &mut report.warnings).await;
    // What is already recorded is reported as recorded: a re-run gives the
    // same outputs and summary as the run that recorded it.
    for (d, _) in deploys.iter_mut().zip(&new).filter(|(_, n)| !**n) {
        let labels = dora::SmallMap::from(dora::group_labels(d, &inputs.job));
        if let Some(g) = by_labels.get(&labels) {
            dora::adopt_recorded(d, g);
        }
    }
    let events: Vec<(dora::Group, Timestamp)> = deploys
        .iter()
        .zip(&new)
        .filter(|(_, n)| **n)
        .map(|(d, _)| (dora::deploy_group(d), d.time))
        .collect();
    report.new_events = events.len();
    report.already_recorded = deploys.len() - events.len();

    if let Some(remote) = remote {
        // Phases are state: every run writes each canary's phase at the run's time.
        let units: Vec<remote_write::Unit> = events
            .iter()
            .map(|(g, t)| remote_series(g, &inputs.job, *t))
            .chain(
                phases
                    .iter()
                    .map(|p| remote_series(&p.group(), &inputs.job, now)),
            )
            .collect();
        let written = remote.write(&units).await?;
        report.remote_write = Some(RemoteWriteState {
            url: remote.display_url(),
            accepted: written.accepted,
            already_stored: written.already_stored,
            requests: written.requests,
        });
    }
    let Some(pushgateway) = pushgateway else {
        report.canary_phases = phases.len();
        return Ok(());
    };

    if let Some(retention) = inputs.retention {
        for expired in dora::expired(&stored, &inputs.job, now, retention) {
            pushgateway.delete(&expired.labels).await?;
            report.pruned += 1;
        }
    }
    // Phases that did not change are not pushed again.
    let changed: Vec<dora::Group> = phases
        .iter()
        .map(|p| (p, p.group()))
        .filter(|(p, g)| {
            !by_labels
                .get(&dora::SmallMap::from(g.labels(&inputs.job)))
                .is_some_and(|s| p.is_recorded(s))
        })
        .map(|(_, g)| g)
        .collect();
    report.canary_phases = changed.len();
    let pushed: Vec<dora::Group> = events.into_iter().map(|(g, _)| g).chain(changed).collect();
    let upgrades = upgrades(&stored, &pushed, inputs, now);
    report.upgraded = upgrades.len();
    let to_push: Vec<(dora::Group, bool)> = pushed
        .into_iter()
        .chain(upgrades)
        .map(|g| {
            let existed = by_labels.contains_key(&dora::SmallMap::from(g.labels(&inputs.job)));
            (g, existed)
        })
        .collect();
    let results: Vec<Result<()>> =
        futures_util::stream::iter(to_push.iter().map(|(group, existed)| {
            pushgateway.put(&inputs.job, &group.grouping, &group.exposition, !existed)
        }))
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
            to_push.len(),
            first.message
        ),
        ..first
    }))
}

/// This job's groups stored by the previous version (`branch`, no `ref`)
/// and kept by retention, rewritten in today's shape ([`dora::upgraded`]):
/// pushed once, each replaces its old group, so queries on `ref` see the
/// whole history. Not written to remote-write: the store already holds
/// those samples. Groups this run pushes anyway are left out.
fn upgrades(
    stored: &[dora::StoredGroup],
    pushed: &[dora::Group],
    inputs: &Inputs,
    now: Timestamp,
) -> Vec<dora::Group> {
    let cutoff = inputs.retention.map(|r| now.as_second() as f64 - r as f64);
    let pushed: std::collections::BTreeSet<BTreeMap<String, String>> =
        pushed.iter().map(|g| g.labels(&inputs.job)).collect();
    stored
        .iter()
        .filter(|g| g.labels.get("job") == Some(&inputs.job))
        .filter(|g| match (cutoff, g.event_time()) {
            (Some(cutoff), Some(t)) => t >= cutoff,
            _ => true,
        })
        .filter_map(dora::upgraded)
        .filter(|g| !pushed.contains(&g.labels(&inputs.job)))
        .take(MAX_UPGRADES_PER_RUN)
        .collect()
}

/// Old-shape groups rewritten in one run at most: with the Pushgateway's
/// consistency check a PUT costs up to ~0.6 s at 10,000 stored groups, so an
/// unbounded upgrade could hold one run for an hour; this way the history
/// converges over the next runs and no run pays more than about a minute.
const MAX_UPGRADES_PER_RUN: usize = 100;

/// One group's series for remote-write, each sample at `time` (milliseconds).
fn remote_series(group: &dora::Group, job: &str, time: Timestamp) -> remote_write::Unit {
    group
        .series(job)
        .into_iter()
        .map(|(labels, value)| remote_write::TimeSeries::new(labels, value, time.as_millisecond()))
        .collect()
}

/// Pushes in flight at once: enough to hide latency, few enough for a small Pushgateway.
const PUSH_CONCURRENCY: usize = 8;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_run_upgrades_at_most_its_share_of_old_groups() {
        let inputs = Inputs::from_env([("INPUT_RETENTION", "0")]).unwrap();
        let stored: Vec<dora::StoredGroup> = (0..MAX_UPGRADES_PER_RUN + 50)
            .map(|i| {
                let mut g = dora::tests::stored_before_ref();
                g.labels.insert("run_id".into(), (10_000 + i).to_string());
                g.sample_labels
                    .insert("run_id".into(), (10_000 + i).to_string());
                g
            })
            .collect();
        let now = Timestamp::from_second(1_800_000_000).unwrap();
        let first = upgrades(&stored, &[], &inputs, now);
        assert_eq!(first.len(), MAX_UPGRADES_PER_RUN);
        // The rest waits for the next run, none of it lost.
        let left = upgrades(&stored[MAX_UPGRADES_PER_RUN..], &[], &inputs, now);
        assert_eq!(left.len(), 50);
    }
}
