//! The sources of a run: the mode's source, and what it reads beside it.

use jiff::Timestamp;
use reqwest::Url;

use crate::clients::Clients;
use crate::dora;
use crate::dora::incident::Observed;
use crate::dora::plan;
use crate::inputs::{Inputs, Mode, Runner};
use crate::sinks::pushgateway::Listing;
use crate::sources::cluster;
use crate::sources::payload::{self, Rules};
use crate::sources::{event, incidents, workflows};
use crate::{Error, Result};

/// What the sources collected.
#[derive(Default)]
pub(super) struct Collected {
    pub(super) deploys: Vec<dora::Deploy>,
    /// Canary phases: state, replaced every run.
    pub(super) phases: Vec<dora::CanaryPhase>,
    /// A refusal that must fail the run after the other sources' events are delivered.
    pub(super) deferred: Option<Error>,
    /// The stored groups, when the source read them beside its own calls.
    pub(super) stored: Option<Result<Listing>>,
    /// Whether the run reads what is stored (to prune, upgrade, and tell
    /// recorded events from new ones): every scheduled run, and event-mode
    /// runs on one event in [`plan::UPKEEP_EVERY`].
    pub(super) upkeep: bool,
    /// GitHub failures `fail-on-error: false` turned into warnings.
    pub(super) failed: Vec<Error>,
    /// Incidents (and issues that are none any more) the source read.
    pub(super) observed: Vec<Observed>,
}

/// Runs the mode's source. Event mode pushes its event without reading
/// what is stored, but on the upkeep events ([`plan::upkeep_due`]); there
/// it reads the stored groups while it asks GitHub about the event: the two
/// are independent, and one after the other they would cost a round trip
/// more (the look-ups are few, the listing bounded). On the other events it
/// opens the connection to the Pushgateway meanwhile, for the same reason.
pub(super) async fn collect(
    inputs: &Inputs,
    runner: &Runner,
    start: (Mode, &str),
    event: Option<(dora::Deploy, serde_json::Value)>,
    clients: &Clients,
    now: Timestamp,
    warnings: &mut Vec<String>,
) -> Result<Collected> {
    let (mode, environment) = start;
    let github = &clients.github;
    if let Some((deploy, payload)) = event {
        let event_name = runner.event_name.as_deref().unwrap_or("");
        let upkeep = plan::upkeep_due(&deploy);
        let history =
            event::event_with_history(github, inputs, deploy, Some(&payload), event_name, warnings);
        let read = async {
            match &clients.pushgateway {
                Some(pushgateway) if upkeep => Some(pushgateway.listing(&dora::FAMILIES).await),
                Some(pushgateway) => {
                    pushgateway.warm_up().await;
                    None
                }
                None => None,
            }
        };
        let (deploys, stored) = tokio::join!(history, read);
        return Ok(Collected {
            deploys,
            stored,
            upkeep,
            ..Collected::default()
        });
    }
    if mode == Mode::Cluster {
        let client = clients
            .kube
            .as_ref()
            .expect("cluster mode has a cluster (inputs::resolve)");
        let github_host = github_host(&runner.server_url);
        let scope = cluster::Scope {
            kustomizations: &inputs.kustomizations,
            canary_namespaces: &inputs.canary_namespaces,
            github_host: &github_host,
            environment,
        };
        let read = cluster::cluster_events(client, &scope).await;
        warnings.extend(read.warnings);
        return Ok(Collected {
            deploys: read.events,
            phases: read.phases,
            deferred: read.refusal,
            upkeep: true,
            ..Collected::default()
        });
    }
    let repository = runner
        .env
        .get("GITHUB_REPOSITORY")
        .map(String::as_str)
        .unwrap_or_default();
    let default_branch = payload::payload_default_branch(runner.event_path.as_deref());
    let rules = Rules {
        deploy_branches: &inputs.deploy_branches,
        environment,
    };
    // The window's incidents are listed beside the runs: one round trip, not two.
    let mut noted = Vec::new();
    let (history, observed) = tokio::join!(
        workflows::workflow_history(
            github,
            inputs,
            repository,
            default_branch,
            &rules,
            now,
            warnings,
        ),
        incidents::window(github, inputs, repository, now, &mut noted)
    );
    let (deploys, failed) = history?;
    warnings.extend(noted);
    Ok(Collected {
        deploys,
        failed,
        upkeep: true,
        observed,
        ..Collected::default()
    })
}

/// An `issues` event: the incident, and the stored groups (the deployments
/// to pin it on, the group to replace or delete): an upkeep run.
pub(super) async fn collect_issue(clients: &Clients, issue: Observed) -> Collected {
    let stored = match &clients.pushgateway {
        Some(pushgateway) => Some(pushgateway.listing(&dora::FAMILIES).await),
        None => None,
    };
    Collected {
        observed: vec![issue],
        stored,
        upkeep: true,
        ..Collected::default()
    }
}

/// Host of the GitHub server (`GITHUB_SERVER_URL`), which a Flux
/// GitRepository URL must name to be one of this server's repositories.
fn github_host(server_url: &str) -> String {
    Url::parse(server_url)
        .ok()
        .and_then(|u| u.host_str().map(String::from))
        .unwrap_or_else(|| "github.com".into())
}
