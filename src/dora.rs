//! The pure core: deployment events in; Pushgateway groups, retention
//! decisions and the summary's numbers out. No I/O and no knowledge of how
//! any outside system is reached.
//!
//! Each event is its own Pushgateway group, keyed by what makes the event
//! unique, and every timestamp metric holds the event's own time as its
//! value: dashboards count by value, backfill lands at once, re-runs are
//! no-ops, and concurrent matrix legs never overwrite each other.

use std::collections::BTreeMap;

use jiff::Timestamp;
use prometheus::{Encoder, GaugeVec, Opts, Registry, TextEncoder};

/// How a deployment ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Success,
    Failure,
    /// A Flux revision applied but not Ready: recorded, yet neither a
    /// deployment nor a failed one.
    NotReady,
}

impl Status {
    /// The `status` label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Success => "success",
            Status::Failure => "failure",
            Status::NotReady => "not_ready",
        }
    }
}

/// What makes a deployment event unique, and so its Pushgateway group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EventKey {
    /// A workflow run attempt. The same run yields the same key whether it
    /// came from a `workflow_run` event or (later) from the REST API.
    Run { run_id: u64, attempt: u64 },
    /// One status of a GitHub deployment.
    Deployment { id: u64, status_id: u64 },
    /// A revision a Flux Kustomization applied (the source is the Kustomization).
    Flux { namespace: String, revision: String },
    /// A terminal outcome of a Flagger Canary (the source is the Canary):
    /// each (phase, transition time) is its own event, so every rollback the
    /// status shows counts once, however often the action runs.
    Canary {
        namespace: String,
        phase: String,
        transition: i64,
    },
}

/// A deployment observed from a GitHub Actions workflow run or a GitHub deployment status.
#[derive(Debug, Clone, PartialEq)]
pub struct Deploy {
    /// `owner/name`.
    pub repository: String,
    /// The workflow's name (or what stands in for it); never empty.
    pub source: String,
    pub key: EventKey,
    pub status: Status,
    /// The git ref deployed, the series' `ref` label (the original workflow's
    /// name): a workflow run's head branch, a deployment's `ref` (a branch, a
    /// tag or a sha, as GitHub gives it), a Flux revision's branch or tag.
    pub branch: String,
    pub sha: String,
    pub environment: String,
    /// When the deployment finished: the payload's time, never the collector's clock.
    pub time: Timestamp,
    /// The deployed (head) commit's time, when known.
    pub commit_time: Option<Timestamp>,
    /// Link to the run or deployment, for the summary.
    pub url: Option<String>,
    /// What the deployments around it say about it (filled by [`annotate`]).
    pub history: History,
}

/// What a deployment's neighbours (the same source on the same branch) say about it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct History {
    /// For a success that ends a streak of failures: seconds since the
    /// streak's first failure (failed-deployment recovery time).
    pub recovery_seconds: Option<i64>,
    /// The sha of the previous successful deployment (the base of "what this one shipped").
    pub previous_success_sha: Option<String>,
    /// Every commit this deployment shipped, when known.
    pub changes: Option<Changes>,
    /// For a canary recovery: the Flux revision (`kustomization revision`)
    /// that was applied first after the failure, when it came before the
    /// canary's own next success and so ended the recovery.
    pub recovered_by: Option<String>,
}

/// The commits a deployment shipped since the previous successful one.
#[derive(Debug, Clone, PartialEq)]
pub struct Changes {
    /// How many commits.
    pub count: u64,
    /// The median of their lead times (deploy time − each commit's time).
    pub median_lead_seconds: Option<i64>,
}

impl Changes {
    /// The changes of a deployment at `deployed` whose commits are dated
    /// `commit_times`; `count` may exceed the times GitHub listed (it lists at most 250).
    pub fn new(deployed: Timestamp, commit_times: &[Timestamp], count: u64) -> Changes {
        let leads = commit_times
            .iter()
            .map(|t| deployed.as_second() - t.as_second())
            .filter(|l| *l >= 0)
            .collect();
        Changes {
            count,
            median_lead_seconds: median(leads),
        }
    }
}

impl Deploy {
    /// What a deployment's history is made of: the same kind of source, the
    /// same repository (or namespace), the same source, the same branch.
    fn stream(&self) -> (u8, String, String, String) {
        match &self.key {
            EventKey::Run { .. } | EventKey::Deployment { .. } => (
                0,
                self.repository.clone(),
                self.source.clone(),
                self.branch.clone(),
            ),
            EventKey::Flux { namespace, .. } => {
                (1, namespace.clone(), self.source.clone(), String::new())
            }
            EventKey::Canary { namespace, .. } => {
                (2, namespace.clone(), self.source.clone(), String::new())
            }
        }
    }

    /// Lead time for changes of this deployment's head commit: deploy time −
    /// commit time, for successful deployments only. `None` when the commit
    /// time is unknown or later than the deployment (clock skew, rewritten history).
    pub fn lead_time_seconds(&self) -> Option<i64> {
        if self.status != Status::Success {
            return None;
        }
        let lead = self.time.as_second() - self.commit_time?.as_second();
        (lead >= 0).then_some(lead)
    }

    /// The lead time the summary reports: the median over every change it
    /// shipped when known, else the head commit's.
    pub fn best_lead_time_seconds(&self) -> Option<i64> {
        if self.status != Status::Success {
            return None;
        }
        self.history
            .changes
            .as_ref()
            .and_then(|c| c.median_lead_seconds)
            .or_else(|| self.lead_time_seconds())
    }

    /// Rework (DORA 2024's fifth metric, as a heuristic): a successful
    /// deployment that follows a failed one of the same source — a fix
    /// forward or a redeploy. Exactly the deployments that recover.
    pub fn is_rework(&self) -> bool {
        self.history.recovery_seconds.is_some()
    }

    /// Whether a commit time is known but lies after the deployment.
    pub fn has_future_commit(&self) -> bool {
        self.commit_time.is_some_and(|c| c > self.time)
    }
}

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

/// Fills in [`History`] for every deployment from the others of the same
/// repository, source and branch, in event-time order: recovery time (the
/// first failure after the last success → the next success) and the
/// previous success's sha. Deployments are not reordered.
pub fn annotate(deploys: &mut [Deploy]) {
    let mut order: Vec<usize> = (0..deploys.len()).collect();
    order.sort_by(|&a, &b| {
        let (a, b) = (&deploys[a], &deploys[b]);
        (a.stream(), a.time).cmp(&(b.stream(), b.time))
    });
    let mut first_failure: Option<Timestamp> = None;
    let mut last_success: Option<String> = None;
    let mut stream = None;
    for i in order {
        let this = deploys[i].stream();
        let d = &mut deploys[i];
        if stream.as_ref() != Some(&this) {
            stream = Some(this);
            first_failure = None;
            last_success = None;
        }
        d.history.previous_success_sha = last_success.clone();
        match d.status {
            Status::Failure => {
                first_failure.get_or_insert(d.time);
            }
            Status::Success => {
                d.history.recovery_seconds = first_failure
                    .take()
                    .map(|f| d.time.as_second() - f.as_second());
                last_success = Some(d.sha.clone());
            }
            Status::NotReady => {}
        }
    }
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
fn group(
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

/// A group as stored in the Pushgateway: its grouping labels and the values
/// of each metric in it. A run holds every stored group at once (ten
/// thousand and more), so the maps are [`SmallMap`]s, not `BTreeMap`s.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct StoredGroup {
    pub labels: SmallMap<String>,
    pub metrics: SmallMap<Vec<f64>>,
    /// The series labels of a group's `*_phase` or `*_ready` metric (to tell
    /// an unchanged phase from a new one, and a revision's environment) or
    /// of its `dora_workflow_deploy_event` (to tell a group stored before
    /// `ref` from today's, see [`upgraded`]); empty otherwise.
    pub sample_labels: SmallMap<String>,
}

/// A small map from names to values, kept as one exactly-sized vector
/// sorted by name: a few entries cost a few words each, where a `BTreeMap`
/// allocates a node for eleven (about 1 KB per stored group, most of a
/// run's memory at ten thousand groups).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct SmallMap<V>(Vec<(Box<str>, V)>);

impl<V> Default for SmallMap<V> {
    fn default() -> Self {
        SmallMap(Vec::new())
    }
}

impl<V> SmallMap<V> {
    fn find(&self, key: &str) -> Result<usize, usize> {
        self.0.binary_search_by(|(k, _)| k.as_ref().cmp(key))
    }

    pub fn get(&self, key: &str) -> Option<&V> {
        self.find(key).ok().map(|i| &self.0[i].1)
    }

    pub fn contains_key(&self, key: &str) -> bool {
        self.find(key).is_ok()
    }

    /// Sets `key` to `value` (replacing an earlier value), keeping the order.
    pub fn insert(&mut self, key: String, value: V) {
        let key = key.into_boxed_str();
        match self.find(&key) {
            Ok(i) => self.0[i].1 = value,
            Err(i) => self.0.insert(i, (key, value)),
        }
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &V)> {
        self.0.iter().map(|(k, v)| (k.as_ref(), v))
    }

    pub fn values(&self) -> impl Iterator<Item = &V> {
        self.0.iter().map(|(_, v)| v)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Gives back the room growth left over (after parsing).
    pub fn shrink_to_fit(&mut self) {
        self.0.shrink_to_fit();
    }
}

impl<K: Into<String>, V> Extend<(K, V)> for SmallMap<V> {
    fn extend<I: IntoIterator<Item = (K, V)>>(&mut self, iter: I) {
        for (k, v) in iter {
            self.insert(k.into(), v);
        }
    }
}

impl<K: Into<String>, V> FromIterator<(K, V)> for SmallMap<V> {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Self {
        let mut map = SmallMap::default();
        map.extend(iter);
        map.shrink_to_fit();
        map
    }
}

impl<V> From<BTreeMap<String, V>> for SmallMap<V> {
    fn from(map: BTreeMap<String, V>) -> Self {
        // Already sorted by name.
        SmallMap(
            map.into_iter()
                .map(|(k, v)| (k.into_boxed_str(), v))
                .collect(),
        )
    }
}

impl<V: PartialEq> PartialEq<BTreeMap<String, V>> for SmallMap<V> {
    fn eq(&self, other: &BTreeMap<String, V>) -> bool {
        self.0.len() == other.len()
            && self
                .0
                .iter()
                .zip(other)
                .all(|((k, v), (k2, v2))| k.as_ref() == k2.as_str() && v == v2)
    }
}

impl<V> std::ops::Index<&str> for SmallMap<V> {
    type Output = V;
    fn index(&self, key: &str) -> &V {
        self.get(key)
            .unwrap_or_else(|| panic!("no `{key}` in the map"))
    }
}

impl<'de, V: serde::Deserialize<'de>> serde::Deserialize<'de> for SmallMap<V> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visit<V>(std::marker::PhantomData<V>);
        impl<'de, V: serde::Deserialize<'de>> serde::de::Visitor<'de> for Visit<V> {
            type Value = SmallMap<V>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a map")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut access: A,
            ) -> Result<SmallMap<V>, A::Error> {
                let mut map = SmallMap::default();
                while let Some((k, v)) = access.next_entry::<String, V>()? {
                    map.insert(k, v);
                }
                map.shrink_to_fit();
                Ok(map)
            }
        }
        deserializer.deserialize_map(Visit(std::marker::PhantomData))
    }
}

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

/// The numbers the outputs and the summary report for a run.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Tally {
    pub events: usize,
    pub deployments: usize,
    pub failures: usize,
    /// Median lead time of the successful deployments (per change where known), seconds.
    pub lead_time_median: Option<i64>,
    /// Median failed-deployment recovery time of the successes that recovered, seconds.
    pub recovery_median: Option<i64>,
    /// Successful deployments that were rework.
    pub rework: usize,
}

/// Counts the recorded deployments.
pub fn tally(deploys: &[Deploy]) -> Tally {
    Tally {
        events: deploys
            .iter()
            .filter(|d| d.status != Status::NotReady)
            .count(),
        deployments: deploys
            .iter()
            .filter(|d| d.status == Status::Success)
            .count(),
        failures: deploys
            .iter()
            .filter(|d| d.status == Status::Failure)
            .count(),
        lead_time_median: median(
            deploys
                .iter()
                .filter_map(Deploy::best_lead_time_seconds)
                .collect(),
        ),
        recovery_median: median(
            deploys
                .iter()
                .filter_map(|d| d.history.recovery_seconds)
                .collect(),
        ),
        rework: deploys.iter().filter(|d| d.is_rework()).count(),
    }
}

/// A DORA 2024 performance band.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Band {
    Elite,
    High,
    Medium,
    Low,
}

impl Band {
    pub fn as_str(self) -> &'static str {
        match self {
            Band::Elite => "elite",
            Band::High => "high",
            Band::Medium => "medium",
            Band::Low => "low",
        }
    }

    /// Deployment frequency: elite on demand (daily or more), high between
    /// daily and weekly, medium between weekly and monthly, low less often.
    pub fn of_frequency(per_day: f64) -> Band {
        match per_day {
            f if f >= 1.0 => Band::Elite,
            f if f >= 1.0 / 7.0 => Band::High,
            f if f >= 1.0 / 30.0 => Band::Medium,
            _ => Band::Low,
        }
    }

    /// Lead time for changes: elite under a day, high under a week, medium under a month.
    pub fn of_lead_time(seconds: i64) -> Band {
        match seconds {
            s if s < DAY => Band::Elite,
            s if s < 7 * DAY => Band::High,
            s if s < 30 * DAY => Band::Medium,
            _ => Band::Low,
        }
    }

    /// Change failure rate (0–1): elite ≤ 5 %, high ≤ 20 %, medium ≤ 40 %, low above.
    /// DORA 2024's clusters sit at 5 % (elite), 20 % (high), 10 % (medium) and
    /// 40 % (low); read as ordered upper bounds, the medium cluster falls in
    /// "high", which is the honest reading of a rate that good.
    pub fn of_failure_rate(rate: f64) -> Band {
        match rate {
            r if r <= 0.05 => Band::Elite,
            r if r <= 0.20 => Band::High,
            r if r <= 0.40 => Band::Medium,
            _ => Band::Low,
        }
    }

    /// Failed-deployment recovery time: elite under an hour, high under a day, medium under a week.
    pub fn of_recovery(seconds: i64) -> Band {
        match seconds {
            s if s < 3_600 => Band::Elite,
            s if s < DAY => Band::High,
            s if s < 7 * DAY => Band::Medium,
            _ => Band::Low,
        }
    }
}

const DAY: i64 = 86_400;

/// The four keys (and rework) for one source over a window.
#[derive(Debug, Clone, PartialEq)]
pub struct SourceStats {
    pub source: String,
    pub deployments: usize,
    pub failures: usize,
    /// Failed ÷ all deployments; `None` with no deployments at all.
    pub failure_rate: Option<f64>,
    /// Successful deployments per day over the window.
    pub per_day: Option<f64>,
    pub lead_time_median: Option<i64>,
    pub recovery_median: Option<i64>,
    pub rework: usize,
}

/// The keys per source, in source order; `window` (seconds) gives frequency.
pub fn by_source(deploys: &[Deploy], window: Option<u64>) -> Vec<SourceStats> {
    let mut sources: Vec<&str> = deploys.iter().map(|d| d.source.as_str()).collect();
    sources.sort_unstable();
    sources.dedup();
    sources
        .into_iter()
        .map(|source| {
            let mine: Vec<Deploy> = deploys
                .iter()
                .filter(|d| d.source == source)
                .cloned()
                .collect();
            let t = tally(&mine);
            SourceStats {
                source: source.to_string(),
                deployments: t.deployments,
                failures: t.failures,
                failure_rate: (t.events > 0).then(|| t.failures as f64 / t.events as f64),
                per_day: window
                    .filter(|w| *w > 0)
                    .map(|w| t.deployments as f64 / (w as f64 / DAY as f64)),
                lead_time_median: t.lead_time_median,
                recovery_median: t.recovery_median,
                rework: t.rework,
            }
        })
        .collect()
}

/// The median, averaging the two middle values of an even count (rounded down).
pub fn median(mut values: Vec<i64>) -> Option<i64> {
    if values.is_empty() {
        return None;
    }
    values.sort_unstable();
    let mid = values.len() / 2;
    Some(if values.len() % 2 == 1 {
        values[mid]
    } else {
        (values[mid - 1] + values[mid]).div_euclid(2)
    })
}

#[cfg(test)]
pub(crate) mod fixtures {
    //! Builders for test deployments, so tests say only what they vary.
    use super::*;

    pub fn at(rfc3339: &str) -> Timestamp {
        rfc3339.parse().unwrap()
    }

    impl Deploy {
        pub fn success() -> Deploy {
            Deploy {
                repository: "octo-org/shop".into(),
                source: "Deploy".into(),
                key: EventKey::Run {
                    run_id: 7001,
                    attempt: 1,
                },
                status: Status::Success,
                branch: "main".into(),
                sha: "9f8e7d6c5b4a39281706f5e4d3c2b1a098765432".into(),
                environment: "production".into(),
                time: at("2026-11-20T10:30:00Z"),
                commit_time: Some(at("2026-11-20T10:00:00Z")),
                url: None,
                history: History::default(),
            }
        }
        pub fn failure() -> Deploy {
            Deploy {
                status: Status::Failure,
                ..Deploy::success()
            }
        }
        pub fn at(mut self, t: &str) -> Deploy {
            self.time = at(t);
            self
        }
        pub fn sha(mut self, sha: &str) -> Deploy {
            self.sha = sha.into();
            self
        }
        pub fn committed(mut self, t: &str) -> Deploy {
            self.commit_time = Some(at(t));
            self
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::fixtures::at;
    use super::*;

    #[test]
    fn lead_time_is_deploy_time_minus_commit_time_for_successes_only() {
        assert_eq!(Deploy::success().lead_time_seconds(), Some(1_800));
        assert_eq!(Deploy::failure().lead_time_seconds(), None);
        assert_eq!(
            Deploy {
                commit_time: None,
                ..Deploy::success()
            }
            .lead_time_seconds(),
            None
        );
        let skewed = Deploy::success().committed("2026-11-20T11:00:00Z");
        assert_eq!(skewed.lead_time_seconds(), None);
        assert!(skewed.has_future_commit());
    }

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
    fn small_maps_stay_sorted_and_compare_with_btree_maps() {
        let mut m: SmallMap<String> = SmallMap::default();
        m.insert("run_id".into(), "2".into());
        m.insert("job".into(), "dora".into());
        m.insert("run_id".into(), "3".into());
        assert_eq!(
            m.iter().map(|(k, _)| k).collect::<Vec<_>>(),
            ["job", "run_id"]
        );
        assert_eq!(m["run_id"], "3");
        assert!(m.contains_key("job") && !m.contains_key("jo"));
        let b: BTreeMap<String, String> = [
            ("job".to_string(), "dora".to_string()),
            ("run_id".to_string(), "3".to_string()),
        ]
        .into();
        assert!(m == b);
        assert_eq!(SmallMap::from(b.clone()), m);
        let parsed: SmallMap<String> = serde_json::from_str(r#"{"z":"1","a":"2"}"#).unwrap();
        assert_eq!(
            parsed.iter().collect::<Vec<_>>(),
            [("a", &"2".to_string()), ("z", &"1".to_string())]
        );
        m.insert("x".into(), String::new());
        assert!(m != b);
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

    /// A group as the previous version pushed it and the Pushgateway lists
    /// it: series labelled `branch`, no `ref`; grouping labels (and `job`)
    /// repeated on the series.
    pub(crate) fn stored_before_ref() -> StoredGroup {
        let mut g = StoredGroup::default();
        g.labels.extend(
            [
                ("job", "dora"),
                ("repository", "octo-org/shop"),
                ("workflow", "Deploy"),
                ("run_id", "7001"),
                ("run_attempt", "1"),
            ]
            .map(|(k, v)| (k, v.to_string())),
        );
        g.metrics.insert(names::DEPLOY_EVENT.into(), vec![1.0]);
        g.metrics
            .insert(names::DEPLOY_TIMESTAMP.into(), vec![1_795_170_600.0]);
        g.metrics.insert(names::LEAD_TIME.into(), vec![1_800.0]);
        g.metrics.insert(names::RECOVERY.into(), vec![5_400.0]);
        g.metrics
            .insert(names::REWORK_TIMESTAMP.into(), vec![1_795_170_600.0]);
        g.metrics.insert(names::CHANGES.into(), vec![3.0]);
        g.metrics
            .insert(names::CHANGE_LEAD_TIME.into(), vec![7_200.0]);
        g.sample_labels = g.labels.clone();
        g.sample_labels.extend(
            [
                ("branch", "main"),
                ("environment", "production"),
                ("instance", ""),
                ("sha", "9f8e7d6c5b4a39281706f5e4d3c2b1a098765432"),
                ("source", "Deploy"),
                ("status", "success"),
            ]
            .map(|(k, v)| (k, v.to_string())),
        );
        g
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

    fn stored(job: &str, timestamp: Option<f64>) -> StoredGroup {
        let mut g = StoredGroup::default();
        g.labels.insert("job".into(), job.into());
        if let Some(t) = timestamp {
            g.metrics.insert(names::DEPLOY_TIMESTAMP.into(), vec![t]);
        }
        g.metrics.insert("push_time_seconds".into(), vec![2e9]);
        g
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
    fn recovery_runs_from_the_first_failure_of_a_streak_to_the_next_success() {
        let mut d = vec![
            Deploy::success().at("2026-11-20T09:00:00Z").sha("a"),
            Deploy::failure().at("2026-11-20T10:00:00Z").sha("b"),
            Deploy::failure().at("2026-11-20T10:20:00Z").sha("c"),
            Deploy::success().at("2026-11-20T11:30:00Z").sha("d"),
            Deploy::success().at("2026-11-20T12:00:00Z").sha("e"),
            // Another source: its own stream.
            Deploy {
                source: "Other".into(),
                ..Deploy::success().at("2026-11-20T11:00:00Z").sha("x")
            },
        ];
        // Order of input does not matter.
        d.reverse();
        annotate(&mut d);
        d.reverse();
        assert_eq!(d[0].history, History::default());
        assert_eq!(d[1].history.previous_success_sha.as_deref(), Some("a"));
        assert_eq!(d[3].history.recovery_seconds, Some(5_400), "11:30 − 10:00");
        assert!(d[3].is_rework());
        assert_eq!(d[3].history.previous_success_sha.as_deref(), Some("a"));
        assert_eq!(d[4].history.recovery_seconds, None);
        assert_eq!(d[4].history.previous_success_sha.as_deref(), Some("d"));
        assert_eq!(d[5].history, History::default());
        let t = tally(&d);
        assert_eq!((t.recovery_median, t.rework), (Some(5_400), 1));
    }

    #[test]
    fn per_change_lead_time_is_the_median_over_the_shipped_commits() {
        let c = Changes::new(
            at("2026-11-20T10:30:00Z"),
            &[
                at("2026-11-20T10:00:00Z"),
                at("2026-11-20T08:30:00Z"),
                at("2026-11-19T10:30:00Z"),
            ],
            3,
        );
        assert_eq!(
            c,
            Changes {
                count: 3,
                median_lead_seconds: Some(7_200)
            }
        );
        let d = Deploy {
            history: History {
                changes: Some(c),
                ..History::default()
            },
            ..Deploy::success()
        };
        assert_eq!(d.best_lead_time_seconds(), Some(7_200));
        assert_eq!(
            d.lead_time_seconds(),
            Some(1_800),
            "the head commit's lead time stays"
        );
        let text = deploy_group(&d).exposition;
        assert!(
            text.contains("dora_workflow_changes{") && text.contains("} 3\n"),
            "{text}"
        );
        assert!(
            text.contains("dora_workflow_change_lead_time_seconds{"),
            "{text}"
        );
        assert!(text.contains("} 7200\n"), "{text}");
    }

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

    #[test]
    fn bands_follow_dora_2024() {
        assert_eq!(Band::of_frequency(3.0), Band::Elite);
        assert_eq!(Band::of_frequency(0.5), Band::High);
        assert_eq!(Band::of_frequency(0.1), Band::Medium);
        assert_eq!(Band::of_frequency(0.01), Band::Low);
        assert_eq!(Band::of_lead_time(3_600), Band::Elite);
        assert_eq!(Band::of_lead_time(2 * DAY), Band::High);
        assert_eq!(Band::of_lead_time(10 * DAY), Band::Medium);
        assert_eq!(Band::of_lead_time(60 * DAY), Band::Low);
        assert_eq!(Band::of_failure_rate(0.05), Band::Elite);
        assert_eq!(Band::of_failure_rate(0.10), Band::High);
        assert_eq!(Band::of_failure_rate(0.3), Band::Medium);
        assert_eq!(Band::of_failure_rate(0.5), Band::Low);
        assert_eq!(Band::of_recovery(1_800), Band::Elite);
        assert_eq!(Band::of_recovery(5 * 3_600), Band::High);
        assert_eq!(Band::of_recovery(3 * DAY), Band::Medium);
        assert_eq!(Band::of_recovery(8 * DAY), Band::Low);
    }

    #[test]
    fn stats_per_source_over_a_window() {
        let mut d = vec![
            Deploy::success().at("2026-11-20T09:00:00Z"),
            Deploy::failure().at("2026-11-20T10:00:00Z"),
            Deploy::success()
                .at("2026-11-20T11:00:00Z")
                .committed("2026-11-20T10:40:00Z"),
            Deploy {
                source: "Other".into(),
                ..Deploy::failure()
            },
        ];
        annotate(&mut d);
        let stats = by_source(&d, Some(2 * 86_400));
        assert_eq!(stats.len(), 2);
        let s = &stats[0];
        assert_eq!(
            (s.source.as_str(), s.deployments, s.failures),
            ("Deploy", 2, 1)
        );
        assert_eq!(s.failure_rate, Some(1.0 / 3.0));
        assert_eq!(s.per_day, Some(1.0));
        // Head-commit lead times: 09:00 − 10:00 is negative (skew: unknown), 11:00 − 10:40 = 1200.
        assert_eq!(s.lead_time_median, Some(1_200));
        assert_eq!((s.recovery_median, s.rework), (Some(3_600), 1));
        assert_eq!(
            (stats[1].deployments, stats[1].failure_rate),
            (0, Some(1.0))
        );
    }

    #[test]
    fn tally_counts_and_takes_the_median_lead_time() {
        let deploys = [
            Deploy::success(),
            Deploy::success().committed("2026-11-20T09:30:00Z"),
            Deploy::success().committed("2026-11-20T10:20:00Z"),
            Deploy::failure(),
        ];
        let t = tally(&deploys);
        assert_eq!(
            t,
            Tally {
                events: 4,
                deployments: 3,
                failures: 1,
                lead_time_median: Some(1_800),
                ..Tally::default()
            }
        );
        assert_eq!(median(vec![600, 1_800]), Some(1_200));
        assert_eq!(median(vec![1, 2]), Some(1));
        assert_eq!(median(vec![]), None);
    }
}
