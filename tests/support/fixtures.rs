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

/// The `workflow_run/success.json` payload with run id `id`, written to
/// `dir`: e.g. run 7008, an upkeep event (`dora::plan::upkeep_due`).
pub fn success_with_run_id(dir: &Path, id: u64) -> PathBuf {
    let mut payload = fixture_json("workflow_run/success.json");
    payload["workflow_run"]["id"] = json!(id);
    let path = dir.join(format!("run-{id}.json"));
    std::fs::write(&path, payload.to_string()).expect("write the payload");
    path
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

// ------------------------------------------------------ Kubernetes objects

/// A Kubernetes list of `kind` (`Kustomization` → `KustomizationList`), as
/// a list call answers it.
pub fn k8s_list(kind: &str, items: Vec<Value>) -> Value {
    json!({
        "apiVersion": "v1", "kind": format!("{kind}List"),
        "metadata": {"resourceVersion": "1"}, "items": items
    })
}

/// A Flux v1 `Kustomization` in `flux-system`, built from the source
/// `GitRepository` `flux-system`: `Kustomization::ready("apps", rev, at).json()`.
pub struct Kustomization {
    name: String,
    revision: String,
    ready: bool,
    at: String,
}

impl Kustomization {
    /// Ready (reconciled) since `at`, with `revision` (`main@sha1:…`) applied.
    pub fn ready(name: &str, revision: &str, at: impl ToString) -> Kustomization {
        Kustomization {
            name: name.to_string(),
            revision: revision.to_string(),
            ready: true,
            at: at.to_string(),
        }
    }

    /// Not Ready (a failed health check) since `at`, `revision` last applied.
    pub fn failing(name: &str, revision: &str, at: impl ToString) -> Kustomization {
        Kustomization {
            ready: false,
            ..Kustomization::ready(name, revision, at)
        }
    }

    /// The object as the API server serves it.
    pub fn json(&self) -> Value {
        let (name, revision) = (&self.name, &self.revision);
        let (status, reason) = if self.ready {
            ("True", "ReconciliationSucceeded")
        } else {
            ("False", "HealthCheckFailed")
        };
        json!({
            "apiVersion": "kustomize.toolkit.fluxcd.io/v1", "kind": "Kustomization",
            "metadata": {"name": name, "namespace": "flux-system", "generation": 3},
            "spec": {"interval": "10m", "path": format!("./{name}"), "prune": true,
                     "sourceRef": {"kind": "GitRepository", "name": "flux-system"}},
            "status": {
                "lastAppliedRevision": revision, "lastAttemptedRevision": revision,
                "observedGeneration": 3,
                "conditions": [{"type": "Ready", "status": status, "reason": reason,
                                "message": format!("Applied revision: {revision}"),
                                "lastTransitionTime": self.at, "observedGeneration": 3}]
            }
        })
    }
}

/// Flux's `GitRepository` `flux-system/flux-system`, cloning `url`.
pub fn git_repository(url: &str) -> Value {
    json!({
        "apiVersion": "source.toolkit.fluxcd.io/v1", "kind": "GitRepository",
        "metadata": {"name": "flux-system", "namespace": "flux-system"},
        "spec": {"interval": "1m", "ref": {"branch": "main"}, "url": url},
    })
}

/// A Flagger v1beta1 `Canary` in `shop`: `Canary::new("web", "Failed", at).json()`.
pub struct Canary {
    name: String,
    phase: String,
    at: String,
}

impl Canary {
    /// In `phase` (`Failed`, `Succeeded`, `Progressing`, …) since `at`.
    pub fn new(name: &str, phase: &str, at: impl ToString) -> Canary {
        Canary {
            name: name.to_string(),
            phase: phase.to_string(),
            at: at.to_string(),
        }
    }

    /// The object as the API server serves it.
    pub fn json(&self) -> Value {
        let (name, phase, at) = (&self.name, &self.phase, &self.at);
        let failed = phase == "Failed";
        json!({
            "apiVersion": "flagger.app/v1beta1", "kind": "Canary",
            "metadata": {"name": name, "namespace": "shop"},
            "spec": {"targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": name},
                     "service": {"port": 80},
                     "analysis": {"interval": "1m", "threshold": 5, "maxWeight": 50, "stepWeight": 10}},
            "status": {"phase": phase, "lastTransitionTime": at, "canaryWeight": 0,
                       "failedChecks": if failed { 5 } else { 0 }, "iterations": 0,
                       "conditions": [{"type": "Promoted", "status": if failed { "False" } else { "True" },
                                       "lastUpdateTime": at, "lastTransitionTime": at,
                                       "reason": phase, "message": format!("Canary {phase}")}]}
        })
    }
}
