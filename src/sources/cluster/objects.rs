//! Flux `Kustomization`s (with their `GitRepository` sources) and Flagger
//! `Canary`s, as the Kubernetes API returns them, to DORA events: pure
//! mapping, no I/O — the counterpart of [`crate::sources::payload`] for cluster mode.

use std::collections::BTreeMap;

use jiff::Timestamp;
use serde_json::Value;

use crate::dora::{Deploy, EventKey, History, Status};

/// A Kustomization's applied revision split into its parts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Revision {
    /// The branch or tag (`main` of `main@sha1:…`), when the revision names one.
    pub reference: Option<String>,
    /// The Git commit, when the revision is a Git commit (not an OCI digest).
    pub sha: Option<String>,
}

/// Parses `status.lastAppliedRevision` in every form Flux writes:
/// `main@sha1:<sha>`, `v1.2.3@sha1:<sha>`, a bare sha, the older
/// `main/<sha>`, and OCI digests (`latest@sha256:<digest>`, `sha256:<digest>`),
/// which name no commit.
pub fn parse_revision(revision: &str) -> Revision {
    let is_sha = |s: &str| (7..=64).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_hexdigit());
    let (reference, digest) = match revision.rsplit_once('@') {
        Some((r, d)) => (Some(r.to_string()).filter(|r| !r.is_empty()), d),
        None => (None, revision),
    };
    if let Some(sha) = digest.strip_prefix("sha1:").filter(|s| is_sha(s)) {
        return Revision {
            reference,
            sha: Some(sha.to_string()),
        };
    }
    if digest.starts_with("sha256:") || digest.starts_with("blake3:") {
        return Revision {
            reference,
            sha: None,
        };
    }
    if is_sha(digest) {
        return Revision {
            reference,
            sha: Some(digest.to_string()),
        };
    }
    // Flux before 2.0: `main/<sha>` (a bare `/<sha>` names no reference). The
    // whole revision is split: a branch name may hold an `@` (`fix@2/<sha>`).
    if let Some((r, sha)) = revision.rsplit_once('/').filter(|(_, s)| is_sha(s)) {
        return Revision {
            reference: Some(r.to_string()).filter(|r| !r.is_empty()),
            sha: Some(sha.to_string()),
        };
    }
    Revision {
        reference,
        sha: None,
    }
}

/// `owner/repo` of a Git URL on `github_host` (github.com, or the GitHub
/// Enterprise host of `GITHUB_SERVER_URL`), in its https and ssh forms.
pub fn github_repository(url: &str, github_host: &str) -> Option<String> {
    let url = url.trim();
    let rest = if let Some(r) = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))
    {
        r
    } else if let Some(r) = url.strip_prefix("ssh://") {
        r
    } else {
        // scp-like `git@github.com:owner/repo.git`
        url
    };
    let rest = rest
        .split_once('@')
        .map(|(_, r)| r)
        .filter(|_| !rest.starts_with(github_host))
        .unwrap_or(rest);
    let path = rest
        .strip_prefix(github_host)
        .and_then(|p| p.strip_prefix('/').or_else(|| p.strip_prefix(':')))?;
    let path = path.trim_end_matches('/').trim_end_matches(".git");
    let mut parts = path.split('/');
    match (parts.next(), parts.next(), parts.next()) {
        (Some(owner), Some(repo), None) if !owner.is_empty() && !repo.is_empty() => {
            Some(format!("{owner}/{repo}"))
        }
        _ => None,
    }
}

fn text<'a>(v: &'a Value, pointer: &str) -> Option<&'a str> {
    v.pointer(pointer)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
}

/// `(namespace, name)` of a Kubernetes object.
pub fn object_id(obj: &Value) -> Option<(&str, &str)> {
    Some((
        text(obj, "/metadata/namespace")?,
        text(obj, "/metadata/name")?,
    ))
}

fn name_of(obj: &Value) -> Result<(String, String), String> {
    let name = text(obj, "/metadata/name").ok_or("an object has no `metadata.name`")?;
    let namespace = text(obj, "/metadata/namespace")
        .ok_or_else(|| format!("{name} has no `metadata.namespace`"))?;
    Ok((namespace.to_string(), name.to_string()))
}

/// GitRepository URLs by `(namespace, name)`, from a list of GitRepositories.
pub fn git_repositories(items: &[Value]) -> BTreeMap<(String, String), String> {
    items
        .iter()
        .filter_map(|o| Some((name_of(o).ok()?, text(o, "/spec/url")?.to_string())))
        .collect()
}

/// A Kustomization's applied revision as an event: `Success` when Ready is
/// True (a deployment, at the Ready condition's transition), `NotReady`
/// otherwise. `None` when it has applied nothing yet. Warnings say why a
/// deployment will have no lead time.
pub fn kustomization(
    obj: &Value,
    sources: &BTreeMap<(String, String), String>,
    github_host: &str,
    environment: &str,
) -> Result<Option<(Deploy, Vec<String>)>, String> {
    let (namespace, name) = name_of(obj)?;
    let Some(revision) = text(obj, "/status/lastAppliedRevision") else {
        return Ok(None);
    };
    let ready = obj
        .pointer("/status/conditions")
        .and_then(Value::as_array)
        .and_then(|c| {
            c.iter()
                .find(|c| c.get("type").and_then(Value::as_str) == Some("Ready"))
        });
    let Some(ready) = ready else {
        return Ok(None);
    };
    let time: Timestamp = text(ready, "/lastTransitionTime")
        .ok_or_else(|| format!("Kustomization {namespace}/{name}: the Ready condition has no lastTransitionTime"))?
        .parse()
        .map_err(|_| format!("Kustomization {namespace}/{name}: the Ready condition's lastTransitionTime is not RFC 3339"))?;
    let status = if text(ready, "/status") == Some("True") {
        Status::Success
    } else {
        Status::NotReady
    };
    let parsed = parse_revision(revision);
    let mut warnings = Vec::new();
    let repository = match source_url(obj, &namespace, sources) {
        Ok(url) => match github_repository(&url, github_host) {
            Some(repo) => repo,
            None => {
                warnings.push(format!("Kustomization {namespace}/{name}: source {url} is not on {github_host}: recorded without lead time"));
                String::new()
            }
        },
        Err(why) => {
            warnings.push(format!(
                "Kustomization {namespace}/{name}: {why}: recorded without lead time"
            ));
            String::new()
        }
    };
    if parsed.sha.is_none() {
        warnings.push(format!("Kustomization {namespace}/{name}: revision {revision} names no Git commit: recorded without lead time"));
    }
    let deploy = Deploy {
        repository,
        source: name,
        key: EventKey::Flux {
            namespace,
            revision: revision.to_string(),
        },
        status,
        branch: parsed.reference.unwrap_or_default(),
        sha: parsed.sha.unwrap_or_default(),
        environment: environment.to_string(),
        time,
        commit_time: None,
        url: None,
        history: History::default(),
    };
    Ok(Some((deploy, warnings)))
}

/// The Git URL of a Kustomization's source, or why there is none.
fn source_url(
    obj: &Value,
    namespace: &str,
    sources: &BTreeMap<(String, String), String>,
) -> Result<String, String> {
    let kind = text(obj, "/spec/sourceRef/kind").unwrap_or("GitRepository");
    if kind != "GitRepository" {
        return Err(format!("its source is a {kind}, not a GitRepository"));
    }
    let source_name = text(obj, "/spec/sourceRef/name").ok_or("it has no `spec.sourceRef.name`")?;
    let source_ns = text(obj, "/spec/sourceRef/namespace").unwrap_or(namespace);
    sources
        .get(&(source_ns.to_string(), source_name.to_string()))
        .cloned()
        .ok_or_else(|| format!("GitRepository {source_ns}/{source_name} not found"))
}

/// What a Canary's status says: its current phase (state), and, in a
/// terminal phase, the outcome as an event: `Succeeded` = a deployment,
/// `Failed` = a failed deployment (rolled back), at the status's transition time.
pub fn canary(
    obj: &Value,
    environment: &str,
) -> Result<(String, String, String, Option<Deploy>), String> {
    let (namespace, name) = name_of(obj)?;
    let phase = text(obj, "/status/phase").unwrap_or("Unknown").to_string();
    let status = match phase.as_str() {
        "Succeeded" => Status::Success,
        "Failed" => Status::Failure,
        _ => return Ok((namespace, name, phase, None)),
    };
    let time: Timestamp = text(obj, "/status/lastTransitionTime")
        .ok_or_else(|| {
            format!("Canary {namespace}/{name} is {phase} but has no `status.lastTransitionTime`")
        })?
        .parse()
        .map_err(|_| {
            format!("Canary {namespace}/{name}: `status.lastTransitionTime` is not RFC 3339")
        })?;
    let outcome = Deploy {
        repository: String::new(),
        source: name.clone(),
        key: EventKey::Canary {
            namespace: namespace.clone(),
            phase: phase.clone(),
            transition: time.as_second(),
        },
        status,
        branch: String::new(),
        sha: String::new(),
        environment: environment.to_string(),
        time,
        commit_time: None,
        url: None,
        history: History::default(),
    };
    Ok((namespace, name, phase, Some(outcome)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const SHA: &str = "9f8e7d6c5b4a39281706f5e4d3c2b1a098765432";

    #[test]
    fn revisions_in_every_form() {
        let git = |r: Option<&str>| Revision {
            reference: r.map(String::from),
            sha: Some(SHA.into()),
        };
        assert_eq!(
            parse_revision(&format!("main@sha1:{SHA}")),
            git(Some("main"))
        );
        assert_eq!(
            parse_revision(&format!("v1.2.3@sha1:{SHA}")),
            git(Some("v1.2.3"))
        );
        assert_eq!(
            parse_revision(&format!("refs/heads/release/1.x@sha1:{SHA}")),
            git(Some("refs/heads/release/1.x"))
        );
        assert_eq!(parse_revision(SHA), git(None));
        assert_eq!(parse_revision(&format!("main/{SHA}")), git(Some("main")));
        assert_eq!(parse_revision(&format!("/{SHA}")), git(None));
        assert_eq!(parse_revision(&format!("fix@2/{SHA}")), git(Some("fix@2")));
        let oci = parse_revision(
            "latest@sha256:3b2c4f8e0c4e1f2a3b2c4f8e0c4e1f2a3b2c4f8e0c4e1f2a3b2c4f8e0c4e1f2a",
        );
        assert_eq!(
            oci,
            Revision {
                reference: Some("latest".into()),
                sha: None
            }
        );
        assert_eq!(parse_revision("sha256:3b2c4f8e").sha, None);
    }

    #[test]
    fn github_urls_in_https_and_ssh_forms() {
        for url in [
            "https://github.com/octo-org/shop",
            "https://github.com/octo-org/shop.git",
            "https://github.com/octo-org/shop/",
            "ssh://git@github.com/octo-org/shop.git",
            "git@github.com:octo-org/shop.git",
        ] {
            assert_eq!(
                github_repository(url, "github.com").as_deref(),
                Some("octo-org/shop"),
                "{url}"
            );
        }
        assert_eq!(
            github_repository("https://ghe.example.com/team/app.git", "ghe.example.com").as_deref(),
            Some("team/app")
        );
        assert_eq!(
            github_repository("https://gitlab.com/octo-org/shop.git", "github.com"),
            None
        );
        assert_eq!(
            github_repository("https://github.com/octo-org", "github.com"),
            None
        );
    }

    fn kustomization_obj(ready: &str, revision: &str) -> Value {
        json!({
            "apiVersion": "kustomize.toolkit.fluxcd.io/v1", "kind": "Kustomization",
            "metadata": {"name": "apps", "namespace": "flux-system"},
            "spec": {"sourceRef": {"kind": "GitRepository", "name": "flux-system"}, "path": "./apps", "interval": "10m"},
            "status": {
                "lastAppliedRevision": revision,
                "conditions": [{"type": "Ready", "status": ready, "reason": "ReconciliationSucceeded", "lastTransitionTime": "2026-11-20T10:30:00Z", "message": "Applied revision"}]
            }
        })
    }

    fn sources() -> BTreeMap<(String, String), String> {
        git_repositories(&[
            json!({"metadata": {"name": "flux-system", "namespace": "flux-system"}, "spec": {"url": "ssh://git@github.com/octo-org/shop"}}),
        ])
    }

    #[test]
    fn a_ready_kustomization_is_a_deployment_of_its_commit() {
        let (d, warnings) = kustomization(
            &kustomization_obj("True", &format!("main@sha1:{SHA}")),
            &sources(),
            "github.com",
            "prod",
        )
        .unwrap()
        .unwrap();
        assert!(warnings.is_empty(), "{warnings:?}");
        assert_eq!(d.status, Status::Success);
        assert_eq!(
            (
                d.repository.as_str(),
                d.source.as_str(),
                d.sha.as_str(),
                d.branch.as_str()
            ),
            ("octo-org/shop", "apps", SHA, "main")
        );
        assert_eq!(d.time, "2026-11-20T10:30:00Z".parse().unwrap());
        assert_eq!(
            d.key,
            EventKey::Flux {
                namespace: "flux-system".into(),
                revision: format!("main@sha1:{SHA}")
            }
        );
    }

    #[test]
    fn not_ready_or_not_on_github_is_recorded_with_the_reason() {
        let (d, _) = kustomization(
            &kustomization_obj("False", SHA),
            &sources(),
            "github.com",
            "prod",
        )
        .unwrap()
        .unwrap();
        assert_eq!(d.status, Status::NotReady);
        let (d, warnings) = kustomization(
            &kustomization_obj("True", SHA),
            &BTreeMap::new(),
            "github.com",
            "prod",
        )
        .unwrap()
        .unwrap();
        assert_eq!(d.repository, "");
        assert!(
            warnings[0].contains("GitRepository flux-system/flux-system not found"),
            "{warnings:?}"
        );
        let (_, warnings) = kustomization(
            &kustomization_obj("True", "latest@sha256:abc"),
            &sources(),
            "github.com",
            "prod",
        )
        .unwrap()
        .unwrap();
        assert!(warnings[0].contains("names no Git commit"), "{warnings:?}");
        let mut never = kustomization_obj("True", SHA);
        never["status"]
            .as_object_mut()
            .unwrap()
            .remove("lastAppliedRevision");
        assert_eq!(
            kustomization(&never, &sources(), "github.com", "prod").unwrap(),
            None
        );
    }

    fn canary_obj(phase: &str) -> Value {
        json!({
            "apiVersion": "flagger.app/v1beta1", "kind": "Canary",
            "metadata": {"name": "podinfo", "namespace": "test"},
            "status": {"phase": phase, "lastTransitionTime": "2026-11-20T11:00:00Z", "failedChecks": 0, "canaryWeight": 0, "iterations": 0}
        })
    }

    #[test]
    fn terminal_canary_phases_are_outcomes_at_their_transition() {
        let (ns, name, phase, outcome) = canary(&canary_obj("Failed"), "prod").unwrap();
        assert_eq!(
            (ns.as_str(), name.as_str(), phase.as_str()),
            ("test", "podinfo", "Failed")
        );
        let outcome = outcome.unwrap();
        assert_eq!(outcome.status, Status::Failure);
        assert_eq!(
            outcome.key,
            EventKey::Canary {
                namespace: "test".into(),
                phase: "Failed".into(),
                transition: 1_795_172_400
            }
        );
        assert_eq!(
            canary(&canary_obj("Succeeded"), "prod")
                .unwrap()
                .3
                .unwrap()
                .status,
            Status::Success
        );
        for p in [
            "Progressing",
            "Initialized",
            "Waiting",
            "Promoting",
            "Finalising",
        ] {
            assert_eq!(canary(&canary_obj(p), "prod").unwrap().3, None, "{p}");
        }
    }
}
