//! `action.yml` is the contract with users: every input and output it
//! declares must be read or written by the code, and the other way round,
//! with the same defaults and an image tag matching the crate's version.

mod support;

use std::collections::{BTreeMap, BTreeSet};

use dora_action::inputs::{INPUTS, Raw, defaults};
use dora_action::report::Outputs;
use serde::Deserialize;

#[derive(Deserialize)]
struct Action {
    inputs: BTreeMap<String, Input>,
    outputs: BTreeMap<String, Output>,
    runs: Runs,
}

#[derive(Deserialize)]
struct Input {
    description: String,
    default: Option<String>,
}

#[derive(Deserialize)]
struct Output {
    description: String,
}

#[derive(Deserialize)]
struct Runs {
    using: String,
    image: String,
}

fn action() -> Action {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/action.yml")).unwrap();
    serde_saphyr::from_str(&text).expect("action.yml parses")
}

#[test]
fn every_declared_input_is_read_and_every_read_input_is_declared() {
    let declared: BTreeSet<String> = action().inputs.into_keys().collect();
    let value = serde_json::to_value(Raw::default()).unwrap();
    let read: BTreeSet<String> = value.as_object().unwrap().keys().cloned().collect();
    assert_eq!(
        declared, read,
        "action.yml inputs (left) differ from the inputs the code reads (right)"
    );
    // And each one is really read from its INPUT_ variable, hyphens kept.
    for name in &declared {
        let var = format!("INPUT_{}", name.to_uppercase());
        let raw = Raw::from_env([(var.clone(), "sentinel".to_string())]).unwrap();
        let value = serde_json::to_value(raw).unwrap();
        assert_eq!(
            value[name.as_str()],
            "sentinel",
            "{var} is not read into `{name}`"
        );
    }
}

#[test]
fn the_input_table_is_action_yml_in_order_with_its_defaults() {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/action.yml")).unwrap();
    // action.yml's order (a BTreeMap would sort it): the inputs block's keys.
    let order: Vec<&str> = text
        .split("\ninputs:\n")
        .nth(1)
        .and_then(|rest| rest.split("\n\n").next())
        .unwrap()
        .lines()
        .filter_map(|l| l.strip_prefix("  ")?.strip_suffix(':'))
        .filter(|k| !k.starts_with(' '))
        .collect();
    let listed: Vec<&str> = INPUTS.iter().map(|i| i.name).collect();
    assert_eq!(listed, order, "INPUTS (left) and action.yml (right)");
    let inputs = action().inputs;
    for i in INPUTS {
        let declared = inputs[i.name].default.as_deref();
        if i.name == "github-token" {
            assert_eq!(declared, Some("${{ github.token }}"));
            assert_eq!(i.default, None, "the runner fills it in; the code has none");
        } else {
            assert_eq!(i.default, declared, "default of {}", i.name);
        }
    }
}

#[test]
fn help_lists_every_declared_input() {
    let help = support::action::help();
    let listed: BTreeSet<&str> = help
        .lines()
        .filter_map(|l| l.strip_prefix("  ")?.split_whitespace().next())
        .collect();
    for name in action().inputs.keys() {
        assert!(
            listed.contains(name.as_str()),
            "--help does not list input `{name}`:\n{help}"
        );
    }
    assert!(help.contains("remote-write"), "{help}");
}

#[test]
fn every_declared_output_is_written_and_every_written_output_is_declared() {
    let declared: BTreeSet<String> = action().outputs.into_keys().collect();
    let written: BTreeSet<String> = Outputs::default()
        .pairs()
        .into_iter()
        .map(|(k, _)| k)
        .collect();
    assert_eq!(
        declared, written,
        "action.yml outputs (left) differ from the outputs the code writes (right)"
    );
}

#[test]
fn defaults_in_action_yml_match_the_code() {
    let inputs = action().inputs;
    let default = |name: &str| inputs[name].default.clone();
    assert_eq!(default("mode").as_deref(), Some(defaults::MODE));
    assert_eq!(
        default("pushgateway-service").as_deref(),
        Some(defaults::PUSHGATEWAY_SERVICE)
    );
    assert_eq!(default("job").as_deref(), Some(defaults::JOB));
    assert_eq!(default("lookback").as_deref(), Some(defaults::LOOKBACK));
    assert_eq!(
        default("kustomizations").as_deref(),
        Some(defaults::KUSTOMIZATIONS)
    );
    assert_eq!(default("retention").as_deref(), Some(defaults::RETENTION));
    assert_eq!(default("dry-run").as_deref(), Some(defaults::DRY_RUN));
    assert_eq!(
        default("fail-on-error").as_deref(),
        Some(defaults::FAIL_ON_ERROR)
    );
    assert_eq!(
        default("remote-write-auth").as_deref(),
        Some(defaults::REMOTE_WRITE_AUTH)
    );
    assert_eq!(
        default("github-token").as_deref(),
        Some("${{ github.token }}")
    );
    for unset in [
        "cluster-name",
        "aws-region",
        "role-to-assume",
        "pushgateway-url",
        "environment",
        "deploy-branches",
        "workflows",
        "canary-namespaces",
        "remote-write-url",
        "remote-write-bearer-token",
        "remote-write-username",
        "remote-write-password",
    ] {
        assert_eq!(
            default(unset),
            None,
            "{unset} has no default: its absence means something"
        );
    }
}

#[test]
fn everything_is_described() {
    let a = action();
    for (name, input) in &a.inputs {
        assert!(
            input.description.len() > 20,
            "input {name} needs a real description"
        );
    }
    for (name, output) in &a.outputs {
        assert!(
            output.description.len() > 20,
            "output {name} needs a real description"
        );
    }
}

#[test]
fn users_get_the_prebuilt_image_of_this_version() {
    let runs = action().runs;
    assert_eq!(runs.using, "docker");
    let expected = format!("dora-action:{}", env!("CARGO_PKG_VERSION"));
    assert!(
        runs.image.starts_with("docker://ghcr.io/") && runs.image.ends_with(&expected),
        "runs.image `{}` must be a prebuilt ghcr.io image tagged {}",
        runs.image,
        env!("CARGO_PKG_VERSION")
    );
}
