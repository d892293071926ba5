//! The action's inputs, read exactly as GitHub passes them to a container
//! action (`INPUT_` + the name upper-cased, hyphens kept), trimmed, empty =
//! unset; parsed and validated once, from an iterator of pairs so that every
//! rule is tested with literal values and no process environment.
//!
//! Two stages, as ripgrep's flags do it: [`Raw`] is what envy reads
//! (strings, nothing checked); then [`Inputs::parse`] turns it into typed
//! values or one error naming the input and the value. Defaults live here as
//! well as in `action.yml`, because a local run (or `docker run`) gets no
//! defaults from the runner.
//!
//! - `mod.rs` (here): the typed inputs and the two stages;
//! - `table.rs`: [`INPUTS`], every input with its default and `--help` line;
//! - `parse.rs`: one small pure function per kind of value;
//! - `urls.rs`: the URL inputs, their credentials (masked, never shown) and
//!   the `remote-write-*` inputs;
//! - `context.rs`: the runner's `GITHUB_*` context ([`Runner`]) and
//!   [`resolve`], which settles the mode and checks what it requires.

use reqwest::Url;
use serde::{Deserialize, Serialize};

use crate::{Error, Result};

mod context;
mod parse;
mod table;
mod urls;

pub use context::{Runner, Settings, resolve};
pub use parse::MAX_DURATION;
pub use table::{INPUTS, InputSpec, defaults, help_inputs};
pub use urls::{URL_INPUTS, url_credentials};

use parse::{
    parse_bool, parse_cluster_name, parse_duration, parse_incident_labels, parse_job,
    parse_kustomizations, parse_label_value, parse_list, parse_mode, parse_namespaces,
    parse_region, parse_report_file, parse_repository, parse_role_arn, parse_service, parse_token,
    parse_workflows,
};
use urls::{parse_remote_write, parse_url};

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
    pub incident_labels: Option<String>,
    pub incident_window: Option<String>,
    pub incident_repository: Option<String>,
    pub report_file: Option<String>,
    pub retention: Option<String>,
    pub github_token: Option<String>,
    pub dry_run: Option<String>,
    pub fail_on_error: Option<String>,
    pub remote_write_url: Option<String>,
    pub remote_write_auth: Option<String>,
    pub remote_write_bearer_token: Option<String>,
    pub remote_write_username: Option<String>,
    pub remote_write_password: Option<String>,
    pub remote_query_url: Option<String>,
}

impl Raw {
    /// Reads the `INPUT_*` pairs of an environment: values trimmed, empty
    /// values dropped (GitHub passes an unset optional input as empty),
    /// except where empty means something: `incident-labels` set empty
    /// turns incidents off (action.yml gives it a default, so the runner
    /// passes it empty only when the workflow says so).
    pub fn from_env<K: Into<String>, V: Into<String>>(
        vars: impl IntoIterator<Item = (K, V)>,
    ) -> Result<Raw> {
        let pairs = vars.into_iter().filter_map(|(k, v)| {
            let (k, v): (String, String) = (k.into(), v.into());
            let v = v.trim();
            (!v.is_empty() || k == EMPTY_MEANS_OFF).then(|| (k, v.to_string()))
        });
        envy::prefixed("INPUT_")
            .from_iter(pairs)
            .map_err(|e| Error::input("*", e.to_string()))
    }
}

/// The input whose empty value is a value (incidents off), not unset.
const EMPTY_MEANS_OFF: &str = "INPUT_INCIDENT-LABELS";

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

/// `report-file`: where the run's JSON report is written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReportFile {
    /// Unset: `dora-report.json` in `GITHUB_WORKSPACE` when that is set, else none.
    Default,
    /// `none`: no report.
    Off,
    /// This path (relative to `GITHUB_WORKSPACE` when that is set).
    Path(std::path::PathBuf),
}

/// Where remote-write goes and how it authenticates (inputs `remote-write-*`).
#[derive(Debug, Clone)]
pub struct RemoteWriteTarget {
    pub url: Url,
    pub auth: RemoteAuth,
    /// The same store's query API, when known (`remote-query-url`).
    pub query: Option<QueryTarget>,
}

/// The base URL of a store's Prometheus query API (`{url}api/v1/query`), and
/// where it came from, for the summary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueryTarget {
    pub url: Url,
    pub source: QuerySource,
}

/// Where [`QueryTarget::url`] came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QuerySource {
    /// The `remote-query-url` input.
    Input,
    /// `remote-write-url` is an Amazon Managed Service for Prometheus
    /// workspace's: its query API is the workspace URL.
    AmpWorkspace,
    /// `remote-write-url` ends in `/api/v1/write` (Prometheus, VictoriaMetrics):
    /// the query API is what comes before.
    WritePath,
}

/// `remote-write-auth`, resolved: `auto` has become one of these. For
/// SigV4, the region from an Amazon Managed Service for Prometheus URL
/// (`None`: `aws-region`); the run's AWS credentials are added by
/// [`crate::clients`].
pub type RemoteAuth = crate::http::Auth<Option<String>>;

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
    /// Labels any of which makes an issue an incident; empty = incidents off.
    pub incident_labels: Vec<String>,
    /// Seconds before an incident opened in which a deployment is pinned on it.
    pub incident_window: u64,
    /// `owner/name` whose issues are incidents; `None` = `GITHUB_REPOSITORY`.
    pub incident_repository: Option<String>,
    /// Where the JSON report goes (`report-file`).
    pub report_file: ReportFile,
    /// Seconds after which an event's group is pruned; `None` = keep forever.
    pub retention: Option<u64>,
    pub github_token: Option<String>,
    pub dry_run: bool,
    pub fail_on_error: bool,
    pub remote_write: Option<RemoteWriteTarget>,
}

impl Inputs {
    /// Reads and validates the inputs from environment pairs.
    pub fn from_env<K: Into<String>, V: Into<String>>(
        vars: impl IntoIterator<Item = (K, V)>,
    ) -> Result<Inputs> {
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
            incident_labels: match raw.incident_labels {
                None => vec![defaults::INCIDENT_LABELS.to_string()],
                Some(v) => parse_incident_labels(&v)?,
            },
            incident_window: parse_duration(
                "incident-window",
                &or(&raw.incident_window, defaults::INCIDENT_WINDOW),
                false,
            )?,
            incident_repository: raw
                .incident_repository
                .map(|v| parse_repository("incident-repository", &v))
                .transpose()?,
            report_file: parse_report_file(raw.report_file)?,
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
                raw.remote_query_url,
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
            Some(RemoteAuth::SigV4(_))
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

#[cfg(test)]
mod tests {
    //! The tests of the whole first-to-second stage; the helpers serve the
    //! tests of every file of this folder.

    use super::*;

    /// Literal pairs as the owned pairs an environment gives.
    pub(super) fn owned(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    pub(super) fn parse(pairs: &[(&str, &str)]) -> Result<Inputs> {
        Inputs::from_env(owned(pairs))
    }

    pub(super) fn error(pairs: &[(&str, &str)]) -> String {
        parse(pairs)
            .expect_err("expected an input error")
            .to_string()
    }

    /// What an error message must be: all of it, how it starts, or a part of it.
    #[derive(Debug, Clone, Copy)]
    pub(super) enum Says {
        Exactly(&'static str),
        StartsWith(&'static str),
        Contains(&'static str),
    }

    /// Environment pairs and what the error they give says.
    pub(super) type Case<'a> = (&'a [(&'a str, &'a str)], Says);

    /// For each case, the error its pairs give says what the case expects;
    /// a failure names the case's pairs.
    pub(super) fn assert_errors(cases: &[Case]) {
        for (pairs, says) in cases {
            let e = error(pairs);
            match says {
                Says::Exactly(m) => assert_eq!(e, *m, "{pairs:?}"),
                Says::StartsWith(m) => assert!(e.starts_with(m), "{pairs:?}: {e}"),
                Says::Contains(m) => assert!(e.contains(m), "{pairs:?}: {e}"),
            }
        }
    }

    /// `input `name`:` for each bad value, or a message naming what did not fail.
    pub(super) fn assert_refused(name: &str, values: &[&str]) {
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
    fn incidents_are_on_by_default_and_off_when_the_labels_are_set_empty() {
        let i = parse(&[]).unwrap();
        assert_eq!(i.incident_labels, ["incident"]);
        assert_eq!(i.incident_window, 86_400);
        assert_eq!(i.incident_repository, None);
        let off = parse(&[("INPUT_INCIDENT-LABELS", "  ")]).unwrap();
        assert!(off.incident_labels.is_empty());
        let i = parse(&[
            ("INPUT_INCIDENT-LABELS", "incident,\nsev1"),
            ("INPUT_INCIDENT-WINDOW", "2h"),
            ("INPUT_INCIDENT-REPOSITORY", "octo-org/ops"),
        ])
        .unwrap();
        assert_eq!(i.incident_labels, ["incident", "sev1"]);
        assert_eq!(i.incident_window, 7_200);
        assert_eq!(i.incident_repository.as_deref(), Some("octo-org/ops"));
        #[rustfmt::skip]
        let cases: &[Case] = &[
            (&[("INPUT_INCIDENT-WINDOW", "soon")], Says::StartsWith("input `incident-window`: invalid value `soon`")),
            (&[("INPUT_INCIDENT-WINDOW", "0")], Says::StartsWith("input `incident-window`: invalid value `0`")),
            (&[("INPUT_INCIDENT-LABELS", ", \n,")], Says::Contains("input `incident-labels`: invalid value")),
            (&[("INPUT_INCIDENT-REPOSITORY", "ops")], Says::StartsWith("input `incident-repository`: invalid value `ops`")),
        ];
        assert_errors(cases);
    }

    #[test]
    fn other_variables_are_ignored() {
        let not_inputs = [
            ("GITHUB_TOKEN", "x"),
            ("INPUTX_MODE", "bogus"),
            ("input_mode", "bogus"),
        ];
        assert_eq!(parse(&not_inputs).unwrap().mode, Mode::Auto);
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
        #[rustfmt::skip]
        let cases: &[Case] = &[
            (&[("INPUT_AWS-REGION", "eu-west-1")], Says::Contains("only used with `cluster-name` or SigV4")),
            (&[("INPUT_ROLE-TO-ASSUME", "arn:aws:iam::123456789012:role/dora")], Says::StartsWith("input `role-to-assume`: is only used")),
        ];
        assert_errors(cases);
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
