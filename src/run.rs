//! Wires the pieces together: inputs → payload → core → outside systems →
//! outputs and summary. The only module that decides what happens in which order.

use std::path::PathBuf;

use jiff::Timestamp;
use reqwest::Url;

use std::collections::BTreeMap;

use crate::actions::{self, RunnerFiles};
use crate::clients::{Clients, Connected, connect};
use crate::dora;
use crate::github::GitHub;
use crate::http;
use crate::inputs::{Inputs, Mode};
use crate::pushgateway::{self, Listing, Pushgateway};
use crate::remote_write::{self, RemoteWrite};
use crate::report::{RemoteWriteState, Report};
use crate::sources::cluster;
use crate::sources::payload::{self, Observation, Rules};
use crate::sources::{event, lookups, workflows};
use crate::{Error, Failure, Result};
use futures_util::StreamExt;

/// The runner's context, from the `GITHUB_*` variables.
#[derive(Debug, Clone)]
pub struct Runner {
    pub event_name: Option<String>,
    pub event_path: Option<PathBuf>,
    pub api_url: Url,
    pub server_url: String,
    pub files: RunnerFiles,
    /// Every non-empty variable (trimmed), for AWS and OIDC settings.
    pub env: BTreeMap<String, String>,
}

impl Runner {
    /// Reads the runner context from environment pairs; unset or empty
    /// variables fall back to github.com (a local run).
    pub fn from_env(vars: &[(String, String)]) -> Result<Runner> {
        let env: BTreeMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.clone(), v.trim().to_string()))
            .filter(|(_, v)| !v.is_empty())
            .collect();
        let get = |name: &str| env.get(name).cloned();
        let api = get("GITHUB_API_URL").unwrap_or_else(|| "https://api.github.com".into());
        let api_url = Url::parse(&api)
            .map_err(|e| Error::input("GITHUB_API_URL", format!("invalid value `{api}`: {e}")))?;
        Ok(Runner {
            event_name: get("GITHUB_EVENT_NAME"),
            event_path: get("GITHUB_EVENT_PATH").map(PathBuf::from),
            api_url,
            server_url: get("GITHUB_SERVER_URL").unwrap_or_else(|| "https://github.com".into()),
            files: RunnerFiles {
                output: get("GITHUB_OUTPUT").map(PathBuf::from),
                summary: get("GITHUB_STEP_SUMMARY").map(PathBuf::from),
            },
            env,
        })
    }
}

/// The whole action, from environment pairs to an exit code. Every failure
/// ends here as one `::error::` line (or a `::warning::` when
/// `fail-on-error: false` allows it) and exit 1.
pub async fn main(vars: Vec<(String, String)>) -> u8 {
    // Before anything could print them: the secrets the environment brings.
    const SECRETS: [&str; 6] = [
        "INPUT_GITHUB-TOKEN",
        "INPUT_REMOTE-WRITE-BEARER-TOKEN",
        "INPUT_REMOTE-WRITE-PASSWORD",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "ACTIONS_ID_TOKEN_REQUEST_TOKEN",
    ];
    for (name, value) in &vars {
        if SECRETS.contains(&name.as_str()) && !value.trim().is_empty() {
            actions::mask(value.trim());
        }
    }
    // A password in a URL input, even one too broken to parse.
    for name in crate::inputs::URL_INPUTS {
        let key = format!("INPUT_{}", name.to_uppercase());
        for (_, value) in vars.iter().filter(|(k, _)| *k == key) {
            for secret in crate::inputs::url_credentials(value.trim()) {
                actions::mask(&secret);
            }
        }
    }
    let runner = match Runner::from_env(&vars) {
        Ok(r) => r,
        Err(e) => return fail(&e, None),
    };
    let inputs = match Inputs::from_env(vars) {
        Ok(i) => i,
        Err(e) => return fail(&e, Some(&runner.files)),
    };
    if let Some(password) = inputs.pushgateway_url.as_ref().and_then(Url::password) {
        actions::mask(password);
    }
    let report = match run(&inputs, &runner, Timestamp::now()).await {
        Ok(r) => r,
        Err(e) => return fail(&e, Some(&runner.files)),
    };
    let written = runner
        .files
        .write_outputs(&report.outputs().pairs())
        .and_then(|()| runner.files.write_summary(&report.markdown()));
    match (written, &report.refusal) {
        (Err(e), _) => fail(&e, None),
        (Ok(()), Some(refusal)) => {
            actions::error(refusal);
            1
        }
        (Ok(()), None) => 0,
    }
}

/// Reports a failure: one `::error::` line, and a summary line when possible.
fn fail(e: &Error, files: Option<&RunnerFiles>) -> u8 {
    actions::error(&e.to_string());
    if let Some(files) = files.filter(|f| f.summary.is_some()) {
        let _ = files.write_summary(&crate::report::failed_markdown(&e.to_string()));
    }
    1
}

/// Which mode a run is in, from the `mode` input and the triggering event.
fn resolve_mode(inputs: &Inputs, event_name: &str) -> Result<Mode> {
    let is_deploy_event = matches!(event_name, "workflow_run" | "deployment_status");
    let mode = match inputs.mode {
        Mode::Auto if is_deploy_event => Mode::Event,
        Mode::Auto if !inputs.workflows.is_empty() => Mode::Workflows,
        Mode::Auto => Mode::Cluster,
        Mode::Event if event_name.is_empty() => {
            return Err(Error::input(
                "mode",
                "`event` needs GITHUB_EVENT_NAME and GITHUB_EVENT_PATH (set by the runner)",
            ));
        }
        Mode::Event if !is_deploy_event => {
            return Err(Error::input(
                "mode",
                format!(
                    "`event` records `workflow_run` and `deployment_status` events; this run was triggered by `{event_name}`"
                ),
            ));
        }
        Mode::Workflows if inputs.workflows.is_empty() => {
            return Err(Error::input(
                "workflows",
                "required with `mode: workflows`: the workflow files to read (e.g. `deploy.yml`)",
            ));
        }
        other => other,
    };
    if mode == Mode::Cluster && inputs.cluster_name.is_none() {
        let why = if inputs.mode == Mode::Auto {
            let what = if event_name.is_empty() {
                "no event".to_string()
            } else {
                format!("event `{event_name}`")
            };
            format!(
                "required: `auto` chose cluster mode for {what} (set `workflows` for history, or trigger on `workflow_run`/`deployment_status`)"
            )
        } else {
            "required with `mode: cluster`: the EKS cluster whose Flux and Flagger objects to read"
                .to_string()
        };
        return Err(Error::input("cluster-name", why));
    }
    Ok(mode)
}

/// One run: validates what the inputs imply, collects the events, records them.
pub async fn run(inputs: &Inputs, runner: &Runner, now: Timestamp) -> Result<Report> {
    let event_name = runner.event_name.as_deref().unwrap_or("");
    let mode = resolve_mode(inputs, event_name)?;
    if inputs.pushgateway_url.is_none()
        && inputs.cluster_name.is_none()
        && inputs.remote_write.is_none()
        && !inputs.dry_run
    {
        return Err(Error::input(
            "pushgateway-url",
            "required when `cluster-name` and `remote-write-url` are empty: set one of them (or `dry-run: true`)",
        ));
    }
    let repository = runner.env.get("GITHUB_REPOSITORY").cloned();
    if mode == Mode::Workflows && repository.is_none() {
        return Err(Error::input(
            "workflows",
            "GITHUB_REPOSITORY is not set: cannot tell whose workflows to read",
        ));
    }
    let environment = inputs
        .environment
        .clone()
        .or_else(|| inputs.cluster_name.clone())
        .unwrap_or_else(|| "default".into());
    let rules = Rules {
        deploy_branches: &inputs.deploy_branches,
        environment: &environment,
    };
    let mut report = Report {
        job: inputs.job.clone(),
        dry_run: inputs.dry_run,
        retention: inputs.retention,
        server_url: runner.server_url.clone(),
        window: (mode == Mode::Workflows).then_some(inputs.lookback),
        ..Report::default()
    };

    // Event mode reads its payload before any call: a non-deployment ends the run without one.
    let payload = match mode {
        Mode::Event => Some(payload::read_payload(runner.event_path.as_deref())?),
        _ => None,
    };
    let event = match &payload {
        None => None,
        Some((path, value)) => {
            match payload::parse_value(event_name, value, &rules).map_err(|message| {
                Error::Payload {
                    path: path.clone(),
                    message,
                }
            })? {
                Observation::NotADeploy { reason } => return Ok(skip(report, reason)),
                Observation::Deploy { deploy, warnings } => {
                    report.warnings = warnings;
                    Some(*deploy)
                }
            }
        }
    };
    // `retention` prunes the Pushgateway; a remote-write store keeps its own.
    let retention = inputs.retention.filter(|_| inputs.uses_pushgateway());
    if let (Some(d), Some(retention)) = (&event, retention)
        && d.time.as_second() < now.as_second() - retention as i64
    {
        let reason = format!(
            "the event ({}) is older than `retention` and would be pruned at once",
            d.time
        );
        if !inputs.dry_run {
            return Ok(skip(report, reason));
        }
        // A dry run still shows what the event looks like (the README's example gets older every day).
        report
            .warnings
            .push(format!("{reason}: a real run records nothing"));
    }

    let clients = match connect(inputs, runner, mode).await? {
        Connected::Skip { reason, cluster } => {
            report.cluster = cluster;
            return Ok(skip(report, reason));
        }
        Connected::Ready(clients) => *clients,
    };
    let Clients {
        github,
        pushgateway,
        remote,
        kube,
        cluster,
    } = clients;
    report.cluster = cluster;
    report.destination = pushgateway.as_ref().map(Pushgateway::display_url);
    // Canary phases (state, replaced every run) and a refusal that must fail
    // the run after the other sources' events are delivered.
    let mut phases: Vec<dora::CanaryPhase> = Vec::new();
    let mut deferred: Option<Error> = None;
    // Event mode reads the stored groups while it asks GitHub about the
    // event: the two are independent, and one after the other they would
    // cost a round trip more (the look-ups are few, the listing bounded).
    let mut stored = None;
    let mut deploys = match event {
        None if mode == Mode::Cluster => {
            let client = kube
                .as_ref()
                .expect("cluster mode has a cluster (resolve_mode)");
            let github_host = Url::parse(&runner.server_url)
                .ok()
                .and_then(|u| u.host_str().map(String::from))
                .unwrap_or_else(|| "github.com".into());
            let scope = cluster::Scope {
                kustomizations: &inputs.kustomizations,
                canary_namespaces: &inputs.canary_namespaces,
                github_host: &github_host,
                environment: &environment,
            };
            let collected = cluster::cluster_events(client, &scope).await;
            report.warnings.extend(collected.warnings);
            phases = collected.phases;
            deferred = collected.refusal;
            collected.events
        }
        Some(deploy) => {
            let history = event::event_with_history(
                &github,
                inputs,
                deploy,
                payload.as_ref().map(|(_, v)| v),
                event_name,
                &mut report.warnings,
            );
            let read = async {
                match &pushgateway {
                    Some(pushgateway) => Some(pushgateway.listing().await),
                    None => None,
                }
            };
            let deploys;
            (deploys, stored) = tokio::join!(history, read);
            deploys
        }
        None => {
            let repository = repository.as_deref().unwrap_or_default();
            let default_branch = payload::payload_default_branch(runner.event_path.as_deref());
            let (deploys, failed) = workflows::workflow_history(
                &github,
                inputs,
                repository,
                default_branch,
                &rules,
                now,
                &mut report.warnings,
            )
            .await?;
            // `fail-on-error: false`: a GitHub failure is a warning. With
            // nothing read there is nothing to deliver: the run ends here,
            // reported as failed (outputs count nothing); otherwise the
            // workflows that were read are recorded.
            for e in &failed {
                actions::warning(&format!("{e} (not failing: `fail-on-error` is false)"));
            }
            if !failed.is_empty() && deploys.is_empty() {
                report.failure = failed.first().map(Error::to_string);
                for w in &report.warnings {
                    actions::warning(w);
                }
                report.github_calls = github.calls();
                return Ok(report);
            }
            deploys
        }
    };
    if let Some(retention) = retention.filter(|_| mode != Mode::Event) {
        deploys.retain(|d| d.time.as_second() >= now.as_second() - retention as i64);
    }

    match (pushgateway, remote) {
        (None, None) => {
            let all_new = vec![true; deploys.len()];
            lookups::complete(&github, &mut deploys, &[], &all_new, &mut report.warnings).await;
            report.canary_phases = phases.len();
            let groups: Vec<dora::Group> = deploys
                .iter()
                .map(dora::deploy_group)
                .chain(phases.iter().map(dora::CanaryPhase::group))
                .collect();
            let text: String = groups
                .iter()
                .map(|g| format!("{}\n{}", group_header(&inputs.job, g), g.exposition))
                .collect::<Vec<_>>()
                .join("\n");
            actions::print(&text);
            report.new_events = deploys.len();
            report.exposition = Some(text);
        }
        (pushgateway, remote) => {
            match deliver(
                pushgateway.as_ref(),
                stored,
                remote.as_ref(),
                &github,
                inputs,
                &mut deploys,
                phases,
                now,
                &mut report,
            )
            .await
            {
                Ok(()) => {}
                Err(e) if e.is_delivery_failure() && !inputs.fail_on_error => {
                    actions::warning(&format!("{e} (not failing: `fail-on-error` is false)"));
                    report.failure = Some(e.to_string());
                }
                Err(e) => return Err(e),
            }
        }
    }
    // Commit times are known now (a Flux revision's was looked up on delivery).
    for d in deploys.iter().filter(|d| d.has_future_commit()) {
        report.warnings.push(format!(
            "commit {} is dated after the deployment finished: recorded without lead time",
            d.sha
        ));
    }
    for w in &report.warnings {
        actions::warning(w);
    }
    report.github_calls = github.calls();
    report.recorded = deploys;
    // A source the cluster refused fails the run, after the others' events were delivered.
    report.refusal = deferred.map(|e| e.to_string());
    Ok(report)
}

/// `# group: job=dora repository="…" …`, the line a dry run prints above each group.
fn group_header(job: &str, group: &dora::Group) -> String {
    group
        .grouping
        .iter()
        .fold(format!("# group: job={job}"), |h, (k, v)| {
            format!("{h} {k}={v:?}")
        })
}

/// Reads the stored groups (unless the caller did), finds which events are
/// new, completes them (see [`complete`]), writes them to the remote-write
/// store, prunes this job's expired groups, then pushes each new event with
/// one PUT (a few at a time), and the canary phases. Events already stored
/// are left as they are: re-running changes nothing.
///
/// Remote-write goes first: if it fails, nothing is pushed to the
/// Pushgateway either, so the next run still sees the events as new and
/// writes both (the store takes a repeated sample as already there).
/// Without a Pushgateway there is nothing to tell what is recorded: every
/// event is completed and written, and the store keeps one sample per series
/// and timestamp.
///
/// The Pushgateway keeps an empty group behind after rejecting a push (400);
/// if the group did not exist before, that shell is deleted again, so a
/// failed push leaves no trace of the event.
#[allow(
    clippy::too_many_arguments,
    reason = "each is a distinct piece of the run; a struct would only rename them"
)]
async fn deliver(
    pushgateway: Option<&Pushgateway>,
    stored: Option<Result<Listing>>,
    remote: Option<&RemoteWrite>,
    github: &GitHub,
    inputs: &Inputs,
    deploys: &mut [dora::Deploy],
    phases: Vec<dora::CanaryPhase>,
    now: Timestamp,
    report: &mut Report,
) -> Result<()> {
    let listing = match (stored, pushgateway) {
        (Some(read), _) => read?,
        (None, Some(p)) => p.listing().await?,
        (None, None) => Listing::default(),
    };
    if listing.skipped > 0 {
        report.warnings.push(format!(
            "{} stored groups larger than {} were skipped unread (the groups this action writes are a few KB)",
            listing.skipped,
            http::size(pushgateway::GROUP_LIMIT)
        ));
    }
    let stored = listing.groups;
    // Stored groups by their labels: a look-up per event, not a scan of
    // every stored group (thousands of both on a first cluster-mode run).
    let by_labels: BTreeMap<&dora::SmallMap<String>, &dora::StoredGroup> =
        stored.iter().map(|g| (&g.labels, g)).collect();
    let new: Vec<bool> = deploys
        .iter()
        .map(|d| {
            let labels = dora::SmallMap::from(dora::group_labels(d, &inputs.job));
            !by_labels
                .get(&labels)
                .is_some_and(|g| dora::is_recorded(g, d))
        })
        .collect();
    lookups::complete(github, deploys, &stored, &new, &mut report.warnings).await;
    // What is already recorded is reported as recorded: a re-run gives the
    // same outputs and summary as the run that recorded it.
    for (d, _) in deploys.iter_mut().zip(&new).filter(|(_, n)| !**n) {
        let labels = dora::SmallMap::from(dora::group_labels(d, &inputs.job));
        if let Some(g) = by_labels.get(&labels) {
            dora::adopt_recorded(d, g);
        }
    }
    let events: Vec<(dora::Group, Timestamp)> = deploys
        .iter()
        .zip(&new)
        .filter(|(_, n)| **n)
        .map(|(d, _)| (dora::deploy_group(d), d.time))
        .collect();
    report.new_events = events.len();
    report.already_recorded = deploys.len() - events.len();

    if let Some(remote) = remote {
        // Phases are state: every run writes each canary's phase at the run's time.
        let units: Vec<remote_write::Unit> = events
            .iter()
            .map(|(g, t)| remote_series(g, &inputs.job, *t))
            .chain(
                phases
                    .iter()
                    .map(|p| remote_series(&p.group(), &inputs.job, now)),
            )
            .collect();
        let written = remote.write(&units).await?;
        report.remote_write = Some(RemoteWriteState {
            url: remote.display_url(),
            accepted: written.accepted,
            already_stored: written.already_stored,
            requests: written.requests,
        });
    }
    let Some(pushgateway) = pushgateway else {
        report.canary_phases = phases.len();
        return Ok(());
    };

    if let Some(retention) = inputs.retention {
        for expired in dora::expired(&stored, &inputs.job, now, retention) {
            pushgateway.delete(&expired.labels).await?;
            report.pruned += 1;
        }
    }
    // Phases that did not change are not pushed again.
    let changed: Vec<dora::Group> = phases
        .iter()
        .map(|p| (p, p.group()))
        .filter(|(p, g)| {
            !by_labels
                .get(&dora::SmallMap::from(g.labels(&inputs.job)))
                .is_some_and(|s| p.is_recorded(s))
        })
        .map(|(_, g)| g)
        .collect();
    report.canary_phases = changed.len();
    let pushed: Vec<dora::Group> = events.into_iter().map(|(g, _)| g).chain(changed).collect();
    let upgrades = upgrades(&stored, &pushed, inputs, now);
    report.upgraded = upgrades.len();
    let to_push: Vec<(dora::Group, bool)> = pushed
        .into_iter()
        .chain(upgrades)
        .map(|g| {
            let existed = by_labels.contains_key(&dora::SmallMap::from(g.labels(&inputs.job)));
            (g, existed)
        })
        .collect();
    let results: Vec<Result<()>> =
        futures_util::stream::iter(to_push.iter().map(|(group, existed)| {
            pushgateway.put(&inputs.job, &group.grouping, &group.exposition, !existed)
        }))
        .buffer_unordered(PUSH_CONCURRENCY)
        .collect()
        .await;
    let mut failed = results.into_iter().filter_map(Result::err);
    let Some(first) = failed.next() else {
        return Ok(());
    };
    let n = 1 + failed.count();
    // The first failure, its status and cause kept, its text without the
    // `pushgateway: ` the whole error starts with already.
    let first = match first {
        Error::Pushgateway(failure) => failure,
        other => Failure::new(other.to_string()),
    };
    Err(Error::Pushgateway(Failure {
        message: format!(
            "{n} of {} groups not pushed; first: {}",
            to_push.len(),
            first.message
        ),
        ..first
    }))
}

/// This job's groups stored by the previous version (`branch`, no `ref`)
/// and kept by retention, rewritten in today's shape ([`dora::upgraded`]):
/// pushed once, each replaces its old group, so queries on `ref` see the
/// whole history. Not written to remote-write: the store already holds
/// those samples. Groups this run pushes anyway are left out.
fn upgrades(
    stored: &[dora::StoredGroup],
    pushed: &[dora::Group],
    inputs: &Inputs,
    now: Timestamp,
) -> Vec<dora::Group> {
    let cutoff = inputs.retention.map(|r| now.as_second() as f64 - r as f64);
    let pushed: std::collections::BTreeSet<BTreeMap<String, String>> =
        pushed.iter().map(|g| g.labels(&inputs.job)).collect();
    stored
        .iter()
        .filter(|g| g.labels.get("job") == Some(&inputs.job))
        .filter(|g| match (cutoff, g.event_time()) {
            (Some(cutoff), Some(t)) => t >= cutoff,
            _ => true,
        })
        .filter_map(dora::upgraded)
        .filter(|g| !pushed.contains(&g.labels(&inputs.job)))
        .take(MAX_UPGRADES_PER_RUN)
        .collect()
}

/// Old-shape groups rewritten in one run at most: with the Pushgateway's
/// consistency check a PUT costs up to ~0.6 s at 10,000 stored groups, so an
/// unbounded upgrade could hold one run for an hour; this way the history
/// converges over the next runs and no run pays more than about a minute.
const MAX_UPGRADES_PER_RUN: usize = 100;

/// One group's series for remote-write, each sample at `time` (milliseconds).
fn remote_series(group: &dora::Group, job: &str, time: Timestamp) -> remote_write::Unit {
    group
        .series(job)
        .into_iter()
        .map(|(labels, value)| remote_write::TimeSeries::new(labels, value, time.as_millisecond()))
        .collect()
}

/// Pushes in flight at once: enough to hide latency, few enough for a small Pushgateway.
const PUSH_CONCURRENCY: usize = 8;

/// Ends a run that records nothing: a notice saying why, and the summary's reason.
fn skip(mut report: Report, reason: String) -> Report {
    actions::notice(&format!("nothing recorded: {reason}"));
    report.skipped = Some(reason);
    report
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_run_upgrades_at_most_its_share_of_old_groups() {
        let inputs = Inputs::from_env([("INPUT_RETENTION", "0")]).unwrap();
        let stored: Vec<dora::StoredGroup> = (0..MAX_UPGRADES_PER_RUN + 50)
            .map(|i| {
                let mut g = dora::tests::stored_before_ref();
                g.labels.insert("run_id".into(), (10_000 + i).to_string());
                g.sample_labels
                    .insert("run_id".into(), (10_000 + i).to_string());
                g
            })
            .collect();
        let now = Timestamp::from_second(1_800_000_000).unwrap();
        let first = upgrades(&stored, &[], &inputs, now);
        assert_eq!(first.len(), MAX_UPGRADES_PER_RUN);
        // The rest waits for the next run, none of it lost.
        let left = upgrades(&stored[MAX_UPGRADES_PER_RUN..], &[], &inputs, now);
        assert_eq!(left.len(), 50);
    }
}
