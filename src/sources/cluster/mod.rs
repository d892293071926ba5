//! Cluster mode: Flux Kustomizations (with their GitRepositories) and
//! Flagger Canaries, read with list calls through the cluster's API server,
//! mapped to events by [`objects`] (pure).
//!
//! A source whose CRD is not installed is skipped with a warning; a refused
//! or failed source does not stop the others: its refusal is kept and fails
//! the run after the other sources' events are delivered.

pub mod objects;

use crate::Error;
use crate::dora;
use crate::inputs::Kustomizations;
use crate::kubernetes::{self, ListError};

const FLUX: &str = "/apis/kustomize.toolkit.fluxcd.io/v1";
const SOURCES: &str = "/apis/source.toolkit.fluxcd.io/v1";
const FLAGGER: &str = "/apis/flagger.app/v1beta1";

/// What cluster mode read.
#[derive(Debug, Default)]
pub struct ClusterEvents {
    pub events: Vec<dora::Deploy>,
    pub phases: Vec<dora::CanaryPhase>,
    /// The first refusal (RBAC 403, or a failed list): the run fails with it
    /// after the other sources' events are delivered.
    pub refusal: Option<Error>,
    pub warnings: Vec<String>,
}

impl ClusterEvents {
    /// Keeps a list failure: a missing CRD is a warning, the rest a refusal.
    fn refused(&mut self, e: ListError) {
        match e {
            ListError::NotInstalled(why) => self.warnings.push(why),
            ListError::Forbidden(why) | ListError::Failed(why) => {
                self.refusal.get_or_insert(Error::Kubernetes(why));
            }
        }
    }
}

/// What to read from the cluster.
pub struct Scope<'a> {
    pub kustomizations: &'a Kustomizations,
    /// Namespaces to list Canaries in; empty = all.
    pub canary_namespaces: &'a [String],
    /// The GitHub host a GitRepository URL must name to be this repository's.
    pub github_host: &'a str,
    pub environment: &'a str,
}

/// Reads Flux, then Flagger.
pub async fn cluster_events(client: &kube::Client, scope: &Scope<'_>) -> ClusterEvents {
    let mut out = ClusterEvents::default();
    let kustomizations = list_kustomizations(client, scope.kustomizations, &mut out).await;
    if !kustomizations.is_empty() {
        let repositories = list_git_repositories(client, &kustomizations, &mut out).await;
        let sources = objects::git_repositories(&repositories);
        for k in &kustomizations {
            match objects::kustomization(k, &sources, scope.github_host, scope.environment) {
                Ok(Some((event, w))) => {
                    out.warnings.extend(w);
                    out.events.push(event);
                }
                Ok(None) => {}
                Err(e) => out
                    .warnings
                    .push(format!("a Kustomization was skipped: {e}")),
            }
        }
    }
    canaries(client, scope, &mut out).await;
    out
}

/// A namespace and a name.
type NamespacedName = (String, String);

/// The list paths for `wanted`: all Kustomizations, or one list per
/// namespace of the named ones (and the names to keep).
fn kustomization_paths(wanted: &Kustomizations) -> (Vec<String>, Option<&[NamespacedName]>) {
    match wanted {
        Kustomizations::All => (vec![format!("{FLUX}/kustomizations")], None),
        Kustomizations::Named(named) => {
            let mut namespaces: Vec<&String> = named.iter().map(|(ns, _)| ns).collect();
            namespaces.sort();
            namespaces.dedup();
            let paths = namespaces
                .iter()
                .map(|ns| format!("{FLUX}/namespaces/{ns}/kustomizations"))
                .collect();
            (paths, Some(named))
        }
    }
}

/// The named Kustomizations (listed per namespace) or all of them; a named
/// one the cluster does not have is a warning.
async fn list_kustomizations(
    client: &kube::Client,
    wanted: &Kustomizations,
    out: &mut ClusterEvents,
) -> Vec<serde_json::Value> {
    let (paths, named) = kustomization_paths(wanted);
    let mut kustomizations = Vec::new();
    let mut listed = true;
    for path in &paths {
        match kubernetes::list(client, path, "kustomizations.kustomize.toolkit.fluxcd.io").await {
            Ok(items) => kustomizations.extend(items),
            Err(e) => {
                listed = false;
                out.refused(e);
                break;
            }
        }
    }
    if let Some(named) = named {
        let is = |k: &serde_json::Value, (ns, n): &(String, String)| {
            objects::object_id(k) == Some((ns.as_str(), n.as_str()))
        };
        kustomizations.retain(|k| named.iter().any(|w| is(k, w)));
        for w in named
            .iter()
            .filter(|w| listed && !kustomizations.iter().any(|k| is(k, w)))
        {
            out.warnings
                .push(format!("Kustomization {}/{} not found", w.0, w.1));
        }
    }
    kustomizations
}

/// The GitRepositories of the namespaces the Kustomizations' sources are in
/// (a source CRD that is not installed leaves them without a repository).
async fn list_git_repositories(
    client: &kube::Client,
    kustomizations: &[serde_json::Value],
    out: &mut ClusterEvents,
) -> Vec<serde_json::Value> {
    let mut namespaces: Vec<String> = kustomizations
        .iter()
        .filter_map(|k| {
            k.pointer("/spec/sourceRef/namespace")
                .or_else(|| k.pointer("/metadata/namespace"))
                .and_then(|v| v.as_str())
                .map(String::from)
        })
        .collect();
    namespaces.sort();
    namespaces.dedup();
    let mut repositories = Vec::new();
    for ns in &namespaces {
        match kubernetes::list(
            client,
            &format!("{SOURCES}/namespaces/{ns}/gitrepositories"),
            "gitrepositories.source.toolkit.fluxcd.io",
        )
        .await
        {
            Ok(items) => repositories.extend(items),
            Err(ListError::NotInstalled(_)) => {}
            Err(e) => {
                out.refused(e);
                break;
            }
        }
    }
    repositories
}

/// Flagger: Canaries in the named namespaces, or all; each gives its phase
/// (state) and, when it ended a rollout, an outcome event.
async fn canaries(client: &kube::Client, scope: &Scope<'_>, out: &mut ClusterEvents) {
    let paths: Vec<String> = if scope.canary_namespaces.is_empty() {
        vec![format!("{FLAGGER}/canaries")]
    } else {
        scope
            .canary_namespaces
            .iter()
            .map(|ns| format!("{FLAGGER}/namespaces/{ns}/canaries"))
            .collect()
    };
    for path in &paths {
        let items = match kubernetes::list(client, path, "canaries.flagger.app").await {
            Ok(items) => items,
            Err(e) => {
                out.refused(e);
                break;
            }
        };
        for c in &items {
            match objects::canary(c, scope.environment) {
                Ok((namespace, name, phase, outcome)) => {
                    out.phases.push(dora::CanaryPhase {
                        namespace,
                        canary: name,
                        phase,
                        environment: scope.environment.to_string(),
                    });
                    out.events.extend(outcome);
                }
                Err(e) => out.warnings.push(format!("a Canary was skipped: {e}")),
            }
        }
    }
}
