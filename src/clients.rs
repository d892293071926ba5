//! The clients context: every outside system a run talks to, built once
//! (`connect`) from the inputs and the runner context, so that the rest of a
//! run only uses them, and a test can build one pointing at its fakes.
//!
//! Building it is where the cluster is checked: AWS credentials (the
//! environment, a web-identity file, or GitHub OIDC → STS), EKS
//! DescribeCluster, and, when the cluster is needed, its API server client.
//! A missing or unready cluster ends the run here, before anything else is
//! called or pushed.

use std::sync::Arc;
use std::time::SystemTime;

use reqwest::Client;

use crate::actions;
use crate::aws::{self, Aws, Cluster, CredentialSource};
use crate::github::{self, GitHub};
use crate::http;
use crate::inputs::{Inputs, Mode, QuerySource, RemoteWriteTarget, Runner};
use crate::kubernetes;
use crate::kubernetes::ServiceProxy;
use crate::report::ClusterState;
use crate::retry::Backoff;
use crate::sinks::pushgateway::{Pushgateway, Transport};
use crate::sinks::remote_query::RemoteQuery;
use crate::sinks::remote_write::{self, RemoteWrite};
use crate::{Error, Result};

/// The outside systems of one run.
pub struct Clients {
    pub github: GitHub,
    /// `None` in a dry run, or when there is none to reach.
    pub pushgateway: Option<Pushgateway>,
    /// `None` in a dry run, or without `remote-write-url`.
    pub remote: Option<RemoteWrite>,
    /// The remote-write store's query API, when known (`remote-query-url`).
    pub remote_query: Option<RemoteQuery>,
    /// The cluster's API server, in cluster mode.
    pub kube: Option<kube::Client>,
    /// What the cluster check found (for the summary).
    pub cluster: Option<ClusterState>,
}

/// A run goes on with its clients, or ends because the cluster is not there.
pub enum Connected {
    /// The cluster is missing or not ready: record nothing, say why.
    Skip {
        reason: String,
        cluster: Option<ClusterState>,
    },
    Ready(Box<Clients>),
}

/// Builds the clients of a run in `mode`.
pub async fn connect(inputs: &Inputs, runner: &Runner, mode: Mode) -> Result<Connected> {
    // One client for every outside system: redirects to another origin are
    // not followed, so no credential leaves the URL it was given for.
    let http =
        http::client().map_err(|e| Error::Setup(format!("cannot set up HTTP: {e}").into()))?;
    let mut cluster = None;
    let Reach {
        pushgateway,
        kube,
        aws,
    } = match reach(inputs, runner, &http, mode == Mode::Cluster, &mut cluster).await? {
        Connect::Skip(reason) => return Ok(Connected::Skip { reason, cluster }),
        Connect::To(reach) => *reach,
    };
    let (remote, remote_query) = match inputs.remote_write.as_ref().filter(|_| !inputs.dry_run) {
        Some(target) => {
            let (write, query) = remote_write(target, inputs, runner, &http, aws.as_ref()).await?;
            (Some(write), query)
        }
        None => (None, None),
    };
    // History is what workflows mode is for: worth waiting for (a minute);
    // elsewhere GitHub only adds detail, and a failure degrades to a warning sooner.
    let github = GitHub::new(runner.api_url.clone(), inputs.github_token.clone(), http)
        .with_backoff(if mode == Mode::Workflows {
            Backoff::GITHUB_HISTORY
        } else {
            Backoff::GITHUB
        });
    Ok(Connected::Ready(Box::new(Clients {
        github,
        pushgateway: pushgateway.filter(|_| !inputs.dry_run),
        remote,
        remote_query,
        kube,
        cluster,
    })))
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
async fn reach(
    inputs: &Inputs,
    runner: &Runner,
    http: &Client,
    cluster_mode: bool,
    cluster_state: &mut Option<ClusterState>,
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
                *cluster_state = Some(state);
                return Ok(Connect::Skip(format!(
                    "EKS cluster `{name}` does not exist in {}",
                    aws.region
                )));
            }
            Cluster::NotReady { status } => {
                state.status = status.clone();
                *cluster_state = Some(state);
                return Ok(Connect::Skip(format!(
                    "EKS cluster `{name}` is {status}, not ACTIVE"
                )));
            }
            Cluster::Active {
                endpoint, ca_pem, ..
            } => {
                state.exists = true;
                state.status = "ACTIVE".into();
                *cluster_state = Some(state);
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
                        proxy = Some(Transport::Tunnel(Arc::new(ServiceProxy::new(
                            client.clone(),
                            service,
                            &endpoint,
                        ))));
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
                github::oidc_token(http, &request_url, &request_token, "sts.amazonaws.com").await?;
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

/// The remote-write client for `target`, and the store's query client when
/// its URL is known (same auth). SigV4 signs with the credentials of the
/// cluster check when there was one, else gets them the same way.
async fn remote_write(
    target: &RemoteWriteTarget,
    inputs: &Inputs,
    runner: &Runner,
    http: &Client,
    checked: Option<&Aws>,
) -> Result<(RemoteWrite, Option<RemoteQuery>)> {
    let auth = match target.auth.clone().other_than_sigv4() {
        Ok(auth) => auth,
        Err(region) => {
            let env = |k: &str| runner.env.get(k).cloned();
            let region = match region {
                Some(r) => r,
                None => aws::region(inputs.aws_region.as_deref(), &env)?,
            };
            let credentials = match checked {
                Some(aws) => aws.credentials().clone(),
                None => aws_credentials(inputs, runner, http, &region).await?,
            };
            remote_write::Auth::SigV4(remote_write::SigV4Key {
                region,
                credentials,
            })
        }
    };
    let query = target.query.as_ref().map(|q| {
        let origin = match q.source {
            QuerySource::Input => "`remote-query-url`",
            QuerySource::AmpWorkspace => "derived from the AMP workspace URL in `remote-write-url`",
            QuerySource::WritePath => {
                "derived from `remote-write-url` (the prefix of `/api/v1/write`)"
            }
        };
        RemoteQuery::new(q.url.clone(), auth.clone(), http.clone(), origin)
    });
    Ok((
        RemoteWrite::new(target.url.clone(), auth, http.clone()),
        query,
    ))
}
