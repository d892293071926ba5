//! Wires the pieces together: inputs → payload → core → outside systems →
//! outputs and summary. The only module that decides what happens in which order.

use std::path::PathBuf;

use jiff::Timestamp;
use reqwest::{Client, Url};

use std::collections::BTreeMap;
use std::time::SystemTime;

use crate::actions::{self, RunnerFiles};
use crate::aws::{self, Aws, Cluster, CredentialSource};
use crate::dora;
use crate::github::GitHub;
use crate::inputs::{Inputs, Mode};
use crate::kubernetes;
use crate::payload::{self, Observation, Rules};
use crate::pushgateway::{Pushgateway, Transport};
use crate::report::{ClusterState, Report};
use crate::{Error, Result};

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
    const SECRETS: [&str; 4] = [
        "INPUT_GITHUB-TOKEN",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "ACTIONS_ID_TOKEN_REQUEST_TOKEN",
    ];
    for (name, value) in &vars {
        if SECRETS.contains(&name.as_str()) && !value.trim().is_empty() {
            actions::mask(value.trim());
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
    match written {
        Ok(()) => 0,
        Err(e) => fail(&e, None),
    }
}

/// Reports a failure: one `::error::` line, and a summary line when possible.
fn fail(e: &Error, files: Option<&RunnerFiles>) -> u8 {
    actions::error(&e.to_string());
    if let Some(files) = files.filter(|f| f.summary.is_some()) {
        let _ = files.write_summary(&format!("### DORA metrics: failed\n\n{e}\n"));
    }
    1
}

/// One run: validates what the inputs imply, reads the event, records it.
pub async fn run(inputs: &Inputs, runner: &Runner, now: Timestamp) -> Result<Report> {
    let event_name = runner.event_name.as_deref().unwrap_or("");
    match (inputs.mode, event_name) {
        (Mode::Auto | Mode::Event, "workflow_run" | "deployment_status") => {}
        (Mode::Event, "") => {
            return Err(Error::input(
                "mode",
                "`event` needs GITHUB_EVENT_NAME and GITHUB_EVENT_PATH (set by the runner)",
            ));
        }
        (Mode::Event, other) => {
            return Err(Error::input(
                "mode",
                format!(
                    "`event` records `workflow_run` and `deployment_status` events; this run was triggered by `{other}`"
                ),
            ));
        }
        (Mode::Auto, other) => {
            let other = if other.is_empty() {
                "no event".to_string()
            } else {
                format!("event `{other}`")
            };
            return Err(Error::input(
                "mode",
                format!(
                    "`auto` chose cluster mode for {other}, which this version does not support yet; trigger the workflow on `workflow_run` or `deployment_status`"
                ),
            ));
        }
        (Mode::Workflows | Mode::Cluster, _) => unreachable!("refused by Inputs::parse"),
    }
    if inputs.pushgateway_url.is_none() && inputs.cluster_name.is_none() && !inputs.dry_run {
        return Err(Error::input(
            "pushgateway-url",
            "required when `cluster-name` is empty: set one of them (or `dry-run: true`)",
        ));
    }
    let path = runner.event_path.clone().ok_or_else(|| {
        Error::input(
            "mode",
            "GITHUB_EVENT_PATH is not set: there is no event payload to read",
        )
    })?;
    let payload_error = |message: String| Error::Payload {
        path: path.display().to_string(),
        message,
    };
    let bytes = tokio::fs::read(&path)
        .await
        .map_err(|e| payload_error(format!("cannot read: {e}")))?;
    let environment = inputs
        .environment
        .clone()
        .or_else(|| inputs.cluster_name.clone())
        .unwrap_or_else(|| "default".into());
    let rules = Rules {
        deploy_branches: &inputs.deploy_branches,
        environment: &environment,
    };
    let observation = payload::parse(event_name, &bytes, &rules).map_err(payload_error)?;

    let mut report = Report {
        job: inputs.job.clone(),
        dry_run: inputs.dry_run,
        retention: inputs.retention,
        server_url: runner.server_url.clone(),
        ..Report::default()
    };
    let (mut deploy, warnings) = match observation {
        Observation::NotADeploy { reason } => return Ok(skip(report, reason)),
        Observation::Deploy { deploy, warnings } => (*deploy, warnings),
    };
    report.warnings = warnings;
    if let Some(retention) = inputs.retention
        && deploy.time.as_second() < now.as_second() - retention as i64
    {
        let reason = format!(
            "the event ({}) is older than `retention` and would be pruned at once",
            deploy.time
        );
        if !inputs.dry_run {
            return Ok(skip(report, reason));
        }
        // A dry run still shows what the event looks like (the README's example gets older every day).
        report
            .warnings
            .push(format!("{reason}: a real run records nothing"));
    }

    let http = Client::builder()
        .user_agent(concat!("dora-action/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| Error::Pushgateway(format!("cannot set up HTTP: {e}")))?;
    // The cluster is checked before anything else is called or pushed: a
    // missing or unready cluster ends the run here, with no further call.
    let mut proxy = None;
    if let Some(name) = &inputs.cluster_name {
        let (cluster, aws) = check_cluster(name, inputs, runner, &http).await?;
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
                return Ok(skip(
                    report,
                    format!("EKS cluster `{name}` does not exist in {}", aws.region),
                ));
            }
            Cluster::NotReady { status } => {
                state.status = status.clone();
                report.cluster = Some(state);
                return Ok(skip(
                    report,
                    format!("EKS cluster `{name}` is {status}, not ACTIVE"),
                ));
            }
            Cluster::Active {
                endpoint, ca_pem, ..
            } => {
                state.exists = true;
                state.status = "ACTIVE".into();
                report.cluster = Some(state);
                if inputs.pushgateway_url.is_none() {
                    let token =
                        aws::eks_token(aws.credentials(), &aws.region, name, SystemTime::now())?;
                    actions::mask(&token);
                    proxy = Some(Transport::ServiceProxy {
                        client: kubernetes::client(&endpoint, &ca_pem, &token)?,
                        base: Transport::proxy_path(&inputs.pushgateway_service),
                        endpoint: endpoint.to_string(),
                    });
                }
            }
        }
    }
    let transport = match (&inputs.pushgateway_url, proxy) {
        (Some(url), _) => Some(Pushgateway::new(url.clone(), http.clone())),
        (None, Some(proxy)) => Some(Pushgateway::through(proxy)),
        (None, None) => None,
    };
    let pushgateway = transport.filter(|_| !inputs.dry_run);
    report.destination = pushgateway.as_ref().map(Pushgateway::display_url);

    if deploy.commit_time.is_none() && event_name == "deployment_status" {
        let github = GitHub::new(
            runner.api_url.clone(),
            inputs.github_token.clone(),
            http.clone(),
        );
        match github.commit_time(&deploy.repository, &deploy.sha).await {
            Ok(t) => deploy.commit_time = Some(t),
            Err(e) => report.warnings.push(format!(
                "commit time of {} unknown, recorded without lead time: {e}",
                deploy.sha
            )),
        }
        report.github_calls = github.calls();
    }
    if deploy.has_future_commit() {
        report.warnings.push(format!(
            "commit {} is dated after the deployment finished: recorded without lead time",
            deploy.sha
        ));
    }
    for w in &report.warnings {
        actions::warning(w);
    }

    let group = dora::deploy_group(&deploy);
    report.recorded = vec![deploy];
    match pushgateway {
        None => {
            let header = group
                .grouping
                .iter()
                .fold(format!("# group: job={}", inputs.job), |h, (k, v)| {
                    format!("{h} {k}={v:?}")
                });
            let text = format!("{header}\n{}", group.exposition);
            println!("{text}");
            report.exposition = Some(text);
        }
        Some(pushgateway) => match deliver(&pushgateway, inputs, &group, now).await {
            Ok(pruned) => report.pruned = pruned,
            Err(e) if e.is_delivery_failure() && !inputs.fail_on_error => {
                actions::warning(&format!("{e} (not failing: `fail-on-error` is false)"));
                report.failure = Some(e.to_string());
            }
            Err(e) => return Err(e),
        },
    }
    Ok(report)
}

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
    let sts = aws::endpoint("sts", &region, &env)?;
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
                Error::input(
                    "cluster-name",
                    format!("AWS_WEB_IDENTITY_TOKEN_FILE {token_file}: cannot read: {e}"),
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
    let eks = aws::endpoint("eks", &region, &env)?;
    let aws = Aws::new(region, creds, eks, http.clone());
    let cluster = aws.describe_cluster(name).await?;
    Ok((cluster, aws))
}

/// Reads the stored groups, prunes this job's expired ones, then pushes the
/// event's group with one PUT. Returns how many groups were pruned.
///
/// The Pushgateway keeps an empty group behind after rejecting a push (400);
/// if the group did not exist before, that shell is deleted again, so a
/// failed run leaves no trace of the event.
async fn deliver(
    pushgateway: &Pushgateway,
    inputs: &Inputs,
    group: &dora::Group,
    now: Timestamp,
) -> Result<usize> {
    let stored = pushgateway.groups().await?;
    let mut pruned = 0;
    if let Some(retention) = inputs.retention {
        for expired in dora::expired(&stored, &inputs.job, now, retention) {
            pushgateway.delete(&expired.labels).await?;
            pruned += 1;
        }
    }
    let labels = group.labels(&inputs.job);
    let existed = stored.iter().any(|g| g.labels == labels);
    if let Err(e) = pushgateway
        .put(&inputs.job, &group.grouping, &group.exposition)
        .await
    {
        if !existed && pushgateway.delete(&labels).await.is_err() {
            tracing::warn!("could not remove the empty group a failed push may have left");
        }
        return Err(e);
    }
    Ok(pruned)
}
