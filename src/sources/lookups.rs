//! What completes an event once it is known to be new, with GitHub calls
//! made only for new events: the commits a workflow deployment shipped (one
//! compare each), a Flux revision's commit time, and the canary recoveries
//! the stored outcomes tell.

use std::collections::BTreeMap;

use futures_util::StreamExt;
use jiff::Timestamp;

use crate::Result;
use crate::dora;
use crate::dora::revert::{Shipped, reverted_sha};
use crate::github::{Compared, GitHub};

/// For each new successful deployment with a known previous success: the
/// commits it shipped, with one compare call each (cached within the run).
pub async fn changes_of_new(
    github: &GitHub,
    deploys: &mut [dora::Deploy],
    new: &[bool],
    warnings: &mut Vec<String>,
) {
    let mut cache: BTreeMap<(String, String, String), Compared> = BTreeMap::new();
    for (d, _) in deploys.iter_mut().zip(new).filter(|(d, new)| {
        **new && d.status == dora::Status::Success && d.history.changes.is_none()
    }) {
        let Some(base) = d.history.previous_success_sha.clone() else {
            continue;
        };
        if base == d.sha {
            d.history.changes = Some(dora::Changes {
                count: 0,
                median_lead_seconds: None,
            });
            continue;
        }
        let key = (d.repository.clone(), base.clone(), d.sha.clone());
        if !cache.contains_key(&key) {
            match github.compare(&d.repository, &base, &d.sha).await {
                Ok(found) => {
                    cache.insert(key.clone(), found);
                }
                Err(e) => {
                    warnings.push(format!(
                        "changes shipped by {} unknown (head-commit lead time only): {e}",
                        d.sha
                    ));
                    continue;
                }
            }
        }
        let found = &cache[&key];
        d.history.changes = Some(dora::Changes::new(d.time, &found.times, found.total));
        d.history.shipped = found
            .commits
            .iter()
            .map(|(sha, message)| Shipped {
                sha: sha.clone(),
                reverts: reverted_sha(message),
            })
            .collect();
    }
}

/// Completes the new events with what needs the stored history or a call:
/// canary recovery from the outcomes stored before, the changes each new
/// workflow deployment shipped (one compare each), and each new Ready Flux
/// revision's commit time (one call per revision never recorded, a few at a time).
pub async fn complete(
    github: &GitHub,
    deploys: &mut [dora::Deploy],
    stored: &[dora::StoredGroup],
    new: &[bool],
    warnings: &mut Vec<String>,
) {
    dora::annotate_canaries(deploys, stored);
    changes_of_new(github, deploys, new, warnings).await;
    let wanted: Vec<(String, String)> = deploys
        .iter()
        .zip(new)
        .filter(|(d, n)| {
            **n && matches!(d.key, dora::EventKey::Flux { .. }) && d.status == dora::Status::Success
        })
        .filter(|(d, _)| !d.repository.is_empty() && !d.sha.is_empty())
        .map(|(d, _)| (d.repository.clone(), d.sha.clone()))
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    let found: BTreeMap<(String, String), Result<Timestamp>> =
        futures_util::stream::iter(wanted.into_iter().map(|(repo, sha)| async move {
            let t = github.commit_time(&repo, &sha).await;
            ((repo, sha), t)
        }))
        .buffer_unordered(LOOKUP_CONCURRENCY)
        .collect()
        .await;
    for d in deploys
        .iter_mut()
        .filter(|d| matches!(d.key, dora::EventKey::Flux { .. }))
    {
        match found.get(&(d.repository.clone(), d.sha.clone())) {
            Some(Ok(t)) => d.commit_time = Some(*t),
            Some(Err(e)) => warnings.push(format!(
                "Kustomization {}: commit {} unknown, recorded without lead time: {e}",
                d.source, d.sha
            )),
            None => {}
        }
    }
}

/// GitHub look-ups in flight at once: well under GitHub's secondary rate limits.
const LOOKUP_CONCURRENCY: usize = 8;
