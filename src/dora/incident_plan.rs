//! The incidents' and reverts' part of a run's plan: which groups to push
//! (an incident new or changed, a revert not yet stored) and which to
//! delete (an issue that is no incident any more). Pure, like [`super::plan`].

use jiff::Timestamp;

use super::incident::{
    Observed, Pinned, Withdrawn, incident_group, incident_grouping, pin, revert_group,
};
use super::plan::{Push, Retention, Stored};
use super::revert::{Revert, find_reverts};
use super::{Deploy, EventKey, Group, History, Status, names};
use crate::stored::{SmallMap, StoredGroup};

/// What a run knows about incidents and where they are pinned.
pub struct Scope<'a> {
    pub job: &'a str,
    /// The `environment` input's value (or the cluster's name).
    pub environment: &'a str,
    /// `incident-window`, seconds.
    pub window: u64,
    pub now: Timestamp,
    pub retention: Retention,
}

/// The groups to push (with the time remote-write writes them at) and to delete.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct IncidentPlan {
    /// Incidents new or changed since stored, with their link.
    pub pinned: Vec<Pinned>,
    /// Reverts found in this run's deployments (stored or not).
    pub reverts: Vec<Revert>,
    /// The groups to PUT (incidents changed, reverts not yet stored).
    pub push: Vec<Push>,
    /// The same groups with their event times, for remote-write.
    pub events: Vec<(Group, Timestamp)>,
    /// Issues that are no incident any more and whose group is stored.
    pub withdrawn: Vec<(Withdrawn, SmallMap<String>)>,
}

/// The plan for the `observed` incidents and withdrawn ones (from the
/// source), pinned on this run's `deploys` or the stored ones, and for the
/// reverts this run's deployments shipped.
pub fn plan_incidents(
    observed: Vec<Observed>,
    deploys: &[Deploy],
    stored: &Stored,
    scope: &Scope,
) -> IncidentPlan {
    let (mut incidents, mut withdrawn) = (Vec::new(), Vec::new());
    for o in observed {
        match o {
            Observed::Incident(i) => incidents.push(i),
            Observed::Withdrawn(w) => withdrawn.push(w),
        }
    }
    let mut known: Vec<Deploy> = deploys.to_vec();
    for d in stored.groups.iter().filter_map(stored_deployment) {
        if !known
            .iter()
            .any(|k| k.repository == d.repository && k.key == d.key)
        {
            known.push(d);
        }
    }
    let mut plan = IncidentPlan::default();
    for i in incidents {
        let p = pin(i, &known, scope.environment, scope.window);
        let time = p.incident.resolved.unwrap_or(p.incident.opened);
        if scope.retention.keeps(p.incident.opened, scope.now)
            && plan.add(incident_group(&p), time, stored, scope.job)
        {
            plan.pinned.push(p);
        }
    }
    plan.reverts = find_reverts(&known);
    for r in plan.reverts.clone() {
        if scope.retention.keeps(r.failed.time, scope.now) {
            plan.add(revert_group(&r), r.by.time, stored, scope.job);
        }
    }
    for w in withdrawn {
        let mut labels: SmallMap<String> = incident_grouping(&w.repository, w.number)
            .into_iter()
            .collect();
        labels.insert("job".into(), scope.job.into());
        if stored.groups.iter().any(|g| g.labels == labels) {
            plan.withdrawn.push((w, labels));
        }
    }
    plan
}

impl IncidentPlan {
    /// Adds `group` unless `stored` holds it as it is; whether it was added.
    fn add(&mut self, group: Group, time: Timestamp, stored: &Stored, job: &str) -> bool {
        let before = stored.get(group.labels(job));
        if before.is_some_and(|s| holds(s, &group)) {
            return false;
        }
        self.events.push((group.clone(), time));
        self.push.push(Push {
            fresh: stored.known.then_some(before.is_none()),
            group,
        });
        true
    }
}

/// Whether a stored group holds exactly `group`'s values and, where the
/// listing shows them, its series labels.
fn holds(stored: &StoredGroup, group: &Group) -> bool {
    let values = stored.metrics.len() == group.samples.len()
        && group
            .samples
            .iter()
            .all(|(n, v)| stored.metrics.get(n).and_then(|s| s.first()) == Some(v));
    let labelled = stored.sample_labels.is_empty()
        || group
            .series_labels
            .iter()
            .all(|(k, v)| stored.sample_labels.get(k) == Some(v))
            && ["link", "source", "sha", "cause"].iter().all(|k| {
                stored.sample_labels.contains_key(k)
                    == group.series_labels.iter().any(|(l, _)| l == k)
            });
    values && labelled
}

/// A workflow deployment stored by an earlier run, back as an event an
/// incident can be pinned on: key, source, sha, environment, status, time.
fn stored_deployment(g: &StoredGroup) -> Option<Deploy> {
    let time = *g.metrics.get(names::DEPLOY_TIMESTAMP)?.first()?;
    let label = |k: &str| g.sample_labels.get(k).or(g.labels.get(k)).cloned();
    let number = |k: &str| g.labels.get(k)?.parse::<u64>().ok();
    let key = match (number("run_id"), number("deployment_id")) {
        (Some(run_id), _) => EventKey::Run {
            run_id,
            attempt: number("run_attempt").unwrap_or(1),
        },
        (None, Some(id)) => EventKey::Deployment {
            id,
            status_id: number("deployment_status_id").unwrap_or(0),
        },
        _ => return None,
    };
    let status = match label("status")?.as_str() {
        "success" => Status::Success,
        "failure" => Status::Failure,
        _ => return None,
    };
    Some(Deploy {
        repository: label("repository").unwrap_or_default(),
        source: label("source").or(label("workflow"))?,
        key,
        status,
        branch: label("ref").or(label("branch")).unwrap_or_default(),
        sha: label("sha")?,
        environment: label("environment").unwrap_or_default(),
        time: Timestamp::from_second(time as i64).ok()?,
        commit_time: None,
        url: None,
        history: History::default(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dora::deploy_group;
    use crate::dora::fixtures::at;
    use crate::dora::incident::{Incident, LinkKind};

    const JOB: &str = "dora";

    fn scope() -> Scope<'static> {
        Scope {
            job: JOB,
            environment: "production",
            window: 86_400,
            now: at("2026-11-21T00:00:00Z"),
            retention: Retention(None),
        }
    }

    fn incident(number: u64, resolved: Option<&str>) -> Incident {
        Incident {
            number,
            opened: at("2026-11-20T11:00:00Z"),
            resolved: resolved.map(at),
            ..Incident::example()
        }
    }

    /// What the Pushgateway lists for `group` once pushed.
    fn as_stored(group: &Group) -> StoredGroup {
        let mut s = StoredGroup {
            labels: SmallMap::from(group.labels(JOB)),
            ..StoredGroup::default()
        };
        for (n, v) in &group.samples {
            s.metrics.insert(n.to_string(), vec![*v]);
        }
        s.sample_labels = s.labels.clone();
        s.sample_labels.extend(group.series_labels.iter().cloned());
        s
    }

    #[test]
    fn an_incident_is_pinned_on_a_stored_deployment_and_pushed_again_only_when_it_changes() {
        // Event mode on an `issues` event: the deployment is only in the store.
        let deployed = as_stored(&deploy_group(&Deploy::success()));
        let groups = vec![deployed.clone()];
        let p = plan_incidents(
            vec![Observed::Incident(incident(7, None))],
            &[],
            &Stored::new(&groups),
            &scope(),
        );
        assert_eq!(p.pinned.len(), 1);
        assert_eq!(p.pinned[0].link, LinkKind::Window);
        assert_eq!(
            p.pinned[0].deploy.as_ref().unwrap().sha,
            Deploy::success().sha
        );
        assert_eq!(p.push[0].fresh, Some(true));
        // Stored as it is: nothing to push. Resolved since: pushed again, not fresh.
        let groups = vec![deployed, as_stored(&p.push[0].group)];
        let again = plan_incidents(
            vec![Observed::Incident(incident(7, None))],
            &[],
            &Stored::new(&groups),
            &scope(),
        );
        assert!(again.push.is_empty() && again.pinned.is_empty());
        let closed = plan_incidents(
            vec![Observed::Incident(incident(
                7,
                Some("2026-11-20T12:00:00Z"),
            ))],
            &[],
            &Stored::new(&groups),
            &scope(),
        );
        assert_eq!(closed.push.len(), 1);
        assert_eq!(closed.push[0].fresh, Some(false));
        assert_eq!(closed.events[0].1, at("2026-11-20T12:00:00Z"));
    }

    #[test]
    fn a_withdrawn_issue_deletes_only_a_stored_group() {
        let pushed = plan_incidents(
            vec![Observed::Incident(incident(7, None))],
            &[],
            &Stored::new(&[]),
            &scope(),
        );
        let groups = vec![as_stored(&pushed.push[0].group)];
        let w = |number| Withdrawn {
            repository: "octo-org/shop".into(),
            number,
            reason: "closed as not planned".into(),
        };
        let p = plan_incidents(
            vec![Observed::Withdrawn(w(7)), Observed::Withdrawn(w(8))],
            &[],
            &Stored::new(&groups),
            &scope(),
        );
        assert_eq!(p.withdrawn.len(), 1);
        assert_eq!(p.withdrawn[0].1, groups[0].labels);
        assert!(p.push.is_empty());
    }

    #[test]
    fn an_incident_past_retention_is_not_pushed() {
        let s = Scope {
            retention: Retention(Some(3_600)),
            ..scope()
        };
        let p = plan_incidents(
            vec![Observed::Incident(incident(7, None))],
            &[],
            &Stored::new(&[]),
            &s,
        );
        assert!(p.push.is_empty());
    }
}
