//! The plan: from this run's events and what is stored, what to push, what
//! to delete and what is already recorded. Pure: the sinks carry it out, in
//! the order [`crate::sinks::deliver`] gives.
//!
//! Every decision of a run that is not I/O is here, so each has a unit test
//! with literal inputs: which events are new, what retention keeps, which
//! groups are pruned or upgraded, which canary phases changed, which pushes
//! create a group (and so leave an empty one behind when rejected).

use std::collections::{BTreeMap, BTreeSet};

use jiff::Timestamp;

use super::upgraded;
use super::{
    CanaryPhase, Deploy, EventKey, Group, adopt_recorded, deploy_group, group_labels, is_recorded,
};
use crate::stored::{SmallMap, StoredGroup};

/// How long the Pushgateway keeps events (`retention`; `None`: forever).
/// Decided once: a remote-write store keeps its own history, so retention
/// applies only where a Pushgateway is written (or would be, in a dry run).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Retention(pub Option<u64>);

impl Retention {
    /// `retention` seconds, when the run writes a Pushgateway.
    pub fn new(retention: Option<u64>, pushgateway: bool) -> Retention {
        Retention(retention.filter(|_| pushgateway))
    }

    /// The oldest event time (seconds) kept at `now`, when anything is pruned.
    pub fn cutoff(self, now: Timestamp) -> Option<i64> {
        self.0.map(|r| now.as_second() - r as i64)
    }

    /// Whether an event at `time` is kept at `now`.
    pub fn keeps(self, time: Timestamp, now: Timestamp) -> bool {
        self.cutoff(now).is_none_or(|c| time.as_second() >= c)
    }
}

/// The groups of `job` whose event is older than `retention` seconds before
/// `now`. Groups of other jobs, and groups without an event time, are never touched.
pub fn expired<'a>(
    groups: &'a [StoredGroup],
    job: &str,
    now: Timestamp,
    retention: u64,
) -> Vec<&'a StoredGroup> {
    let cutoff = now.as_second() as f64 - retention as f64;
    groups
        .iter()
        .filter(|g| g.labels.get("job").map(String::as_str) == Some(job))
        .filter(|g| g.event_time().is_some_and(|t| t < cutoff))
        .collect()
}

/// The stored groups by their labels: a look-up per event, not a scan of
/// every stored group (thousands of both on a first cluster-mode run).
pub struct Stored<'a> {
    pub groups: &'a [StoredGroup],
    by_labels: BTreeMap<&'a SmallMap<String>, &'a StoredGroup>,
    /// Whether `groups` is what the store holds: `false` when the run did
    /// not read it ([`Stored::unread`]).
    pub known: bool,
}

impl<'a> Stored<'a> {
    /// What the store holds, as read.
    pub fn new(groups: &'a [StoredGroup]) -> Stored<'a> {
        Stored {
            groups,
            by_labels: groups.iter().map(|g| (&g.labels, g)).collect(),
            known: true,
        }
    }

    /// Not read: every event counts as new, nothing is pruned or upgraded,
    /// and no push knows whether its group existed.
    pub fn unread() -> Stored<'static> {
        Stored {
            groups: &[],
            by_labels: BTreeMap::new(),
            known: false,
        }
    }

    /// The stored group with exactly these labels (`job` included).
    pub fn get(&self, labels: BTreeMap<String, String>) -> Option<&'a StoredGroup> {
        self.by_labels.get(&SmallMap::from(labels)).copied()
    }
}

/// For each event, whether it is new: not stored, or stored as it was before
/// (a Flux revision that has become Ready since). Only new events are
/// completed (a GitHub call each) and written.
pub fn new_events(deploys: &[Deploy], stored: &Stored, job: &str) -> Vec<bool> {
    deploys
        .iter()
        .map(|d| {
            !stored
                .get(group_labels(d, job))
                .is_some_and(|g| is_recorded(g, d))
        })
        .collect()
}

/// What is already recorded is reported as recorded ([`adopt_recorded`]):
/// a re-run gives the same outputs and summary as the run that recorded it.
pub fn adopt(deploys: &mut [Deploy], new: &[bool], stored: &Stored, job: &str) {
    for (d, _) in deploys.iter_mut().zip(new).filter(|(_, n)| !**n) {
        if let Some(g) = stored.get(group_labels(d, job)) {
            adopt_recorded(d, g);
        }
    }
}

/// One PUT: the group, and whether it creates the group (`fresh`; `None`
/// when what is stored was not read). A rejected push leaves an empty group
/// behind, which is deleted again only when there was none before.
#[derive(Debug, Clone, PartialEq)]
pub struct Push {
    pub group: Group,
    pub fresh: Option<bool>,
}

/// What a run changes in its stores.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Plan {
    /// The new events' groups with their event times: remote-write writes
    /// each sample at its event's time.
    pub events: Vec<(Group, Timestamp)>,
    /// Every canary phase: state, so remote-write writes each at the run's time.
    pub phases: Vec<Group>,
    /// Pushgateway groups to delete first: this job's events past retention.
    pub delete: Vec<SmallMap<String>>,
    /// Pushgateway groups to PUT: the new events, the phases that changed,
    /// and old-shape groups upgraded (at most [`MAX_UPGRADES_PER_RUN`]).
    pub push: Vec<Push>,
    /// Events of this run the store already holds as they are.
    pub already_recorded: usize,
    /// Canary phases that changed since the Pushgateway stored them.
    pub changed_phases: usize,
    /// Old-shape groups rewritten by this run.
    pub upgraded: usize,
}

/// The plan for `deploys` (with `new` from [`new_events`]) and `phases`
/// against what is `stored`.
pub fn plan(
    deploys: &[Deploy],
    new: &[bool],
    phases: &[CanaryPhase],
    stored: &Stored,
    job: &str,
    now: Timestamp,
    retention: Retention,
) -> Plan {
    let events: Vec<(Group, Timestamp)> = deploys
        .iter()
        .zip(new)
        .filter(|(_, n)| **n)
        .map(|(d, _)| (deploy_group(d), d.time))
        .collect();
    let delete = match retention.0 {
        Some(r) => expired(stored.groups, job, now, r)
            .into_iter()
            .map(|g| g.labels.clone())
            .collect(),
        None => Vec::new(),
    };
    // Phases that did not change are not pushed again.
    let changed: Vec<Group> = phases
        .iter()
        .map(|p| (p, p.group()))
        .filter(|(p, g)| !stored.get(g.labels(job)).is_some_and(|s| p.is_recorded(s)))
        .map(|(_, g)| g)
        .collect();
    let changed_phases = changed.len();
    let pushed: Vec<Group> = events
        .iter()
        .map(|(g, _)| g.clone())
        .chain(changed)
        .collect();
    let upgrades = upgrades(stored.groups, &pushed, job, now, retention);
    let upgraded = upgrades.len();
    let push = pushed
        .into_iter()
        .chain(upgrades)
        .map(|group| Push {
            fresh: stored
                .known
                .then(|| stored.get(group.labels(job)).is_none()),
            group,
        })
        .collect();
    Plan {
        already_recorded: deploys.len() - events.len(),
        events,
        phases: phases.iter().map(CanaryPhase::group).collect(),
        delete,
        push,
        changed_phases,
        upgraded,
    }
}

/// This job's groups stored by the previous version (`branch`, no `ref`)
/// and kept by retention, rewritten in today's shape ([`upgraded`]):
/// pushed once, each replaces its old group, so queries on `ref` see the
/// whole history. Not written to remote-write: the store already holds
/// those samples. Groups this run pushes anyway are left out.
fn upgrades(
    stored: &[StoredGroup],
    pushed: &[Group],
    job: &str,
    now: Timestamp,
    retention: Retention,
) -> Vec<Group> {
    let cutoff = retention.cutoff(now).map(|c| c as f64);
    let pushed: BTreeSet<BTreeMap<String, String>> = pushed.iter().map(|g| g.labels(job)).collect();
    stored
        .iter()
        .filter(|g| g.labels.get("job").map(String::as_str) == Some(job))
        .filter(|g| match (cutoff, g.event_time()) {
            (Some(cutoff), Some(t)) => t >= cutoff,
            _ => true,
        })
        .filter_map(upgraded)
        .filter(|g| !pushed.contains(&g.labels(job)))
        .take(MAX_UPGRADES_PER_RUN)
        .collect()
}

/// Event mode reads what is stored (to prune, to upgrade, to tell a re-run
/// from a new event) on one event in this many: reading costs what the
/// store holds (~2 s at 10,000 groups), the event itself one PUT. The
/// scheduled modes (workflows, cluster) read it on every run.
pub const UPKEEP_EVERY: u64 = 16;

/// Whether the event-mode run of `d` is one that does the upkeep: chosen by
/// the event's own id (a run's id, a deployment status's id), so a re-run of
/// the same event decides the same, and runs share the cost evenly.
pub fn upkeep_due(d: &Deploy) -> bool {
    match d.key {
        EventKey::Run { run_id: id, .. } | EventKey::Deployment { status_id: id, .. } => {
            id % UPKEEP_EVERY == 0
        }
        EventKey::Flux { .. } | EventKey::Canary { .. } => true,
    }
}

/// Old-shape groups rewritten in one run at most: with the Pushgateway's
/// consistency check a PUT costs up to ~0.6 s at 10,000 stored groups, so an
/// unbounded upgrade could hold one run for an hour; this way the history
/// converges over the next runs and no run pays more than about a minute.
pub const MAX_UPGRADES_PER_RUN: usize = 100;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dora::fixtures::{at, stored, stored_before_ref};
    use crate::dora::names;

    const JOB: &str = "dora";

    fn now() -> Timestamp {
        at("2027-01-01T00:00:00Z")
    }

    #[test]
    fn one_run_upgrades_at_most_its_share_of_old_groups() {
        let stored: Vec<StoredGroup> = (0..MAX_UPGRADES_PER_RUN + 50)
            .map(|i| {
                let mut g = stored_before_ref();
                g.labels.insert("run_id".into(), (10_000 + i).to_string());
                g.sample_labels
                    .insert("run_id".into(), (10_000 + i).to_string());
                g
            })
            .collect();
        let now = Timestamp::from_second(1_800_000_000).unwrap();
        let first = upgrades(&stored, &[], JOB, now, Retention(None));
        assert_eq!(first.len(), MAX_UPGRADES_PER_RUN);
        // The rest waits for the next run, none of it lost.
        let left = upgrades(
            &stored[MAX_UPGRADES_PER_RUN..],
            &[],
            JOB,
            now,
            Retention(None),
        );
        assert_eq!(left.len(), 50);
    }

    #[test]
    fn retention_applies_only_with_a_pushgateway() {
        assert_eq!(Retention::new(Some(60), true), Retention(Some(60)));
        assert_eq!(Retention::new(Some(60), false), Retention(None));
        let r = Retention(Some(3_600));
        assert_eq!(r.cutoff(now()), Some(now().as_second() - 3_600));
        assert!(
            r.keeps(at("2026-12-31T23:00:00Z"), now()),
            "exactly at the cutoff"
        );
        assert!(!r.keeps(at("2026-12-31T22:59:59Z"), now()));
        assert!(Retention(None).keeps(at("2000-01-01T00:00:00Z"), now()));
    }

    #[test]
    fn a_new_event_is_pushed_fresh_and_a_recorded_one_is_adopted_not_pushed() {
        let recorded = Deploy::success();
        let new = Deploy {
            key: EventKey::Run {
                run_id: 4242,
                attempt: 1,
            },
            ..Deploy::success()
        };
        // What a previous run stored for `recorded`: its group, with a lead time of 60 s.
        let mut stored_group = StoredGroup {
            labels: SmallMap::from(group_labels(&recorded, JOB)),
            ..StoredGroup::default()
        };
        stored_group
            .metrics
            .insert(names::DEPLOY_TIMESTAMP.into(), vec![1.0]);
        stored_group
            .metrics
            .insert(names::LEAD_TIME.into(), vec![60.0]);
        let groups = vec![stored_group];
        let stored = Stored::new(&groups);
        let mut deploys = vec![recorded.clone(), new.clone()];
        let fresh = new_events(&deploys, &stored, JOB);
        assert_eq!(fresh, vec![false, true]);
        adopt(&mut deploys, &fresh, &stored, JOB);
        assert_eq!(
            deploys[0].lead_time_seconds(),
            Some(60),
            "the stored lead time"
        );
        assert_eq!(deploys[1], new, "a new event is left as it is");
        let p = plan(&deploys, &fresh, &[], &stored, JOB, now(), Retention(None));
        assert_eq!(p.already_recorded, 1);
        assert_eq!(p.events, vec![(deploy_group(&new), new.time)]);
        assert_eq!(
            p.push,
            vec![Push {
                group: deploy_group(&new),
                fresh: Some(true)
            }]
        );
        assert!(p.delete.is_empty());
    }

    #[test]
    fn only_this_jobs_expired_events_are_deleted() {
        let mut old = StoredGroup::default();
        old.labels.insert("job".into(), JOB.into());
        old.labels.insert("run_id".into(), "1".into());
        old.metrics
            .insert(names::DEPLOY_TIMESTAMP.into(), vec![1_000.0]);
        let mut other = old.clone();
        other.labels.insert("job".into(), "other".into());
        let groups = vec![old.clone(), other];
        let stored = Stored::new(&groups);
        let p = plan(&[], &[], &[], &stored, JOB, now(), Retention(Some(86_400)));
        assert_eq!(p.delete, vec![old.labels.clone()]);
        let p = plan(&[], &[], &[], &stored, JOB, now(), Retention(None));
        assert!(p.delete.is_empty(), "no retention, nothing pruned");
    }

    /// The plan for one canary phase and nothing else.
    fn plan_phases(phase: &CanaryPhase, stored: &Stored) -> Plan {
        let phases = std::slice::from_ref(phase);
        plan(&[], &[], phases, stored, JOB, now(), Retention(None))
    }

    #[test]
    fn an_unchanged_canary_phase_is_not_pushed_again_but_still_written_remotely() {
        let phase = CanaryPhase {
            namespace: "shop".into(),
            canary: "checkout".into(),
            phase: "Progressing".into(),
            environment: "production".into(),
        };
        let mut unchanged = StoredGroup {
            labels: SmallMap::from(phase.group().labels(JOB)),
            sample_labels: [
                ("phase", "Progressing".to_string()),
                ("environment", "production".to_string()),
            ]
            .into_iter()
            .collect(),
            ..StoredGroup::default()
        };
        unchanged
            .metrics
            .insert(names::CANARY_PHASE.into(), vec![1.0]);
        let groups = vec![unchanged];
        let stored = Stored::new(&groups);
        let p = plan_phases(&phase, &stored);
        assert_eq!(p.changed_phases, 0);
        assert!(p.push.is_empty());
        assert_eq!(p.phases, vec![phase.group()]);
        let moved = CanaryPhase {
            phase: "Failed".into(),
            ..phase
        };
        let p = plan_phases(&moved, &stored);
        assert_eq!(p.changed_phases, 1);
        assert_eq!(
            p.push,
            vec![Push {
                group: moved.group(),
                fresh: Some(false)
            }]
        );
    }

    #[test]
    fn only_this_jobs_event_groups_past_retention_expire() {
        let now = at("2026-11-26T00:00:00Z");
        let day = 86_400.0;
        let now_s = now.as_second() as f64;
        let groups = [
            stored("dora", Some(now_s - 91.0 * day)),
            stored("dora", Some(now_s - 89.0 * day)),
            stored("other", Some(now_s - 365.0 * day)),
            stored("dora", None),
        ];
        let gone = expired(&groups, "dora", now, 90 * 86_400);
        assert_eq!(gone, vec![&groups[0]]);
    }

    #[test]
    fn unread_storage_pushes_every_event_without_knowing_its_group() {
        let groups = [stored_before_ref()];
        let d = Deploy::success();
        let new = new_events(std::slice::from_ref(&d), &Stored::unread(), JOB);
        assert_eq!(new, vec![true]);
        let p = plan(
            std::slice::from_ref(&d),
            &new,
            &[],
            &Stored::unread(),
            JOB,
            now(),
            Retention(Some(1)),
        );
        assert_eq!(p.push.len(), 1);
        assert_eq!(p.push[0].fresh, None, "unknown, not assumed");
        assert!(p.delete.is_empty() && p.upgraded == 0);
        // Read, the same store prunes and upgrades.
        let read = plan(
            &[],
            &[],
            &[],
            &Stored::new(&groups),
            JOB,
            now(),
            Retention(None),
        );
        assert_eq!(read.upgraded, 1);
    }

    #[test]
    fn one_event_in_sixteen_does_the_upkeep_by_its_own_id() {
        let run = |run_id| Deploy {
            key: EventKey::Run { run_id, attempt: 1 },
            ..Deploy::success()
        };
        assert!(upkeep_due(&run(7008)));
        assert!(!upkeep_due(&run(7001)));
        let due = (1..=1_600).filter(|&id| upkeep_due(&run(id))).count();
        assert_eq!(due, 100);
        let status = Deploy {
            key: EventKey::Deployment {
                id: 1,
                status_id: 32,
            },
            ..Deploy::success()
        };
        assert!(upkeep_due(&status));
    }
}
