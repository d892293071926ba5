//! Builders for test deployments, so tests say only what they vary.
use jiff::Timestamp;

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

impl incident::Incident {
    /// Issue #12 of `octo-org/shop`, "Checkout down", no body, opened at
    /// 11:10 (40 minutes after [`Deploy::success`]), still open.
    pub fn example() -> incident::Incident {
        incident::Incident {
            repository: "octo-org/shop".into(),
            number: 12,
            title: "Checkout down".into(),
            body: String::new(),
            url: None,
            opened: at("2026-11-20T11:10:00Z"),
            resolved: None,
            environment: None,
        }
    }
}

impl incident::Pinned {
    /// [`incident::Incident::example`] pinned on [`Deploy::success`] by
    /// the window, resolved at 12:40.
    pub fn example() -> incident::Pinned {
        incident::Pinned {
            incident: incident::Incident {
                resolved: Some(at("2026-11-20T12:40:00Z")),
                ..incident::Incident::example()
            },
            environment: "production".into(),
            link: incident::LinkKind::Window,
            deploy: Some(Deploy::success()),
            evidence: "latest production deploy 40m before".into(),
        }
    }
}

/// A group as the previous version pushed it and the Pushgateway lists
/// it: series labelled `branch`, no `ref`; grouping labels (and `job`)
/// repeated on the series.
pub fn stored_before_ref() -> StoredGroup {
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

pub fn stored(job: &str, timestamp: Option<f64>) -> StoredGroup {
    let mut g = StoredGroup::default();
    g.labels.insert("job".into(), job.into());
    if let Some(t) = timestamp {
        g.metrics.insert(names::DEPLOY_TIMESTAMP.into(), vec![t]);
    }
    g.metrics.insert("push_time_seconds".into(), vec![2e9]);
    g
}
