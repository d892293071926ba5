//! The runner's context (the `GITHUB_*` variables) and what the inputs and
//! that context decide together before any call: the mode a run is in, the
//! requirements that mode has, and the deployments' environment. Pure: the
//! context is read from environment pairs, [`resolve`] only looks at values.

use std::collections::BTreeMap;
use std::path::PathBuf;

use reqwest::Url;

use super::{Inputs, Mode};
use crate::actions::RunnerFiles;
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
        let api_url = super::urls::parse_url("GITHUB_API_URL", &api)?;
        // The token goes in a header; credentials in the URL would go with
        // every request and into any message that shows it.
        if !api_url.username().is_empty() || api_url.password().is_some() {
            return Err(Error::input(
                "GITHUB_API_URL",
                "the URL must not hold credentials (the token is `github-token`)",
            ));
        }
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

/// What the inputs and the runner context settle before any call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// The mode the run is in: never [`Mode::Auto`].
    pub mode: Mode,
    /// The deployments' environment: the `environment` input, else the
    /// cluster's name, else `default`.
    pub environment: String,
}

/// Resolves the mode from the `mode` input and the triggering event, then
/// checks what the run needs: somewhere to write (or a dry run), and for
/// `workflows` mode the repository whose workflows to read. The first
/// problem is the error, named after the input that can fix it.
pub fn resolve(inputs: &Inputs, runner: &Runner) -> Result<Settings> {
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
    if mode == Mode::Workflows && !runner.env.contains_key("GITHUB_REPOSITORY") {
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
    Ok(Settings { mode, environment })
}

/// Which mode a run is in, from the `mode` input and the triggering event.
fn resolve_mode(inputs: &Inputs, event_name: &str) -> Result<Mode> {
    let is_deploy_event = matches!(event_name, "workflow_run" | "deployment_status" | "issues");
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
                    "`event` records `workflow_run`, `deployment_status` and `issues` events; this run was triggered by `{event_name}`"
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
        return Err(Error::input(
            "cluster-name",
            cluster_name_required(inputs.mode, event_name),
        ));
    }
    Ok(mode)
}

/// Why cluster mode, which needs `cluster-name`, was chosen.
fn cluster_name_required(asked: Mode, event_name: &str) -> String {
    if asked != Mode::Auto {
        return "required with `mode: cluster`: the EKS cluster whose Flux and Flagger objects to read"
            .to_string();
    }
    let what = if event_name.is_empty() {
        "no event".to_string()
    } else {
        format!("event `{event_name}`")
    };
    format!(
        "required: `auto` chose cluster mode for {what} (set `workflows` for history, or trigger on `workflow_run`/`deployment_status`)"
    )
}

#[cfg(test)]
mod tests {
    use super::super::tests::owned;
    use super::*;

    fn runner(vars: &[(&str, &str)]) -> Runner {
        Runner::from_env(&owned(vars)).expect("runner context")
    }

    fn inputs(vars: &[(&str, &str)]) -> Inputs {
        super::super::tests::parse(vars).expect("valid inputs")
    }

    /// The settings of a run triggered by `event` (empty: none).
    fn resolved(event: &str, vars: &[(&str, &str)]) -> Result<Settings> {
        resolve(&inputs(vars), &runner(&[("GITHUB_EVENT_NAME", event)]))
    }

    fn mode(event: &str, vars: &[(&str, &str)]) -> Mode {
        resolved(event, vars).expect("resolves").mode
    }

    /// The mode of a run triggered by `event` in the repository `o/r`.
    fn mode_in_a_repository(event: &str, vars: &[(&str, &str)]) -> Mode {
        let run = runner(&[("GITHUB_EVENT_NAME", event), ("GITHUB_REPOSITORY", "o/r")]);
        resolve(&inputs(vars), &run).expect("resolves").mode
    }

    fn refusal(event: &str, vars: &[(&str, &str)]) -> String {
        resolved(event, vars)
            .expect_err("expected an input error")
            .to_string()
    }

    const PUSHGATEWAY: (&str, &str) = ("INPUT_PUSHGATEWAY-URL", "http://pg:9091");
    const CLUSTER: (&str, &str) = ("INPUT_CLUSTER-NAME", "prod-eks");

    #[test]
    fn a_local_run_without_github_variables_talks_to_github_com() {
        let r = runner(&[]);
        assert_eq!(r.api_url.as_str(), "https://api.github.com/");
        assert_eq!(r.server_url, "https://github.com");
        assert_eq!(r.event_name, None);
        assert_eq!(r.event_path, None);
        assert_eq!(r.files.output, None);
        assert_eq!(r.files.summary, None);
    }

    #[test]
    fn runner_variables_are_trimmed_and_empty_means_unset() {
        let r = runner(&[
            ("GITHUB_EVENT_NAME", " workflow_run\n"),
            ("GITHUB_EVENT_PATH", "/github/workflow/event.json"),
            ("GITHUB_API_URL", "https://ghe.example/api/v3"),
            ("GITHUB_SERVER_URL", "https://ghe.example"),
            ("GITHUB_OUTPUT", "/tmp/out"),
            ("GITHUB_STEP_SUMMARY", "  "),
            ("AWS_REGION", ""),
        ]);
        assert_eq!(r.event_name.as_deref(), Some("workflow_run"));
        assert_eq!(
            r.event_path,
            Some(PathBuf::from("/github/workflow/event.json"))
        );
        assert_eq!(r.api_url.as_str(), "https://ghe.example/api/v3");
        assert_eq!(r.server_url, "https://ghe.example");
        assert_eq!(r.files.output, Some(PathBuf::from("/tmp/out")));
        assert_eq!(r.files.summary, None);
        assert!(!r.env.contains_key("AWS_REGION"));
        assert!(!r.env.contains_key("GITHUB_STEP_SUMMARY"));
    }

    #[test]
    fn an_api_url_that_is_no_url_is_an_input_error() {
        let vars = vec![("GITHUB_API_URL".to_string(), "api.github".to_string())];
        let e = Runner::from_env(&vars).expect_err("refused").to_string();
        assert!(
            e.starts_with("input `GITHUB_API_URL`: invalid value `api.github`: "),
            "{e}"
        );
    }

    #[test]
    fn an_api_url_with_credentials_is_refused_without_showing_them() {
        for url in [
            "https://x-access-token:ghs_hunter2@ghe.example/api/v3",
            "https://ghs_hunter2@ghe.example/api/v3",
            "https://u:ghs_hunter2@ghe.example/api v3",
        ] {
            let vars = vec![("GITHUB_API_URL".to_string(), url.to_string())];
            let e = Runner::from_env(&vars).expect_err(url).to_string();
            assert!(e.starts_with("input `GITHUB_API_URL`: "), "{e}");
            assert!(!e.contains("hunter2"), "{e}");
        }
    }

    #[test]
    fn an_api_url_with_a_query_or_another_scheme_is_refused() {
        for url in ["https://ghe.example/api/v3?x=1", "ftp://ghe.example/api/v3"] {
            let vars = vec![("GITHUB_API_URL".to_string(), url.to_string())];
            assert!(Runner::from_env(&vars).is_err(), "{url}");
        }
    }

    #[test]
    fn auto_records_deploy_events() {
        for event in ["workflow_run", "deployment_status"] {
            assert_eq!(mode(event, &[PUSHGATEWAY]), Mode::Event, "{event}");
            // A deploy event wins over `workflows`.
            assert_eq!(
                mode(event, &[PUSHGATEWAY, ("INPUT_WORKFLOWS", "deploy.yml")]),
                Mode::Event,
                "{event}"
            );
        }
    }

    #[test]
    fn auto_records_an_issues_event_in_event_mode() {
        // An incident changed: event mode, even beside `workflows`.
        assert_eq!(mode("issues", &[PUSHGATEWAY]), Mode::Event);
        assert_eq!(
            mode("issues", &[PUSHGATEWAY, ("INPUT_WORKFLOWS", "deploy.yml")]),
            Mode::Event
        );
        assert_eq!(
            mode("issues", &[("INPUT_MODE", "event"), PUSHGATEWAY]),
            Mode::Event
        );
    }

    #[test]
    fn auto_reads_workflow_history_when_workflows_are_named() {
        let vars = [PUSHGATEWAY, ("INPUT_WORKFLOWS", "deploy.yml")];
        assert_eq!(mode_in_a_repository("schedule", &vars), Mode::Workflows);
    }

    #[test]
    fn auto_reads_the_cluster_otherwise() {
        assert_eq!(mode("schedule", &[CLUSTER]), Mode::Cluster);
        assert_eq!(mode("", &[CLUSTER]), Mode::Cluster);
    }

    #[test]
    fn an_explicit_mode_is_kept() {
        assert_eq!(
            mode("workflow_run", &[("INPUT_MODE", "event"), PUSHGATEWAY]),
            Mode::Event
        );
        assert_eq!(
            mode("workflow_run", &[("INPUT_MODE", "cluster"), CLUSTER]),
            Mode::Cluster
        );
        let vars = [
            ("INPUT_MODE", "workflows"),
            ("INPUT_WORKFLOWS", "deploy.yml"),
            PUSHGATEWAY,
        ];
        assert_eq!(mode_in_a_repository("workflow_run", &vars), Mode::Workflows);
    }

    #[test]
    fn event_mode_needs_a_deploy_event() {
        assert_eq!(
            refusal("", &[("INPUT_MODE", "event"), PUSHGATEWAY]),
            "input `mode`: `event` needs GITHUB_EVENT_NAME and GITHUB_EVENT_PATH (set by the runner)"
        );
        assert_eq!(
            refusal("push", &[("INPUT_MODE", "event"), PUSHGATEWAY]),
            "input `mode`: `event` records `workflow_run`, `deployment_status` and `issues` events; this run was triggered by `push`"
        );
    }

    #[test]
    fn workflows_mode_needs_workflows_and_a_repository() {
        assert_eq!(
            refusal("schedule", &[("INPUT_MODE", "workflows"), PUSHGATEWAY]),
            "input `workflows`: required with `mode: workflows`: the workflow files to read (e.g. `deploy.yml`)"
        );
        assert_eq!(
            refusal(
                "schedule",
                &[
                    ("INPUT_MODE", "workflows"),
                    ("INPUT_WORKFLOWS", "deploy.yml"),
                    PUSHGATEWAY
                ]
            ),
            "input `workflows`: GITHUB_REPOSITORY is not set: cannot tell whose workflows to read"
        );
        // `auto` choosing workflows mode has the same requirement.
        assert_eq!(
            refusal(
                "schedule",
                &[("INPUT_WORKFLOWS", "deploy.yml"), PUSHGATEWAY]
            ),
            "input `workflows`: GITHUB_REPOSITORY is not set: cannot tell whose workflows to read"
        );
    }

    #[test]
    fn cluster_mode_needs_a_cluster_and_says_why_it_was_chosen() {
        assert_eq!(
            refusal("schedule", &[("INPUT_MODE", "cluster"), PUSHGATEWAY]),
            "input `cluster-name`: required with `mode: cluster`: the EKS cluster whose Flux and Flagger objects to read"
        );
        assert_eq!(
            refusal("", &[PUSHGATEWAY]),
            "input `cluster-name`: required: `auto` chose cluster mode for no event (set `workflows` for history, or trigger on `workflow_run`/`deployment_status`)"
        );
        assert_eq!(
            refusal("push", &[PUSHGATEWAY]),
            "input `cluster-name`: required: `auto` chose cluster mode for event `push` (set `workflows` for history, or trigger on `workflow_run`/`deployment_status`)"
        );
    }

    #[test]
    fn a_run_needs_somewhere_to_write_or_a_dry_run() {
        let nowhere = "input `pushgateway-url`: required when `cluster-name` and `remote-write-url` are empty: set one of them (or `dry-run: true`)";
        assert_eq!(refusal("workflow_run", &[]), nowhere);
        assert_eq!(
            mode("workflow_run", &[("INPUT_DRY-RUN", "true")]),
            Mode::Event
        );
        assert_eq!(
            mode(
                "workflow_run",
                &[("INPUT_REMOTE-WRITE-URL", "https://mimir.example/push")]
            ),
            Mode::Event
        );
        assert_eq!(mode("workflow_run", &[CLUSTER]), Mode::Event);
    }

    #[test]
    fn the_mode_is_checked_before_the_destination() {
        // Both are wrong: the mode's requirement is the one reported, as before.
        assert!(refusal("", &[]).starts_with("input `cluster-name`: required: `auto` chose"));
        assert!(refusal("push", &[("INPUT_MODE", "event")]).starts_with("input `mode`: "));
        // And the destination before the repository.
        assert!(
            refusal("schedule", &[("INPUT_WORKFLOWS", "deploy.yml")])
                .starts_with("input `pushgateway-url`: required")
        );
    }

    #[test]
    fn the_environment_is_the_input_else_the_cluster_else_default() {
        let env = |vars: &[(&str, &str)]| resolved("workflow_run", vars).unwrap().environment;
        assert_eq!(env(&[CLUSTER, ("INPUT_ENVIRONMENT", "staging")]), "staging");
        assert_eq!(env(&[CLUSTER]), "prod-eks");
        assert_eq!(env(&[PUSHGATEWAY]), "default");
    }
}
