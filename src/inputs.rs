//! The action's inputs, read exactly as GitHub passes them to a container
//! action (`INPUT_` + the name upper-cased, hyphens kept), trimmed, empty =
//! unset; parsed and validated once, from an iterator of pairs so that every
//! rule is tested with literal values and no process environment.
//!
//! Two stages: [`Raw`] is what envy reads (strings, nothing checked); then
//! [`Inputs::parse`] turns it into typed values or one error naming the input
//! and the value. Defaults live here as well as in `action.yml`, because a
//! local run (or `docker run`) gets no defaults from the runner.

use reqwest::Url;
use serde::{Deserialize, Serialize};

use crate::{Error, Result, duration};

/// The inputs as strings, one field per input declared in `action.yml`.
///
/// `Serialize` is derived so the drift test can list the field names and
/// compare them with `action.yml` without a hand-kept copy.
#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct Raw {
    pub mode: Option<String>,
    pub cluster_name: Option<String>,
    pub aws_region: Option<String>,
    pub role_to_assume: Option<String>,
    pub pushgateway_url: Option<String>,
    pub pushgateway_service: Option<String>,
    pub job: Option<String>,
    pub environment: Option<String>,
    pub deploy_branches: Option<String>,
    pub workflows: Option<String>,
    pub lookback: Option<String>,
    pub kustomizations: Option<String>,
    pub canary_namespaces: Option<String>,
    pub retention: Option<String>,
    pub github_token: Option<String>,
    pub dry_run: Option<String>,
    pub fail_on_error: Option<String>,
    pub remote_write_url: Option<String>,
    pub remote_write_auth: Option<String>,
    pub remote_write_bearer_token: Option<String>,
    pub remote_write_username: Option<String>,
    pub remote_write_password: Option<String>,
}

impl Raw {
    /// Reads the `INPUT_*` pairs of an environment: values trimmed, empty
    /// values dropped (GitHub passes an unset optional input as empty).
    pub fn from_env<I, K, V>(vars: I) -> Result<Raw>
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<String>,
        V: Into<String>,
    {
        let pairs = vars.into_iter().filter_map(|(k, v)| {
            let v: String = v.into();
            let v = v.trim();
            (!v.is_empty()).then(|| (k.into(), v.to_string()))
        });
        envy::prefixed("INPUT_")
            .from_iter(pairs)
            .map_err(|e| Error::input("*", e.to_string()))
    }
}

/// What the action does this run (`mode` input).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Decide from the event: `workflow_run`/`deployment_status` → event, `workflows` set → workflows, else cluster.
    Auto,
    /// Record the run or deployment status in the event payload.
    Event,
    /// Read recent completed runs of the named workflows from the REST API.
    Workflows,
    /// Read Flux Kustomizations and Flagger Canaries.
    Cluster,
}

/// A Kubernetes Service as `namespace/name[:port]` (`pushgateway-service`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceRef {
    pub namespace: String,
    pub name: String,
    /// Port number or name; `None` lets the API server pick the service's only port.
    pub port: Option<String>,
}

/// Which Kustomizations to read (`kustomizations` input).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kustomizations {
    /// `*`: every namespace.
    All,
    /// `namespace/name` pairs.
    Named(Vec<(String, String)>),
}

/// Which branches count as deploy branches (`deploy-branches`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Branches {
    /// Unset: the repository's default branch, read from the payload.
    DefaultBranch,
    /// Names or glob patterns (`*` matches any run of characters; `*` alone matches all).
    Patterns(Vec<String>),
}

impl Branches {
    /// Whether `branch` is a deploy branch, given the repository's default branch.
    pub fn matches(&self, branch: &str, default_branch: Option<&str>) -> bool {
        match self {
            Branches::DefaultBranch => default_branch == Some(branch),
            Branches::Patterns(patterns) => patterns.iter().any(|p| glob_match(p, branch)),
        }
    }
}

/// Glob match where `*` matches any run of characters (including `/`), as
/// GitHub's own branch filters read for the common cases (`release/*`, `*`).
fn glob_match(pattern: &str, text: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    if parts.len() == 1 {
        return pattern == text;
    }
    let (first, last) = (parts[0], parts[parts.len() - 1]);
    if !text.starts_with(first) || text.len() < first.len() + last.len() || !text.ends_with(last) {
        return false;
    }
    let mut rest = &text[first.len()..text.len() - last.len()];
    for middle in &parts[1..parts.len() - 1] {
        match rest.find(middle) {
            Some(i) => rest = &rest[i + middle.len()..],
            None => return false,
        }
    }
    true
}

/// Where remote-write goes and how it authenticates (inputs `remote-write-*`).
#[derive(Debug, Clone)]
pub struct RemoteWriteTarget {
    pub url: Url,
    pub auth: RemoteAuth,
}

/// `remote-write-auth`, resolved: `auto` has become one of these.
#[derive(Clone, PartialEq, Eq)]
pub enum RemoteAuth {
    None,
    Bearer(String),
    Basic {
        username: String,
        password: String,
    },
    /// AWS SigV4 (service `aps`) with the run's AWS credentials; the region
    /// from an Amazon Managed Service for Prometheus URL, else `aws-region`.
    SigV4 {
        region: Option<String>,
    },
}

impl std::fmt::Debug for RemoteAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RemoteAuth::None => f.write_str("None"),
            RemoteAuth::Bearer(_) => f.write_str("Bearer(***)"),
            RemoteAuth::Basic { username, .. } => write!(f, "Basic({username}, ***)"),
            RemoteAuth::SigV4 { region } => write!(f, "SigV4({region:?})"),
        }
    }
}

/// Validated inputs. Built only by [`Inputs::parse`].
#[derive(Debug, Clone)]
pub struct Inputs {
    pub mode: Mode,
    pub cluster_name: Option<String>,
    pub aws_region: Option<String>,
    pub role_to_assume: Option<String>,
    pub pushgateway_url: Option<Url>,
    /// `None`: `pushgateway-service: none`, no in-cluster Pushgateway.
    pub pushgateway_service: Option<ServiceRef>,
    pub job: String,
    pub environment: Option<String>,
    pub deploy_branches: Branches,
    pub workflows: Vec<String>,
    /// Seconds of history `workflows` mode reads.
    pub lookback: u64,
    pub kustomizations: Kustomizations,
    /// Empty = every namespace.
    pub canary_namespaces: Vec<String>,
    /// Seconds after which an event's group is pruned; `None` = keep forever.
    pub retention: Option<u64>,
    pub github_token: Option<String>,
    pub dry_run: bool,
    pub fail_on_error: bool,
    pub remote_write: Option<RemoteWriteTarget>,
}

/// Input defaults, the same as `action.yml` declares (a test checks they agree).
pub mod defaults {
    pub const MODE: &str = "auto";
    pub const PUSHGATEWAY_SERVICE: &str = "observability/pushgateway:9091";
    pub const JOB: &str = "dora";
    pub const LOOKBACK: &str = "30d";
    pub const KUSTOMIZATIONS: &str = "flux-system/applications";
    pub const RETENTION: &str = "90d";
    pub const DRY_RUN: &str = "false";
    pub const FAIL_ON_ERROR: &str = "true";
    pub const REMOTE_WRITE_AUTH: &str = "auto";
}

/// One input of `action.yml`: its name, the default the code applies when it
/// is unset, and a one-line summary for `--help`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InputSpec {
    pub name: &'static str,
    /// `None`: unset means something (or, for `github-token`, the runner fills it in).
    pub default: Option<&'static str>,
    pub summary: &'static str,
}

const fn input(
    name: &'static str,
    default: Option<&'static str>,
    summary: &'static str,
) -> InputSpec {
    InputSpec {
        name,
        default,
        summary,
    }
}

/// Every input, in `action.yml`'s order: the one list `--help` prints and
/// the drift test holds against `action.yml` (names and defaults) and
/// against [`Raw`], the struct the parser reads (a unit test checks they
/// name the same inputs). A new input left out of it fails those tests.
pub const INPUTS: &[InputSpec] = &[
    input(
        "mode",
        Some(defaults::MODE),
        "event | workflows | cluster | auto",
    ),
    input(
        "cluster-name",
        None,
        "EKS cluster to check first and reach the Pushgateway through",
    ),
    input(
        "aws-region",
        None,
        "AWS region (default AWS_REGION, then AWS_DEFAULT_REGION)",
    ),
    input(
        "role-to-assume",
        None,
        "IAM role ARN to assume with the job's GitHub OIDC token",
    ),
    input(
        "pushgateway-url",
        None,
        "Pushgateway base URL (else the in-cluster service)",
    ),
    input(
        "pushgateway-service",
        Some(defaults::PUSHGATEWAY_SERVICE),
        "in-cluster Pushgateway as namespace/name:port; `none`: no Pushgateway",
    ),
    input(
        "job",
        Some(defaults::JOB),
        "Pushgateway `job` label of every group written and pruned",
    ),
    input(
        "environment",
        None,
        "`environment` label (default the cluster name, else `default`)",
    ),
    input(
        "deploy-branches",
        None,
        "branches whose runs are deployments (default the default branch)",
    ),
    input(
        "workflows",
        None,
        "workflow files or ids whose runs `workflows` mode records",
    ),
    input(
        "lookback",
        Some(defaults::LOOKBACK),
        "how far back `workflows` mode reads, e.g. 30d, 12h",
    ),
    input(
        "kustomizations",
        Some(defaults::KUSTOMIZATIONS),
        "Flux Kustomizations as namespace/name; `*` = all",
    ),
    input(
        "canary-namespaces",
        None,
        "namespaces whose Flagger Canaries are read (default all)",
    ),
    input(
        "retention",
        Some(defaults::RETENTION),
        "prune this job's groups older than this; `0` keeps all",
    ),
    input(
        "github-token",
        None,
        "token for GitHub REST (action.yml: the job's token)",
    ),
    input(
        "dry-run",
        Some(defaults::DRY_RUN),
        "`true`: push nothing, print the exposition",
    ),
    input(
        "fail-on-error",
        Some(defaults::FAIL_ON_ERROR),
        "`false`: delivery failures are warnings",
    ),
    input(
        "remote-write-url",
        None,
        "Prometheus remote-write endpoint of a durable store",
    ),
    input(
        "remote-write-auth",
        Some(defaults::REMOTE_WRITE_AUTH),
        "auto | none | bearer | basic | sigv4",
    ),
    input(
        "remote-write-bearer-token",
        None,
        "bearer token for remote-write (masked)",
    ),
    input(
        "remote-write-username",
        None,
        "basic-auth username for remote-write",
    ),
    input(
        "remote-write-password",
        None,
        "basic-auth password for remote-write (masked)",
    ),
];

/// The input list of `--help`, one line per entry of [`INPUTS`]: `INPUT_`
/// variable, default, summary.
pub fn help_inputs() -> String {
    let width = INPUTS.iter().map(|i| i.name.len()).max().unwrap_or(0);
    INPUTS
        .iter()
        .map(|i| {
            let default = i
                .default
                .map(|d| format!(" (default {d})"))
                .unwrap_or_default();
            format!("  {:width$}  {}{default}\n", i.name, i.summary)
        })
        .collect()
}

impl Inputs {
    /// Reads and validates the inputs from environment pairs.
    pub fn from_env<I, K, V>(vars: I) -> Result<Inputs>
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<String>,
        V: Into<String>,
    {
        Inputs::parse(Raw::from_env(vars)?)
    }

    /// Validates every input, then refuses the ones this version cannot act
    /// on yet, so a user never has an input silently ignored.
    pub fn parse(raw: Raw) -> Result<Inputs> {
        let or = |v: &Option<String>, d: &str| v.clone().unwrap_or_else(|| d.to_string());
        let inputs = Inputs {
            mode: parse_mode(&or(&raw.mode, defaults::MODE))?,
            cluster_name: raw
                .cluster_name
                .map(|v| parse_cluster_name(&v))
                .transpose()?,
            aws_region: raw.aws_region.map(|v| parse_region(&v)).transpose()?,
            role_to_assume: raw.role_to_assume.map(|v| parse_role_arn(&v)).transpose()?,
            pushgateway_url: raw
                .pushgateway_url
                .map(|v| parse_url("pushgateway-url", &v))
                .transpose()?,
            pushgateway_service: match or(&raw.pushgateway_service, defaults::PUSHGATEWAY_SERVICE)
                .as_str()
            {
                "none" => None,
                v => Some(parse_service(v)?),
            },
            job: parse_job(&or(&raw.job, defaults::JOB))?,
            environment: raw
                .environment
                .map(|v| parse_label_value("environment", v))
                .transpose()?,
            deploy_branches: match raw.deploy_branches {
                None => Branches::DefaultBranch,
                Some(v) => Branches::Patterns(
                    parse_list("deploy-branches", &v)?
                        .into_iter()
                        .map(|p| parse_label_value("deploy-branches", p))
                        .collect::<Result<_>>()?,
                ),
            },
            workflows: match raw.workflows {
                None => Vec::new(),
                Some(v) => parse_workflows(&v)?,
            },
            lookback: parse_duration("lookback", &or(&raw.lookback, defaults::LOOKBACK), false)?,
            kustomizations: parse_kustomizations(&or(
                &raw.kustomizations,
                defaults::KUSTOMIZATIONS,
            ))?,
            canary_namespaces: match raw.canary_namespaces {
                None => Vec::new(),
                Some(v) => parse_namespaces(&v)?,
            },
            retention: match parse_duration(
                "retention",
                &or(&raw.retention, defaults::RETENTION),
                true,
            )? {
                0 => None,
                s => Some(s),
            },
            github_token: raw
                .github_token
                .map(|v| parse_token("github-token", v))
                .transpose()?,
            dry_run: parse_bool("dry-run", &or(&raw.dry_run, defaults::DRY_RUN))?,
            fail_on_error: parse_bool(
                "fail-on-error",
                &or(&raw.fail_on_error, defaults::FAIL_ON_ERROR),
            )?,
            remote_write: parse_remote_write(
                raw.remote_write_url,
                &or(&raw.remote_write_auth, defaults::REMOTE_WRITE_AUTH),
                raw.remote_write_bearer_token,
                raw.remote_write_username,
                raw.remote_write_password,
            )?,
        };
        inputs.check_supported()?;
        Ok(inputs)
    }

    /// Whether events go to a Pushgateway (a URL, or the in-cluster service),
    /// which `retention` prunes; otherwise only to remote-write.
    pub fn uses_pushgateway(&self) -> bool {
        self.pushgateway_url.is_some()
            || (self.cluster_name.is_some() && self.pushgateway_service.is_some())
            || self.remote_write.is_none()
    }

    /// Inputs that only matter together with another are refused alone:
    /// an input is never silently ignored.
    fn check_supported(&self) -> Result<()> {
        // AWS inputs without a cluster or SigV4 would do nothing: say so rather than ignore them.
        let sigv4 = matches!(
            self.remote_write.as_ref().map(|r| &r.auth),
            Some(RemoteAuth::SigV4 { .. })
        );
        if self.cluster_name.is_none() && !sigv4 {
            for (name, set) in [
                ("aws-region", self.aws_region.is_some()),
                ("role-to-assume", self.role_to_assume.is_some()),
            ] {
                if set {
                    return Err(Error::input(
                        name,
                        "is only used with `cluster-name` or SigV4 remote-write, neither of which is set",
                    ));
                }
            }
        }
        if self.pushgateway_service.is_none()
            && self.pushgateway_url.is_none()
            && self.remote_write.is_none()
        {
            return Err(Error::input(
                "pushgateway-service",
                "`none` leaves nowhere to write: set `remote-write-url` (or a Pushgateway)",
            ));
        }
        Ok(())
    }
}

fn invalid(name: &str, value: &str, why: &str) -> Error {
    Error::input(name, format!("invalid value `{value}`: {why}"))
}

/// The `remote-write-*` inputs. `auto` picks the auth from what is set:
/// a bearer token, a username (basic auth), an Amazon Managed Service for
/// Prometheus URL (SigV4), else none. Credentials that the chosen auth would
/// not use are refused, never silently ignored.
fn parse_remote_write(
    url: Option<String>,
    auth: &str,
    token: Option<String>,
    username: Option<String>,
    password: Option<String>,
) -> Result<Option<RemoteWriteTarget>> {
    let Some(v) = url else {
        for (name, set) in [
            ("remote-write-bearer-token", token.is_some()),
            ("remote-write-username", username.is_some()),
            ("remote-write-password", password.is_some()),
            ("remote-write-auth", auth != defaults::REMOTE_WRITE_AUTH),
        ] {
            if set {
                return Err(Error::input(
                    name,
                    "is only used with `remote-write-url`, which is not set",
                ));
            }
        }
        return Ok(None);
    };
    // Credentials in the URL are refused, and never shown.
    if userinfo(&v).is_some() {
        return Err(invalid(
            "remote-write-url",
            &without_userinfo(&v),
            "put credentials in `remote-write-username`/`remote-write-password`, not in the URL",
        ));
    }
    let url = parse_url("remote-write-url", &v)?;
    // https://aps-workspaces.<region>.amazonaws.com/workspaces/<id>/api/v1/remote_write
    let amp_region = url
        .host_str()
        .and_then(|h| h.strip_prefix("aps-workspaces."))
        .and_then(|h| h.strip_suffix(".amazonaws.com"))
        .filter(|r| !r.is_empty() && !r.contains('.'))
        .map(String::from);
    let kind = match auth {
        "auto" => match (&token, &username, &amp_region) {
            (Some(_), _, _) => "bearer",
            (None, Some(_), _) => "basic",
            (None, None, Some(_)) => "sigv4",
            (None, None, None) => "none",
        },
        "none" | "bearer" | "basic" | "sigv4" => auth,
        other => {
            return Err(invalid(
                "remote-write-auth",
                other,
                "expected `auto`, `none`, `bearer`, `basic` or `sigv4`",
            ));
        }
    };
    let unused = |name: &str| {
        Error::input(
            name,
            format!("is not used with `remote-write-auth: {kind}`: remove it or change the auth"),
        )
    };
    let auth = match kind {
        "bearer" => {
            if username.is_some() {
                return Err(unused("remote-write-username"));
            }
            if password.is_some() {
                return Err(unused("remote-write-password"));
            }
            RemoteAuth::Bearer(parse_token(
                "remote-write-bearer-token",
                token.ok_or_else(|| {
                    Error::input(
                        "remote-write-bearer-token",
                        "required with `remote-write-auth: bearer`",
                    )
                })?,
            )?)
        }
        "basic" => {
            if token.is_some() {
                return Err(unused("remote-write-bearer-token"));
            }
            let username = username.ok_or_else(|| {
                Error::input(
                    "remote-write-username",
                    "required with `remote-write-auth: basic`",
                )
            })?;
            let password = password.ok_or_else(|| {
                Error::input(
                    "remote-write-password",
                    "required with basic auth (`remote-write-username` is set)",
                )
            })?;
            // Basic auth joins them with `:`: a user name with one would split elsewhere.
            if username.contains(':') || username.chars().any(crate::actions::is_unsafe_char) {
                return Err(invalid(
                    "remote-write-username",
                    &crate::actions::one_line(&username),
                    "a basic-auth user name cannot hold `:`, control characters or line breaks",
                ));
            }
            if password.chars().any(crate::actions::is_unsafe_char) {
                return Err(Error::input(
                    "remote-write-password",
                    "holds a control character or a line break (the value is not shown: it is a secret)",
                ));
            }
            RemoteAuth::Basic { username, password }
        }
        _ => {
            for (name, set) in [
                ("remote-write-bearer-token", token.is_some()),
                ("remote-write-username", username.is_some()),
                ("remote-write-password", password.is_some()),
            ] {
                if set {
                    return Err(unused(name));
                }
            }
            if kind == "sigv4" {
                RemoteAuth::SigV4 { region: amp_region }
            } else {
                RemoteAuth::None
            }
        }
    };
    Ok(Some(RemoteWriteTarget { url, auth }))
}

fn parse_mode(v: &str) -> Result<Mode> {
    match v {
        "auto" => Ok(Mode::Auto),
        "event" => Ok(Mode::Event),
        "workflows" => Ok(Mode::Workflows),
        "cluster" => Ok(Mode::Cluster),
        _ => Err(invalid(
            "mode",
            v,
            "expected one of auto, event, workflows, cluster",
        )),
    }
}

/// GitHub's boolean spellings (the YAML 1.2 core schema, as `core.getBooleanInput` reads them).
fn parse_bool(name: &str, v: &str) -> Result<bool> {
    match v {
        "true" | "True" | "TRUE" => Ok(true),
        "false" | "False" | "FALSE" => Ok(false),
        _ => Err(invalid(name, v, "expected true or false")),
    }
}

/// Longest `lookback` or `retention`: ten years. Far beyond any real
/// history or retention, and far from where date arithmetic overflows
/// (`99999999999d` would otherwise ask GitHub for runs since year -9999).
pub const MAX_DURATION: u64 = 3_653 * 86_400;

fn parse_duration(name: &str, v: &str, zero_ok: bool) -> Result<u64> {
    match duration::parse(v) {
        Ok(0) if !zero_ok => Err(invalid(name, v, "must be longer than zero")),
        Ok(s) if s > MAX_DURATION => {
            Err(invalid(name, v, "at most 10 years (`3653d`) is supported"))
        }
        Ok(s) => Ok(s),
        Err(why) => Err(invalid(name, v, &why)),
    }
}

/// `workflows`: workflow file names (`deploy.yml`) or numeric workflow ids.
/// Each becomes one path segment of a GitHub API URL, so anything that could
/// change the path (`..`, `/`, `?`, `#`, `%`, spaces, control characters) is
/// refused here rather than sent.
fn parse_workflows(v: &str) -> Result<Vec<String>> {
    let items = parse_list("workflows", v)?;
    for item in &items {
        let is_id = item.bytes().all(|b| b.is_ascii_digit()) && item.len() <= 20;
        let is_file = item.len() <= 255
            && (item.ends_with(".yml") || item.ends_with(".yaml"))
            && !item.starts_with('.')
            && item
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
        if !is_id && !is_file {
            return Err(invalid(
                "workflows",
                item,
                "expected a workflow file name such as `deploy.yml` (letters, digits, `-`, `_`, `.`; no path) or a numeric workflow id",
            ));
        }
    }
    Ok(items)
}

/// A token (`github-token`, `remote-write-bearer-token`): visible ASCII only,
/// as an HTTP header carries it. The message never shows the value.
fn parse_token(name: &str, v: String) -> Result<String> {
    if !v.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(Error::input(
            name,
            "holds a space, a line break or a character a token cannot have (the value is not shown: it is a secret)",
        ));
    }
    Ok(v)
}

/// The inputs that hold a URL. Their credentials are masked before any
/// input is validated ([`url_credentials`]), and no message shows them
/// ([`without_userinfo`]).
pub const URL_INPUTS: [&str; 2] = ["pushgateway-url", "remote-write-url"];

/// The secret part of a URL as typed, found without parsing it (an invalid
/// URL still gets its password masked): in the user info between `://` and
/// the last `@` of the authority, the password, or a lone user name (a token
/// is often put there); as typed and percent-decoded.
pub fn url_credentials(v: &str) -> Vec<String> {
    let Some(userinfo) = userinfo(v) else {
        return Vec::new();
    };
    let mut parts = vec![match userinfo.split_once(':') {
        Some((_, password)) => password.to_string(),
        None => userinfo.to_string(),
    }];
    let decoded: Vec<String> = parts
        .iter()
        .map(|p| {
            percent_encoding::percent_decode_str(p)
                .decode_utf8_lossy()
                .into_owned()
        })
        .collect();
    parts.extend(decoded);
    parts.retain(|p| !p.is_empty());
    parts.sort();
    parts.dedup();
    parts
}

/// The user info of a URL as typed (`user:pw` of `http://user:pw@host/`).
fn userinfo(v: &str) -> Option<&str> {
    let start = v.find("://")? + 3;
    let rest = &v[start..];
    let authority = &rest[..rest.find(['/', '?', '#']).unwrap_or(rest.len())];
    authority.rfind('@').map(|at| &authority[..at])
}

/// A URL as typed, for a message: its user info replaced by `***`.
fn without_userinfo(v: &str) -> String {
    match userinfo(v) {
        Some(info) => {
            let start = v.find("://").map_or(0, |i| i + 3);
            format!("{}***{}", &v[..start], &v[start + info.len()..])
        }
        None => v.to_string(),
    }
}

/// Characters a URL may hold as typed (RFC 3986: unreserved, reserved, and
/// `%` of a percent-encoding): a space or a quote is a typo the URL parser
/// would silently encode into another path.
fn is_url_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || "-._~:/?#[]@!$&'()*+,;=%".contains(c)
}

fn parse_url(name: &str, v: &str) -> Result<Url> {
    let shown = without_userinfo(v);
    let shown = shown.as_str();
    if let Some(bad) = v.chars().find(|c| !is_url_char(*c)) {
        return Err(invalid(
            name,
            shown,
            &format!(
                "{:?} is not allowed in a URL (percent-encode it, e.g. a space as %20)",
                bad
            ),
        ));
    }
    let bytes = v.as_bytes();
    let bad_percent = bytes.iter().enumerate().any(|(i, b)| {
        *b == b'%'
            && !(bytes.get(i + 1).is_some_and(u8::is_ascii_hexdigit)
                && bytes.get(i + 2).is_some_and(u8::is_ascii_hexdigit))
    });
    if bad_percent {
        return Err(invalid(
            name,
            shown,
            "a `%` must start a percent-encoding such as %20",
        ));
    }
    let url = Url::parse(v).map_err(|e| invalid(name, shown, &format!("not a URL ({e})")))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(invalid(name, shown, "expected an http:// or https:// URL"));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(invalid(name, shown, "the URL has no host"));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(invalid(
            name,
            shown,
            "the URL must not have a query or fragment",
        ));
    }
    Ok(url)
}

/// A DNS-1123 label, what Kubernetes allows for namespaces and service names.
fn is_dns_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

/// A DNS-1123 subdomain, what Kubernetes allows for most object names.
fn is_dns_subdomain(s: &str) -> bool {
    s.len() <= 253 && s.split('.').all(is_dns_label)
}

fn parse_service(v: &str) -> Result<ServiceRef> {
    let name = "pushgateway-service";
    let why = "expected `namespace/service:port`, e.g. `observability/pushgateway:9091`";
    let (namespace, rest) = v.split_once('/').ok_or_else(|| invalid(name, v, why))?;
    let (service, port) = match rest.split_once(':') {
        Some((s, p)) => (s, Some(p)),
        None => (rest, None),
    };
    // A port number, or a port name (IANA service name: at most 15 characters, at least one letter).
    let port_ok = |p: &str| {
        p.parse::<u16>().is_ok_and(|n| n > 0)
            || (is_dns_label(p) && p.len() <= 15 && p.bytes().any(|b| b.is_ascii_lowercase()))
    };
    if !is_dns_label(namespace) || !is_dns_label(service) || !port.is_none_or(port_ok) {
        return Err(invalid(name, v, why));
    }
    Ok(ServiceRef {
        namespace: namespace.into(),
        name: service.into(),
        port: port.map(String::from),
    })
}

fn parse_job(v: &str) -> Result<String> {
    // Pushgateway accepts any job name; `/` is carried with its @base64 form.
    parse_label_value("job", v.to_string())
}

/// Longest label value an input may set (`job`, `environment`): a label is
/// a name, and every sample and summary line carries it.
const MAX_LABEL: usize = 256;

fn parse_label_value(name: &str, v: String) -> Result<String> {
    if v.chars().any(crate::actions::is_unsafe_char) {
        return Err(invalid(
            name,
            &crate::actions::one_line(&v),
            "control characters and line breaks are not allowed",
        ));
    }
    if v.chars().count() > MAX_LABEL {
        return Err(invalid(
            name,
            &v,
            &format!("longer than {MAX_LABEL} characters"),
        ));
    }
    Ok(v)
}

/// EKS cluster names: 1–100 characters, alphanumerics, `-` and `_`, starting alphanumeric.
fn parse_cluster_name(v: &str) -> Result<String> {
    let ok = v.len() <= 100
        && v.starts_with(|c: char| c.is_ascii_alphanumeric())
        && v.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if !ok {
        return Err(invalid(
            "cluster-name",
            v,
            "an EKS cluster name has 1–100 letters, digits, `-` or `_`",
        ));
    }
    Ok(v.to_string())
}

fn parse_region(v: &str) -> Result<String> {
    // `eu-west-1`, `us-gov-west-1`: it becomes part of AWS host names.
    let parts: Vec<&str> = v.split('-').collect();
    let ok = parts.len() >= 3
        && v.len() <= 32
        && parts.iter().all(|p| !p.is_empty())
        && parts[0].bytes().all(|b| b.is_ascii_lowercase())
        && parts[parts.len() - 1].bytes().all(|b| b.is_ascii_digit())
        && v.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if !ok {
        return Err(invalid(
            "aws-region",
            v,
            "expected an AWS region such as `eu-west-1`",
        ));
    }
    Ok(v.to_string())
}

fn parse_role_arn(v: &str) -> Result<String> {
    let parts: Vec<&str> = v.splitn(6, ':').collect();
    // IAM role names and paths: letters, digits and `+=,.@_-/`.
    let ok = parts.len() == 6
        && parts[0] == "arn"
        && !parts[1].is_empty()
        && parts[1]
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b == b'-')
        && parts[2] == "iam"
        && parts[3].is_empty()
        && parts[4].len() == 12
        && parts[4].bytes().all(|b| b.is_ascii_digit())
        && parts[5].starts_with("role/")
        && parts[5].len() > "role/".len()
        && parts[5].len() <= 2_048
        && !parts[5].ends_with('/')
        && parts[5]
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"+=,.@_-/".contains(&b));
    if !ok {
        return Err(invalid(
            "role-to-assume",
            v,
            "expected an IAM role ARN such as `arn:aws:iam::123456789012:role/dora`",
        ));
    }
    Ok(v.to_string())
}

/// A comma- or newline-separated list; blanks between separators are ignored.
fn parse_list(name: &str, v: &str) -> Result<Vec<String>> {
    let items: Vec<String> = v
        .split([',', '\n'])
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(String::from)
        .collect();
    if items.is_empty() {
        return Err(invalid(name, v, "the list is empty"));
    }
    Ok(items)
}

fn parse_kustomizations(v: &str) -> Result<Kustomizations> {
    let name = "kustomizations";
    let items = parse_list(name, v)?;
    if items.iter().any(|i| i == "*") {
        if items.len() > 1 {
            return Err(invalid(
                name,
                v,
                "`*` already means all; list nothing beside it",
            ));
        }
        return Ok(Kustomizations::All);
    }
    items
        .iter()
        .map(|item| match item.split_once('/') {
            Some((ns, n)) if is_dns_label(ns) && is_dns_subdomain(n) => {
                Ok((ns.to_string(), n.to_string()))
            }
            _ => Err(invalid(
                name,
                item,
                "expected `namespace/name` (or `*` for all)",
            )),
        })
        .collect::<Result<_>>()
        .map(Kustomizations::Named)
}

fn parse_namespaces(v: &str) -> Result<Vec<String>> {
    let items = parse_list("canary-namespaces", v)?;
    match items.iter().find(|ns| !is_dns_label(ns)) {
        Some(bad) => Err(invalid(
            "canary-namespaces",
            bad,
            "not a Kubernetes namespace name",
        )),
        None => Ok(items),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(pairs: &[(&str, &str)]) -> Result<Inputs> {
        Inputs::from_env(pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())))
    }

    fn error(pairs: &[(&str, &str)]) -> String {
        parse(pairs)
            .expect_err("expected an input error")
            .to_string()
    }

    #[test]
    fn defaults_apply_when_nothing_is_set() {
        let i = parse(&[]).unwrap();
        assert_eq!(i.mode, Mode::Auto);
        assert_eq!(i.job, "dora");
        assert_eq!(i.pushgateway_url, None);
        assert_eq!(
            i.pushgateway_service,
            Some(ServiceRef {
                namespace: "observability".into(),
                name: "pushgateway".into(),
                port: Some("9091".into())
            })
        );
        assert_eq!(i.deploy_branches, Branches::DefaultBranch);
        assert_eq!(i.lookback, 30 * 86_400);
        assert_eq!(i.retention, Some(90 * 86_400));
        assert_eq!(
            i.kustomizations,
            Kustomizations::Named(vec![("flux-system".into(), "applications".into())])
        );
        assert!(i.canary_namespaces.is_empty());
        assert!(!i.dry_run);
        assert!(i.fail_on_error);
    }

    #[test]
    fn names_keep_hyphens_and_values_are_trimmed() {
        let i = parse(&[
            ("INPUT_PUSHGATEWAY-URL", "  http://127.0.0.1:9091/  "),
            ("INPUT_DRY-RUN", "TRUE"),
            ("INPUT_FAIL-ON-ERROR", "False"),
            ("INPUT_ENVIRONMENT", " staging\n"),
        ])
        .unwrap();
        assert_eq!(
            i.pushgateway_url.unwrap().as_str(),
            "http://127.0.0.1:9091/"
        );
        assert!(i.dry_run);
        assert!(!i.fail_on_error);
        assert_eq!(i.environment.as_deref(), Some("staging"));
    }

    #[test]
    fn empty_means_unset() {
        let i = parse(&[
            ("INPUT_MODE", ""),
            ("INPUT_JOB", "   "),
            ("INPUT_RETENTION", ""),
        ])
        .unwrap();
        assert_eq!(i.mode, Mode::Auto);
        assert_eq!(i.job, "dora");
        assert_eq!(i.retention, Some(90 * 86_400));
    }

    #[test]
    fn other_variables_are_ignored() {
        let i = parse(&[
            ("GITHUB_TOKEN", "x"),
            ("INPUTX_MODE", "bogus"),
            ("input_mode", "bogus"),
        ])
        .unwrap();
        assert_eq!(i.mode, Mode::Auto);
    }

    #[test]
    fn bad_values_name_the_input_and_the_value() {
        assert_eq!(
            error(&[("INPUT_MODE", "deploy")]),
            "input `mode`: invalid value `deploy`: expected one of auto, event, workflows, cluster"
        );
        assert!(
            error(&[("INPUT_DRY-RUN", "yes")]).starts_with("input `dry-run`: invalid value `yes`")
        );
        assert!(
            error(&[("INPUT_FAIL-ON-ERROR", "1")])
                .starts_with("input `fail-on-error`: invalid value `1`")
        );
        assert!(
            error(&[("INPUT_PUSHGATEWAY-URL", "localhost:9091")])
                .starts_with("input `pushgateway-url`: invalid value `localhost:9091`")
        );
        assert!(error(&[("INPUT_PUSHGATEWAY-URL", "ftp://h/")]).contains("http:// or https://"));
        assert!(error(&[("INPUT_PUSHGATEWAY-URL", "http://h/?a=b")]).contains("query"));
        assert!(
            error(&[("INPUT_RETENTION", "90")])
                .starts_with("input `retention`: invalid value `90`")
        );
        assert!(error(&[("INPUT_LOOKBACK", "0")]).contains("longer than zero"));
        assert!(error(&[("INPUT_LOOKBACK", "3y")]).starts_with("input `lookback`"));
        assert!(
            error(&[("INPUT_PUSHGATEWAY-SERVICE", "pushgateway:9091")])
                .starts_with("input `pushgateway-service`")
        );
        assert!(
            error(&[("INPUT_PUSHGATEWAY-SERVICE", "obs/pg:0")])
                .starts_with("input `pushgateway-service`")
        );
        assert!(
            error(&[("INPUT_KUSTOMIZATIONS", "apps")])
                .starts_with("input `kustomizations`: invalid value `apps`")
        );
        assert!(
            error(&[("INPUT_KUSTOMIZATIONS", "*, flux-system/apps")])
                .contains("`*` already means all")
        );
        assert!(error(&[("INPUT_CANARY-NAMESPACES", "prod,Bad_NS")]).contains("`Bad_NS`"));
        assert!(error(&[("INPUT_DEPLOY-BRANCHES", " , ,")]).contains("the list is empty"));
        assert!(error(&[("INPUT_ENVIRONMENT", "a\u{7}b")]).contains("control characters"));
        assert!(
            error(&[("INPUT_CLUSTER-NAME", "my cluster")])
                .starts_with("input `cluster-name`: invalid value")
        );
        assert!(
            error(&[("INPUT_AWS-REGION", "Europe")])
                .starts_with("input `aws-region`: invalid value")
        );
        assert!(
            error(&[("INPUT_ROLE-TO-ASSUME", "dora-role")])
                .starts_with("input `role-to-assume`: invalid value")
        );
    }

    #[test]
    fn lists_split_on_commas_and_newlines() {
        let i = parse(&[("INPUT_DEPLOY-BRANCHES", "main,\n release/* ,\n\n")]).unwrap();
        assert_eq!(
            i.deploy_branches,
            Branches::Patterns(vec!["main".into(), "release/*".into()])
        );
        let i = parse(&[("INPUT_KUSTOMIZATIONS", "*")]).unwrap();
        assert_eq!(i.kustomizations, Kustomizations::All);
        let i = parse(&[("INPUT_CANARY-NAMESPACES", "prod\nstaging")]).unwrap();
        assert_eq!(i.canary_namespaces, vec!["prod", "staging"]);
        let i = parse(&[("INPUT_PUSHGATEWAY-SERVICE", "monitoring/pgw")]).unwrap();
        assert_eq!(i.pushgateway_service.unwrap().port, None);
        let i = parse(&[("INPUT_PUSHGATEWAY-SERVICE", "monitoring/pgw:http")]).unwrap();
        assert_eq!(i.pushgateway_service.unwrap().port.as_deref(), Some("http"));
    }

    #[test]
    fn retention_zero_keeps_forever() {
        assert_eq!(parse(&[("INPUT_RETENTION", "0")]).unwrap().retention, None);
        assert_eq!(
            parse(&[("INPUT_RETENTION", "2w")]).unwrap().retention,
            Some(14 * 86_400)
        );
    }

    #[test]
    fn aws_inputs_need_a_cluster() {
        assert!(
            error(&[("INPUT_AWS-REGION", "eu-west-1")])
                .contains("only used with `cluster-name` or SigV4")
        );
        assert!(
            error(&[(
                "INPUT_ROLE-TO-ASSUME",
                "arn:aws:iam::123456789012:role/dora"
            )])
            .starts_with("input `role-to-assume`: is only used")
        );
        let i = parse(&[
            ("INPUT_CLUSTER-NAME", "prod-eks"),
            ("INPUT_AWS-REGION", "eu-west-1"),
            (
                "INPUT_ROLE-TO-ASSUME",
                "arn:aws:iam::123456789012:role/dora",
            ),
        ])
        .unwrap();
        assert_eq!(i.cluster_name.as_deref(), Some("prod-eks"));
    }

    #[test]
    fn remote_write_auth_follows_what_is_set() {
        let url = (
            "INPUT_REMOTE-WRITE-URL",
            "https://mimir.example/api/v1/push",
        );
        let auth = |pairs: &[(&str, &str)]| parse(pairs).unwrap().remote_write.unwrap().auth;
        assert_eq!(auth(&[url]), RemoteAuth::None);
        assert_eq!(
            auth(&[url, ("INPUT_REMOTE-WRITE-BEARER-TOKEN", "t0k")]),
            RemoteAuth::Bearer("t0k".into())
        );
        assert_eq!(
            auth(&[
                url,
                ("INPUT_REMOTE-WRITE-USERNAME", "u"),
                ("INPUT_REMOTE-WRITE-PASSWORD", "p")
            ]),
            RemoteAuth::Basic {
                username: "u".into(),
                password: "p".into()
            }
        );
        let amp =
            "https://aps-workspaces.eu-west-1.amazonaws.com/workspaces/ws-1/api/v1/remote_write";
        assert_eq!(
            auth(&[("INPUT_REMOTE-WRITE-URL", amp)]),
            RemoteAuth::SigV4 {
                region: Some("eu-west-1".into())
            }
        );
        // SigV4 elsewhere (a proxy in front of AMP) takes the region from `aws-region`.
        let i = parse(&[
            url,
            ("INPUT_REMOTE-WRITE-AUTH", "sigv4"),
            ("INPUT_AWS-REGION", "us-east-2"),
        ])
        .unwrap();
        assert_eq!(
            i.remote_write.unwrap().auth,
            RemoteAuth::SigV4 { region: None }
        );
        assert_eq!(i.aws_region.as_deref(), Some("us-east-2"));
        // No remote-write, no Pushgateway is fine only with a URL to write to.
        let i = parse(&[url, ("INPUT_PUSHGATEWAY-SERVICE", "none")]).unwrap();
        assert_eq!(i.pushgateway_service, None);
        // `retention` is the Pushgateway's: does this run use one?
        assert!(!i.uses_pushgateway());
        assert!(
            !parse(&[url]).unwrap().uses_pushgateway(),
            "no cluster: no in-cluster service"
        );
        assert!(
            parse(&[url, ("INPUT_CLUSTER-NAME", "prod")])
                .unwrap()
                .uses_pushgateway()
        );
        assert!(
            parse(&[url, ("INPUT_PUSHGATEWAY-URL", "http://pg:9091")])
                .unwrap()
                .uses_pushgateway()
        );
        assert!(parse(&[]).unwrap().uses_pushgateway());
    }

    #[test]
    fn remote_write_inputs_that_would_be_ignored_are_refused() {
        let url = (
            "INPUT_REMOTE-WRITE-URL",
            "https://mimir.example/api/v1/push",
        );
        assert_eq!(
            error(&[("INPUT_REMOTE-WRITE-BEARER-TOKEN", "t")]),
            "input `remote-write-bearer-token`: is only used with `remote-write-url`, which is not set"
        );
        assert!(
            error(&[url, ("INPUT_REMOTE-WRITE-AUTH", "bearer")])
                .starts_with("input `remote-write-bearer-token`: required")
        );
        assert!(
            error(&[url, ("INPUT_REMOTE-WRITE-AUTH", "kerberos")])
                .contains("expected `auto`, `none`")
        );
        assert!(
            error(&[
                url,
                ("INPUT_REMOTE-WRITE-BEARER-TOKEN", "t"),
                ("INPUT_REMOTE-WRITE-USERNAME", "u")
            ])
            .starts_with(
                "input `remote-write-username`: is not used with `remote-write-auth: bearer`"
            )
        );
        assert!(
            error(&[url, ("INPUT_REMOTE-WRITE-USERNAME", "u")])
                .starts_with("input `remote-write-password`: required")
        );
        assert!(
            error(&[
                url,
                ("INPUT_REMOTE-WRITE-AUTH", "none"),
                ("INPUT_REMOTE-WRITE-PASSWORD", "p")
            ])
            .starts_with("input `remote-write-password`: is not used")
        );
        // Credentials in the URL: refused, and the password never echoed.
        let e = error(&[(
            "INPUT_REMOTE-WRITE-URL",
            "https://u:hunter2@mimir.example/push",
        )]);
        assert!(
            e.contains("not in the URL") && !e.contains("hunter2"),
            "{e}"
        );
        assert!(
            error(&[("INPUT_REMOTE-WRITE-URL", "mimir:9009")])
                .starts_with("input `remote-write-url`")
        );
        assert!(
            error(&[("INPUT_PUSHGATEWAY-SERVICE", "none")])
                .starts_with("input `pushgateway-service`: `none` leaves nowhere")
        );
    }

    /// `input `name`:` for each bad value, or a message naming what did not fail.
    fn assert_refused(name: &str, values: &[&str]) {
        let key = format!("INPUT_{}", name.to_uppercase());
        for value in values {
            match parse(&[(&key, value)]) {
                Err(Error::Input { name: got, message }) => assert_eq!(
                    got, name,
                    "{name}: {value:?} refused, but naming `{got}`: {message}"
                ),
                Err(other) => panic!("{name}: {value:?}: not an input error: {other}"),
                Ok(_) => panic!("{name}: {value:?} was accepted"),
            }
        }
    }

    #[test]
    fn workflows_that_would_change_the_api_path_are_refused() {
        assert_refused(
            "workflows",
            &[
                "../../x.yml",
                "..",
                ".",
                "deploy.yml,..",
                "a/b.yml",
                "deploy.yml?x=1",
                "deploy.yml#x",
                "deploy%2F.yml",
                "my deploy.yml",
                "deploy\u{0}.yml",
                "deploy\u{7}.yml",
                "deploy\r.yml",
                "deploy.yml\u{2028}x",
                "..yml",
                "deploy",
                "deploy.json",
                "\\deploy.yml",
                "-1",
                &"9".repeat(21),
                &format!("{}.yml", "a".repeat(300)),
            ],
        );
        let i = parse(&[("INPUT_WORKFLOWS", "deploy.yml, release-eu_1.yaml\n12345")]).unwrap();
        assert_eq!(i.workflows, ["deploy.yml", "release-eu_1.yaml", "12345"]);
        assert!(error(&[("INPUT_WORKFLOWS", "../../x.yml")]).contains("`../../x.yml`"));
    }

    #[test]
    fn durations_beyond_ten_years_are_refused() {
        for name in ["lookback", "retention"] {
            assert_refused(
                name,
                &[
                    "99999999999d",
                    "3654d",
                    "522w",
                    "87697h",
                    "9223372036854775807s",
                    "3653d1s",
                ],
            );
            let key = format!("INPUT_{}", name.to_uppercase());
            assert!(
                parse(&[(&key, "3653d")]).is_ok(),
                "{name}: 10 years is fine"
            );
        }
        assert!(error(&[("INPUT_LOOKBACK", "99999999999d")]).contains("at most 10 years"));
    }

    #[test]
    fn url_inputs_with_characters_a_url_cannot_hold_are_refused() {
        for name in URL_INPUTS {
            assert_refused(
                name,
                &[
                    "http://pg:9091/a b/",
                    "http://pg:9091/a\"b",
                    "http://pg:9091/<x>",
                    "http://pg:9091/a`b",
                    "http://pg:9091/a\\b",
                    "http://pg:9091/a{b}",
                    "http://pg:9091/a%zz",
                    "http://pg:9091/a%4",
                    "http://pg:9091/é",
                    "http://pg:9091/a\u{0}",
                    "http://pg:9091/a\u{7f}",
                    "http://pg:9091/#frag",
                    "http://pg:9091/?q=1",
                    "http://pg:99999/",
                    "http://:9091/",
                    "ftp://pg/",
                    "file:///etc/passwd",
                    "javascript:alert(1)",
                    "pg:9091",
                ],
            );
        }
        assert!(parse(&[("INPUT_PUSHGATEWAY-URL", "http://pg:9091/a%20b/")]).is_ok());
        // The remote-write URL takes no credentials at all.
        assert_refused("remote-write-url", &["https://tok@mimir.example/push"]);
    }

    #[test]
    fn url_credentials_are_found_in_urls_too_broken_to_parse() {
        assert_eq!(url_credentials("http://user:pw@host:99999/"), ["pw"]);
        assert_eq!(url_credentials("ftp://u:p%40ss@h/x?y"), ["p%40ss", "p@ss"]);
        assert_eq!(url_credentials("https://ghp_token@h/"), ["ghp_token"]);
        assert_eq!(url_credentials("http://a:b@c@h/"), ["b@c"]);
        assert!(url_credentials("http://user:@h/").is_empty());
        assert!(url_credentials("http://h/path@x").is_empty());
        assert!(url_credentials("not a url").is_empty());
        assert_eq!(
            without_userinfo("http://user:pw@host:99999/"),
            "http://***@host:99999/"
        );
        assert_eq!(without_userinfo("http://h/a@b"), "http://h/a@b");
    }

    #[test]
    fn invalid_url_messages_never_show_the_password() {
        for name in URL_INPUTS {
            let key = format!("INPUT_{}", name.to_uppercase());
            for url in [
                "http://user:hunter2@host:99999/",
                "http://user:hunter2@host/?q=1",
                "ftp://user:hunter2@host/",
                "http://user:hunter2@host/a b",
                "http://user:hunter2@/",
                "http://user:hunter2@host/#f",
            ] {
                let e = error(&[(&key, url)]);
                assert!(e.starts_with(&format!("input `{name}`")), "{e}");
                assert!(!e.contains("hunter2") && !e.contains("user:"), "{e}");
            }
        }
    }

    #[test]
    fn tokens_and_passwords_with_line_breaks_are_refused_without_showing_them() {
        assert_refused(
            "github-token",
            &["ghp_a b", "ghp_a\nb", "ghp_a\rb", "ghp_\u{0}", "ghp_é"],
        );
        let e = error(&[("INPUT_GITHUB-TOKEN", "ghp_secret\nx")]);
        assert!(!e.contains("ghp_secret"), "{e}");
        let url = (
            "INPUT_REMOTE-WRITE-URL",
            "https://mimir.example/api/v1/push",
        );
        let e = error(&[url, ("INPUT_REMOTE-WRITE-BEARER-TOKEN", "tok en-secret")]);
        assert!(
            e.starts_with("input `remote-write-bearer-token`") && !e.contains("en-secret"),
            "{e}"
        );
        let e = error(&[
            url,
            ("INPUT_REMOTE-WRITE-USERNAME", "u"),
            ("INPUT_REMOTE-WRITE-PASSWORD", "pass\rword-secret"),
        ]);
        assert!(
            e.starts_with("input `remote-write-password`") && !e.contains("word-secret"),
            "{e}"
        );
        assert!(
            error(&[
                url,
                ("INPUT_REMOTE-WRITE-USERNAME", "u:x"),
                ("INPUT_REMOTE-WRITE-PASSWORD", "p"),
            ])
            .starts_with("input `remote-write-username`")
        );
    }

    #[test]
    fn label_inputs_with_line_breaks_or_huge_values_are_refused() {
        for name in ["job", "environment"] {
            assert_refused(
                name,
                &[
                    "a\rb",
                    "a\nb",
                    "a\u{0}b",
                    "a\u{85}b",
                    "a\u{2028}b",
                    "a\u{2029}b",
                    "a\u{1b}[31mb",
                    &"x".repeat(257),
                ],
            );
        }
        assert_refused("deploy-branches", &["main,rel\u{0}ease", "ma\u{2028}in"]);
        // The message shows the value with its control characters escaped.
        assert!(error(&[("INPUT_JOB", "a\rb")]).contains("`a\\rb`"));
    }

    #[test]
    fn aws_inputs_that_are_not_aws_names_are_refused() {
        let cluster = ("INPUT_CLUSTER-NAME", "prod");
        for region in [
            "---",
            "a--1",
            "eu-west-",
            "-eu-west-1",
            "eu-west-x",
            "1u-west-1",
            "eu-west-1.evil.com",
        ] {
            let e = error(&[cluster, ("INPUT_AWS-REGION", region)]);
            assert!(e.starts_with("input `aws-region`"), "{region}: {e}");
        }
        assert!(parse(&[cluster, ("INPUT_AWS-REGION", "us-gov-west-1")]).is_ok());
        for arn in [
            "arn:aws:iam::123456789012:role/a b",
            "arn:aws:iam::123456789012:role/a\nb",
            "arn:aws:iam::123456789012:role/a?b",
            "arn:aws:iam::123456789012:role/",
            "arn:aws:iam::123456789012:role/path/",
            "arn:aws:iam:eu-west-1:123456789012:role/dora",
            "arn::iam::123456789012:role/dora",
            "arn:AWS:iam::123456789012:role/dora",
        ] {
            let e = error(&[cluster, ("INPUT_ROLE-TO-ASSUME", arn)]);
            assert!(e.starts_with("input `role-to-assume`"), "{arn}: {e}");
        }
        assert!(
            parse(&[
                cluster,
                (
                    "INPUT_ROLE-TO-ASSUME",
                    "arn:aws-cn:iam::123456789012:role/ci/dora+x=1,a.b@c_d-e"
                )
            ])
            .is_ok()
        );
    }

    #[test]
    fn the_input_table_names_exactly_the_inputs_the_parser_reads() {
        let value = serde_json::to_value(Raw::default()).unwrap();
        let mut read: Vec<&str> = value
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        let mut listed: Vec<&str> = INPUTS.iter().map(|i| i.name).collect();
        read.sort_unstable();
        listed.sort_unstable();
        assert_eq!(
            listed, read,
            "INPUTS (left) and Raw's fields (right) differ"
        );
        let help = help_inputs();
        for i in INPUTS {
            assert!(
                help.lines()
                    .any(|l| l.trim_start().starts_with(&format!("{} ", i.name))),
                "--help misses {}:\n{help}",
                i.name
            );
        }
        assert!(help.contains("(default 90d)"), "{help}");
    }

    #[test]
    fn branch_patterns() {
        let p = |s: &[&str]| Branches::Patterns(s.iter().map(|s| s.to_string()).collect());
        assert!(Branches::DefaultBranch.matches("main", Some("main")));
        assert!(!Branches::DefaultBranch.matches("dev", Some("main")));
        assert!(!Branches::DefaultBranch.matches("main", None));
        assert!(p(&["*"]).matches("anything/at/all", None));
        assert!(p(&["release/*"]).matches("release/2026.11", None));
        assert!(!p(&["release/*"]).matches("releases", None));
        assert!(p(&["main", "hotfix-*-eu"]).matches("hotfix-42-eu", None));
        assert!(!p(&["hotfix-*-eu"]).matches("hotfix-eu", None));
        assert!(p(&["*-prod*"]).matches("eu-prod-1", None));
    }
}
