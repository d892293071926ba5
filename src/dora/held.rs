//! What a remote-write store already holds, in the shape the Pushgateway's
//! listing gives ([`StoredGroup`]s), so one rule ([`super::is_recorded`],
//! [`super::adopt_recorded`]) serves both stores. The store is asked one
//! instant query ([`held_query`]); its series are regrouped by the labels
//! that make each event unique ([`held_groups`]).

use std::collections::BTreeMap;

use super::names;
use crate::stored::StoredGroup;

/// The families that tell whether an event is recorded and what it said
/// (see [`super::is_recorded`] and [`super::adopt_recorded`]).
const HELD: [&str; 10] = [
    names::DEPLOY_TIMESTAMP,
    names::LEAD_TIME,
    names::RECOVERY,
    names::CHANGES,
    names::CHANGE_LEAD_TIME,
    names::FLUX_APPLIED,
    names::FLUX_READY,
    names::FLUX_LEAD_TIME,
    names::CANARY_TIMESTAMP,
    names::CANARY_RECOVERY,
];

/// The grouping labels of each kind of event, told apart by the label only
/// that kind has (the order of [`super::grouping`]).
const KINDS: [(&str, &[&str]); 4] = [
    (
        "run_id",
        &["repository", "workflow", "run_id", "run_attempt"],
    ),
    (
        "deployment_status_id",
        &["repository", "deployment_id", "deployment_status_id"],
    ),
    ("kustomization", &["namespace", "kustomization", "revision"]),
    ("canary", &["namespace", "canary", "phase", "transition"]),
];

/// The one query that says what the store holds of `job` over the last
/// `range_seconds`: the latest sample of every series of `HELD`. Every
/// sample is written at its event's time, so the range reaches back to the
/// run's oldest event.
pub fn held_query(job: &str, range_seconds: i64) -> String {
    let job = job.replace('\\', r"\\").replace('"', "\\\"");
    format!(
        r#"last_over_time({{__name__=~"{}",job="{job}"}}[{}s])"#,
        HELD.join("|"),
        range_seconds.max(1)
    )
}

/// The series of [`held_query`]'s answer, regrouped: one group per event,
/// its labels `job` and the event's grouping labels, its metrics the held
/// values. Series of no known kind are left out.
pub fn held_groups(series: Vec<(BTreeMap<String, String>, f64)>) -> Vec<StoredGroup> {
    let mut groups: BTreeMap<Vec<(String, String)>, StoredGroup> = BTreeMap::new();
    for (labels, value) in series {
        let Some(name) = labels
            .get("__name__")
            .filter(|n| HELD.contains(&n.as_str()))
        else {
            continue;
        };
        let Some((_, grouping)) = KINDS.iter().find(|(mark, _)| labels.contains_key(*mark)) else {
            continue;
        };
        let key: Vec<(String, String)> = std::iter::once("job")
            .chain(grouping.iter().copied())
            .filter_map(|k| Some((k.to_string(), labels.get(k)?.clone())))
            .collect();
        let group = groups.entry(key.clone()).or_insert_with(|| StoredGroup {
            labels: key.into_iter().collect(),
            ..StoredGroup::default()
        });
        group.metrics.insert(name.clone(), vec![value]);
    }
    groups.into_values().collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dora::fixtures::at;
    use crate::dora::{Deploy, adopt_recorded, group_labels, is_recorded};
    use crate::stored::SmallMap;

    fn series(name: &str, labels: &[(&str, &str)], value: f64) -> (BTreeMap<String, String>, f64) {
        let mut map: BTreeMap<String, String> = labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        map.insert("__name__".into(), name.into());
        (map, value)
    }

    #[test]
    fn the_query_names_every_held_family_of_the_job_only() {
        let q = held_query(r#"do"ra"#, 3_600);
        assert!(
            q.starts_with(r#"last_over_time({__name__=~"dora_workflow_deploy_timestamp|"#),
            "{q}"
        );
        assert!(q.ends_with(r#",job="do\"ra"}[3600s])"#), "{q}");
        assert!(held_query("dora", -5).ends_with("[1s])"));
    }

    #[test]
    fn a_held_run_is_recorded_and_reports_what_the_store_says() {
        let d = Deploy::success();
        let labels: Vec<(String, String)> = group_labels(&d, "dora").into_iter().collect();
        let mut with_series: Vec<(&str, &str)> = labels
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        with_series.extend([
            ("status", "success"),
            ("sha", "9f8e7d6"),
            ("environment", "production"),
        ]);
        let groups = held_groups(vec![
            series(
                names::DEPLOY_TIMESTAMP,
                &with_series,
                d.time.as_second() as f64,
            ),
            series(names::LEAD_TIME, &with_series, 600.0),
            series(names::DEPLOY_EVENT, &with_series, 1.0),
            series(names::DEPLOY_TIMESTAMP, &[("job", "dora")], 1.0),
        ]);
        assert_eq!(groups.len(), 1, "{groups:#?}");
        assert_eq!(groups[0].labels, SmallMap::from(group_labels(&d, "dora")));
        assert!(is_recorded(&groups[0], &d));
        let mut adopted = d.clone();
        adopt_recorded(&mut adopted, &groups[0]);
        assert_eq!(adopted.lead_time_seconds(), Some(600), "the store's value");
    }

    #[test]
    fn a_flux_revision_is_held_as_it_was() {
        let labels = [
            ("job", "dora"),
            ("namespace", "flux-system"),
            ("kustomization", "apps"),
            ("revision", "main@sha1:abc"),
        ];
        let applied = at("2026-11-20T10:00:00Z").as_second() as f64;
        let groups = held_groups(vec![
            series(names::FLUX_APPLIED, &labels, applied),
            series(names::FLUX_READY, &labels, 0.0),
        ]);
        assert_eq!(groups.len(), 1);
        assert_eq!(groups[0].labels["kustomization"], "apps");
        assert_eq!(groups[0].metrics[names::FLUX_READY], vec![0.0]);
    }
}
