//! The JSON report (`report-file`): where it goes, what the output says, and
//! that the harness's check of every run's report (schema and numbers, see
//! `support::report`) does catch a broken one.

mod support;

use serde_json::{Value, json};
use support::{Action, GitHubMock};

/// A named edit of a good report.
type Edit = (&'static str, fn(&mut Value));

/// A dry run of the success fixture, GitHub answering nothing (a quick 404).
fn dry_run(github: &GitHubMock) -> Action {
    Action::new()
        .input("dry-run", "true")
        .env("GITHUB_API_URL", &github.uri())
        .fixture_event("workflow_run", "success.json")
}

#[tokio::test]
async fn by_default_the_report_is_in_the_workspace_named_as_a_later_step_opens_it() {
    let github = GitHubMock::empty().await;
    let out = dry_run(&github).run_expecting(0).await;
    // Relative to the workspace: a container action sees it at
    // /github/workspace, the next step on the host elsewhere; both start there.
    assert_eq!(out.outputs["report-file"], "dora-report.json");
    assert!(out.files.contains("dora-report.json"), "{:?}", out.files);
    let report = out.report.expect("checked report");
    assert_eq!(report["schema"], 1);
    assert_eq!(
        report["events"][0]["sha"],
        "9f8e7d6c5b4a39281706f5e4d3c2b1a098765432"
    );
    assert_eq!(report["outputs"]["report-file"], "dora-report.json");
}

/// A successful dry run with `report-file` set to `value`.
async fn run_with_report_file(value: &str) -> support::Outcome {
    let github = GitHubMock::empty().await;
    dry_run(&github)
        .input("report-file", value)
        .run_expecting(0)
        .await
}

#[tokio::test]
async fn a_path_below_the_workspace_gets_its_folders() {
    let out = run_with_report_file("reports/dora/run.json").await;
    assert_eq!(out.outputs["report-file"], "reports/dora/run.json");
    assert!(
        out.files.contains("reports/dora/run.json"),
        "{:?}",
        out.files
    );
    assert!(!out.files.contains("dora-report.json"), "{:?}", out.files);
}

#[tokio::test]
async fn none_writes_no_report() {
    let out = run_with_report_file("none").await;
    assert_eq!(out.outputs["report-file"], "");
    assert!(
        !out.files.iter().any(|f| f.ends_with(".json")),
        "{:?}",
        out.files
    );
    assert!(out.report.is_none());
}

#[tokio::test]
async fn an_unwritable_report_fails_with_one_error_naming_the_input() {
    let github = GitHubMock::empty().await;
    let action = dry_run(&github);
    // A folder where the file should go: the write cannot succeed.
    std::fs::create_dir(action.dir().join("dora-report.json")).unwrap();
    let out = action.run_expecting(1).await;
    let errors: Vec<&str> = out
        .stdout
        .lines()
        .filter(|l| l.starts_with("::error"))
        .collect();
    assert_eq!(errors.len(), 1, "{}", out.stdout);
    assert!(errors[0].contains("report-file"), "{}", errors[0]);
}

/// The schema is not vacuous: each of these breaks it.
#[tokio::test]
async fn the_schema_refuses_a_broken_report() {
    let github = GitHubMock::empty().await;
    let good = dry_run(&github).run_expecting(0).await.report.unwrap();
    assert_eq!(support::report::schema_errors(&good), Vec::<String>::new());
    let broken: [Edit; 6] = [
        ("schema 2", |r| r["schema"] = json!(2)),
        ("no events", |r| {
            r.as_object_mut().unwrap().remove("events");
        }),
        ("an unknown field", |r| r["extra"] = json!(true)),
        ("a band DORA has not", |r| {
            r["keys"]["overall"]["lead_time_band"] = json!("legendary")
        }),
        ("a time that is no time", |r| {
            r["events"][0]["time"] = json!("yesterday")
        }),
        ("a count as a number", |r| r["outputs"]["events"] = json!(1)),
    ];
    for (what, edit) in broken {
        let mut r = good.clone();
        edit(&mut r);
        assert!(
            !support::report::schema_errors(&r).is_empty(),
            "{what}: accepted"
        );
    }
}

/// The numbers check is not vacuous: a report whose numbers drifted from
/// the outputs is caught.
#[tokio::test]
async fn a_report_disagreeing_with_the_outputs_is_caught() {
    let github = GitHubMock::empty().await;
    let out = dry_run(&github).run_expecting(0).await;
    let good = out.report.clone().unwrap();
    assert_eq!(
        support::report::disagreements(&good, &out.outputs),
        Vec::<String>::new()
    );
    let drifted: [Edit; 4] = [
        ("deployments", |r| {
            r["keys"]["overall"]["deployments"] = json!(2)
        }),
        ("lead time", |r| {
            r["keys"]["overall"]["lead_time_seconds"] = json!(1)
        }),
        ("an event lost", |r| r["events"] = json!([])),
        ("a source's count", |r| {
            r["keys"]["by_source"][0]["deployments"] = json!(0)
        }),
    ];
    for (what, edit) in drifted {
        let mut r = good.clone();
        edit(&mut r);
        assert!(
            !support::report::disagreements(&r, &out.outputs).is_empty(),
            "{what}: not caught"
        );
    }
}
