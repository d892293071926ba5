//! Incidents from GitHub issues: an `issues` event's payload (event mode),
//! or the window's issues listed from GitHub REST (workflows mode). An
//! issue is an incident when it carries one of `incident-labels`; a pull
//! request never is. Closed as `not_planned`, without its label (removed),
//! or deleted, it is [`Withdrawn`]: its group goes.

use jiff::Timestamp;
use serde_json::Value;

use crate::dora::incident::{Incident, Observed, Withdrawn};
use crate::github::GitHub;
use crate::inputs::Inputs;
use crate::sources::payload;
use crate::{Error, Result};

/// The `issues` actions an incident changes with.
const ACTIONS: [&str; 7] = [
    "opened",
    "edited",
    "labeled",
    "unlabeled",
    "closed",
    "reopened",
    "deleted",
];

/// An `issues` event's payload: the incident it records or withdraws, or
/// why it is none (`Err` for a payload that lacks what it must have, naming
/// the field; `Ok(Err(reason))` for an event that is no incident's).
pub fn from_event(
    payload: &Value,
    labels: &[String],
    incident_repository: Option<&str>,
) -> Result<std::result::Result<Observed, String>, String> {
    let action = text(payload, "/action")?;
    let repository = text(payload, "/repository/full_name")?;
    let issue = payload
        .get("issue")
        .filter(|i| i.is_object())
        .ok_or("`issue` is missing or not an object")?;
    if let Some(wanted) = incident_repository.filter(|w| *w != repository) {
        return Ok(Err(format!(
            "the issue is in {repository}, incidents are read from {wanted} (`incident-repository`)"
        )));
    }
    if !ACTIONS.contains(&action.as_str()) {
        return Ok(Err(format!(
            "`issues` action `{action}` changes no incident"
        )));
    }
    if action == "deleted" {
        return Ok(Ok(Observed::Withdrawn(Withdrawn {
            repository,
            number: number(issue)?,
            reason: "deleted".into(),
        })));
    }
    match issue_of(issue, &repository, labels)? {
        Some(observed) => Ok(Ok(observed)),
        None => Ok(Err("a pull request is never an incident".into())),
    }
}

/// One issue (a REST issue object, or an `issues` event's `issue`) as an
/// incident or a withdrawn one; `None` for a pull request. `Err` names the
/// field that is missing or malformed.
pub fn issue_of(
    issue: &Value,
    repository: &str,
    labels: &[String],
) -> std::result::Result<Option<Observed>, String> {
    if issue.get("pull_request").is_some_and(|p| !p.is_null()) {
        return Ok(None);
    }
    let number = number(issue)?;
    let names: Vec<&str> = match issue.get("labels") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(|l| l.get("name").and_then(Value::as_str).or(l.as_str()))
            .collect(),
        Some(_) => return Err("`issue.labels` is not an array".into()),
    };
    let withdrawn = |reason: &str| {
        Ok(Some(Observed::Withdrawn(Withdrawn {
            repository: repository.to_string(),
            number,
            reason: reason.into(),
        })))
    };
    if !names.iter().any(|n| labels.iter().any(|l| l == n)) {
        return withdrawn("no incident label");
    }
    let closed = issue.get("state").and_then(Value::as_str) == Some("closed");
    if closed && issue.get("state_reason").and_then(Value::as_str) == Some("not_planned") {
        return withdrawn("closed as not planned");
    }
    let title = text(issue, "/title")?;
    let body = match issue.get("body") {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(_) => return Err("`issue.body` is not a string".into()),
    };
    let opened = time(issue, "/created_at")?;
    let resolved = if closed {
        Some(time(issue, "/closed_at")?)
    } else {
        None
    };
    let environment = names
        .iter()
        .find_map(|n| n.strip_prefix("environment:"))
        .map(str::trim)
        .filter(|e| !e.is_empty() && !e.chars().any(crate::actions::is_unsafe_char))
        .map(String::from);
    Ok(Some(Observed::Incident(Incident {
        repository: repository.to_string(),
        number,
        title,
        body,
        url: issue
            .get("html_url")
            .and_then(Value::as_str)
            .map(String::from),
        opened,
        resolved,
        environment,
    })))
}

/// Event mode: the `issues` payload at `path` as the incident it records
/// or withdraws, or why it is none (incidents off, a pull request, another
/// repository). A payload without what an issue must have fails the run,
/// naming the field.
pub fn read_event(
    inputs: &Inputs,
    path: Option<&std::path::Path>,
) -> Result<std::result::Result<Observed, String>> {
    let (path, value) = payload::read_payload(path)?;
    let labels = &inputs.incident_labels;
    let observed = from_event(&value, labels, inputs.incident_repository.as_deref())
        .map_err(|message| Error::Payload { path, message })?;
    if labels.is_empty() {
        return Ok(Err("incidents are off (`incident-labels` is empty)".into()));
    }
    Ok(observed)
}

/// Workflows mode: the incidents updated in the lookback window, from
/// `incident-repository` (default the run's `repository`); none when
/// `incident-labels` is empty. The deployments do not wait on them: a
/// repository with issues disabled (410) or a token without `issues: read`
/// costs a warning.
pub async fn window(
    github: &GitHub,
    inputs: &Inputs,
    repository: &str,
    now: Timestamp,
    warnings: &mut Vec<String>,
) -> Vec<Observed> {
    let repository = inputs.incident_repository.as_deref().unwrap_or(repository);
    if inputs.incident_labels.is_empty() || repository.is_empty() {
        return Vec::new();
    }
    let since = now
        .saturating_sub(jiff::SignedDuration::from_secs(inputs.lookback as i64))
        .unwrap_or(now);
    match listed(github, repository, &inputs.incident_labels, since, warnings).await {
        Ok(observed) => observed,
        Err(e) => {
            warnings.push(format!("incidents not read: {e}"));
            Vec::new()
        }
    }
}

/// Workflows mode: the issues of `repository` with any of `labels` updated
/// since `since` (one listing per label, ⌈issues/100⌉ calls each), each
/// once. An item that cannot be read is a warning, not a failure.
pub async fn listed(
    github: &GitHub,
    repository: &str,
    labels: &[String],
    since: Timestamp,
    warnings: &mut Vec<String>,
) -> Result<Vec<Observed>> {
    let mut seen = std::collections::BTreeSet::new();
    let mut out = Vec::new();
    for label in labels {
        for item in github.issues(repository, label, since, usize::MAX).await? {
            let n = item.get("number").and_then(Value::as_u64);
            if n.is_some_and(|n| !seen.insert(n)) {
                continue;
            }
            match issue_of(&item, repository, labels) {
                Ok(Some(observed)) => out.push(observed),
                Ok(None) => {}
                Err(e) => warnings.push(format!(
                    "issue {} of {repository} skipped: {e}",
                    n.map_or("?".to_string(), |n| format!("#{n}"))
                )),
            }
        }
    }
    Ok(out)
}

fn text(v: &Value, pointer: &str) -> std::result::Result<String, String> {
    v.pointer(pointer)
        .and_then(Value::as_str)
        .map(String::from)
        .ok_or_else(|| format!("`{}` is missing or not a string", field(pointer)))
}

fn number(issue: &Value) -> std::result::Result<u64, String> {
    issue
        .get("number")
        .and_then(Value::as_u64)
        .filter(|n| *n > 0)
        .ok_or_else(|| "`issue.number` is missing or not a positive integer".into())
}

fn time(v: &Value, pointer: &str) -> std::result::Result<Timestamp, String> {
    let t = text(v, pointer)?;
    t.parse()
        .map_err(|_| format!("`{}` is not an RFC 3339 time: `{t}`", field(pointer)))
}

/// `/a/b` as `a.b`, the way payload errors name fields.
fn field(pointer: &str) -> String {
    pointer.trim_start_matches('/').replace('/', ".")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn labels() -> Vec<String> {
        vec!["incident".into()]
    }

    fn rest_issue() -> Value {
        json!({
            "number": 42, "title": "Checkout returns 500", "body": "root cause: 1a2b3c4",
            "html_url": "https://github.com/octo-org/shop/issues/42",
            "state": "closed", "state_reason": "completed",
            "created_at": "2026-11-20T12:00:00Z", "closed_at": "2026-11-20T13:30:00Z",
            "labels": [{"id": 1, "name": "incident"}, {"id": 2, "name": "environment:production"}]
        })
    }

    #[test]
    fn a_closed_labelled_issue_is_a_resolved_incident() {
        let Some(Observed::Incident(i)) =
            issue_of(&rest_issue(), "octo-org/shop", &labels()).unwrap()
        else {
            panic!("an incident")
        };
        assert_eq!((i.number, i.title.as_str()), (42, "Checkout returns 500"));
        assert_eq!(i.resolved, Some("2026-11-20T13:30:00Z".parse().unwrap()));
        assert_eq!(i.environment.as_deref(), Some("production"));
    }

    #[test]
    fn pull_requests_not_planned_and_unlabelled_issues_are_no_incidents() {
        let mut pr = rest_issue();
        pr["pull_request"] = json!({"url": "https://api.github.com/repos/octo-org/shop/pulls/42"});
        assert_eq!(issue_of(&pr, "octo-org/shop", &labels()).unwrap(), None);
        let mut not_planned = rest_issue();
        not_planned["state_reason"] = json!("not_planned");
        let mut unlabelled = rest_issue();
        unlabelled["labels"] = json!([]);
        for (issue, reason) in [
            (not_planned, "closed as not planned"),
            (unlabelled, "no incident label"),
        ] {
            match issue_of(&issue, "octo-org/shop", &labels()).unwrap() {
                Some(Observed::Withdrawn(w)) => {
                    assert_eq!((w.number, w.reason.as_str()), (42, reason))
                }
                other => panic!("{reason}: {other:?}"),
            }
        }
    }

    #[test]
    fn a_malformed_issue_names_the_field() {
        for (field, value, says) in [
            ("number", json!("42"), "`issue.number`"),
            (
                "created_at",
                json!("yesterday"),
                "`created_at` is not an RFC 3339 time",
            ),
            ("title", Value::Null, "`title` is missing"),
            (
                "labels",
                json!("incident"),
                "`issue.labels` is not an array",
            ),
        ] {
            let mut issue = rest_issue();
            issue[field] = value;
            let e = issue_of(&issue, "octo-org/shop", &labels()).unwrap_err();
            assert!(e.contains(says), "{field}: {e}");
        }
    }

    #[test]
    fn an_issues_event_of_another_repository_or_action_is_no_incident() {
        let event = |action: &str| json!({"action": action, "issue": rest_issue(), "repository": {"full_name": "octo-org/shop"}});
        assert!(matches!(
            from_event(&event("closed"), &labels(), None),
            Ok(Ok(Observed::Incident(_)))
        ));
        assert!(matches!(
            from_event(&event("deleted"), &labels(), None),
            Ok(Ok(Observed::Withdrawn(_)))
        ));
        assert!(
            from_event(&event("pinned"), &labels(), None)
                .unwrap()
                .is_err()
        );
        assert!(
            from_event(&event("closed"), &labels(), Some("octo-org/ops"))
                .unwrap()
                .is_err()
        );
        let e = from_event(
            &json!({"action": "opened", "repository": {"full_name": "o/r"}}),
            &labels(),
            None,
        );
        assert_eq!(e.unwrap_err(), "`issue` is missing or not an object");
    }
}
