//! Each event as a Pushgateway group: its grouping labels (what makes it
//! unique) and its series, encoded once for the Pushgateway and for
//! remote-write.

use std::collections::BTreeMap;

use prometheus::{Encoder, GaugeVec, Opts, Registry, TextEncoder};

use super::*;
use crate::stored::{Keep, StoredGroup};

/// One Pushgateway group: its grouping labels (besides `job`) and the body to PUT.
#[derive(Debug, Clone, PartialEq)]
pub struct Group {
    pub grouping: Vec<(String, String)>,
    pub exposition: String,
    /// The labels every series of the group carries besides `job` and the
    /// grouping labels (what the exposition holds), for remote-write.
    pub series_labels: Vec<(String, String)>,
    /// Each metric of the group and its value.
    pub samples: Vec<(&'static str, f64)>,
}

impl Group {
    /// The full grouping key as the Pushgateway lists it: `job` and the grouping labels.
    pub fn labels(&self, job: &str) -> BTreeMap<String, String> {
        let mut labels: BTreeMap<String, String> = self.grouping.iter().cloned().collect();
        labels.insert("job".into(), job.into());
        labels
    }

    /// Every series as a scrape of the Pushgateway shows it (`honor_labels`):
    /// `__name__`, `job`, the grouping labels and the series labels; with its
    /// value. The same names and labels, written by remote-write.
    pub fn series(&self, job: &str) -> Vec<(Vec<(String, String)>, f64)> {
        let mut common = vec![("job".to_string(), job.to_string())];
        common.extend(self.grouping.iter().cloned());
        common.extend(self.series_labels.iter().cloned());
        self.samples
            .iter()
            .map(|(name, value)| {
                let mut labels = vec![("__name__".to_string(), name.to_string())];
                labels.extend(common.iter().cloned());
                (labels, *value)
            })
            .collect()
    }
}

/// Metric names, kept from the original workflow so its dashboard keeps working.
pub mod names {
    pub const DEPLOY_EVENT: &str = "dora_workflow_deploy_event";
    pub const DEPLOY_TIMESTAMP: &str = "dora_workflow_deploy_timestamp";
    pub const LEAD_TIME: &str = "dora_workflow_lead_time_seconds";
    pub const RECOVERY: &str = "dora_workflow_recovery_seconds";
    pub const REWORK_TIMESTAMP: &str = "dora_workflow_rework_timestamp";
    pub const CHANGE_LEAD_TIME: &str = "dora_workflow_change_lead_time_seconds";
    pub const CHANGES: &str = "dora_workflow_changes";
    pub const FLUX_APPLIED: &str = "dora_flux_applied_timestamp";
    pub const FLUX_READY: &str = "dora_flux_ready";
    pub const FLUX_LEAD_TIME: &str = "dora_flux_lead_time_seconds";
    pub const CANARY_PHASE: &str = "dora_flagger_canary_phase";
    pub const CANARY_TIMESTAMP: &str = "dora_flagger_canary_timestamp";
    pub const CANARY_RECOVERY: &str = "dora_flagger_recovery_seconds";
}

/// The grouping labels of an event's group (besides `job`): what makes the
/// event unique. Cheap: no exposition is rendered.
pub fn grouping(d: &Deploy) -> Vec<(String, String)> {
    let pairs: Vec<(&str, String)> = match &d.key {
        EventKey::Run { run_id, attempt } => vec![
            ("repository", d.repository.clone()),
            ("workflow", d.source.clone()),
            ("run_id", run_id.to_string()),
            ("run_attempt", attempt.to_string()),
        ],
        EventKey::Deployment { id, status_id } => vec![
            ("repository", d.repository.clone()),
            ("deployment_id", id.to_string()),
            ("deployment_status_id", status_id.to_string()),
        ],
        EventKey::Flux {
            namespace,
            revision,
        } => {
            vec![
                ("namespace", namespace.clone()),
                ("kustomization", d.source.clone()),
                ("revision", revision.clone()),
            ]
        }
        EventKey::Canary {
            namespace,
            phase,
            transition,
        } => vec![
            ("namespace", namespace.clone()),
            ("canary", d.source.clone()),
            ("phase", phase.clone()),
            ("transition", transition.to_string()),
        ],
    };
    pairs.into_iter().map(|(k, v)| (k.to_string(), v)).collect()
}

/// The full grouping key as the Pushgateway lists it: `job` and [`grouping`].
pub fn group_labels(d: &Deploy, job: &str) -> BTreeMap<String, String> {
    let mut labels: BTreeMap<String, String> = grouping(d).into_iter().collect();
    labels.insert("job".into(), job.into());
    labels
}

/// The workflow deployment series and their HELP texts, in exposition
/// order. One table for new groups and upgraded ones: the Pushgateway
/// checks that every group gives a metric the same HELP.
const WORKFLOW_METRICS: [(&str, &str); 7] = [
    (
        names::DEPLOY_EVENT,
        "A deployment by a GitHub Actions workflow or a GitHub deployment; always 1, the labels say how it ended.",
    ),
    (
        names::DEPLOY_TIMESTAMP,
        "Unix time the deployment finished, from the event itself (not the collector's clock).",
    ),
    (
        names::LEAD_TIME,
        "Seconds from the deployed head commit to the successful deployment.",
    ),
    (
        names::RECOVERY,
        "Failed-deployment recovery time: seconds from the first failure of a streak to this success.",
    ),
    (
        names::REWORK_TIMESTAMP,
        "Unix time of a rework deployment: a success that follows a failed deployment of the same source.",
    ),
    (
        names::CHANGES,
        "Commits this deployment shipped since the previous successful deployment of the same source.",
    ),
    (
        names::CHANGE_LEAD_TIME,
        "Median lead time of the commits this deployment shipped (deploy time − each commit's time).",
    ),
];

fn workflow_metric(name: &'static str, value: f64) -> (&'static str, &'static str, f64) {
    let help = WORKFLOW_METRICS
        .iter()
        .find(|(n, _)| *n == name)
        .map_or("", |(_, h)| *h);
    (name, help, value)
}

/// A workflow deployment group as the previous version stored it (series
/// labelled `branch`, no `ref`), in today's shape: the same grouping key
/// (so a push replaces it, never adds a second group), every metric with
/// its stored value, the same series labels with `branch` renamed `ref`.
/// `None` for every other group, today's included.
///
/// Its event stays recorded as it was (nothing is recomputed, no GitHub
/// call); only the label changes, so queries on `ref` see the whole history.
pub fn upgraded(stored: &StoredGroup) -> Option<Group> {
    if !stored.metrics.contains_key(names::DEPLOY_EVENT) || stored.sample_labels.contains_key("ref")
    {
        return None;
    }
    let reference = stored
        .sample_labels
        .get("branch")
        .filter(|b| !b.is_empty())?;
    let grouping: Vec<(String, String)> = stored
        .labels
        .iter()
        .filter(|(k, _)| *k != "job")
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect();
    // The listing repeats the grouping labels (and `job`, maybe an empty
    // `instance`) on every series: those stay in the grouping key only.
    let mut labels: Vec<(&str, &str)> = stored
        .sample_labels
        .iter()
        .filter(|(k, _)| !stored.labels.contains_key(k) && *k != "branch")
        .map(|(k, v)| (k, v.as_str()))
        .collect();
    labels.push(("ref", reference));
    let metrics: Vec<(&'static str, &str, f64)> = WORKFLOW_METRICS
        .iter()
        .filter_map(|(name, help)| {
            let value = *stored.metrics.get(name)?.first()?;
            Some((*name, *help, value))
        })
        .collect();
    Some(group(grouping, &metrics, labels))
}

/// The group for one event: its grouping labels, and its series with the
/// event's own labels. Never an empty label value: an unknown value (a
/// Flux source outside GitHub has no repository) leaves the label out.
pub fn deploy_group(d: &Deploy) -> Group {
    let grouping = grouping(d);
    let mut labels: Vec<(&str, &str)> = vec![("source", &d.source), ("status", d.status.as_str())];
    let mut metrics: Vec<(&'static str, &str, f64)> = Vec::new();
    let time = d.time.as_second() as f64;
    match &d.key {
        EventKey::Run { .. } | EventKey::Deployment { .. } => {
            labels.extend([("ref", d.branch.as_str()), ("sha", &d.sha)]);
            metrics.push(workflow_metric(names::DEPLOY_EVENT, 1.0));
            metrics.push(workflow_metric(names::DEPLOY_TIMESTAMP, time));
            if let Some(lead) = d.lead_time_seconds() {
                metrics.push(workflow_metric(names::LEAD_TIME, lead as f64));
            }
            if let Some(recovery) = d.history.recovery_seconds {
                metrics.push(workflow_metric(names::RECOVERY, recovery as f64));
                metrics.push(workflow_metric(names::REWORK_TIMESTAMP, time));
            }
            if let Some(changes) = d
                .history
                .changes
                .as_ref()
                .filter(|_| d.status == Status::Success)
            {
                metrics.push(workflow_metric(names::CHANGES, changes.count as f64));
                if let Some(median) = changes.median_lead_seconds {
                    metrics.push(workflow_metric(names::CHANGE_LEAD_TIME, median as f64));
                }
            }
        }
        EventKey::Flux { .. } => {
            let ready = d.status == Status::Success;
            labels.extend([
                ("ready", if ready { "true" } else { "false" }),
                ("sha", d.sha.as_str()),
                ("repository", &d.repository),
            ]);
            metrics.push((names::FLUX_APPLIED, "Unix time a Flux Kustomization's revision became Ready (or, not Ready, last changed), from its Ready condition.", time));
            metrics.push((
                names::FLUX_READY,
                "Whether the applied Flux revision is Ready (1) or not (0).",
                if ready { 1.0 } else { 0.0 },
            ));
            if let Some(lead) = d.lead_time_seconds() {
                metrics.push((
                    names::FLUX_LEAD_TIME,
                    "Seconds from the revision's commit to the Flux revision applied and Ready.",
                    lead as f64,
                ));
            }
        }
        EventKey::Canary { .. } => {
            metrics.push((names::CANARY_TIMESTAMP, "Unix time a Flagger canary reached a terminal phase (Succeeded: promoted; Failed: rolled back).", time));
            if let Some(recovery) = d.history.recovery_seconds {
                metrics.push((names::CANARY_RECOVERY, "Failed-deployment recovery time of a canary: seconds from its first Failed to the next Succeeded.", recovery as f64));
            }
        }
    }
    labels.push(("environment", &d.environment));
    group(grouping, &metrics, labels)
}

/// A group of gauges sharing one label set; empty label values left out.
pub(super) fn group(
    grouping: Vec<(String, String)>,
    metrics: &[(&'static str, &str, f64)],
    mut labels: Vec<(&str, &str)>,
) -> Group {
    labels.retain(|(_, v)| !v.is_empty());
    let (names, values): (Vec<&str>, Vec<&str>) = labels.iter().copied().unzip();
    Group {
        grouping,
        exposition: encode(metrics, &names, &values),
        series_labels: labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        samples: metrics.iter().map(|(n, _, v)| (*n, *v)).collect(),
    }
}

/// The current phase of a Flagger Canary: state, not an event, so one group
/// per canary, replaced when the phase changes.
#[derive(Debug, Clone, PartialEq)]
pub struct CanaryPhase {
    pub namespace: String,
    pub canary: String,
    pub phase: String,
    pub environment: String,
}

impl CanaryPhase {
    pub fn group(&self) -> Group {
        let grouping = vec![
            ("namespace".to_string(), self.namespace.clone()),
            ("canary".to_string(), self.canary.clone()),
        ];
        let metrics = [(
            names::CANARY_PHASE,
            "The current phase of a Flagger canary (the label); always 1.",
            1.0,
        )];
        let labels = vec![
            ("source", self.canary.as_str()),
            ("phase", &self.phase),
            ("environment", &self.environment),
        ];
        group(grouping, &metrics, labels)
    }

    /// Whether `stored` (the group with this canary's key) already shows this phase.
    pub fn is_recorded(&self, stored: &StoredGroup) -> bool {
        stored.metrics.contains_key(names::CANARY_PHASE)
            && stored.sample_labels.get("phase") == Some(&self.phase)
            && stored
                .sample_labels
                .get("environment")
                .map(String::as_str)
                .unwrap_or("")
                == self.environment
    }
}

/// Renders gauges sharing one label set with the prometheus crate's text
/// encoder, which owns escaping and the HELP/TYPE lines.
fn encode(metrics: &[(&str, &str, f64)], label_names: &[&str], label_values: &[&str]) -> String {
    let registry = Registry::new();
    for (name, help, value) in metrics {
        // Names and label names are constants of this module: a failure here is a bug.
        let gauge =
            GaugeVec::new(Opts::new(*name, *help), label_names).expect("valid metric definition");
        gauge.with_label_values(label_values).set(*value);
        registry
            .register(Box::new(gauge))
            .expect("metric names are unique");
    }
    let mut out = Vec::new();
    TextEncoder::new()
        .encode(&registry.gather(), &mut out)
        .expect("text encoding writes to memory");
    String::from_utf8(out).expect("the text encoder writes UTF-8")
}

/// What a run reads of each stored group: this action's families (`dora_*`),
/// and the series labels of a group's `*_phase` or `*_ready` metric (an
/// unchanged phase, a revision's environment) or of its
/// `dora_workflow_deploy_event` (a group stored before `ref`, see [`upgraded`]).
pub const FAMILIES: Keep = Keep {
    prefix: "dora_",
    labelled: |family| {
        family.ends_with("_phase")
            || family.ends_with("_ready")
            || family == names::DEPLOY_EVENT
            || family == super::incident::names::OPENED
    },
};

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::dora::fixtures::{at, stored, stored_before_ref};
    use crate::dora::plan::expired;

    #[test]
    fn a_run_is_grouped_by_repository_workflow_run_and_attempt() {
        let g = deploy_group(&Deploy::success());
        let keys: Vec<(&str, &str)> = g
            .grouping
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        assert_eq!(
            keys,
            [
                ("repository", "octo-org/shop"),
                ("workflow", "Deploy"),
                ("run_id", "7001"),
                ("run_attempt", "1")
            ]
        );
    }

    #[test]
    fn a_deployment_status_is_grouped_by_deployment_and_status() {
        let d = Deploy {
            key: EventKey::Deployment {
                id: 9001,
                status_id: 9101,
            },
            ..Deploy::success()
        };
        let group = deploy_group(&d);
        let keys: Vec<&str> = group.grouping.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(
            keys,
            ["repository", "deployment_id", "deployment_status_id"]
        );
    }

    #[test]
    fn exposition_holds_event_time_and_lead_time_with_help_and_type() {
        let text = deploy_group(&Deploy::success()).exposition;
        // The encoder sorts labels by name.
        let labels = r#"{environment="production",ref="main",sha="9f8e7d6c5b4a39281706f5e4d3c2b1a098765432",source="Deploy",status="success"}"#;
        for line in [
            "# TYPE dora_workflow_deploy_event gauge".to_string(),
            format!("dora_workflow_deploy_event{labels} 1"),
            format!("dora_workflow_deploy_timestamp{labels} 1795170600"),
            format!("dora_workflow_lead_time_seconds{labels} 1800"),
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "missing line {line:?} in:\n{text}"
            );
        }
        assert!(text.contains("# HELP dora_workflow_lead_time_seconds "));
    }

    #[test]
    fn the_deployed_ref_is_the_ref_label_and_there_is_no_branch_label() {
        // A deployment of a tag: `ref` holds it as GitHub gave it; no
        // `branch` label repeats it (or pretends a tag is a branch).
        let d = Deploy {
            key: EventKey::Deployment {
                id: 9001,
                status_id: 9101,
            },
            branch: "v1.4.2".into(),
            ..Deploy::success()
        };
        let g = deploy_group(&d);
        assert!(
            g.series_labels
                .contains(&("ref".to_string(), "v1.4.2".to_string())),
            "{:?}",
            g.series_labels
        );
        assert!(
            !g.series_labels.iter().any(|(k, _)| k == "branch"),
            "{:?}",
            g.series_labels
        );
        for line in g.exposition.lines().filter(|l| l.starts_with("dora_")) {
            assert!(line.contains(r#"ref="v1.4.2""#), "{line}");
        }
    }

    #[test]
    fn a_group_stored_before_ref_is_upgraded_with_every_value_kept() {
        let old = stored_before_ref();
        let new = upgraded(&old).expect("a group with `branch` and no `ref` is upgraded");
        // The same grouping key: the push replaces the old group.
        assert_eq!(
            new.labels("dora"),
            BTreeMap::from_iter(old.labels.iter().map(|(k, v)| (k.to_string(), v.clone())))
        );
        let mut labels = new.series_labels.clone();
        labels.sort();
        assert_eq!(
            labels,
            [
                ("environment", "production"),
                ("ref", "main"),
                ("sha", "9f8e7d6c5b4a39281706f5e4d3c2b1a098765432"),
                ("source", "Deploy"),
                ("status", "success"),
            ]
            .map(|(k, v)| (k.to_string(), v.to_string()))
        );
        // Every stored value, and exactly what today's version writes for the same event.
        let today = deploy_group(&Deploy {
            history: History {
                recovery_seconds: Some(5_400),
                changes: Some(Changes {
                    count: 3,
                    median_lead_seconds: Some(7_200),
                }),
                ..History::default()
            },
            ..Deploy::success()
        });
        assert_eq!(new.exposition, today.exposition);
        assert_eq!(new.samples.len(), 7);
        // Today's groups, other groups and groups without a ref are left alone.
        let mut current = old.clone();
        current.sample_labels.insert("ref".into(), "main".into());
        assert_eq!(upgraded(&current), None);
        let mut no_ref = old.clone();
        no_ref.sample_labels = old.labels.clone();
        assert_eq!(upgraded(&no_ref), None, "never an empty `ref`");
        assert_eq!(upgraded(&stored("dora", Some(1.0))), None);
        // Still a recorded event, and still found by retention.
        assert!(is_recorded(&old, &Deploy::success()));
        assert_eq!(
            expired(&[old], "dora", at("2027-11-26T00:00:00Z"), 90 * 86_400).len(),
            1
        );
    }

    #[test]
    fn a_failure_has_no_lead_time_series() {
        let text = deploy_group(&Deploy::failure()).exposition;
        assert!(text.contains(r#"status="failure""#));
        assert!(!text.contains("dora_workflow_lead_time_seconds"), "{text}");
    }

    #[test]
    fn label_values_are_escaped_by_the_encoder() {
        let d = Deploy {
            source: "Deploy \"prod\" / eu ✓\\".into(),
            ..Deploy::success()
        };
        let text = deploy_group(&d).exposition;
        assert!(
            text.contains(r#"source="Deploy \"prod\" / eu ✓\\""#),
            "{text}"
        );
    }

    #[test]
    fn a_recovery_is_exposed_with_its_rework_time() {
        let d = Deploy {
            history: History {
                recovery_seconds: Some(5_400),
                ..History::default()
            },
            ..Deploy::success()
        };
        let text = deploy_group(&d).exposition;
        assert!(
            text.lines()
                .any(|l| l.starts_with("dora_workflow_recovery_seconds{") && l.ends_with(" 5400")),
            "{text}"
        );
        assert!(
            text.lines()
                .any(|l| l.starts_with("dora_workflow_rework_timestamp{")
                    && l.ends_with(" 1795170600")),
            "{text}"
        );
    }

    #[test]
    fn flux_groups_are_keyed_by_kustomization_and_revision() {
        let d = Deploy {
            source: "apps".into(),
            key: EventKey::Flux {
                namespace: "flux-system".into(),
                revision: "main@sha1:abc".into(),
            },
            branch: "main".into(),
            ..Deploy::success()
        };
        let g = deploy_group(&d);
        let keys: Vec<&str> = g.grouping.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(keys, ["namespace", "kustomization", "revision"]);
        assert!(
            g.exposition.contains("dora_flux_ready{") && g.exposition.contains(r#"ready="true""#),
            "{}",
            g.exposition
        );
        assert!(
            g.exposition.contains("dora_flux_lead_time_seconds{"),
            "{}",
            g.exposition
        );
        let not_ready = Deploy {
            status: Status::NotReady,
            ..d.clone()
        };
        let text = deploy_group(&not_ready).exposition;
        assert!(
            text.contains(r#"status="not_ready""#) && !text.contains("lead_time"),
            "{text}"
        );
        let unknown_repo = Deploy {
            repository: String::new(),
            ..d
        };
        assert!(
            !deploy_group(&unknown_repo)
                .exposition
                .contains("repository="),
            "no empty label values"
        );
        let mut stored = StoredGroup::default();
        stored.metrics.insert(names::FLUX_READY.into(), vec![0.0]);
        stored.metrics.insert(
            names::FLUX_APPLIED.into(),
            vec![not_ready.time.as_second() as f64],
        );
        assert!(is_recorded(&stored, &not_ready));
        assert!(
            !is_recorded(
                &stored,
                &Deploy {
                    status: Status::Success,
                    ..not_ready
                }
            ),
            "became Ready: replace"
        );
    }
}
