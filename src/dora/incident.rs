//! Incidents: GitHub issues with an incident label, each pinned on the
//! deployment that caused it (or on none), and the change failures that
//! incidents and reverts make of successful deployments. Pure: the source
//! reads the issues, this module decides what they mean.
//!
//! How a link is chosen, in this order (the kind is recorded):
//! 1. `explicit`: the title or body names a recorded deployment: a commit
//!    sha (7–40 hex, a prefix of its sha), the URL of its workflow run
//!    (`…/actions/runs/<id>`) or of its deployment (`…/deployments/<id>`);
//! 2. `window`: the latest successful deployment of the incident's
//!    environment that finished before it opened, at most `incident-window`
//!    before;
//! 3. `none`: unlinked: it counts for time to restore, never for change
//!    failure rate.

use jiff::Timestamp;

use super::revert::Revert;
use super::{Deploy, EventKey, Group, Status, group};
use crate::duration::human;

/// Metric names of incidents and change failures.
pub mod names {
    pub const OPENED: &str = "dora_incident_opened_timestamp";
    pub const RESOLVED: &str = "dora_incident_resolved_timestamp";
    pub const CHANGE_FAILURE: &str = "dora_change_failure_timestamp";
    pub const CHANGE_FAILURE_RECOVERY: &str = "dora_change_failure_recovery_seconds";
}

const HELP_OPENED: &str =
    "Unix time an incident (a GitHub issue with an incident label) was opened.";
const HELP_RESOLVED: &str = "Unix time an incident was closed as completed (absent while open).";
const HELP_CHANGE_FAILURE: &str = "Unix time of a successful deployment later found failed (an incident pinned on it, or a revert of it): the deployment's own time.";
const HELP_CHANGE_FAILURE_RECOVERY: &str = "Seconds from a deployment found failed to the intervention that restored it (the incident closed, the revert deployed).";

/// An incident, as its issue says it.
#[derive(Debug, Clone, PartialEq)]
pub struct Incident {
    /// `owner/name` of the repository the issue is in.
    pub repository: String,
    pub number: u64,
    pub title: String,
    pub body: String,
    /// The issue's page, for the summary.
    pub url: Option<String>,
    /// `created_at`.
    pub opened: Timestamp,
    /// `closed_at` of an issue closed as completed; `None` while open.
    pub resolved: Option<Timestamp>,
    /// From an `environment:<name>` label.
    pub environment: Option<String>,
}

/// An issue that is no incident (any more): closed as `not_planned`, its
/// incident label removed, deleted. Its group is deleted if one was pushed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Withdrawn {
    pub repository: String,
    pub number: u64,
    pub reason: String,
}

/// What one issue is: an incident, or no incident (any more).
#[derive(Debug, Clone, PartialEq)]
pub enum Observed {
    Incident(Incident),
    Withdrawn(Withdrawn),
}

/// How an incident was pinned on a deployment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkKind {
    Explicit,
    Window,
    None,
}

impl LinkKind {
    /// The `link` label value.
    pub fn as_str(self) -> &'static str {
        match self {
            LinkKind::Explicit => "explicit",
            LinkKind::Window => "window",
            LinkKind::None => "none",
        }
    }
}

/// An incident with the deployment it is pinned on, and why.
#[derive(Debug, Clone, PartialEq)]
pub struct Pinned {
    pub incident: Incident,
    /// The incident's environment: its `environment:` label, else the run's.
    pub environment: String,
    pub link: LinkKind,
    /// The deployment it is pinned on (`None` for [`LinkKind::None`]).
    pub deploy: Option<Deploy>,
    /// The evidence in words: "body names 1a2b3c4", "latest production deploy 40m before".
    pub evidence: String,
}

impl Pinned {
    /// Time to restore: resolved − opened, once resolved.
    pub fn restore_seconds(&self) -> Option<i64> {
        let r = self.incident.resolved?;
        Some((r.as_second() - self.incident.opened.as_second()).max(0))
    }

    /// For a linked incident: seconds from the deployment to the incident's
    /// resolution (the change failure's recovery), once resolved.
    pub fn recovery_seconds(&self) -> Option<i64> {
        let (d, r) = (self.deploy.as_ref()?, self.incident.resolved?);
        Some((r.as_second() - d.time.as_second()).max(0))
    }
}

/// Pins `incident` on one of `deploys` (this run's and the stored ones):
/// explicit, else by `window` seconds in its environment (`environment`
/// when the issue has no `environment:` label), else on none.
pub fn pin(incident: Incident, deploys: &[Deploy], environment: &str, window: u64) -> Pinned {
    let environment = incident
        .environment
        .clone()
        .unwrap_or_else(|| environment.to_string());
    let successes: Vec<&Deploy> = deploys
        .iter()
        .filter(|d| d.status == Status::Success)
        .collect();
    let named = [("title", &incident.title), ("body", &incident.body)]
        .into_iter()
        .find_map(|(field, text)| {
            named_deploy(text, &successes, &environment, incident.opened)
                .map(|(d, what)| (d, format!("{field} names {what}")))
        });
    if let Some((d, evidence)) = named {
        return Pinned {
            deploy: Some(d.clone()),
            incident,
            environment,
            link: LinkKind::Explicit,
            evidence,
        };
    }
    let opened = incident.opened.as_second();
    let latest = successes
        .iter()
        .filter(|d| d.environment == environment)
        .filter(|d| d.time.as_second() <= opened && opened - d.time.as_second() <= window as i64)
        .max_by_key(|d| d.time);
    match latest {
        Some(d) => Pinned {
            evidence: format!(
                "latest {environment} deploy {} before",
                human(opened - d.time.as_second())
            ),
            deploy: Some((*d).clone()),
            incident,
            environment,
            link: LinkKind::Window,
        },
        None => Pinned {
            evidence: format!(
                "no deployment named, none in {environment} within {} before",
                human(window as i64)
            ),
            deploy: None,
            incident,
            environment,
            link: LinkKind::None,
        },
    }
}

/// The deployment `text` names, and how it names it ("1a2b3c4", "run 7104",
/// "deployment 42"): a run or deployment URL first, then a sha. Among
/// several deployments of one sha: the incident's environment first, then
/// the latest before it opened.
fn named_deploy<'a>(
    text: &str,
    deploys: &[&'a Deploy],
    environment: &str,
    opened: Timestamp,
) -> Option<(&'a Deploy, String)> {
    let best = |matching: Vec<&'a Deploy>| {
        matching
            .into_iter()
            .max_by_key(|d| (d.environment == environment, d.time <= opened, d.time))
    };
    for (marker, what) in [("/actions/runs/", "run"), ("/deployments/", "deployment")] {
        for id in ids_after(text, marker) {
            let found = best(
                deploys
                    .iter()
                    .copied()
                    .filter(|d| match d.key {
                        EventKey::Run { run_id, .. } => what == "run" && run_id == id,
                        EventKey::Deployment { id: dep, .. } => what == "deployment" && dep == id,
                        _ => false,
                    })
                    .collect(),
            );
            if let Some(d) = found {
                return Some((d, format!("{what} {id}")));
            }
        }
    }
    for word in hex_words(text) {
        let found = best(
            deploys
                .iter()
                .copied()
                .filter(|d| {
                    d.sha.len() >= word.len() && d.sha[..word.len()].eq_ignore_ascii_case(&word)
                })
                .collect(),
        );
        if let Some(d) = found {
            return Some((d, word));
        }
    }
    None
}

/// The numbers right after each `marker` in `text`.
fn ids_after(text: &str, marker: &str) -> Vec<u64> {
    text.match_indices(marker)
        .filter_map(|(i, _)| {
            let digits: String = text[i + marker.len()..]
                .chars()
                .take_while(char::is_ascii_digit)
                .collect();
            digits.parse().ok()
        })
        .collect()
}

/// The words of 7–40 hex digits in `text` (a word: between characters that
/// are neither letters, digits nor `_`), lowercased.
fn hex_words(text: &str) -> Vec<String> {
    text.split(|c: char| !(c.is_alphanumeric() || c == '_'))
        .filter(|w| (7..=40).contains(&w.len()) && w.bytes().all(|b| b.is_ascii_hexdigit()))
        .map(str::to_ascii_lowercase)
        .collect()
}

/// The grouping labels of an incident's group (besides `job`).
pub fn incident_grouping(repository: &str, number: u64) -> Vec<(String, String)> {
    vec![
        ("repository".to_string(), repository.to_string()),
        ("incident".to_string(), number.to_string()),
    ]
}

/// An incident's group: opened (and resolved) time with its link; and,
/// when it is pinned on a deployment, that deployment's change failure
/// (cause `incident`, the issue number the evidence) and, once resolved,
/// its recovery.
pub fn incident_group(p: &Pinned) -> Group {
    let i = &p.incident;
    let mut metrics = vec![(names::OPENED, HELP_OPENED, i.opened.as_second() as f64)];
    if let Some(r) = i.resolved {
        metrics.push((names::RESOLVED, HELP_RESOLVED, r.as_second() as f64));
    }
    let mut labels: Vec<(&str, &str)> =
        vec![("environment", &p.environment), ("link", p.link.as_str())];
    if let Some(d) = &p.deploy {
        labels.extend([
            ("source", d.source.as_str()),
            ("sha", &d.sha),
            ("cause", "incident"),
        ]);
        metrics.push((
            names::CHANGE_FAILURE,
            HELP_CHANGE_FAILURE,
            d.time.as_second() as f64,
        ));
        if let Some(rec) = p.recovery_seconds() {
            metrics.push((
                names::CHANGE_FAILURE_RECOVERY,
                HELP_CHANGE_FAILURE_RECOVERY,
                rec as f64,
            ));
        }
    }
    group(incident_grouping(&i.repository, i.number), &metrics, labels)
}

/// A revert's group, keyed by the repository and the reverting commit: the
/// failed deployment's change failure (cause `revert`) and its recovery
/// (the reverting deployment's time − the failed one's).
pub fn revert_group(r: &Revert) -> Group {
    let grouping = vec![
        ("repository".to_string(), r.failed.repository.clone()),
        ("revert".to_string(), r.commit.clone()),
    ];
    let metrics = [
        (
            names::CHANGE_FAILURE,
            HELP_CHANGE_FAILURE,
            r.failed.time.as_second() as f64,
        ),
        (
            names::CHANGE_FAILURE_RECOVERY,
            HELP_CHANGE_FAILURE_RECOVERY,
            r.recovery_seconds() as f64,
        ),
    ];
    let labels = vec![
        ("source", r.failed.source.as_str()),
        ("sha", &r.failed.sha),
        ("environment", &r.failed.environment),
        ("cause", "revert"),
    ];
    group(grouping, &metrics, labels)
}

/// One failed deployment, whatever its causes: counted once, its recovery
/// the first intervention that restored it (`None` while none has).
#[derive(Debug, Clone, PartialEq)]
pub struct ChangeFailure {
    pub deploy: Deploy,
    /// `incident #12`, `revert ffeeddc`: every cause found.
    pub causes: Vec<String>,
    pub recovery_seconds: Option<i64>,
}

/// The change failures the pinned incidents and reverts make, one per
/// failed deployment (same source, sha, environment and time).
pub fn change_failures(pinned: &[Pinned], reverts: &[Revert]) -> Vec<ChangeFailure> {
    let causes = pinned
        .iter()
        .filter_map(|p| {
            let d = p.deploy.as_ref()?;
            Some((
                d,
                format!("incident #{}", p.incident.number),
                p.recovery_seconds(),
            ))
        })
        .chain(reverts.iter().map(|r| {
            let short: String = r.commit.chars().take(7).collect();
            (
                &r.failed,
                format!("revert {short}"),
                Some(r.recovery_seconds()),
            )
        }));
    let mut out: Vec<ChangeFailure> = Vec::new();
    for (d, cause, recovery) in causes {
        let same = |c: &&mut ChangeFailure| {
            (
                &c.deploy.source,
                &c.deploy.sha,
                &c.deploy.environment,
                c.deploy.time,
            ) == (&d.source, &d.sha, &d.environment, d.time)
        };
        match out.iter_mut().find(|c| same(c)) {
            Some(c) => {
                c.causes.push(cause);
                c.recovery_seconds = match (c.recovery_seconds, recovery) {
                    (Some(a), Some(b)) => Some(a.min(b)),
                    (a, b) => a.or(b),
                };
            }
            None => out.push(ChangeFailure {
                deploy: d.clone(),
                causes: vec![cause],
                recovery_seconds: recovery,
            }),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dora::fixtures::at;
    use crate::dora::revert::Revert;

    const SHA: &str = "1a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d";

    fn incident(title: &str, body: &str, opened: &str) -> Incident {
        Incident {
            title: title.into(),
            body: body.into(),
            opened: at(opened),
            ..Incident::example()
        }
    }

    fn deploys() -> Vec<Deploy> {
        vec![
            Deploy::success().at("2026-11-20T09:00:00Z").sha(SHA),
            Deploy {
                key: EventKey::Run {
                    run_id: 7104,
                    attempt: 1,
                },
                ..Deploy::success()
                    .at("2026-11-20T10:00:00Z")
                    .sha("b2b2b2b2b2b2")
            },
            Deploy {
                key: EventKey::Run {
                    run_id: 7105,
                    attempt: 1,
                },
                ..Deploy::failure()
                    .at("2026-11-20T10:20:00Z")
                    .sha("c3c3c3c3c3c3")
            },
        ]
    }

    #[test]
    fn a_sha_prefix_in_the_body_pins_the_incident_explicitly() {
        let i = incident(
            "Checkout down",
            "Root cause: 1A2B3C4 (the new cart)",
            "2026-11-20T12:00:00Z",
        );
        let p = pin(i, &deploys(), "production", 86_400);
        assert_eq!(p.link, LinkKind::Explicit);
        assert_eq!(p.deploy.unwrap().sha, SHA);
        assert_eq!(p.evidence, "body names 1a2b3c4");
    }

    #[test]
    fn a_run_url_pins_the_incident_on_that_run() {
        let body = "Broken by https://github.com/octo-org/shop/actions/runs/7104/attempts/1";
        let p = pin(
            incident("Checkout down", body, "2026-11-20T12:00:00Z"),
            &deploys(),
            "production",
            60,
        );
        assert_eq!(p.link, LinkKind::Explicit);
        assert_eq!(p.deploy.unwrap().sha, "b2b2b2b2b2b2");
        assert_eq!(p.evidence, "body names run 7104");
    }

    #[test]
    fn a_deployment_url_pins_the_incident_on_that_deployment() {
        let deployed = Deploy {
            key: EventKey::Deployment {
                id: 145_988_746,
                status_id: 1,
            },
            ..Deploy::success()
                .at("2026-11-19T08:00:00Z")
                .sha("d4d4d4d4d4d4")
        };
        let mut all = deploys();
        all.push(deployed);
        let title = "Outage after https://api.github.com/repos/octo-org/shop/deployments/145988746";
        let p = pin(
            incident(title, "", "2026-11-20T12:00:00Z"),
            &all,
            "production",
            60,
        );
        assert_eq!(p.link, LinkKind::Explicit);
        assert_eq!(p.deploy.unwrap().sha, "d4d4d4d4d4d4");
        assert_eq!(p.evidence, "title names deployment 145988746");
    }

    #[test]
    fn a_failed_run_or_a_short_or_unknown_sha_is_no_explicit_link() {
        let body = "after https://github.com/octo-org/shop/actions/runs/7105 and 1a2b3c, deadbeef";
        let p = pin(
            incident("x", body, "2026-11-20T10:40:00Z"),
            &deploys(),
            "production",
            3_600,
        );
        assert_eq!(p.link, LinkKind::Window);
        assert_eq!(
            p.deploy.unwrap().sha,
            "b2b2b2b2b2b2",
            "the failed 10:20 run is no deployment"
        );
        assert_eq!(p.evidence, "latest production deploy 40m before");
    }

    #[test]
    fn outside_the_window_or_the_environment_an_incident_is_unlinked() {
        let p = pin(
            incident("x", "", "2026-11-20T12:00:00Z"),
            &deploys(),
            "production",
            3_600,
        );
        assert_eq!((p.link, p.deploy.is_none()), (LinkKind::None, true));
        assert_eq!(
            p.evidence,
            "no deployment named, none in production within 1h before"
        );
        let mut staging = incident("x", "", "2026-11-20T10:30:00Z");
        staging.environment = Some("staging".into());
        let p = pin(staging, &deploys(), "production", 86_400);
        assert_eq!(
            (p.link, p.environment.as_str()),
            (LinkKind::None, "staging")
        );
        let before = pin(
            incident("x", "", "2026-11-20T08:59:59Z"),
            &deploys(),
            "production",
            86_400,
        );
        assert_eq!(
            before.link,
            LinkKind::None,
            "only deployments before it opened"
        );
    }

    #[test]
    fn the_group_carries_the_link_and_the_change_failure_once_resolved() {
        let mut i = incident("x", SHA, "2026-11-20T12:00:00Z");
        i.resolved = Some(at("2026-11-20T13:30:00Z"));
        let p = pin(i, &deploys(), "production", 86_400);
        assert_eq!(
            (p.restore_seconds(), p.recovery_seconds()),
            (Some(5_400), Some(16_200))
        );
        let g = incident_group(&p);
        assert_eq!(g.grouping, incident_grouping("octo-org/shop", 12));
        let text = &g.exposition;
        for want in [
            r#"dora_incident_opened_timestamp{cause="incident",environment="production",link="explicit",sha="1a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d",source="Deploy"} 1795176000"#,
            "dora_incident_resolved_timestamp{",
            "dora_change_failure_timestamp{",
            "} 1795165200\n",
            "dora_change_failure_recovery_seconds{",
            "} 16200\n",
        ] {
            assert!(text.contains(want), "{want}\n{text}");
        }
        let unlinked = pin(
            incident("x", "", "2026-11-21T12:00:00Z"),
            &deploys(),
            "production",
            60,
        );
        let text = incident_group(&unlinked).exposition;
        assert!(
            text.contains(r#"{environment="production",link="none"}"#),
            "{text}"
        );
        assert!(
            !text.contains("change_failure") && !text.contains("resolved"),
            "{text}"
        );
    }

    #[test]
    fn a_deployment_with_an_incident_and_a_revert_is_one_change_failure() {
        let mut i = incident("x", SHA, "2026-11-20T12:00:00Z");
        i.resolved = Some(at("2026-11-20T15:00:00Z"));
        let p = pin(i, &deploys(), "production", 86_400);
        let failed = p.deploy.clone().unwrap();
        let revert = Revert {
            failed: failed.clone(),
            by: Deploy::success().at("2026-11-20T13:00:00Z").sha("ffee"),
            commit: "ffeeddccbbaa99887766554433221100ffeeddcc".into(),
            reverted: SHA.into(),
        };
        let all = change_failures(&[p], std::slice::from_ref(&revert));
        assert_eq!(all.len(), 1);
        assert_eq!(all[0].causes, ["incident #12", "revert ffeeddc"]);
        assert_eq!(
            all[0].recovery_seconds,
            Some(4 * 3_600),
            "the revert at 13:00 came first"
        );
        let text = revert_group(&revert).exposition;
        assert!(
            text.contains(r#"cause="revert""#) && text.contains("} 14400\n"),
            "{text}"
        );
    }
}
