//! Wires the pieces together: inputs → payload → core → outside systems →
//! outputs and summary. The only module that decides what happens in which order.

use std::path::PathBuf;

use jiff::Timestamp;
use reqwest::{Client, Url};

use std::collections::BTreeMap;
use std::time::SystemTime;

use crate::actions::{self, RunnerFiles};
use crate::aws::{self, Aws, Cluster, CredentialSource};
use crate::cluster;
use crate::dora;
use crate::github::GitHub;
use crate::http;
use crate::inputs::{Branches, Inputs, Kustomizations, Mode, RemoteAuth, RemoteWriteTarget};
use crate::kubernetes;
use crate::kubernetes::ListError;
use crate::payload::{self, Observation, Rules};
use crate::pushgateway::{self, Listing, Pushgateway, Transport};
use crate::remote_write::{self, RemoteWrite};
use crate::report::{ClusterState, RemoteWriteState, Report};
use crate::retry::Backoff;
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
        Mode::Event => Some(read_payload(runner)?),
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

    // One client for every outside system: redirects to another origin are
    // not followed, so no credential leaves the URL it was given for (net).
    let http =
        http::client().map_err(|e| Error::Setup(format!("cannot set up HTTP: {e}").into()))?;
    // The cluster is checked before anything else is called or pushed: a
    // missing or unready cluster ends the run here, with no further call.
    let Reach {
        pushgateway,
        kube,
        aws,
    } = match connect(inputs, runner, &http, mode == Mode::Cluster, &mut report).await? {
        Connect::Skip(reason) => return Ok(skip(report, reason)),
        Connect::To(reach) => *reach,
    };
    let pushgateway = pushgateway.filter(|_| !inputs.dry_run);
    report.destination = pushgateway.as_ref().map(Pushgateway::display_url);
    let remote = match inputs.remote_write.as_ref().filter(|_| !inputs.dry_run) {
        Some(target) => Some(remote_write(target, inputs, runner, &http, aws.as_ref()).await?),
        None => None,
    };

    // History is what workflows mode is for: worth waiting for (a minute);
    // elsewhere GitHub only adds detail, and a failure degrades to a warning sooner.
    let github = GitHub::new(
        runner.api_url.clone(),
        inputs.github_token.clone(),
        http.clone(),
    )
    .with_backoff(if mode == Mode::Workflows {
        Backoff::GITHUB_HISTORY
    } else {
        Backoff::GITHUB
    });
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
            let collected =
                cluster_events(client, inputs, runner, &environment, &mut report.warnings).await;
            phases = collected.phases;
            deferred = collected.refusal;
            collected.events
        }
        Some(deploy) => {
            let history = event_with_history(
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
            let default_branch = payload_default_branch(runner);
            let (deploys, failed) = workflow_history(
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
            complete(&github, &mut deploys, &[], &all_new, &mut report.warnings).await;
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

/// The event payload: where it is and its JSON.
fn read_payload(runner: &Runner) -> Result<(String, serde_json::Value)> {
    let path = runner.event_path.clone().ok_or_else(|| {
        Error::input(
            "mode",
            "GITHUB_EVENT_PATH is not set: there is no event payload to read",
        )
    })?;
    let display = path.display().to_string();
    let bytes = std::fs::read(&path).map_err(|e| Error::Payload {
        path: display.clone(),
        message: format!("cannot read: {e}"),
    })?;
    let value = payload::json(&bytes).map_err(|message| Error::Payload {
        path: display.clone(),
        message,
    })?;
    Ok((display, value))
}

/// The repository's default branch as the triggering event's payload tells
/// it (schedule and workflow_dispatch payloads carry the repository), so
/// workflows mode usually needs no call for it.
fn payload_default_branch(runner: &Runner) -> Option<String> {
    let bytes = std::fs::read(runner.event_path.as_ref()?).ok()?;
    let v = payload::json(&bytes).ok()?;
    v.pointer("/repository/default_branch")?
        .as_str()
        .map(String::from)
}

/// Where a run pushes, once the cluster (if any) has been checked.
enum Connect {
    /// The cluster is missing or not ready: record nothing, say why.
    Skip(String),
    /// Where to go next.
    To(Box<Reach>),
}

/// The Pushgateway (`None` when there is none to reach: a dry run without
/// URL or cluster, or `pushgateway-service: none`), the cluster's API server
/// when it is needed, and the AWS client of the cluster check (its
/// credentials also sign SigV4 remote-write).
struct Reach {
    pushgateway: Option<Pushgateway>,
    kube: Option<kube::Client>,
    aws: Option<Aws>,
}

/// Checks the cluster (when `cluster-name` is set) and builds the way to the Pushgateway.
async fn connect(
    inputs: &Inputs,
    runner: &Runner,
    http: &Client,
    cluster_mode: bool,
    report: &mut Report,
) -> Result<Connect> {
    let mut proxy = None;
    let mut kube = None;
    let mut checked = None;
    if let Some(name) = &inputs.cluster_name {
        let (cluster, aws) = check_cluster(name, inputs, runner, http).await?;
        let mut state = ClusterState {
            name: name.clone(),
            region: aws.region.clone(),
            exists: false,
            status: String::new(),
        };
        match cluster {
            Cluster::Missing => {
                state.status = "missing".into();
                report.cluster = Some(state);
                return Ok(Connect::Skip(format!(
                    "EKS cluster `{name}` does not exist in {}",
                    aws.region
                )));
            }
            Cluster::NotReady { status } => {
                state.status = status.clone();
                report.cluster = Some(state);
                return Ok(Connect::Skip(format!(
                    "EKS cluster `{name}` is {status}, not ACTIVE"
                )));
            }
            Cluster::Active {
                endpoint, ca_pem, ..
            } => {
                state.exists = true;
                state.status = "ACTIVE".into();
                report.cluster = Some(state);
                // The API server is needed to read Flux and Flagger, or to reach the Pushgateway.
                let service = inputs
                    .pushgateway_service
                    .as_ref()
                    .filter(|_| inputs.pushgateway_url.is_none());
                if cluster_mode || service.is_some() {
                    let token =
                        aws::eks_token(aws.credentials(), &aws.region, name, SystemTime::now())?;
                    actions::mask(&token);
                    let client = kubernetes::client(&endpoint, &ca_pem, &token)?;
                    if let Some(service) = service {
                        proxy = Some(Transport::ServiceProxy {
                            client: client.clone(),
                            base: Transport::proxy_path(service),
                            endpoint: endpoint.to_string(),
                        });
                    }
                    kube = Some(client);
                }
            }
        }
        checked = Some(aws);
    }
    let pushgateway = match (&inputs.pushgateway_url, proxy) {
        (Some(url), _) => Some(Pushgateway::new(url.clone(), http.clone())),
        (None, Some(proxy)) => Some(Pushgateway::through(proxy)),
        (None, None) => None,
    };
    Ok(Connect::To(Box::new(Reach {
        pushgateway,
        kube,
        aws: checked,
    })))
}

/// What cluster mode read.
struct ClusterEvents {
    events: Vec<dora::Deploy>,
    phases: Vec<dora::CanaryPhase>,
    /// The first refusal (RBAC 403, or a failed list): the run fails with it
    /// after the other sources' events are delivered.
    refusal: Option<Error>,
}

/// Cluster mode: Flux Kustomizations (with their GitRepositories) and
/// Flagger Canaries, with list calls. A source whose CRD is not installed is
/// skipped with a warning; a refused or failed source does not stop the others.
async fn cluster_events(
    client: &kube::Client,
    inputs: &Inputs,
    runner: &Runner,
    environment: &str,
    warnings: &mut Vec<String>,
) -> ClusterEvents {
    let mut out = ClusterEvents {
        events: Vec::new(),
        phases: Vec::new(),
        refusal: None,
    };
    let refused = |e: ListError, warnings: &mut Vec<String>, refusal: &mut Option<Error>| match e {
        ListError::NotInstalled(why) => warnings.push(why),
        ListError::Forbidden(why) | ListError::Failed(why) => {
            refusal.get_or_insert(Error::Kubernetes(why));
        }
    };
    let github_host = Url::parse(&runner.server_url)
        .ok()
        .and_then(|u| u.host_str().map(String::from))
        .unwrap_or_else(|| "github.com".into());

    // Flux: the named Kustomizations (listed per namespace) or all of them.
    const FLUX: &str = "/apis/kustomize.toolkit.fluxcd.io/v1";
    const SOURCES: &str = "/apis/source.toolkit.fluxcd.io/v1";
    let (paths, wanted): (Vec<String>, Option<Vec<(String, String)>>) = match &inputs.kustomizations
    {
        Kustomizations::All => (vec![format!("{FLUX}/kustomizations")], None),
        Kustomizations::Named(named) => {
            let mut namespaces: Vec<&String> = named.iter().map(|(ns, _)| ns).collect();
            namespaces.sort();
            namespaces.dedup();
            (
                namespaces
                    .iter()
                    .map(|ns| format!("{FLUX}/namespaces/{ns}/kustomizations"))
                    .collect(),
                Some(named.clone()),
            )
        }
    };
    let mut kustomizations = Vec::new();
    let mut flux_ok = true;
    for path in &paths {
        match kubernetes::list(client, path, "kustomizations.kustomize.toolkit.fluxcd.io").await {
            Ok(items) => kustomizations.extend(items),
            Err(e) => {
                flux_ok = false;
                refused(e, warnings, &mut out.refusal);
                break;
            }
        }
    }
    if let Some(wanted) = &wanted {
        let is = |k: &serde_json::Value, (ns, n): &(String, String)| {
            cluster::object_id(k) == Some((ns.as_str(), n.as_str()))
        };
        kustomizations.retain(|k| wanted.iter().any(|w| is(k, w)));
        for w in wanted
            .iter()
            .filter(|w| flux_ok && !kustomizations.iter().any(|k| is(k, w)))
        {
            warnings.push(format!("Kustomization {}/{} not found", w.0, w.1));
        }
    }
    if !kustomizations.is_empty() {
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
                    refused(e, warnings, &mut out.refusal);
                    break;
                }
            }
        }
        let sources = cluster::git_repositories(&repositories);
        for k in &kustomizations {
            match cluster::kustomization(k, &sources, &github_host, environment) {
                Ok(Some((event, w))) => {
                    warnings.extend(w);
                    out.events.push(event);
                }
                Ok(None) => {}
                Err(e) => warnings.push(format!("a Kustomization was skipped: {e}")),
            }
        }
    }

    // Flagger: Canaries in the named namespaces, or all.
    const FLAGGER: &str = "/apis/flagger.app/v1beta1";
    let paths: Vec<String> = if inputs.canary_namespaces.is_empty() {
        vec![format!("{FLAGGER}/canaries")]
    } else {
        inputs
            .canary_namespaces
            .iter()
            .map(|ns| format!("{FLAGGER}/namespaces/{ns}/canaries"))
            .collect()
    };
    for path in &paths {
        match kubernetes::list(client, path, "canaries.flagger.app").await {
            Ok(items) => {
                for c in &items {
                    match cluster::canary(c, environment) {
                        Ok((namespace, name, phase, outcome)) => {
                            out.phases.push(dora::CanaryPhase {
                                namespace,
                                canary: name,
                                phase,
                                environment: environment.to_string(),
                            });
                            out.events.extend(outcome);
                        }
                        Err(e) => warnings.push(format!("a Canary was skipped: {e}")),
                    }
                }
            }
            Err(e) => {
                refused(e, warnings, &mut out.refusal);
                break;
            }
        }
    }
    out
}

/// Event mode: the event's deployment, with what its workflow's recent runs
/// say about it (recovery time, the previous success), from one list call.
/// A `deployment_status` also needs its commit's time (one call). Failed
/// look-ups degrade to warnings: the deployment is still recorded.
async fn event_with_history(
    github: &GitHub,
    inputs: &Inputs,
    mut deploy: dora::Deploy,
    payload: Option<&serde_json::Value>,
    event_name: &str,
    warnings: &mut Vec<String>,
) -> Vec<dora::Deploy> {
    if event_name == "deployment_status" {
        match github.commit_time(&deploy.repository, &deploy.sha).await {
            Ok(t) => deploy.commit_time = Some(t),
            Err(e) => warnings.push(format!(
                "commit time of {} unknown, recorded without lead time: {e}",
                deploy.sha
            )),
        }
        return vec![deploy];
    }
    if inputs.github_token.is_none() {
        warnings.push("no `github-token`: the workflow's recent runs were not read, so recovery time and the changes shipped are unknown".into());
        return vec![deploy];
    }
    let Some(workflow_id) = payload
        .and_then(|v| v.pointer("/workflow_run/workflow_id"))
        .and_then(|v| v.as_u64())
    else {
        return vec![deploy];
    };
    let since = deploy
        .time
        .saturating_sub(jiff::SignedDuration::from_secs(inputs.lookback as i64))
        .unwrap_or(deploy.time);
    let default_branch = payload
        .and_then(|v| v.pointer("/repository/default_branch"))
        .and_then(|v| v.as_str());
    let rules = Rules {
        deploy_branches: &inputs.deploy_branches,
        environment: &deploy.environment,
    };
    let runs = match github
        .workflow_runs(
            &deploy.repository,
            &workflow_id.to_string(),
            since,
            Some(&deploy.branch),
            1,
        )
        .await
    {
        Ok(runs) => runs,
        Err(e) => {
            warnings.push(format!(
                "the workflow's recent runs are unknown, so recovery time is too: {e}"
            ));
            return vec![deploy];
        }
    };
    let mut all: Vec<dora::Deploy> = runs
        .into_iter()
        .filter_map(|run| match payload::rest_run(run, &deploy.repository, default_branch, &rules) {
            Ok(Observation::Deploy { deploy, .. }) => Some(*deploy),
            _ => None,
        })
        // The event itself is authoritative (the list shows only a run's latest attempt).
        .filter(|d| !matches!((&d.key, &deploy.key), (dora::EventKey::Run { run_id: a, .. }, dora::EventKey::Run { run_id: b, .. }) if a == b))
        .filter(|d| d.time <= deploy.time)
        .collect();
    all.push(deploy);
    dora::annotate(&mut all);
    let mut event: Vec<dora::Deploy> = all.pop().into_iter().collect();
    // The changes it shipped are asked for now, not once the stored groups
    // tell the event is new: that would put the compare call after the
    // listing on the critical path. Only a re-run of a recorded event pays
    // for it, with one call.
    changes_of_new(github, &mut event, &[true], warnings).await;
    // Asked once: a failed look-up (already a warning) is not repeated on delivery.
    for d in event.iter_mut().filter(|d| d.history.changes.is_none()) {
        d.history.previous_success_sha = None;
    }
    event
}

/// Workflows mode: every completed run of each workflow in the lookback
/// window, as events (⌈runs/100⌉ list calls per workflow).
///
/// A GitHub failure fails the run, unless `fail-on-error` is false: then it
/// is returned beside the events of the workflows that could be read (the
/// caller warns), so one unreadable workflow costs no other's events.
async fn workflow_history(
    github: &GitHub,
    inputs: &Inputs,
    repository: &str,
    default_branch: Option<String>,
    rules: &Rules<'_>,
    now: Timestamp,
    warnings: &mut Vec<String>,
) -> Result<(Vec<dora::Deploy>, Vec<Error>)> {
    let github_history = github;
    let mut failed = Vec::new();
    let tolerated = |e: Error, failed: &mut Vec<Error>| {
        if e.is_delivery_failure() && !inputs.fail_on_error {
            failed.push(e);
            Ok(())
        } else {
            Err(e)
        }
    };
    let default_branch = match (&inputs.deploy_branches, default_branch) {
        (Branches::DefaultBranch, None) => match github_history.default_branch(repository).await {
            Ok(branch) => Some(branch),
            Err(e) => {
                tolerated(e, &mut failed)?;
                return Ok((Vec::new(), failed));
            }
        },
        (_, known) => known,
    };
    // A single exact branch narrows the listing on GitHub's side.
    let branch = match &inputs.deploy_branches {
        Branches::DefaultBranch => default_branch.clone(),
        Branches::Patterns(p) if p.len() == 1 && !p[0].contains('*') => Some(p[0].clone()),
        Branches::Patterns(_) => None,
    };
    let since = now
        .saturating_sub(jiff::SignedDuration::from_secs(inputs.lookback as i64))
        .unwrap_or(now);
    let mut deploys = Vec::new();
    for workflow in &inputs.workflows {
        let runs = match github_history
            .workflow_runs(repository, workflow, since, branch.as_deref(), usize::MAX)
            .await
        {
            Ok(runs) => runs,
            Err(e) => {
                tolerated(e, &mut failed)?;
                continue;
            }
        };
        for run in runs {
            let id = run.get("id").cloned().unwrap_or_default();
            match payload::rest_run(run, repository, default_branch.as_deref(), rules) {
                Ok(Observation::Deploy { deploy, .. }) => deploys.push(*deploy),
                Ok(Observation::NotADeploy { .. }) => {}
                Err(e) => warnings.push(format!("workflow {workflow}: run {id} skipped: {e}")),
            }
        }
    }
    dora::annotate(&mut deploys);
    Ok((deploys, failed))
}

/// For each new successful deployment with a known previous success: the
/// commits it shipped, with one compare call each (cached within the run).
async fn changes_of_new(
    github: &GitHub,
    deploys: &mut [dora::Deploy],
    new: &[bool],
    warnings: &mut Vec<String>,
) {
    let mut cache: BTreeMap<(String, String, String), (Vec<Timestamp>, u64)> = BTreeMap::new();
    for (d, _) in deploys.iter_mut().zip(new).filter(|(d, new)| {
        **new && d.status == dora::Status::Success && d.history.changes.is_none()
    }) {
        let Some(base) = d.history.previous_success_sha.clone() else {
            continue;
        };
        if base == d.sha {
            d.history.changes = Some(dora::Changes {
                count: 0,
                median_lead_seconds: None,
            });
            continue;
        }
        let key = (d.repository.clone(), base.clone(), d.sha.clone());
        if !cache.contains_key(&key) {
            match github.compare(&d.repository, &base, &d.sha).await {
                Ok(found) => {
                    cache.insert(key.clone(), found);
                }
                Err(e) => {
                    warnings.push(format!(
                        "changes shipped by {} unknown (head-commit lead time only): {e}",
                        d.sha
                    ));
                    continue;
                }
            }
        }
        let (times, count) = &cache[&key];
        d.history.changes = Some(dora::Changes::new(d.time, times, *count));
    }
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
    complete(github, deploys, &stored, &new, &mut report.warnings).await;
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

/// Completes the new events with what needs the stored history or a call:
/// canary recovery from the outcomes stored before, the changes each new
/// workflow deployment shipped (one compare each), and each new Ready Flux
/// revision's commit time (one call per revision never recorded, a few at a time).
async fn complete(
    github: &GitHub,
    deploys: &mut [dora::Deploy],
    stored: &[dora::StoredGroup],
    new: &[bool],
    warnings: &mut Vec<String>,
) {
    dora::annotate_canaries(deploys, stored);
    changes_of_new(github, deploys, new, warnings).await;
    let wanted: Vec<(String, String)> = deploys
        .iter()
        .zip(new)
        .filter(|(d, n)| {
            **n && matches!(d.key, dora::EventKey::Flux { .. }) && d.status == dora::Status::Success
        })
        .filter(|(d, _)| !d.repository.is_empty() && !d.sha.is_empty())
        .map(|(d, _)| (d.repository.clone(), d.sha.clone()))
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    let found: BTreeMap<(String, String), Result<Timestamp>> =
        futures_util::stream::iter(wanted.into_iter().map(|(repo, sha)| async move {
            let t = github.commit_time(&repo, &sha).await;
            ((repo, sha), t)
        }))
        .buffer_unordered(LOOKUP_CONCURRENCY)
        .collect()
        .await;
    for d in deploys
        .iter_mut()
        .filter(|d| matches!(d.key, dora::EventKey::Flux { .. }))
    {
        match found.get(&(d.repository.clone(), d.sha.clone())) {
            Some(Ok(t)) => d.commit_time = Some(*t),
            Some(Err(e)) => warnings.push(format!(
                "Kustomization {}: commit {} unknown, recorded without lead time: {e}",
                d.source, d.sha
            )),
            None => {}
        }
    }
}

/// GitHub look-ups in flight at once: well under GitHub's secondary rate limits.
const LOOKUP_CONCURRENCY: usize = 8;

/// Pushes in flight at once: enough to hide latency, few enough for a small Pushgateway.
const PUSH_CONCURRENCY: usize = 8;

/// Ends a run that records nothing: a notice saying why, and the summary's reason.
fn skip(mut report: Report, reason: String) -> Report {
    actions::notice(&format!("nothing recorded: {reason}"));
    report.skipped = Some(reason);
    report
}

/// Gets AWS credentials the first way that applies, masks them, and asks
/// EKS about the cluster.
async fn check_cluster(
    name: &str,
    inputs: &Inputs,
    runner: &Runner,
    http: &Client,
) -> Result<(Cluster, Aws)> {
    let env = |k: &str| runner.env.get(k).cloned();
    let region = aws::region(inputs.aws_region.as_deref(), &env)?;
    let creds = aws_credentials(inputs, runner, http, &region).await?;
    let eks = aws::endpoint("eks", &region, &env)?;
    let aws = Aws::new(region, creds, eks, http.clone());
    let cluster = aws.describe_cluster(name).await?;
    Ok((cluster, aws))
}

/// AWS credentials the first way that applies (`role-to-assume` through
/// STS in `region`, a web-identity file, the environment), masked.
async fn aws_credentials(
    inputs: &Inputs,
    runner: &Runner,
    http: &Client,
    region: &str,
) -> Result<aws::Credentials> {
    let env = |k: &str| runner.env.get(k).cloned();
    let sts = aws::endpoint("sts", region, &env)?;
    let session = match env("GITHUB_RUN_ID") {
        Some(id) if id.bytes().all(|b| b.is_ascii_digit()) => format!("dora-action-{id}"),
        _ => "dora-action".to_string(),
    };
    let creds = match aws::credential_source(inputs.role_to_assume.as_deref(), &env)? {
        CredentialSource::Environment(creds) => creds,
        CredentialSource::GitHubOidc {
            role_arn,
            request_url,
            request_token,
        } => {
            let token =
                aws::github_oidc_token(http, &request_url, &request_token, "sts.amazonaws.com")
                    .await?;
            actions::mask(&token);
            aws::assume_role_with_web_identity(http, &sts, &role_arn, &session, &token).await?
        }
        CredentialSource::WebIdentityFile {
            role_arn,
            token_file,
        } => {
            let token = tokio::fs::read_to_string(&token_file).await.map_err(|e| {
                Error::Aws(
                    format!("AWS_WEB_IDENTITY_TOKEN_FILE {token_file}: cannot read: {e}").into(),
                )
            })?;
            let token = token.trim();
            actions::mask(token);
            aws::assume_role_with_web_identity(http, &sts, &role_arn, &session, token).await?
        }
    };
    for secret in creds.secrets() {
        actions::mask(secret);
    }
    Ok(creds)
}

/// The remote-write client for `target`. SigV4 signs with the credentials
/// of the cluster check when there was one, else gets them the same way.
async fn remote_write(
    target: &RemoteWriteTarget,
    inputs: &Inputs,
    runner: &Runner,
    http: &Client,
    checked: Option<&Aws>,
) -> Result<RemoteWrite> {
    let auth = match &target.auth {
        RemoteAuth::None => remote_write::Auth::None,
        RemoteAuth::Bearer(token) => remote_write::Auth::Bearer(token.clone()),
        RemoteAuth::Basic { username, password } => remote_write::Auth::Basic {
            username: username.clone(),
            password: password.clone(),
        },
        RemoteAuth::SigV4 { region } => {
            let env = |k: &str| runner.env.get(k).cloned();
            let region = match region {
                Some(r) => r.clone(),
                None => aws::region(inputs.aws_region.as_deref(), &env)?,
            };
            let credentials = match checked {
                Some(aws) => aws.credentials().clone(),
                None => aws_credentials(inputs, runner, http, &region).await?,
            };
            remote_write::Auth::SigV4 {
                region,
                credentials,
            }
        }
    };
    Ok(RemoteWrite::new(target.url.clone(), auth, http.clone()))
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
