//! The input table: every input of `action.yml` with the default the code
//! applies and its `--help` line. One list, so `--help`, the drift test
//! against `action.yml` and the parser's [`Raw`](super::Raw) cannot disagree
//! without a test failing.

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
    pub const INCIDENT_LABELS: &str = "incident";
    pub const INCIDENT_WINDOW: &str = "24h";
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
/// against [`Raw`](super::Raw), the struct the parser reads (a unit test
/// checks they name the same inputs). A new input left out of it fails those tests.
#[rustfmt::skip]
pub const INPUTS: &[InputSpec] = &[
    input("mode", Some(defaults::MODE), "event | workflows | cluster | auto"),
    input("cluster-name", None, "EKS cluster to check first and reach the Pushgateway through"),
    input("aws-region", None, "AWS region (default AWS_REGION, then AWS_DEFAULT_REGION)"),
    input("role-to-assume", None, "IAM role ARN to assume with the job's GitHub OIDC token"),
    input("pushgateway-url", None, "Pushgateway base URL (else the in-cluster service)"),
    input("pushgateway-service", Some(defaults::PUSHGATEWAY_SERVICE), "in-cluster Pushgateway as namespace/name:port; `none`: no Pushgateway"),
    input("job", Some(defaults::JOB), "Pushgateway `job` label of every group written and pruned"),
    input("environment", None, "`environment` label (default the cluster name, else `default`)"),
    input("deploy-branches", None, "branches whose runs are deployments (default the default branch)"),
    input("workflows", None, "workflow files or ids whose runs `workflows` mode records"),
    input("lookback", Some(defaults::LOOKBACK), "how far back `workflows` mode reads, e.g. 30d, 12h"),
    input("kustomizations", Some(defaults::KUSTOMIZATIONS), "Flux Kustomizations as namespace/name; `*` = all"),
    input("canary-namespaces", None, "namespaces whose Flagger Canaries are read (default all)"),
    input("incident-labels", Some(defaults::INCIDENT_LABELS), "issue labels that make an issue an incident; empty: no incidents"),
    input("incident-window", Some(defaults::INCIDENT_WINDOW), "an incident opened this long after a deployment is pinned on it"),
    input("incident-repository", None, "repository whose issues are incidents (default GITHUB_REPOSITORY)"),
    input("report-file", None, "the JSON report's path (default dora-report.json in GITHUB_WORKSPACE; `none` = off)"),
    input("retention", Some(defaults::RETENTION), "prune this job's groups older than this; `0` keeps all"),
    input("github-token", None, "token for GitHub REST (action.yml: the job's token)"),
    input("dry-run", Some(defaults::DRY_RUN), "`true`: push nothing, print the exposition"),
    input("fail-on-error", Some(defaults::FAIL_ON_ERROR), "`false`: delivery failures are warnings"),
    input("remote-write-url", None, "Prometheus remote-write endpoint of a durable store"),
    input("remote-write-auth", Some(defaults::REMOTE_WRITE_AUTH), "auto | none | bearer | basic | sigv4"),
    input("remote-write-bearer-token", None, "bearer token for remote-write (masked)"),
    input("remote-write-username", None, "basic-auth username for remote-write"),
    input("remote-write-password", None, "basic-auth password for remote-write (masked)"),
    input("remote-query-url", None, "the store's Prometheus query API (default: derived from remote-write-url)"),
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inputs::Raw;

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
}
