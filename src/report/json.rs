//! The run's JSON report (`report-file`), for a later step: a PR comment, a
//! chat post, an artifact. Schema `docs/report.schema.json`, versioned by
//! its `"schema"` field; the numbers are the outputs' and the summary's,
//! computed by the same functions.

use jiff::Timestamp;
use serde_json::{Value, json};

use super::{Outputs, Report};
use crate::dora::incident::{ChangeFailure, Pinned, change_failures};
use crate::dora::{Band, Deploy, EventKey, Status, by_source};

/// The report's schema version: bumped when a field changes meaning or goes.
pub const SCHEMA: u64 = 1;

/// The report of `report` (whose outputs are `outputs`), written at `now`.
pub fn report_json(report: &Report, outputs: &Outputs, now: Timestamp) -> Value {
    // A failed delivery recorded nothing: the outputs count nothing either.
    let failed = report.failure.is_some();
    let delivered: &[Deploy] = if failed { &[] } else { &report.recorded };
    let incidents: &[Pinned] = if failed { &[] } else { &report.incidents };
    let reverts = if failed { &[] } else { &report.reverts[..] };
    let times = || delivered.iter().map(|d| d.time);
    let (to, from) = match report.window {
        Some(w) => (now, Timestamp::from_second(now.as_second() - w as i64).ok()),
        None => (times().max().unwrap_or(now), times().min()),
    };
    let span = from.map(|f| (to.as_second() - f.as_second()).max(0) as u64);
    let window = report.window.or(span).filter(|w| *w > 0);
    json!({
        "schema": SCHEMA,
        "generated_at": now.to_string(),
        "skipped": report.skipped,
        "dry_run": report.dry_run,
        "window": {
            "from": from.map(|f| f.to_string()),
            "to": to.to_string(),
            "seconds": window,
        },
        "outputs": outputs
            .pairs()
            .into_iter()
            .map(|(k, v)| (k, Value::String(v)))
            .collect::<serde_json::Map<String, Value>>(),
        "keys": {
            "overall": keys(delivered, window, None),
            "by_source": by_source(delivered, window)
                .into_iter()
                .map(|s| keys(delivered, window, Some(&s.source)))
                .collect::<Vec<_>>(),
        },
        "events": delivered.iter().map(event).collect::<Vec<_>>(),
        "incidents": incidents.iter().map(incident).collect::<Vec<_>>(),
        "change_failures": change_failures(incidents, reverts)
            .iter()
            .map(change_failure)
            .collect::<Vec<_>>(),
    })
}

/// The deployment something is pinned on, by what identifies it.
fn deployment_ref(d: &Deploy) -> Value {
    json!({
        "source": d.source,
        "sha": d.sha,
        "environment": d.environment,
        "time": d.time.to_string(),
    })
}

/// One incident recorded or updated, with its link and the evidence.
fn incident(p: &Pinned) -> Value {
    let i = &p.incident;
    json!({
        "repository": i.repository,
        "number": i.number,
        "title": i.title,
        "url": i.url,
        "environment": p.environment,
        "opened": i.opened.to_string(),
        "resolved": i.resolved.map(|t| t.to_string()),
        "link": p.link.as_str(),
        "evidence": p.evidence,
        "deployment": p.deploy.as_ref().map(deployment_ref),
        "restore_seconds": p.restore_seconds(),
        "recovery_seconds": p.recovery_seconds(),
    })
}

/// One deployment found failed after it went green, with every cause.
fn change_failure(c: &ChangeFailure) -> Value {
    json!({
        "deployment": deployment_ref(&c.deploy),
        "causes": c.causes,
        "recovery_seconds": c.recovery_seconds,
    })
}

/// The four keys (and rework) of one source, or of all of them.
fn keys(deploys: &[Deploy], window: Option<u64>, source: Option<&str>) -> Value {
    let all: Vec<Deploy> = deploys
        .iter()
        .filter(|d| source.is_none_or(|s| d.source == s))
        .map(|d| Deploy {
            // One source for the overall figures, so `by_source` sums them.
            source: source.unwrap_or("all").to_string(),
            ..d.clone()
        })
        .collect();
    let Some(s) = by_source(&all, window).into_iter().next() else {
        return json!({"source": source.unwrap_or("all"), "deployments": 0, "failures": 0});
    };
    let band = |b: Option<Band>| b.map(Band::as_str);
    json!({
        "source": s.source,
        "deployments": s.deployments,
        "failures": s.failures,
        "change_failure_rate": s.failure_rate,
        "change_failure_rate_band": band(s.failure_rate.map(Band::of_failure_rate)),
        "deployments_per_day": s.per_day,
        "deployment_frequency_band": band(s.per_day.map(Band::of_frequency)),
        "lead_time_seconds": s.lead_time_median,
        "lead_time_band": band(s.lead_time_median.map(Band::of_lead_time)),
        "recovery_seconds": s.recovery_median,
        "recovery_band": band(s.recovery_median.map(Band::of_recovery)),
        "rework": s.rework,
    })
}

/// One recorded event.
fn event(d: &Deploy) -> Value {
    let kind = match d.key {
        EventKey::Run { .. } => "workflow_run",
        EventKey::Deployment { .. } => "deployment",
        EventKey::Flux { .. } => "flux",
        EventKey::Canary { .. } => "canary",
    };
    let status = match d.status {
        Status::Success => "success",
        Status::Failure => "failure",
        Status::NotReady => "not_ready",
    };
    json!({
        "kind": kind,
        "source": d.source,
        "repository": (!d.repository.is_empty()).then_some(&d.repository),
        "status": status,
        "sha": d.sha,
        "ref": d.branch,
        "environment": d.environment,
        "time": d.time.to_string(),
        "commit_time": d.commit_time.map(|t| t.to_string()),
        "lead_time_seconds": d.lead_time_seconds(),
        "change_lead_time_seconds": d.history.changes.as_ref().and_then(|c| c.median_lead_seconds),
        "changes": d.history.changes.as_ref().map(|c| c.count),
        "recovery_seconds": d.history.recovery_seconds,
        "recovered_by": d.history.recovered_by,
        "url": d.url,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dora::fixtures::at;

    fn report(deploys: Vec<Deploy>, window: Option<u64>) -> Report {
        Report {
            recorded: deploys,
            window,
            ..Report::default()
        }
    }

    #[test]
    fn the_overall_keys_are_the_outputs_numbers() {
        let failed = Deploy {
            status: Status::Failure,
            time: at("2026-11-20T09:00:00Z"),
            ..Deploy::failure()
        };
        let r = report(vec![Deploy::success(), failed], Some(7 * 86_400));
        let outputs = r.outputs();
        let v = report_json(&r, &outputs, at("2026-11-21T00:00:00Z"));
        assert_eq!(v["schema"], 1);
        let overall = &v["keys"]["overall"];
        assert_eq!(overall["deployments"].to_string(), outputs.deployments);
        assert_eq!(overall["failures"].to_string(), outputs.failures);
        assert_eq!(
            overall["lead_time_seconds"].to_string(),
            outputs.lead_time_seconds
        );
        assert_eq!(overall["change_failure_rate"], 0.5);
        assert_eq!(overall["change_failure_rate_band"], "low");
        assert_eq!(v["outputs"]["events"], outputs.events);
        assert_eq!(v["events"].as_array().unwrap().len(), 2);
        assert_eq!(v["events"][0]["kind"], "workflow_run");
        assert_eq!(v["window"]["seconds"], 7 * 86_400);
        assert_eq!(v["window"]["from"], "2026-11-14T00:00:00Z");
        assert_eq!(
            v["keys"]["by_source"][0]["source"],
            Deploy::success().source
        );
    }

    #[test]
    fn incidents_and_change_failures_name_their_deployment_and_evidence() {
        use crate::dora::incident::LinkKind;
        use crate::dora::revert::Revert;
        let mut pinned = Pinned {
            link: LinkKind::Explicit,
            evidence: "body names 9f8e7d6".into(),
            ..Pinned::example()
        };
        pinned.incident.repository = "octo-org/ops".into();
        pinned.incident.number = 41;
        pinned.incident.title = "Checkout <b>down</b>".into();
        pinned.incident.body = "root cause: 9f8e7d6".into();
        let revert = Revert {
            failed: Deploy::success(),
            by: Deploy::success().at("2026-11-20T11:40:00Z").sha("ffeeddc1"),
            commit: "ffeeddc1".into(),
            reverted: "9f8e7d6".into(),
        };
        let r = Report {
            incidents: vec![pinned],
            reverts: vec![revert],
            ..report(vec![Deploy::success()], None)
        };
        let v = report_json(&r, &r.outputs(), at("2026-11-21T00:00:00Z"));
        let i = &v["incidents"][0];
        assert_eq!(i["number"], 41);
        assert_eq!(
            i["title"], "Checkout <b>down</b>",
            "JSON escapes, it does not edit"
        );
        assert_eq!(i["link"], "explicit");
        assert_eq!(i["restore_seconds"], 5400);
        assert_eq!(i["resolved"], "2026-11-20T12:40:00Z");
        assert_eq!(i["deployment"]["sha"], Deploy::success().sha);
        assert_eq!(
            v["incidents"].as_array().unwrap().len().to_string(),
            r.outputs().incidents
        );
        // One failed deployment, two causes; the revert restored it first.
        let failures = v["change_failures"].as_array().unwrap();
        assert_eq!(failures.len(), 1, "{failures:?}");
        assert_eq!(
            failures[0]["causes"],
            json!(["incident #41", "revert ffeeddc"])
        );
        assert_eq!(
            failures[0]["recovery_seconds"],
            revert_recovery(&Deploy::success(), "2026-11-20T11:40:00Z")
        );
    }

    fn revert_recovery(failed: &Deploy, by: &str) -> i64 {
        at(by).as_second() - failed.time.as_second()
    }

    #[test]
    fn a_failed_delivery_reports_no_event() {
        let r = Report {
            failure: Some("pushgateway: 500".into()),
            ..report(vec![Deploy::success()], None)
        };
        let v = report_json(&r, &r.outputs(), at("2026-11-21T00:00:00Z"));
        assert_eq!(v["events"].as_array().unwrap().len(), 0);
        assert_eq!(v["keys"]["overall"]["deployments"], 0);
        assert_eq!(v["outputs"]["events"], "0");
        assert_eq!(v["incidents"], json!([]));
        assert_eq!(v["change_failures"], json!([]));
    }
}
