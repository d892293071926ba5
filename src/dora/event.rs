//! A deployment event: what was deployed, where, how it ended, and what
//! its neighbours say about it.

use jiff::Timestamp;

use super::median;

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
    /// What the deployments around it say about it (filled by [`annotate`](super::annotate)).
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
    /// The commits it shipped (from the same compare as [`Changes`]), for reverts.
    pub shipped: Vec<super::revert::Shipped>,
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
    pub(super) fn stream(&self) -> (u8, String, String, String) {
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

#[cfg(test)]
mod tests {

    use super::*;
    use crate::dora::fixtures::at;
    use crate::dora::*;

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
}
