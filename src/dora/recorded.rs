//! What the stored groups say about this run's events: which are already
//! recorded, what the recorded ones said, and the canary outcomes before.

use jiff::Timestamp;

use super::*;
use crate::stored::StoredGroup;

impl StoredGroup {
    /// The event time of a group this action wrote: the latest value of its
    /// `dora_*_timestamp` metrics. `None` for groups that hold no event.
    pub fn event_time(&self) -> Option<f64> {
        self.metrics
            .iter()
            .filter(|(name, _)| name.starts_with("dora_") && name.ends_with("_timestamp"))
            .flat_map(|(_, values)| values.iter().copied())
            .reduce(f64::max)
    }
}

/// Whether `stored` already holds event `d` as it is now. A Flux revision
/// that was not Ready when stored and is now (or the other way round) is not:
/// its group is replaced.
pub fn is_recorded(stored: &StoredGroup, d: &Deploy) -> bool {
    let value = |name: &str| stored.metrics.get(name).and_then(|v| v.first().copied());
    match d.key {
        EventKey::Flux { .. } => {
            let ready = if d.status == Status::Success {
                1.0
            } else {
                0.0
            };
            value(names::FLUX_READY) == Some(ready)
                && value(names::FLUX_APPLIED) == Some(d.time.as_second() as f64)
        }
        EventKey::Canary { .. } => value(names::CANARY_TIMESTAMP).is_some(),
        EventKey::Run { .. } | EventKey::Deployment { .. } => {
            value(names::DEPLOY_TIMESTAMP).is_some()
        }
    }
}

/// Takes over what `stored` (the group of an already recorded event) says
/// about event `d`: its head-commit lead time, the changes it shipped, its
/// recovery time. The outputs and the summary describe the recorded events,
/// so a re-run reports the same numbers as the run that recorded them, even
/// where this run knows less (the changes are asked for only for new events)
/// or computes otherwise (the history in its window has moved on).
pub fn adopt_recorded(d: &mut Deploy, stored: &StoredGroup) {
    let value = |name: &str| stored.metrics.get(name).and_then(|v| v.first().copied());
    let (lead, recovery) = match d.key {
        EventKey::Run { .. } | EventKey::Deployment { .. } => {
            d.history.changes = value(names::CHANGES).map(|count| Changes {
                count: count as u64,
                median_lead_seconds: value(names::CHANGE_LEAD_TIME).map(|m| m as i64),
            });
            (value(names::LEAD_TIME), value(names::RECOVERY))
        }
        EventKey::Flux { .. } => (value(names::FLUX_LEAD_TIME), None),
        EventKey::Canary { .. } => (None, value(names::CANARY_RECOVERY)),
    };
    match lead {
        Some(lead) => {
            d.commit_time = Timestamp::from_second(d.time.as_second() - lead as i64).ok();
        }
        // Recorded without lead time: keep a commit time only when it is
        // one that gives none (dated after the deployment: still warned about).
        None if d.lead_time_seconds().is_some() => d.commit_time = None,
        None => {}
    }
    if !matches!(d.key, EventKey::Flux { .. }) {
        d.history.recovery_seconds = recovery.map(|r| r as i64);
        if recovery.is_none() {
            d.history.recovered_by = None;
        }
    }
}

/// A canary outcome stored by an earlier run, back as an event, so a
/// `Succeeded` now can find the `Failed` it recovers from.
pub fn stored_canary_outcome(g: &StoredGroup) -> Option<Deploy> {
    let label = |k: &str| g.labels.get(k).cloned();
    let phase = label("phase")?;
    let status = match phase.as_str() {
        "Succeeded" => Status::Success,
        "Failed" => Status::Failure,
        _ => return None,
    };
    let transition: i64 = label("transition")?.parse().ok()?;
    Some(Deploy {
        repository: String::new(),
        source: label("canary")?,
        key: EventKey::Canary {
            namespace: label("namespace")?,
            phase,
            transition,
        },
        status,
        branch: String::new(),
        sha: String::new(),
        environment: String::new(),
        time: Timestamp::from_second(transition).ok()?,
        commit_time: None,
        url: None,
        history: History::default(),
    })
}

/// Fills in the history of this run's canary outcomes from themselves and
/// the outcomes stored before: every rollback the Pushgateway holds counts.
pub fn annotate_canaries(deploys: &mut [Deploy], stored: &[StoredGroup]) {
    let current: Vec<usize> = (0..deploys.len())
        .filter(|&i| matches!(deploys[i].key, EventKey::Canary { .. }))
        .collect();
    if current.is_empty() {
        return;
    }
    let mut all: Vec<Deploy> = current.iter().map(|&i| deploys[i].clone()).collect();
    let past = stored
        .iter()
        .filter_map(stored_canary_outcome)
        .filter(|p| !all.iter().any(|d| d.key == p.key && d.source == p.source));
    all.extend(past.collect::<Vec<_>>());
    annotate(&mut all);
    // Flux revisions Ready in the same environment, this run's and stored ones:
    // a failed canary counts as recovered by the first of them, when that
    // comes before the canary's own next success (the original design note).
    let mut revisions: Vec<(Timestamp, String, String)> = deploys
        .iter()
        .filter(|d| d.status == Status::Success)
        .filter_map(|d| match &d.key {
            EventKey::Flux { revision, .. } => Some((
                d.time,
                d.environment.clone(),
                format!("{} {revision}", d.source),
            )),
            _ => None,
        })
        .collect();
    revisions.extend(stored.iter().filter_map(|g| {
        let time = *g.metrics.get(names::FLUX_APPLIED)?.first()?;
        (g.metrics.get(names::FLUX_READY)?.first() == Some(&1.0)).then_some(())?;
        let environment = g
            .sample_labels
            .get("environment")
            .cloned()
            .unwrap_or_default();
        let name = format!(
            "{} {}",
            g.labels.get("kustomization")?,
            g.labels.get("revision")?
        );
        Some((Timestamp::from_second(time as i64).ok()?, environment, name))
    }));
    for (k, &i) in current.iter().enumerate() {
        let mut history = all[k].history.clone();
        if let Some(recovery) = history.recovery_seconds {
            let success = deploys[i].time;
            let failed = Timestamp::from_second(success.as_second() - recovery).unwrap_or(success);
            let first_flux = revisions
                .iter()
                .filter(|(t, env, _)| *t > failed && *t < success && *env == deploys[i].environment)
                .min_by_key(|(t, _, _)| *t);
            if let Some((t, _, name)) = first_flux {
                history.recovery_seconds = Some(t.as_second() - failed.as_second());
                history.recovered_by = Some(name.clone());
            }
        }
        deploys[i].history = history;
    }
}

#[cfg(test)]
mod tests {

    use jiff::Timestamp;

    use super::*;
    use crate::dora::fixtures::at;

    #[test]
    fn a_recorded_event_reports_what_its_stored_group_says() {
        let mut first = Deploy::success();
        first.commit_time = Some(Timestamp::from_second(first.time.as_second() - 2_400).unwrap());
        first.history.changes = Some(Changes {
            count: 3,
            median_lead_seconds: Some(6_000),
        });
        first.history.recovery_seconds = Some(900);
        let mut stored = StoredGroup::default();
        for (name, value) in deploy_group(&first).samples {
            stored.metrics.insert(name.to_string(), vec![value]);
        }
        // A re-run knows the head commit only, and its window lost the failure.
        let mut again = first.clone();
        again.history = History::default();
        again.commit_time = Some(Timestamp::from_second(first.time.as_second() - 100).unwrap());
        adopt_recorded(&mut again, &stored);
        assert_eq!(again.best_lead_time_seconds(), Some(6_000));
        assert_eq!(again.lead_time_seconds(), Some(2_400));
        assert_eq!(again.history.changes, first.history.changes);
        assert_eq!(again.history.recovery_seconds, Some(900));
        assert_eq!(tally(&[again]), tally(&[first]));
        // Stored without lead time: none is reported.
        let mut bare = Deploy::success();
        adopt_recorded(&mut bare, &StoredGroup::default());
        assert_eq!(bare.best_lead_time_seconds(), None);
    }

    fn canary(phase: &str, at_: &str) -> Deploy {
        let time = at(at_);
        Deploy {
            repository: String::new(),
            source: "podinfo".into(),
            key: EventKey::Canary {
                namespace: "test".into(),
                phase: phase.into(),
                transition: time.as_second(),
            },
            status: if phase == "Failed" {
                Status::Failure
            } else {
                Status::Success
            },
            branch: String::new(),
            sha: String::new(),
            environment: "prod".into(),
            time,
            commit_time: None,
            url: None,
            history: History::default(),
        }
    }

    fn stored_of(d: &Deploy) -> StoredGroup {
        let g = deploy_group(d);
        let mut s = StoredGroup {
            labels: g.labels("dora").into(),
            ..StoredGroup::default()
        };
        s.metrics.insert(
            names::CANARY_TIMESTAMP.into(),
            vec![d.time.as_second() as f64],
        );
        s
    }

    #[test]
    fn a_canary_recovers_from_rollbacks_stored_by_earlier_runs() {
        let stored = [
            stored_of(&canary("Succeeded", "2026-11-19T10:00:00Z")),
            stored_of(&canary("Failed", "2026-11-20T09:00:00Z")),
            stored_of(&canary("Failed", "2026-11-20T09:30:00Z")),
        ];
        let mut now = vec![
            Deploy::success(),
            canary("Succeeded", "2026-11-20T11:00:00Z"),
        ];
        annotate_canaries(&mut now, &stored);
        assert_eq!(
            now[1].history.recovery_seconds,
            Some(7_200),
            "09:00 → 11:00"
        );
        assert_eq!(
            now[0].history,
            History::default(),
            "workflow events are left alone"
        );
        let text = deploy_group(&now[1]).exposition;
        assert!(
            text.lines()
                .any(|l| l.starts_with("dora_flagger_recovery_seconds{") && l.ends_with(" 7200")),
            "{text}"
        );
        // A Flux revision applied in the same environment before the canary's success ends the recovery there.
        let mut flux = StoredGroup::default();
        flux.labels.extend([
            ("kustomization".to_string(), "apps".to_string()),
            ("revision".to_string(), "main@sha1:abc".to_string()),
        ]);
        flux.metrics.insert(
            names::FLUX_APPLIED.into(),
            vec![at("2026-11-20T10:00:00Z").as_second() as f64],
        );
        flux.metrics.insert(names::FLUX_READY.into(), vec![1.0]);
        flux.sample_labels
            .insert("environment".into(), "prod".into());
        let mut with_flux = vec![canary("Succeeded", "2026-11-20T11:00:00Z")];
        let mut stored_and_flux = stored.to_vec();
        stored_and_flux.push(flux.clone());
        annotate_canaries(&mut with_flux, &stored_and_flux);
        assert_eq!(
            with_flux[0].history.recovery_seconds,
            Some(3_600),
            "09:00 → the Flux revision at 10:00"
        );
        assert_eq!(
            with_flux[0].history.recovered_by.as_deref(),
            Some("apps main@sha1:abc")
        );
        // Another environment's revision does not count.
        flux.sample_labels
            .insert("environment".into(), "staging".into());
        let mut other_env = vec![canary("Succeeded", "2026-11-20T11:00:00Z")];
        annotate_canaries(&mut other_env, &[stored[1].clone(), flux]);
        assert_eq!(other_env[0].history.recovery_seconds, Some(7_200));
        // The same Failed seen again (already stored) is not a second rollback.
        let mut again = vec![canary("Failed", "2026-11-20T09:30:00Z")];
        annotate_canaries(&mut again, &stored);
        assert!(is_recorded(&stored[2], &again[0]));
    }
}
