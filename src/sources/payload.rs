//! GitHub event payloads (`workflow_run`, `deployment_status`) to
//! [`Observation`]s: pure parsing of the bytes the runner wrote to
//! `GITHUB_EVENT_PATH`, with errors that name the field that was wrong.

use std::path::Path;

use jiff::Timestamp;
use serde_json::Value;

use crate::dora::{Deploy, EventKey, Status};
use crate::inputs::Branches;
use crate::{Error, Result};

/// What an event payload says.
#[derive(Debug, Clone, PartialEq)]
pub enum Observation {
    /// A deployment to record, with warnings about what is missing from it.
    Deploy {
        deploy: Box<Deploy>,
        warnings: Vec<String>,
    },
    /// Not a deployment; the reason is shown in a notice and the summary.
    NotADeploy { reason: String },
}

/// What parsing needs besides the payload.
#[derive(Debug, Clone)]
pub struct Rules<'a> {
    pub deploy_branches: &'a Branches,
    /// The `environment` label for workflow runs (input, else cluster name, else `default`).
    pub environment: &'a str,
}

/// Parses the payload of event `event_name`. The error names the field (as a
/// dotted path) that is missing or malformed; the caller adds the file name.
pub fn parse(event_name: &str, bytes: &[u8], rules: &Rules) -> Result<Observation, String> {
    parse_value(event_name, &json(bytes)?, rules)
}

/// The payload as JSON: an object, or an error saying what it is instead.
pub fn json(bytes: &[u8]) -> Result<Value, String> {
    let v: Value = serde_json::from_slice(bytes).map_err(|e| format!("not valid JSON ({e})"))?;
    if !v.is_object() {
        return Err("not a JSON object".into());
    }
    Ok(v)
}

/// [`parse`] for a payload already read as JSON.
pub fn parse_value(event_name: &str, v: &Value, rules: &Rules) -> Result<Observation, String> {
    match event_name {
        "workflow_run" => workflow_run(v, rules),
        "deployment_status" => deployment_status(v),
        other => Err(format!("event `{other}` carries no deployment")),
    }
}

/// A run from the REST API (`GET …/actions/workflows/{id}/runs`), which has
/// the shape of a `workflow_run` event's run: mapped by the very same rules,
/// so a run gives the same event (and group) from either source.
pub fn rest_run(
    run: Value,
    repository: &str,
    default_branch: Option<&str>,
    rules: &Rules,
) -> Result<Observation, String> {
    let mut repo = serde_json::json!({ "full_name": repository });
    if let Some(branch) = default_branch {
        repo["default_branch"] = Value::String(branch.to_string());
    }
    let payload =
        serde_json::json!({ "action": "completed", "workflow_run": run, "repository": repo });
    workflow_run(&payload, rules)
}

/// The value at a dotted path, if present and not null.
fn get<'a>(v: &'a Value, path: &str) -> Option<&'a Value> {
    path.split('.')
        .try_fold(v, |v, key| v.get(key))
        .filter(|v| !v.is_null())
}

fn string<'a>(v: &'a Value, path: &str) -> Result<&'a str, String> {
    match get(v, path) {
        Some(Value::String(s)) if !s.is_empty() => Ok(s),
        Some(Value::String(_)) => Err(format!("field `{path}` is empty")),
        Some(other) => Err(format!("field `{path}` is not a string (found {other})")),
        None => Err(format!("field `{path}` is missing")),
    }
}

fn opt_string<'a>(v: &'a Value, path: &str) -> Option<&'a str> {
    get(v, path)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
}

fn number(v: &Value, path: &str) -> Result<u64, String> {
    match get(v, path) {
        Some(n) => n
            .as_u64()
            .ok_or_else(|| format!("field `{path}` is not a positive integer (found {n})")),
        None => Err(format!("field `{path}` is missing")),
    }
}

fn time(v: &Value, path: &str) -> Result<Timestamp, String> {
    let s = string(v, path)?;
    s.parse()
        .map_err(|_| format!("field `{path}` is not an RFC 3339 time (found `{s}`)"))
}

fn object<'a>(v: &'a Value, key: &str, event: &str) -> Result<&'a Value, String> {
    get(v, key).filter(|o| o.is_object()).ok_or_else(|| {
        format!(
            "field `{key}` is missing: this is not a `{event}` payload (check GITHUB_EVENT_NAME)"
        )
    })
}

fn skip(reason: String) -> Result<Observation, String> {
    Ok(Observation::NotADeploy { reason })
}

fn workflow_run(v: &Value, rules: &Rules) -> Result<Observation, String> {
    object(v, "workflow_run", "workflow_run")?;
    let action = string(v, "action")?;
    if action != "completed" {
        return skip(format!(
            "the workflow run is not completed (action `{action}`)"
        ));
    }
    let trigger = opt_string(v, "workflow_run.event").unwrap_or("");
    if trigger.starts_with("pull_request") {
        return skip(format!(
            "the run was triggered by `{trigger}`, not a deployment"
        ));
    }
    let default_branch = opt_string(v, "repository.default_branch")
        .or_else(|| opt_string(v, "workflow_run.repository.default_branch"));
    let Some(branch) = opt_string(v, "workflow_run.head_branch") else {
        return skip("the run has no branch (`workflow_run.head_branch` is empty)".into());
    };
    if !rules.deploy_branches.matches(branch, default_branch) {
        let wanted = match rules.deploy_branches {
            Branches::DefaultBranch => match default_branch {
                Some(b) => format!("the default branch `{b}`"),
                None => "the default branch (unknown: the payload has no `repository.default_branch`; set `deploy-branches`)".into(),
            },
            Branches::Patterns(p) => format!("`deploy-branches` ({})", p.join(", ")),
        };
        return skip(format!(
            "branch `{branch}` is not a deploy branch: expected {wanted}"
        ));
    }
    let conclusion = opt_string(v, "workflow_run.conclusion").unwrap_or("null");
    let status = match conclusion {
        "success" => Status::Success,
        "failure" | "timed_out" | "startup_failure" => Status::Failure,
        other => return skip(format!("conclusion `{other}` is not a deployment outcome")),
    };
    let repository = match opt_string(v, "repository.full_name") {
        Some(r) => r,
        None => string(v, "workflow_run.repository.full_name")?,
    };
    let run_id = number(v, "workflow_run.id")?;
    // Payloads from before re-runs existed have no attempt: that was attempt 1.
    let attempt = match get(v, "workflow_run.run_attempt") {
        None => 1,
        Some(_) => number(v, "workflow_run.run_attempt")?,
    };
    let time = time(v, "workflow_run.updated_at")?;
    let sha = string(v, "workflow_run.head_sha")?;
    let mut warnings = Vec::new();
    let commit_time = match get(v, "workflow_run.head_commit.timestamp") {
        Some(_) => Some(self::time(v, "workflow_run.head_commit.timestamp")?),
        None => {
            warnings.push("the payload has no `workflow_run.head_commit.timestamp`: recorded without lead time".into());
            None
        }
    };
    Ok(Observation::Deploy {
        deploy: Box::new(Deploy {
            repository: repository.to_string(),
            source: workflow_source(v)?,
            key: EventKey::Run { run_id, attempt },
            status,
            branch: branch.to_string(),
            sha: sha.to_string(),
            environment: rules.environment.to_string(),
            time,
            commit_time,
            url: opt_string(v, "workflow_run.html_url").map(String::from),
            history: Default::default(),
        }),
        warnings,
    })
}

/// The workflow's name, else its file's base name, else `workflow-<id>`: never empty.
fn workflow_source(v: &Value) -> Result<String, String> {
    let name = opt_string(v, "workflow.name")
        .or_else(|| opt_string(v, "workflow_run.name"))
        .map(str::trim)
        .filter(|n| !n.is_empty());
    if let Some(name) = name {
        return Ok(name.to_string());
    }
    let path = opt_string(v, "workflow_run.path").or_else(|| opt_string(v, "workflow.path"));
    // Paths of reusable or dynamic workflows may carry `@ref`.
    let base = path
        .map(|p| p.split('@').next().unwrap_or(p))
        .and_then(|p| p.rsplit('/').next())
        .filter(|b| !b.is_empty());
    if let Some(base) = base {
        return Ok(base.to_string());
    }
    match number(v, "workflow_run.workflow_id") {
        Ok(id) => Ok(format!("workflow-{id}")),
        Err(_) => Err("fields `workflow.name`, `workflow_run.name`, `workflow_run.path` and `workflow_run.workflow_id` are all missing: cannot name the workflow".into()),
    }
}

fn deployment_status(v: &Value) -> Result<Observation, String> {
    object(v, "deployment_status", "deployment_status")?;
    object(v, "deployment", "deployment_status")?;
    let state = string(v, "deployment_status.state")?;
    let status = match state {
        "success" => Status::Success,
        "failure" | "error" => Status::Failure,
        other => {
            return skip(format!(
                "deployment state `{other}` is not a deployment outcome"
            ));
        }
    };
    let environment = string(v, "deployment.environment")?;
    let source = opt_string(v, "workflow.name").unwrap_or(environment);
    Ok(Observation::Deploy {
        deploy: Box::new(Deploy {
            repository: string(v, "repository.full_name")?.to_string(),
            source: source.to_string(),
            key: EventKey::Deployment {
                id: number(v, "deployment.id")?,
                status_id: number(v, "deployment_status.id")?,
            },
            status,
            branch: string(v, "deployment.ref")?.to_string(),
            sha: string(v, "deployment.sha")?.to_string(),
            environment: environment.to_string(),
            time: time(v, "deployment_status.created_at")?,
            // Not in the payload: looked up with the REST API by the caller.
            commit_time: None,
            url: opt_string(v, "deployment_status.target_url")
                .or_else(|| opt_string(v, "deployment_status.log_url"))
                .map(String::from),
            history: Default::default(),
        }),
        warnings: Vec::new(),
    })
}

/// The event payload: where it is and its JSON.
pub fn read_payload(event_path: Option<&Path>) -> Result<(String, serde_json::Value)> {
    let path = event_path.ok_or_else(|| {
        Error::input(
            "mode",
            "GITHUB_EVENT_PATH is not set: there is no event payload to read",
        )
    })?;
    let display = path.display().to_string();
    let bytes = std::fs::read(path).map_err(|e| Error::Payload {
        path: display.clone(),
        message: format!("cannot read: {e}"),
    })?;
    let value = json(&bytes).map_err(|message| Error::Payload {
        path: display.clone(),
        message,
    })?;
    Ok((display, value))
}

/// The repository's default branch as the triggering event's payload tells
/// it (schedule and workflow_dispatch payloads carry the repository), so
/// workflows mode usually needs no call for it.
pub fn payload_default_branch(event_path: Option<&Path>) -> Option<String> {
    let bytes = std::fs::read(event_path?).ok()?;
    let v = json(&bytes).ok()?;
    v.pointer("/repository/default_branch")?
        .as_str()
        .map(String::from)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dora::fixtures::at;
    use serde_json::json;

    fn run_payload() -> Value {
        json!({
            "action": "completed",
            "repository": {"full_name": "octo-org/shop", "default_branch": "main"},
            "workflow": {"id": 1001, "name": "Deploy", "path": ".github/workflows/deploy.yml"},
            "workflow_run": {
                "id": 7001, "name": "Deploy", "path": ".github/workflows/deploy.yml", "workflow_id": 1001,
                "event": "push", "status": "completed", "conclusion": "success",
                "head_branch": "main", "head_sha": "abc123", "run_attempt": 2,
                "updated_at": "2026-11-20T10:30:00Z",
                "head_commit": {"id": "abc123", "timestamp": "2026-11-20T11:00:00+01:00"},
                "html_url": "https://github.com/octo-org/shop/actions/runs/7001"
            }
        })
    }

    fn with(mut v: Value, path: &str, value: Value) -> Value {
        let mut cur = &mut v;
        let keys: Vec<&str> = path.split('.').collect();
        for k in &keys[..keys.len() - 1] {
            cur = cur.get_mut(*k).unwrap();
        }
        let last = keys[keys.len() - 1];
        if value.is_null() {
            cur.as_object_mut().unwrap().remove(last);
        } else {
            cur[last] = value;
        }
        v
    }

    fn observe(event: &str, v: &Value) -> Result<Observation, String> {
        observe_with(event, v, &Branches::DefaultBranch)
    }

    fn observe_with(event: &str, v: &Value, branches: &Branches) -> Result<Observation, String> {
        let rules = Rules {
            deploy_branches: branches,
            environment: "production",
        };
        parse(event, v.to_string().as_bytes(), &rules)
    }

    fn deploy(event: &str, v: &Value) -> Deploy {
        match observe(event, v).unwrap() {
            Observation::Deploy { deploy, .. } => *deploy,
            other => panic!("expected a deploy, got {other:?}"),
        }
    }

    fn skipped(v: &Value) -> String {
        match observe("workflow_run", v).unwrap() {
            Observation::NotADeploy { reason } => reason,
            other => panic!("expected not a deploy, got {other:?}"),
        }
    }

    #[test]
    fn a_successful_run_is_a_deploy_at_its_own_time() {
        let d = deploy("workflow_run", &run_payload());
        assert_eq!(d.status, Status::Success);
        assert_eq!(d.time, at("2026-11-20T10:30:00Z"));
        assert_eq!(d.commit_time, Some(at("2026-11-20T10:00:00Z")));
        assert_eq!(d.lead_time_seconds(), Some(1_800));
        assert_eq!(
            d.key,
            EventKey::Run {
                run_id: 7001,
                attempt: 2
            }
        );
        assert_eq!(
            (
                d.repository.as_str(),
                d.source.as_str(),
                d.branch.as_str(),
                d.sha.as_str()
            ),
            ("octo-org/shop", "Deploy", "main", "abc123")
        );
        assert_eq!(d.environment, "production");
    }

    #[test]
    fn conclusions_map_to_status_or_not_a_deploy() {
        for (c, s) in [
            ("success", Status::Success),
            ("failure", Status::Failure),
            ("timed_out", Status::Failure),
            ("startup_failure", Status::Failure),
        ] {
            assert_eq!(
                deploy(
                    "workflow_run",
                    &with(run_payload(), "workflow_run.conclusion", json!(c))
                )
                .status,
                s,
                "{c}"
            );
        }
        for c in [
            "cancelled",
            "skipped",
            "neutral",
            "action_required",
            "stale",
        ] {
            let reason = skipped(&with(run_payload(), "workflow_run.conclusion", json!(c)));
            assert_eq!(
                reason,
                format!("conclusion `{c}` is not a deployment outcome")
            );
        }
        assert!(
            skipped(&with(run_payload(), "workflow_run.conclusion", Value::Null))
                .contains("`null`")
        );
    }

    #[test]
    fn incomplete_pull_request_and_other_branch_runs_are_not_deploys() {
        assert!(
            skipped(&with(run_payload(), "action", json!("in_progress"))).contains("not completed")
        );
        assert!(
            skipped(&with(
                run_payload(),
                "workflow_run.event",
                json!("pull_request")
            ))
            .contains("`pull_request`")
        );
        assert!(
            skipped(&with(
                run_payload(),
                "workflow_run.event",
                json!("pull_request_target")
            ))
            .contains("pull_request_target")
        );
        let reason = skipped(&with(
            run_payload(),
            "workflow_run.head_branch",
            json!("feature/x"),
        ));
        assert_eq!(
            reason,
            "branch `feature/x` is not a deploy branch: expected the default branch `main`"
        );
        let any = Branches::Patterns(vec!["*".into()]);
        let v = with(
            run_payload(),
            "workflow_run.head_branch",
            json!("feature/x"),
        );
        assert!(matches!(
            observe_with("workflow_run", &v, &any).unwrap(),
            Observation::Deploy { .. }
        ));
    }

    #[test]
    fn the_source_is_never_empty() {
        let v = with(
            with(run_payload(), "workflow.name", json!("")),
            "workflow_run.name",
            json!(""),
        );
        assert_eq!(deploy("workflow_run", &v).source, "deploy.yml");
        let v = with(
            with(v, "workflow_run.path", json!("")),
            "workflow.path",
            json!(""),
        );
        assert_eq!(deploy("workflow_run", &v).source, "workflow-1001");
        let v = with(
            run_payload(),
            "workflow_run.path",
            json!("octo-org/shop/.github/workflows/reuse.yml@refs/heads/main"),
        );
        let v = with(
            with(v, "workflow.name", Value::Null),
            "workflow_run.name",
            json!("  "),
        );
        assert_eq!(deploy("workflow_run", &v).source, "reuse.yml");
    }

    #[test]
    fn missing_fields_are_named() {
        // The error of the run payload with `field` set to `value` (null: removed).
        let refused = |field: &str, value: Value| {
            observe("workflow_run", &with(run_payload(), field, value)).unwrap_err()
        };
        assert_eq!(
            refused("workflow_run.updated_at", Value::Null),
            "field `workflow_run.updated_at` is missing"
        );
        let e = refused("workflow_run.updated_at", json!("yesterday"));
        assert!(
            e.contains("`workflow_run.updated_at` is not an RFC 3339 time"),
            "{e}"
        );
        assert_eq!(
            refused("workflow_run.head_sha", json!("")),
            "field `workflow_run.head_sha` is empty"
        );
        let e = refused("workflow_run.id", json!("x"));
        assert!(
            e.starts_with("field `workflow_run.id` is not a positive integer"),
            "{e}"
        );
        let e = observe("workflow_run", &json!({"action": "completed"})).unwrap_err();
        assert!(e.contains("not a `workflow_run` payload"), "{e}");
        assert!(
            parse(
                "workflow_run",
                b"{not json",
                &Rules {
                    deploy_branches: &Branches::DefaultBranch,
                    environment: "x"
                }
            )
            .unwrap_err()
            .starts_with("not valid JSON")
        );
    }

    #[test]
    fn a_run_without_head_commit_is_recorded_without_lead_time() {
        match observe(
            "workflow_run",
            &with(run_payload(), "workflow_run.head_commit", Value::Null),
        )
        .unwrap()
        {
            Observation::Deploy { deploy, warnings } => {
                assert_eq!(deploy.commit_time, None);
                assert_eq!(warnings.len(), 1);
            }
            other => panic!("{other:?}"),
        }
    }

    fn deployment_payload(state: &str) -> Value {
        json!({
            "action": "created",
            "repository": {"full_name": "octo-org/shop", "default_branch": "main"},
            "deployment": {"id": 9001, "sha": "abc123", "ref": "main", "environment": "staging", "created_at": "2026-11-20T10:25:00Z"},
            "deployment_status": {"id": 9101, "state": state, "environment": "staging", "created_at": "2026-11-20T10:30:00Z", "target_url": "https://example.test/log"}
        })
    }

    #[test]
    fn deployment_statuses_map_with_the_deployments_environment() {
        let d = deploy("deployment_status", &deployment_payload("success"));
        assert_eq!(d.status, Status::Success);
        assert_eq!(d.environment, "staging");
        assert_eq!(d.source, "staging");
        assert_eq!(
            d.key,
            EventKey::Deployment {
                id: 9001,
                status_id: 9101
            }
        );
        assert_eq!(d.time, at("2026-11-20T10:30:00Z"));
        assert_eq!(d.commit_time, None);
        assert_eq!(
            deploy("deployment_status", &deployment_payload("error")).status,
            Status::Failure
        );
        assert_eq!(
            deploy("deployment_status", &deployment_payload("failure")).status,
            Status::Failure
        );
        for s in ["pending", "in_progress", "queued", "inactive"] {
            assert!(
                matches!(
                    observe("deployment_status", &deployment_payload(s)).unwrap(),
                    Observation::NotADeploy { .. }
                ),
                "{s}"
            );
        }
        let v = with(
            deployment_payload("success"),
            "workflow",
            json!({"name": "Release"}),
        );
        assert_eq!(deploy("deployment_status", &v).source, "Release");
        let e = observe(
            "deployment_status",
            &with(deployment_payload("success"), "deployment.sha", Value::Null),
        )
        .unwrap_err();
        assert_eq!(e, "field `deployment.sha` is missing");
    }

    #[test]
    fn other_events_are_refused() {
        assert!(
            observe("push", &run_payload())
                .unwrap_err()
                .contains("event `push` carries no deployment")
        );
    }
}
