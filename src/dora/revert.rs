//! Reverts: a deployment that ships git's own revert message (`This
//! reverts commit <sha>.`) marks the deployment that shipped `<sha>` as a
//! failed change, and itself as what recovered it.

use super::{Deploy, EventKey, Status};

/// A commit a deployment shipped: its sha, and the commit it reverts, if its
/// message says so.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shipped {
    pub sha: String,
    pub reverts: Option<String>,
}

/// The sha a commit message says it reverts: git's `This reverts commit
/// <sha>.` (a full 40-hex sha, lowercase as git writes it; the last such
/// line when a revert of a revert quotes the first). `None` otherwise.
pub fn reverted_sha(message: &str) -> Option<String> {
    message.lines().rev().find_map(|line| {
        let rest = line.trim().strip_prefix("This reverts commit ")?;
        let sha = rest.strip_suffix('.').unwrap_or(rest).trim();
        (sha.len() == 40 && sha.bytes().all(|b| b.is_ascii_hexdigit()))
            .then(|| sha.to_ascii_lowercase())
    })
}

/// The deployment recorded as having failed because a later one reverted
/// it, and the deployment that reverted it.
#[derive(Debug, Clone, PartialEq)]
pub struct Revert {
    /// The failed deployment (its time is the change failure's time).
    pub failed: Deploy,
    /// The reverting deployment (its time ends the recovery).
    pub by: Deploy,
    /// The reverting commit (the evidence).
    pub commit: String,
    /// The reverted commit the message names.
    pub reverted: String,
}

impl Revert {
    /// Seconds from the failed deployment to the reverting one.
    pub fn recovery_seconds(&self) -> i64 {
        self.by.time.as_second() - self.failed.time.as_second()
    }
}

/// Every revert the successful deployments' shipped commits show, each
/// pinned on the earliest successful deployment of the same repository and
/// environment (before the reverting one) that shipped the reverted commit
/// (its head, or one of the commits it shipped). A revert whose reverted
/// commit no known deployment shipped (never deployed, or before the
/// window) marks nothing.
pub fn find_reverts(deploys: &[Deploy]) -> Vec<Revert> {
    let mut successes: Vec<&Deploy> = deploys
        .iter()
        .filter(|d| d.status == Status::Success && is_workflow(d))
        .collect();
    successes.sort_by_key(|d| d.time);
    let shipped = |d: &Deploy, sha: &str| {
        d.sha.eq_ignore_ascii_case(sha) || d.history.shipped.iter().any(|s| s.sha == sha)
    };
    let mut found = Vec::new();
    for by in &successes {
        for s in &by.history.shipped {
            let Some(reverted) = &s.reverts else { continue };
            let failed = successes.iter().find(|d| {
                d.time < by.time
                    && d.repository == by.repository
                    && d.environment == by.environment
                    && shipped(d, reverted)
            });
            if let Some(failed) = failed {
                found.push(Revert {
                    failed: (*failed).clone(),
                    by: (*by).clone(),
                    commit: s.sha.clone(),
                    reverted: reverted.clone(),
                });
            }
        }
    }
    found
}

/// Workflow runs and GitHub deployments: the sources whose commits are compared.
fn is_workflow(d: &Deploy) -> bool {
    matches!(d.key, EventKey::Run { .. } | EventKey::Deployment { .. })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dora::History;

    const A: &str = "1a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d";
    const R: &str = "ffeeddccbbaa99887766554433221100ffeeddcc";

    #[test]
    fn git_revert_messages_name_the_reverted_commit() {
        let msg = format!("Revert \"Add checkout v2\"\n\nThis reverts commit {A}.\n");
        assert_eq!(reverted_sha(&msg).as_deref(), Some(A));
        let upper = format!("This reverts commit {}.", A.to_uppercase());
        assert_eq!(reverted_sha(&upper).as_deref(), Some(A));
        for not in [
            "Revert checkout",
            "This reverts commit 1a2b3c4.",
            &format!("this reverts commit {A}."),
            &format!("This reverts commit {A}x."),
        ] {
            assert_eq!(reverted_sha(not), None, "{not}");
        }
    }

    fn shipping(d: Deploy, shipped: &[(&str, Option<&str>)]) -> Deploy {
        Deploy {
            history: History {
                shipped: shipped
                    .iter()
                    .map(|(sha, r)| Shipped {
                        sha: sha.to_string(),
                        reverts: r.map(String::from),
                    })
                    .collect(),
                ..History::default()
            },
            ..d
        }
    }

    #[test]
    fn a_revert_marks_the_deployment_that_shipped_the_commit() {
        let failed = shipping(
            Deploy::success().at("2026-11-20T10:00:00Z").sha("b2"),
            &[(A, None), ("b2", None)],
        );
        let unrelated = Deploy::success().at("2026-11-20T11:00:00Z").sha("c3");
        let by = shipping(
            Deploy::success().at("2026-11-20T12:30:00Z").sha(R),
            &[(R, Some(A))],
        );
        let reverts = find_reverts(&[by.clone(), unrelated, failed.clone()]);
        assert_eq!(reverts.len(), 1);
        assert_eq!(reverts[0].failed, failed);
        assert_eq!(reverts[0].by, by);
        assert_eq!(
            (reverts[0].commit.as_str(), reverts[0].reverted.as_str()),
            (R, A)
        );
        assert_eq!(reverts[0].recovery_seconds(), 9_000, "10:00 → 12:30");
    }

    #[test]
    fn a_revert_of_a_commit_no_deployment_shipped_marks_nothing() {
        let by = shipping(
            Deploy::success().at("2026-11-20T12:30:00Z").sha(R),
            &[(R, Some(A))],
        );
        let later = shipping(
            Deploy::success().at("2026-11-20T13:00:00Z").sha("d4"),
            &[(A, None)],
        );
        assert!(
            find_reverts(&[by, later]).is_empty(),
            "only earlier deployments"
        );
    }
}
