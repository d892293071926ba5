//! Test data: paths under `tests/fixtures/`, a fixed "now", and objects of
//! the real shape (GitHub's own example payloads) with a few values changed.

use std::path::{Path, PathBuf};

use serde_json::{Value, json};

/// Path of a file under `tests/fixtures/`, e.g. `fixture("workflow_run/success.json")`.
///
/// Panics if it does not exist, so a typo fails here rather than as a
/// confusing "payload not found" from the action. Build a path by hand to test
/// a missing payload.
pub fn fixture(rel: &str) -> PathBuf {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(rel);
    assert!(path.exists(), "fixture {} does not exist", path.display());
    path
}

/// The JSON of a file under `tests/fixtures/`.
pub fn fixture_json(rel: &str) -> Value {
    let text = std::fs::read_to_string(fixture(rel)).expect("read fixture");
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("fixture {rel} is not JSON: {e}"))
}

/// The `workflow_run` object of GitHub's own example payload
/// (`workflow_run/success.json`): the real shape of a run, to change a few
/// values of.
pub fn fixture_run() -> Value {
    fixture_json("workflow_run/success.json")["workflow_run"].clone()
}

/// One fixed, whole-second "now" for the whole test binary: times built at
/// different moments must differ by exactly what they say.
pub fn test_now() -> jiff::Timestamp {
    static NOW: std::sync::OnceLock<jiff::Timestamp> = std::sync::OnceLock::new();
    *NOW.get_or_init(|| jiff::Timestamp::from_second(jiff::Timestamp::now().as_second()).unwrap())
}

/// `seconds` before [`test_now`].
pub fn seconds_ago(seconds: i64) -> jiff::Timestamp {
    test_now() - jiff::SignedDuration::from_secs(seconds)
}

/// A run as the REST API lists it ([`fixture_run`]'s shape): finished
/// `finished_ago` seconds before [`test_now`] (created 10 minutes before
/// that), its head commit `sha` committed `committed_ago` seconds before.
pub fn rest_run(
    id: u64,
    conclusion: &str,
    finished_ago: i64,
    sha: &str,
    committed_ago: i64,
) -> Value {
    let mut r = fixture_run();
    r["id"] = serde_json::json!(id);
    r["conclusion"] = serde_json::json!(conclusion);
    r["updated_at"] = serde_json::json!(seconds_ago(finished_ago).to_string());
    r["created_at"] = serde_json::json!(seconds_ago(finished_ago + 600).to_string());
    r["head_sha"] = serde_json::json!(sha);
    r["head_commit"]["id"] = serde_json::json!(sha);
    r["head_commit"]["timestamp"] = serde_json::json!(seconds_ago(committed_ago).to_string());
    r["html_url"] = serde_json::json!(format!(
        "https://github.com/octo-org/shop/actions/runs/{id}"
    ));
    r
}

// ------------------------------------------------------------ GitHub REST bodies

/// A workflow run listing as `GET …/actions/workflows/{id}/runs` answers it.
pub fn run_list(runs: &[Value]) -> Value {
    json!({"total_count": runs.len(), "workflow_runs": runs})
}

/// A compare (`GET …/compare/{base}...{head}`): `total_commits` commits
/// between the two, of which `commits` are listed (GitHub lists at most 250).
pub fn compare_body(total_commits: usize, commits: Vec<Value>) -> Value {
    json!({
        "status": "ahead", "ahead_by": total_commits, "total_commits": total_commits,
        "commits": commits
    })
}

/// A commit as the commits and compare endpoints give it: `sha`, authored
/// `authored`, committed (landed) `committed`.
pub fn commit_json(sha: &str, authored: impl ToString, committed: impl ToString) -> Value {
    json!({
        "sha": sha,
        "commit": {
            "author": {"date": authored.to_string()},
            "committer": {"date": committed.to_string()},
            "message": "change"
        }
    })
}
