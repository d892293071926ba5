//! The JSON report a run wrote (`report-file`), checked on every run that
//! wrote one: it is valid against `docs/report.schema.json`, and its numbers
//! are the step outputs' (issue 17: "the report file's numbers equal the
//! outputs in every mode test").

use std::collections::BTreeMap;
use std::sync::OnceLock;

use serde_json::Value;

/// `docs/report.schema.json`, compiled once per test process (formats checked:
/// a time that is not RFC 3339 fails).
fn validator() -> &'static jsonschema::Validator {
    static VALIDATOR: OnceLock<jsonschema::Validator> = OnceLock::new();
    VALIDATOR.get_or_init(|| {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/report.schema.json");
        let text = std::fs::read_to_string(path).expect("read docs/report.schema.json");
        let schema: Value = serde_json::from_str(&text).expect("the schema is JSON");
        jsonschema::options()
            .should_validate_formats(true)
            .build(&schema)
            .expect("docs/report.schema.json is a valid JSON Schema")
    })
}

/// Every way `report` breaks the schema, one line each (empty when valid).
pub fn schema_errors(report: &Value) -> Vec<String> {
    validator()
        .iter_errors(report)
        .map(|e| format!("{}: {e}", e.instance_path()))
        .collect()
}

/// Every way `report` disagrees with the step `outputs` of the same run
/// (empty when it agrees): the outputs it copies, the overall keys, the
/// counts of its events and incidents, and the per-source keys summing to
/// the overall ones.
pub fn disagreements(report: &Value, outputs: &BTreeMap<String, String>) -> Vec<String> {
    let mut wrong = Vec::new();
    let mut same = |what: &str, report: String, output: Option<&String>| {
        if Some(&report) != output {
            wrong.push(format!("{what}: report {report:?}, output {output:?}"));
        }
    };
    let text = |v: &Value| match v {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    if let Some(copied) = report["outputs"].as_object() {
        for (name, value) in copied {
            same(&format!("outputs.{name}"), text(value), outputs.get(name));
        }
    }
    let overall = &report["keys"]["overall"];
    for (key, output) in [
        ("deployments", "deployments"),
        ("failures", "failures"),
        ("lead_time_seconds", "lead-time-seconds"),
        ("recovery_seconds", "recovery-seconds"),
    ] {
        same(
            &format!("keys.overall.{key}"),
            text(&overall[key]),
            outputs.get(output),
        );
    }
    let events = report["events"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default();
    let count = |status: Option<&str>| {
        events
            .iter()
            .filter(|e| match status {
                Some(s) => e["status"] == s,
                None => e["status"] != "not_ready",
            })
            .count()
    };
    same(
        "events (not not_ready)",
        count(None).to_string(),
        outputs.get("events"),
    );
    same(
        "events (success)",
        count(Some("success")).to_string(),
        outputs.get("deployments"),
    );
    same(
        "events (failure)",
        count(Some("failure")).to_string(),
        outputs.get("failures"),
    );
    let incidents = report["incidents"].as_array().map_or(0, Vec::len);
    same("incidents", incidents.to_string(), outputs.get("incidents"));
    same(
        "skipped",
        (!report["skipped"].is_null()).to_string(),
        outputs.get("skipped"),
    );
    let sources = report["keys"]["by_source"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default();
    for key in ["deployments", "failures"] {
        let sum: u64 = sources.iter().filter_map(|s| s[key].as_u64()).sum();
        same(
            &format!("sum of keys.by_source[].{key}"),
            sum.to_string(),
            Some(&text(&overall[key])),
        );
    }
    wrong
}
