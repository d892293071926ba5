//! The Grafana dashboard (`dashboards/dora-metrics.json`) and the recording
//! rules (`dashboards/dora-rules.yml`), proven against a real Prometheus.
//!
//! A known scenario — two deploy workflows over nine days with failures and
//! recoveries, a Flux Kustomization applying four revisions (and one not
//! Ready), two Flagger canaries with a rollback and a recovery, incidents
//! filed as GitHub issues and a revert — goes
//! *through the binary* into a real Pushgateway (workflows mode against a
//! GitHub mock; cluster mode against the fake API server, five scheduled
//! runs with the cluster's objects changing in between), and the real
//! Prometheus scrapes it. Then every target of every panel (rows included) is
//! evaluated with the dashboard's variables substituted the way Grafana does,
//! and the four headline stats are compared with DORA numbers worked out by
//! hand below. Lints check the JSON itself: schema, variables, no fixed
//! windows, and that the dashboard and the code agree on metric names.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::Duration;

use dora_action::dora::Band;
use jiff::{SignedDuration, Timestamp};
use reqwest::Url;
use serde_json::{Value, json};
use support::cluster::Cluster;
use support::fixtures::{Canary, Kustomization, git_repository, k8s_list};
use support::{Action, GitHub, GitHubMock, Prometheus, Pushgateway, commit_json, compare_body};
use wiremock::matchers::{method, path};
use wiremock::{Mock, ResponseTemplate};

// ------------------------------------------------------------ the dashboard

fn repo_file(rel: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(rel);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn dashboard() -> Value {
    serde_json::from_str(&repo_file("dashboards/dora-metrics.json"))
        .expect("dashboards/dora-metrics.json is JSON")
}

/// Every panel that is not a row, in order, including the panels a
/// collapsed row keeps inside it.
fn panels(dashboard: &Value) -> Vec<&Value> {
    fn walk<'a>(list: &'a Value, out: &mut Vec<&'a Value>) {
        for panel in list.as_array().into_iter().flatten() {
            if panel["type"] != "row" {
                out.push(panel);
            }
            walk(&panel["panels"], out);
        }
    }
    let mut out = Vec::new();
    walk(&dashboard["panels"], &mut out);
    out
}

fn panel<'a>(dashboard: &'a Value, title: &str) -> &'a Value {
    let found: Vec<&Value> = panels(dashboard)
        .into_iter()
        .filter(|p| p["title"] == title)
        .collect();
    assert_eq!(found.len(), 1, "want exactly one panel titled {title:?}");
    found[0]
}

fn targets(panel: &Value) -> Vec<&Value> {
    panel["targets"].as_array().into_iter().flatten().collect()
}

fn expr(target: &Value) -> &str {
    target["expr"].as_str().expect("a target has an expr")
}

/// `time() - $__interval` as a number (whitespace removed): the start of a
/// bar's interval in the time series panels.
const INTERVAL_START: &str = "scalar(max_over_time(timestamp(vector(1))[1s:1s]offset$__interval))";

/// The four headline stats, by their exact titles.
const HEADLINE: [&str; 4] = [
    "Deployment frequency",
    "Lead time for changes",
    "Change failure rate",
    "Failed deployment recovery time",
];

/// What a dashboard user picked: the time range and the two variables
/// (empty = All).
struct Selection {
    range_s: i64,
    environment: Vec<&'static str>,
    source: Vec<&'static str>,
}

impl Selection {
    fn all() -> Selection {
        Selection {
            range_s: 7 * DAY,
            environment: vec![],
            source: vec![],
        }
    }
}

/// Grafana's escaping of a value for a Prometheus regex matcher
/// (`prometheusSpecialRegexEscape`): the regex metacharacters get a
/// backslash, itself doubled inside the PromQL string.
fn regex_escape(value: &str) -> String {
    let mut out = String::new();
    for c in value.chars() {
        if c == '\\' {
            out.push_str("\\\\\\\\");
        } else if "$^*{}[]'+?.()|".contains(c) {
            out.push_str("\\\\");
            out.push(c);
        } else {
            out.push(c);
        }
    }
    out
}

/// A multi-value variable with All, interpolated into a Prometheus query as
/// Grafana does: All → the variable's `allValue` (`.*`), one value → the
/// value escaped, several → `(a|b)`.
fn multi_value(all_value: &str, picked: &[&str]) -> String {
    match picked {
        [] => all_value.to_string(),
        [one] => regex_escape(one),
        many => format!(
            "({})",
            many.iter()
                .map(|v| regex_escape(v))
                .collect::<Vec<_>>()
                .join("|")
        ),
    }
}

/// The query Grafana sends for `target` of `panel`: `$__range_s` (before
/// `$__range`, its prefix), `$__range` (Grafana renders it in seconds,
/// `604800s`), `$__interval` (the panel's minimum interval, `1d` for the
/// bar charts, else what Grafana computes for a week on a wide panel),
/// `$__rate_interval`, and the variables.
fn interpolate(dashboard: &Value, panel: &Value, target: &Value, sel: &Selection) -> String {
    interpolate_from(dashboard, panel, target, sel, PUSHGATEWAY_HISTORY)
}

/// The query Grafana sends for target `i` of the panel titled `title`.
fn panel_query(dashboard: &Value, title: &str, i: usize, sel: &Selection) -> String {
    let p = panel(dashboard, title);
    interpolate(dashboard, p, targets(p)[i], sel)
}

/// `${history}` for a Prometheus that scrapes the Pushgateway (every event
/// series always present) and for a remote-write store (one sample per
/// event series, at the event's time): the two options of the variable.
const PUSHGATEWAY_HISTORY: &str = "5m";
const REMOTE_WRITE_HISTORY: &str = "400d";

/// [`interpolate`] with `${history}` set to `history`.
fn interpolate_from(
    dashboard: &Value,
    panel: &Value,
    target: &Value,
    sel: &Selection,
    history: &str,
) -> String {
    let all_value = |name: &str| {
        dashboard["templating"]["list"]
            .as_array()
            .unwrap()
            .iter()
            .find(|v| v["name"] == name)
            .and_then(|v| v["allValue"].as_str())
            .unwrap_or_else(|| panic!("variable {name} has an allValue"))
            .to_string()
    };
    let interval = panel["interval"].as_str().unwrap_or("10m");
    expr(target)
        .replace("$__range_s", &sel.range_s.to_string())
        .replace("$__range", &format!("{}s", sel.range_s))
        .replace("$__interval", interval)
        .replace("$__rate_interval", "4m")
        .replace(
            "${environment}",
            &multi_value(&all_value("environment"), &sel.environment),
        )
        .replace("${source}", &multi_value(&all_value("source"), &sel.source))
        .replace("${history}", history)
}

// ---------------------------------------------------------------- lints

/// The metric names the code emits: every `"dora_…"` string literal in
/// `src/` outside `#[cfg(test)]` code.
fn emitted_names() -> BTreeSet<String> {
    fn sources(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                sources(&path, out);
            } else if path.extension().and_then(|e| e.to_str()) == Some("rs") {
                out.push(path);
            }
        }
    }
    let mut files = Vec::new();
    sources(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("src"),
        &mut files,
    );
    let mut names = BTreeSet::new();
    for path in files {
        let text = std::fs::read_to_string(&path).unwrap();
        let code = text.split("#[cfg(test)]").next().unwrap_or_default();
        let mut rest = code;
        while let Some(i) = rest.find("\"dora_") {
            let after = &rest[i + 1..];
            let len = after
                .find(|c: char| !(c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'))
                .unwrap_or(after.len());
            if after[len..].starts_with('"') && len > "dora_".len() {
                names.insert(after[..len].to_string());
            }
            rest = &after[len..];
        }
    }
    names
}

/// The metric names a PromQL expression mentions: `dora_` identifiers (a
/// regex such as `{__name__=~"dora_.+"}` names none).
fn names_in(promql: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let bytes = promql.as_bytes();
    let ident = |b: u8| b.is_ascii_alphanumeric() || b == b'_' || b == b':';
    let mut i = 0;
    while let Some(found) = promql[i..].find("dora_") {
        let start = i + found;
        let end = start
            + promql[start..]
                .find(|c: char| !(c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'))
                .unwrap_or(promql.len() - start);
        if (start == 0 || !ident(bytes[start - 1])) && end > start + "dora_".len() {
            names.insert(promql[start..end].to_string());
        }
        i = end.max(start + 1);
    }
    names
}

#[test]
fn the_dashboard_and_the_code_agree_on_metric_names() {
    let emitted = emitted_names();
    assert!(
        emitted.contains("dora_workflow_deploy_timestamp"),
        "the scan of src/ found the metric names: {emitted:?}"
    );
    let d = dashboard();
    let used: BTreeSet<String> = panels(&d)
        .iter()
        .flat_map(|p| targets(p))
        .flat_map(|t| names_in(expr(t)))
        .collect();
    let unknown: Vec<&String> = used.difference(&emitted).collect();
    assert!(
        unknown.is_empty(),
        "the dashboard queries metrics the code does not emit: {unknown:?}"
    );
    let unshown: Vec<&String> = emitted.difference(&used).collect();
    assert!(
        unshown.is_empty(),
        "the code emits metrics no panel shows: {unshown:?}"
    );
    let rules: BTreeSet<String> = rule_exprs().iter().flat_map(|(_, e)| names_in(e)).collect();
    let unknown: Vec<&String> = rules.difference(&emitted).collect();
    assert!(
        unknown.is_empty(),
        "the recording rules use metrics the code does not emit: {unknown:?}"
    );
}

#[test]
fn the_dashboard_follows_the_time_picker_and_its_variables() {
    let d = dashboard();
    assert!(
        d["schemaVersion"].as_u64().unwrap() >= 39,
        "a current Grafana schema"
    );
    let vars = d["templating"]["list"].as_array().unwrap();
    let var = |name: &str| vars.iter().find(|v| v["name"] == name).unwrap();
    assert_eq!(var("datasource")["type"], "datasource");
    assert_eq!(var("datasource")["query"], "prometheus");
    for name in ["environment", "source"] {
        let v = var(name);
        assert_eq!(v["type"], "query", "{name}");
        assert_eq!(v["multi"], true, "{name} is multi-select");
        assert_eq!(v["includeAll"], true, "{name} has All");
        assert_eq!(v["allValue"], ".*", "{name}: All matches every value");
        assert_eq!(v["datasource"]["uid"], "${datasource}", "{name}");
        assert!(
            v["definition"]
                .as_str()
                .unwrap()
                .starts_with("label_values("),
            "{name}"
        );
    }
    assert_eq!(d["time"]["from"], "now-7d");

    // Where the events are: the two options, the Pushgateway's the default.
    let history = var("history");
    assert_eq!(history["type"], "custom");
    let options: Vec<(&str, &str)> = history["options"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| (o["text"].as_str().unwrap(), o["value"].as_str().unwrap()))
        .collect();
    assert_eq!(
        options,
        [
            ("Pushgateway (scraped)", PUSHGATEWAY_HISTORY),
            ("Remote-write store", REMOTE_WRITE_HISTORY)
        ]
    );
    assert_eq!(history["current"]["value"], PUSHGATEWAY_HISTORY);

    const ALLOWED: [&str; 8] = [
        "${history}",
        "$__range_s",
        "$__range",
        "$__interval",
        "$__rate_interval",
        "${environment}",
        "${source}",
        "${datasource}",
    ];
    let all = panels(&d);
    assert!(all.len() >= 20, "headline plus detail panels");
    for p in &all {
        let title = p["title"].as_str().unwrap();
        assert_eq!(
            p["datasource"]["uid"], "${datasource}",
            "{title}: no hard-coded data source"
        );
        assert!(!targets(p).is_empty(), "{title} has queries");
        for t in targets(p) {
            assert_eq!(t["datasource"]["uid"], "${datasource}", "{title}");
            let e = expr(t);
            // Every `$` starts one of the allowed variables.
            for (i, _) in e.match_indices('$') {
                assert!(
                    ALLOWED.iter().any(|a| e[i..].starts_with(a)),
                    "{title}: only {ALLOWED:?} may be used, found {:?}",
                    &e[i..(i + 20).min(e.len())]
                );
            }
            // No fixed window: no literal range selector, offset or
            // `time() - N`. One idiom is allowed: the start of a bar's
            // interval, `time() - $__interval` as a number, which PromQL 2.x
            // can only read from a one-second subquery shifted by the interval.
            let compact: String = e
                .chars()
                .filter(|c| !c.is_whitespace())
                .collect::<String>()
                .replace(INTERVAL_START, "");
            for (i, _) in compact.match_indices('[') {
                assert!(
                    compact[i + 1..].starts_with('$'),
                    "{title}: a fixed range selector in {e}"
                );
            }
            assert!(!compact.contains("offset"), "{title}: an offset in {e}");
            for (i, _) in compact.match_indices("time()-") {
                assert!(
                    compact[i + "time()-".len()..].starts_with('$'),
                    "{title}: a fixed window in {e}"
                );
            }
        }
    }

    // The headline: the first row, four stats titled exactly so.
    let first_row: Vec<&Value> = d["panels"]
        .as_array()
        .unwrap()
        .iter()
        .skip(1)
        .take_while(|p| p["type"] != "row")
        .collect();
    let titles: Vec<&str> = first_row
        .iter()
        .map(|p| p["title"].as_str().unwrap())
        .collect();
    assert_eq!(titles, HEADLINE);
    assert!(first_row.iter().all(|p| p["type"] == "stat"));
    let units: Vec<&str> = first_row
        .iter()
        .map(|p| p["fieldConfig"]["defaults"]["unit"].as_str().unwrap())
        .collect();
    assert_eq!(units, ["suffix:/day", "s", "percent", "s"]);
}

/// The band a stat panel's thresholds colour `value` with: the last step
/// whose value is at or below it (Grafana's rule), named by its colour.
fn band_of(panel: &Value, value: f64) -> &'static str {
    let steps = panel["fieldConfig"]["defaults"]["thresholds"]["steps"]
        .as_array()
        .unwrap();
    let colour = steps
        .iter()
        .rfind(|s| s["value"].as_f64().is_none_or(|v| v <= value))
        .unwrap()["color"]
        .as_str()
        .unwrap();
    match colour {
        "dark-green" => "elite",
        "green" => "high",
        "orange" => "medium",
        "red" => "low",
        other => panic!("{} uses colour {other}", panel["title"]),
    }
}

#[test]
fn headline_thresholds_are_the_dora_2024_bands_the_code_uses() {
    let d = dashboard();
    let check = |title: &str, values: &[f64], code: &dyn Fn(f64) -> Band| {
        let p = panel(&d, title);
        for &v in values {
            assert_eq!(
                band_of(p, v),
                code(v).as_str(),
                "{title} at {v}: the dashboard's colour and the summary's band differ"
            );
        }
    };
    check(
        "Deployment frequency",
        &[
            0.0,
            0.01,
            1.0 / 30.0,
            0.05,
            1.0 / 7.0,
            0.5,
            1.0,
            13.0 / 7.0,
            20.0,
        ],
        &Band::of_frequency,
    );
    let seconds = |f: fn(i64) -> Band| move |v: f64| f(v as i64);
    check(
        "Lead time for changes",
        &[
            0.0,
            3_600.0,
            86_399.0,
            86_400.0,
            604_799.0,
            604_800.0,
            2_591_999.0,
            2_592_000.0,
            1e8,
        ],
        &seconds(Band::of_lead_time),
    );
    check(
        "Change failure rate",
        &[
            0.0, 4.9, 5.0, 5.1, 19.9, 20.0, 20.1, 39.9, 40.0, 40.1, 100.0,
        ],
        &|percent| Band::of_failure_rate(percent / 100.0),
    );
    check(
        "Failed deployment recovery time",
        &[
            0.0, 3_599.0, 3_600.0, 86_399.0, 86_400.0, 604_799.0, 604_800.0, 1e8,
        ],
        &seconds(Band::of_recovery),
    );
}

// ------------------------------------------------------ recording rules

const RULES: &str = "dashboards/dora-rules.yml";
/// The same rules for a remote-write store (each event series one sample).
const REMOTE_RULES: &str = "dashboards/dora-rules-remote-write.yml";

/// (record, expr) of every rule in `dashboards/dora-rules.yml`.
fn rule_exprs() -> Vec<(String, String)> {
    rule_exprs_of(RULES)
}

/// (record, expr) of every rule in the rules file `rel`.
fn rule_exprs_of(rel: &str) -> Vec<(String, String)> {
    let rules: Value = serde_saphyr::from_str(&repo_file(rel)).expect("rules file is YAML");
    rules["groups"]
        .as_array()
        .expect("groups")
        .iter()
        .flat_map(|g| g["rules"].as_array().expect("rules").iter())
        .map(|r| {
            (
                r["record"].as_str().expect("a recording rule").to_string(),
                r["expr"].as_str().expect("expr").to_string(),
            )
        })
        .collect()
}

/// Every `dora_*` selector of `expr` (with its `{…}` matchers) as
/// `last_over_time(selector[window])`: how a query over scraped Pushgateway
/// series becomes one over a remote-write store's one-sample series.
fn over_store(expr: &str, window: &str) -> String {
    let mut out = String::new();
    let mut rest = expr;
    while let Some(i) = rest.find("dora_") {
        let boundary = rest[..i]
            .chars()
            .last()
            .is_none_or(|c| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'));
        out.push_str(&rest[..i]);
        let name_len = rest[i..]
            .find(|c: char| !(c.is_ascii_lowercase() || c == '_'))
            .unwrap_or(rest.len() - i);
        let mut end = i + name_len;
        if rest[end..].starts_with('{') {
            end += rest[end..].find('}').expect("matchers close") + 1;
        }
        if boundary {
            out.push_str(&format!("last_over_time({}[{window}])", &rest[i..end]));
        } else {
            out.push_str(&rest[i..end]);
        }
        rest = &rest[end..];
    }
    out.push_str(rest);
    out
}

#[test]
fn the_remote_write_rules_are_the_rules_over_the_store() {
    let scraped = rule_exprs_of(RULES);
    let store = rule_exprs_of(REMOTE_RULES);
    assert_eq!(scraped.len(), store.len());
    for ((record, e), (r, e2)) in scraped.iter().zip(&store) {
        assert_eq!(record, r);
        assert_eq!(&over_store(e, "30d"), e2, "{record}");
    }
    assert_eq!(
        over_store(r#"a:dora_x or dora_y{s="1"} > 2"#, "7d"),
        r#"a:dora_x or last_over_time(dora_y{s="1"}[7d]) > 2"#
    );
}

#[test]
fn promtool_accepts_the_recording_rules() {
    for rel in [RULES, REMOTE_RULES] {
        let out = std::process::Command::new("/usr/bin/promtool")
            .args(["check", "rules"])
            .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join(rel))
            .output()
            .expect("run promtool (Debian package `prometheus`)");
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            out.status.success(),
            "promtool check rules {rel} failed:\n{text}"
        );
        assert!(text.contains("SUCCESS"), "{text}");
    }
    let records: Vec<String> = rule_exprs().into_iter().map(|(r, _)| r).collect();
    for key in [
        "dora:deployment_frequency:per_day7d",
        "dora:lead_time_seconds:median7d",
        "dora:change_failure_rate:ratio7d",
        "dora:recovery_seconds:median7d",
    ] {
        assert!(records.iter().any(|r| r == key), "{key} in {records:?}");
    }
}

// ------------------------------------------------------------- scenario

const H: i64 = 3_600;
const DAY: i64 = 86_400;
/// Every event happens half an hour past a whole number of hours ago, so
/// none sits on the edge of a one-day bucket counted back from "now".
const HALF: i64 = 1_800;
const TOKEN: &str = "ghs_dashboardScenarioToken0123456789";
const CLUSTER: &str = "prod-eks";
const REGION: &str = "eu-west-1";

/// A 40-hex-digit sha, distinct per `n`.
fn sha(n: u64) -> String {
    format!("{n:040x}")
}

/// The deploy workflows: (file, name, workflow id).
type Workflow = (&'static str, &'static str, u64);
const API: Workflow = ("deploy-api.yml", "Deploy API", 2001);
const WEB: Workflow = ("deploy-web.yml", "Deploy Web", 2002);

/// One run: (run id, workflow, conclusion, finished hours ago, head commit hours ago).
type Run = (u64, Workflow, &'static str, i64, i64);

/// The deploy workflows' runs on `main`. The range the dashboard is checked
/// on is the last 7 days = 168 hours.
const RUNS: [Run; 13] = [
    (9101, API, "success", 216, 217), // outside the range; head lead 1h
    (9102, API, "failure", 192, 193), // outside the range
    (9103, API, "success", 144, 146), // recovers 9102: 48h; per change 6h (compare below)
    (9104, API, "success", 120, 124), // head lead 4h (compare lists no commit times)
    (9105, API, "failure", 72, 73),
    (9106, API, "failure", 71, 72),
    (9107, API, "success", 69, 70), // recovers 9105: 3h; per change 4h (compare below)
    (9108, API, "success", 20, 21), // head lead 1h
    (9201, WEB, "success", 130, 135), // head lead 5h (first success: nothing to compare)
    (9202, WEB, "failure", 50, 51),
    (9203, WEB, "success", 48, 50), // recovers 9202: 2h; head lead 2h
    (9204, WEB, "success", 10, 13), // head lead 3h
    (9205, WEB, "failure", 6, 7),   // a failure streak still open
];

/// Compares with commit times: (base run, head run, commits' hours ago).
/// 9101→9103 shipped commits of 193h, 150h and 146h ago; deployed 144h ago
/// their lead times are 49h, 6h and 2h: median 6h. 9104→9107 shipped 81h,
/// 73h, 70h ago, deployed 69h ago: 12h, 4h, 1h: median 4h. Every other
/// compare lists one commit without its time (changes known, lead time per
/// change not: the head commit's counts).
const COMPARES: [(u64, u64, [i64; 3]); 2] =
    [(9101, 9103, [193, 150, 146]), (9104, 9107, [81, 73, 70])];

/// 9201 → 9203 shipped one commit, 9203's head (50h ago, so 9203's lead
/// time stays 2h), git's revert of 9201's commit: 9201 failed as a change,
/// recovered by 9203 (130h − 48h = 82h).
const REVERT: (u64, u64, i64) = (9201, 9203, 50);

/// Incidents, as GitHub issues labelled `incident`: (number, body, opened
/// hours ago, closed hours ago). In environment production (the input).
///   #51 names 9201's sha: explicit on 9201 (130h ago), resolved 126h ago:
///       recovery 4h (before the revert's 82h: the first intervention),
///       time to restore 3h;
///   #52 names nothing, opened 125h ago: the latest deployment before it is
///       9201 (5h, inside the 24h window): window on 9201, still open;
///   #53 names nothing, opened 90h ago, 30h after the latest deployment
///       (9104, 120h): unlinked, time to restore 1h, never in CFR;
///   #54 names run 9101's URL: explicit on 9101 (216h ago, outside the
///       week), resolved 213h ago: recovery 3h.
fn incidents() -> [(u64, String, i64, Option<i64>); 4] {
    [
        (
            51,
            format!("Checkout 500s. root cause: {}", sha(9201)),
            129,
            Some(126),
        ),
        (52, "Carts vanish".to_string(), 125, None),
        (53, "The CDN is down".to_string(), 90, Some(89)),
        (
            54,
            "Broken by https://github.com/octo-org/shop/actions/runs/9101".to_string(),
            215,
            Some(213),
        ),
    ]
}

/// Flux revisions of `flux-system/apps` (sha n, applied hours ago, commit
/// hours ago): lead times 1h (outside the range), 2h, 8h, 1h.
const REVISIONS: [(u64, i64, i64); 4] = [
    (0xf100, 200, 201),
    (0xf101, 140, 142),
    (0xf102, 96, 104),
    (0xf103, 18, 19),
];
/// `flux-system/infra`'s revision that is not Ready (12h ago): not a deployment.
const NOT_READY: (u64, i64, i64) = (0xf1ff, 12, 13);

/// What the cluster shows at each of the five scheduled cluster runs: the
/// `apps` revision (index into [`REVISIONS`]), whether `infra` exists (not
/// Ready), and each canary's (phase, hours ago).
struct Snapshot {
    apps: usize,
    infra: bool,
    web: (&'static str, i64),
    api: (&'static str, i64),
}

/// Canary `shop/web`: Succeeded 100h ago, rolled back (Failed) 60h ago,
/// Succeeded again 58h ago (recovery 2h), Failed 5h ago (open). Canary
/// `shop/api`: Succeeded 16h ago.
const SNAPSHOTS: [Snapshot; 5] = [
    snapshot(0, false, ("Initialized", 230), ("Initialized", 230)),
    snapshot(1, false, ("Succeeded", 100), ("Initialized", 230)),
    snapshot(2, false, ("Failed", 60), ("Initialized", 230)),
    snapshot(2, false, ("Succeeded", 58), ("Initialized", 230)),
    snapshot(3, true, ("Failed", 5), ("Succeeded", 16)),
];

/// A [`Snapshot`] row: the `apps` revision, whether `infra` is there, the
/// canaries' (phase, hours ago).
const fn snapshot(
    apps: usize,
    infra: bool,
    web: (&'static str, i64),
    api: (&'static str, i64),
) -> Snapshot {
    Snapshot {
        apps,
        infra,
        web,
        api,
    }
}

// The DORA numbers of the last 7 days (168h), by hand.
//
// Deployments (successes) in range:
//   workflows 7: Deploy API 9103, 9104, 9107, 9108; Deploy Web 9201, 9203, 9204
//   Flux 3:      apps revisions applied 140h, 96h, 18h ago (200h is outside)
//   Flagger 3:   web Succeeded 100h, 58h ago; api Succeeded 16h ago
//   = 13
// Failed deployments in range:
//   workflows 4: 9105, 9106, 9202, 9205 (9102 is outside)
//   Flagger 2:   web Failed 60h, 5h ago
//   found failed later 1: 9201 (incidents #51 and #52, reverted by 9203:
//                once); 9101's incident #54 is outside the range
//   = 7
// Deployment frequency = 13 / 7 days = 1.857…/day              → elite (≥ 1/day)
// Change failure rate  = 7 / (13 + 6) = 36.842…%               → medium (≤ 40 %)
//   (9201 is one of the 13 attempts already: found failed, not a new one)
// Lead time: per deployment, per-change median where known else head commit:
//   9103 6h, 9104 4h, 9107 4h, 9108 1h, 9201 5h, 9203 2h, 9204 3h;
//   Flux 2h, 8h, 1h. Sorted: 1 1 2 2 3 4 4 5 6 8 (hours), ten values:
//   Prometheus' quantile(0.5) interpolates rank 0.5 × 9 = 4.5 between
//   3h and 4h = 3.5h = 12 600 s                                → elite (< 1 day)
// Recovery: 9103 48h, 9107 3h, 9203 2h, canary web 2h, and 9201 found
//   failed: the first of #51 closed (4h) and the revert (82h) = 4h.
//   Sorted 2 2 3 4 48: rank 2 → 3h = 10 800 s                     → high (< 1 day)
const FREQUENCY_ALL: f64 = 13.0 / 7.0;
const CFR_ALL: f64 = 100.0 * 7.0 / 19.0;
const LEAD_ALL: f64 = 3.5 * 3_600.0;
const RECOVERY_ALL: f64 = 3.0 * 3_600.0;

// The same with source = Deploy API and web (Grafana sends `(Deploy API|web)`):
//   deployments: 9103, 9104, 9107, 9108 + web Succeeded 100h, 58h = 6 → 6/7 per day → high
//   failures: 9105, 9106 + web Failed 60h, 5h = 4; CFR 4/10 = 40 %      → medium (≤ 40 %)
//   lead: 6h 4h 4h 1h → sorted 1 4 4 6 → rank 1.5 → 4h = 14 400 s      → elite
//   recovery: 48h, 3h + web 2h → sorted 2 3 48 → 3h = 10 800 s          → high
//   (9201, found failed, is Deploy Web's: not picked)
const FREQUENCY_PICKED: f64 = 6.0 / 7.0;
const CFR_PICKED: f64 = 40.0;
const LEAD_PICKED: f64 = 4.0 * 3_600.0;
const RECOVERY_PICKED: f64 = 3.0 * 3_600.0;

/// The Pushgateway and Prometheus holding the scenario, and the moment the
/// queries are evaluated at.
struct Scenario {
    _pg: Pushgateway,
    prom: Prometheus,
    /// A remote-write receiver the same runs wrote to, beside the Pushgateway.
    remote: Prometheus,
    at: f64,
}

fn ago(now: Timestamp, hours: i64) -> Timestamp {
    now - SignedDuration::from_secs(hours * H + HALF)
}

/// A run as the REST API lists it: the fixture's real shape, these values.
fn run_json(
    now: Timestamp,
    (id, (file, name, workflow_id), conclusion, finished, committed): Run,
) -> Value {
    let mut r = support::fixture_run();
    r["id"] = json!(id);
    r["name"] = json!(name);
    r["path"] = json!(format!(".github/workflows/{file}"));
    r["workflow_id"] = json!(workflow_id);
    r["conclusion"] = json!(conclusion);
    r["updated_at"] = json!(ago(now, finished).to_string());
    r["created_at"] = json!(ago(now, finished).to_string());
    r["run_started_at"] = json!(ago(now, finished).to_string());
    r["head_sha"] = json!(sha(id));
    r["head_commit"]["id"] = json!(sha(id));
    r["head_commit"]["timestamp"] = json!(ago(now, committed).to_string());
    r["html_url"] = json!(format!(
        "https://github.com/octo-org/shop/actions/runs/{id}"
    ));
    r
}

/// An issue as the REST API lists it (GitHub's documented example, these values).
fn issue_json(
    now: Timestamp,
    (number, body, opened, closed): (u64, String, i64, Option<i64>),
) -> Value {
    let text = repo_file("tests/fixtures/github/issue.json");
    let mut i: Value = serde_json::from_str(&text).unwrap();
    i["number"] = json!(number);
    i["html_url"] = json!(format!("https://github.com/octo-org/shop/issues/{number}"));
    i["body"] = json!(body);
    i["created_at"] = json!(ago(now, opened).to_string());
    i["updated_at"] = json!(ago(now, closed.unwrap_or(opened)).to_string());
    if let Some(c) = closed {
        i["state"] = json!("closed");
        i["state_reason"] = json!("completed");
        i["closed_at"] = json!(ago(now, c).to_string());
    }
    i
}

/// GitHub REST: both workflows' runs, the compares (a revert among them),
/// the incidents, and the commits of the Flux revisions.
async fn github(now: Timestamp) -> GitHubMock {
    let mut gh = GitHub::new();
    for workflow in [API, WEB] {
        let runs: Vec<Value> = RUNS
            .iter()
            .filter(|r| r.1 == workflow)
            .rev() // newest first, as GitHub lists them
            .map(|r| run_json(now, *r))
            .collect();
        gh = gh.runs(workflow.0, &runs);
    }
    for (base, head, commits) in COMPARES {
        let listed: Vec<Value> = commits
            .iter()
            .enumerate()
            .map(|(i, h)| {
                let id = if i == 2 {
                    sha(head)
                } else {
                    sha(0xc000 + head * 10 + i as u64)
                };
                commit_json(&id, ago(now, *h), ago(now, *h))
            })
            .collect();
        gh = gh.compare(&sha(base), &sha(head), compare_body(3, listed));
    }
    let (reverted, by, committed) = REVERT;
    let mut revert = commit_json(&sha(by), ago(now, committed), ago(now, committed));
    revert["commit"]["message"] = json!(format!(
        "Revert \"Add checkout v2\"\n\nThis reverts commit {}.\n",
        sha(reverted)
    ));
    gh = gh.compare(&sha(reverted), &sha(by), compare_body(1, vec![revert]));
    let issues: Vec<Value> = incidents()
        .into_iter()
        .map(|i| issue_json(now, i))
        .collect();
    gh = gh.mock(
        Mock::given(method("GET"))
            .and(path("/repos/octo-org/shop/issues"))
            .respond_with(ResponseTemplate::new(200).set_body_json(issues)),
    );
    gh = gh.any_compare(compare_body(1, vec![]));
    for (n, _, committed) in REVISIONS.iter().chain([&NOT_READY]) {
        let at = ago(now, *committed);
        gh = gh.commit(&sha(*n), commit_json(&sha(*n), at, at));
    }
    gh.start().await
}

/// The scheduled workflows-mode leg: both deploy workflows' history.
async fn record_workflows(pg: &Pushgateway, remote: &Prometheus, gh: &GitHubMock) {
    let out = Action::new()
        .scheduled("17 * * * *")
        .input("workflows", &format!("{}, {}", API.0, WEB.0))
        .input("environment", "production")
        .input("pushgateway-url", &pg.url)
        .input("remote-write-url", &remote.write_url())
        .input("github-token", TOKEN)
        .env("GITHUB_API_URL", &gh.uri())
        .run_expecting(0)
        .await;
    assert_eq!(
        (out.output("deployments"), out.output("failures")),
        ("8", "5"),
        "all 13 runs are in the 30-day lookback"
    );
}

// ---- Flux and Flagger through cluster mode -------------------------------
//
// Five scheduled `mode: cluster` runs against the fake API server, the
// cluster's objects changing in between as time went by. Object shapes are
// Flux v1 Kustomization / GitRepository and Flagger v1beta1 Canary.

const KUSTOMIZATIONS: &str =
    "/apis/kustomize.toolkit.fluxcd.io/v1/namespaces/flux-system/kustomizations";
const GIT_REPOSITORIES: &str =
    "/apis/source.toolkit.fluxcd.io/v1/namespaces/flux-system/gitrepositories";
const CANARIES: &str = "/apis/flagger.app/v1beta1/namespaces/shop/canaries";

fn kustomization(name: &str, revision: u64, ready: bool, at: Timestamp) -> Value {
    let revision = format!("main@sha1:{}", sha(revision));
    let k = if ready {
        Kustomization::ready(name, &revision, at)
    } else {
        Kustomization::failing(name, &revision, at)
    };
    k.json()
}

/// Flux and Flagger history through the binary: one `mode: cluster` run per
/// [`SNAPSHOTS`] entry, in order (recovery is found from what earlier runs
/// stored). Needs cluster mode (issue 4).
async fn record_cluster(pg: &Pushgateway, remote: &Prometheus, gh: &GitHubMock, now: Timestamp) {
    let cluster = Cluster::new(CLUSTER, REGION).start_with(Some(pg)).await;
    let api = &cluster.api;
    for (i, s) in SNAPSHOTS.iter().enumerate() {
        let (rev, applied, _) = REVISIONS[s.apps];
        let mut kustomizations = vec![kustomization("apps", rev, true, ago(now, applied))];
        if s.infra {
            kustomizations.push(kustomization(
                "infra",
                NOT_READY.0,
                false,
                ago(now, NOT_READY.1),
            ));
        }
        api.set_object(KUSTOMIZATIONS, k8s_list("Kustomization", kustomizations));
        api.set_object(
            GIT_REPOSITORIES,
            k8s_list(
                "GitRepository",
                vec![git_repository("https://github.com/octo-org/shop")],
            ),
        );
        api.set_object(
            CANARIES,
            k8s_list(
                "Canary",
                vec![
                    Canary::new("web", s.web.0, ago(now, s.web.1)).json(),
                    Canary::new("api", s.api.0, ago(now, s.api.1)).json(),
                ],
            ),
        );
        let wanted = if s.infra {
            "flux-system/apps, flux-system/infra"
        } else {
            "flux-system/apps"
        };
        let out = cluster
            .signed_in(Action::new())
            .env("GITHUB_EVENT_NAME", "schedule")
            .input("mode", "cluster")
            .input("kustomizations", wanted)
            .input("canary-namespaces", "shop")
            .input("environment", "production")
            .input("remote-write-url", &remote.write_url())
            .input("github-token", TOKEN)
            .env("GITHUB_API_URL", &gh.uri())
            .run()
            .await;
        if out.code != 0 {
            out.assert_code(0);
        }
        assert!(
            out.error_lines().is_empty(),
            "cluster run {}: {}",
            i + 1,
            out.stdout
        );
    }
}

impl Scenario {
    /// Pushes the scenario through the binary and waits until Prometheus
    /// has scraped every sample the Pushgateway holds.
    async fn start() -> Scenario {
        // Whole seconds, as GitHub and Kubernetes write their times.
        let now = Timestamp::from_second(Timestamp::now().as_second()).unwrap();
        let pg = Pushgateway::start().await;
        let prom = Prometheus::start(&pg).await;
        let remote = Prometheus::receiver("60d").await;
        let gh = github(now).await;
        // The workflow leg and the cluster runs write distinct groups: at once.
        tokio::join!(
            record_workflows(&pg, &remote, &gh),
            record_cluster(&pg, &remote, &gh, now)
        );

        let groups = pg.groups().await;
        assert_eq!(
            groups.len(),
            13 + 5 + 5 + 2 + 4 + 1,
            "13 runs, 5 Flux revisions, 5 canary outcomes, 2 canary phases, 4 incidents, 1 revert: {:#?}",
            groups.iter().map(|g| &g.labels).collect::<Vec<_>>()
        );
        let samples: usize = groups
            .iter()
            .flat_map(|g| g.metrics.iter())
            .filter(|(name, _)| name.starts_with("dora_"))
            .map(|(_, s)| s.len())
            .sum();
        let want = samples as f64;
        prom.query_until(
            r#"count({__name__=~"dora_.+"})"#,
            |r| r.first().is_some_and(|s| s.value == want),
            Duration::from_secs(30),
        )
        .await;
        let at = Timestamp::now().as_millisecond() as f64 / 1000.0;
        Scenario {
            _pg: pg,
            prom,
            remote,
            at,
        }
    }

    /// An instant query at the scenario's evaluation time.
    async fn query(&self, promql: &str) -> Result<Vec<(BTreeMap<String, String>, f64)>, String> {
        self.query_on(&self.prom, promql).await
    }

    /// An instant query of `prom` at the scenario's evaluation time.
    async fn query_on(
        &self,
        prom: &Prometheus,
        promql: &str,
    ) -> Result<Vec<(BTreeMap<String, String>, f64)>, String> {
        let body = api(
            &prom.url,
            "query",
            &[("query", promql), ("time", &self.at.to_string())],
        )
        .await?;
        match body["resultType"].as_str() {
            Some("vector") => Ok(body["result"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| (labels(&r["metric"]), value(&r["value"][1])))
                .collect()),
            Some("scalar") => Ok(vec![(BTreeMap::new(), value(&body["result"][1]))]),
            other => Err(format!("want a vector, got {other:?}")),
        }
    }

    /// A range query over the `range_s` before the evaluation time, as
    /// Grafana runs a time series panel: each series' points (time, value).
    async fn query_range(
        &self,
        promql: &str,
        range_s: i64,
        step_s: i64,
    ) -> Result<Vec<(BTreeMap<String, String>, Vec<(f64, f64)>)>, String> {
        let body = api(
            &self.prom.url,
            "query_range",
            &[
                ("query", promql),
                ("start", &(self.at - range_s as f64).to_string()),
                ("end", &self.at.to_string()),
                ("step", &step_s.to_string()),
            ],
        )
        .await?;
        Ok(body["result"]
            .as_array()
            .ok_or("no result")?
            .iter()
            .map(|r| {
                let points = r["values"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|p| (p[0].as_f64().unwrap(), value(&p[1])))
                    .collect();
                (labels(&r["metric"]), points)
            })
            .collect())
    }

    /// The single value `promql` answers; panics otherwise.
    async fn scalar(&self, promql: &str) -> f64 {
        match self.query(promql).await {
            Ok(r) if r.len() == 1 => r[0].1,
            other => panic!("{promql}: want one value, got {other:?}"),
        }
    }
}

/// GET `/api/v1/{endpoint}`; the `data` of a success, else Prometheus' error.
async fn api(base: &str, endpoint: &str, params: &[(&str, &str)]) -> Result<Value, String> {
    let mut url = Url::parse(&format!("{base}/api/v1/{endpoint}")).unwrap();
    url.query_pairs_mut().extend_pairs(params);
    let body: Value = reqwest::get(url)
        .await
        .map_err(|e| e.to_string())?
        .json()
        .await
        .map_err(|e| e.to_string())?;
    if body["status"] != "success" {
        return Err(format!("{}: {}", body["errorType"], body["error"]));
    }
    Ok(body["data"].clone())
}

fn labels(metric: &Value) -> BTreeMap<String, String> {
    metric
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_string()))
        .collect()
}

fn value(v: &Value) -> f64 {
    v.as_str().unwrap().parse().unwrap()
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-9 * b.abs().max(1.0)
}

// ---------------------------------------------------------------- proof

#[tokio::test(flavor = "multi_thread")]
async fn every_panel_answers_and_the_headline_is_the_hand_computed_dora_numbers() {
    let s = Scenario::start().await;
    let d = dashboard();
    let all = Selection::all();

    // The variables' queries list the scenario's values, as Grafana asks
    // for them (`label_values(selector, label)` → the label values API).
    let mut options = BTreeMap::new();
    for v in d["templating"]["list"].as_array().unwrap() {
        if v["type"] != "query" {
            continue;
        }
        let definition = v["definition"].as_str().unwrap();
        assert_eq!(v["query"]["query"], definition);
        let inner = definition
            .strip_prefix("label_values(")
            .and_then(|r| r.strip_suffix(')'))
            .unwrap();
        let (selector, label) = inner.rsplit_once(',').unwrap();
        let selector = selector.replace("${environment}", ".*");
        let values = api(
            &s.prom.url,
            &format!("label/{}/values", label.trim()),
            &[("match[]", selector.as_str())],
        )
        .await
        .unwrap();
        options.insert(v["name"].as_str().unwrap().to_string(), values);
    }
    assert_eq!(options["environment"], json!(["production"]));
    assert_eq!(
        options["source"],
        json!(["Deploy API", "Deploy Web", "api", "apps", "infra", "web"])
    );

    // Every target of every panel, rows included: no error, no empty answer.
    // Time series panels are range queries in Grafana: those run over the
    // week too, one point per `$__interval`.
    let mut failures = Vec::new();
    let mut evaluated = 0;
    for p in panels(&d) {
        let title = p["title"].as_str().unwrap();
        for t in targets(p) {
            let q = interpolate(&d, p, t, &all);
            evaluated += 1;
            match s.query(&q).await {
                Ok(r) if r.is_empty() => {
                    failures.push(format!("{title} {}: empty\n{q}", t["refId"]))
                }
                Ok(_) => {}
                Err(e) => failures.push(format!("{title} {}: {e}\n{q}", t["refId"])),
            }
            if t["range"] == true {
                match s.query_range(&q, all.range_s, DAY).await {
                    Ok(r) if r.is_empty() => {
                        failures.push(format!("{title} {} (range): empty\n{q}", t["refId"]))
                    }
                    Ok(_) => {}
                    Err(e) => failures.push(format!("{title} {} (range): {e}\n{q}", t["refId"])),
                }
            }
        }
    }
    assert!(evaluated >= 25, "{evaluated} targets");
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));

    // The headline, All selected, against the hand-computed numbers.
    let headline = |sel: Selection| {
        let d = &d;
        let s = &s;
        async move {
            let mut got = Vec::new();
            for title in HEADLINE {
                let p = panel(d, title);
                got.push(s.scalar(&interpolate(d, p, targets(p)[0], &sel)).await);
            }
            got
        }
    };
    // The band each headline stat's thresholds give its value.
    let bands = |values: &[f64]| -> Vec<&str> {
        HEADLINE
            .iter()
            .zip(values)
            .map(|(title, v)| band_of(panel(&d, title), *v))
            .collect()
    };
    let got = headline(Selection::all()).await;
    let want = [FREQUENCY_ALL, LEAD_ALL, CFR_ALL, RECOVERY_ALL];
    for ((title, g), w) in HEADLINE.iter().zip(&got).zip(want) {
        assert!(close(*g, w), "{title}: dashboard {g}, by hand {w}");
    }
    assert_eq!(bands(&got), ["elite", "elite", "medium", "high"]);

    // Two sources picked: Grafana sends `(Deploy API|web)`.
    let picked = headline(Selection {
        range_s: 7 * DAY,
        environment: vec!["production"],
        source: vec!["Deploy API", "web"],
    })
    .await;
    let want = [FREQUENCY_PICKED, LEAD_PICKED, CFR_PICKED, RECOVERY_PICKED];
    for ((title, g), w) in HEADLINE.iter().zip(&picked).zip(want) {
        assert!(
            close(*g, w),
            "{title} (Deploy API|web): dashboard {g}, by hand {w}"
        );
    }
    assert_eq!(bands(&picked), ["high", "elite", "medium", "high"]);

    // Another environment: nothing there, so no numbers (not zeros).
    let none = Selection {
        range_s: 7 * DAY,
        environment: vec!["staging"],
        source: vec![],
    };
    for title in [
        "Lead time for changes",
        "Change failure rate",
        "Failed deployment recovery time",
    ] {
        let r = s.query(&panel_query(&d, title, 0, &none)).await.unwrap();
        assert!(r.is_empty(), "{title} in staging: {r:?}");
    }
    assert_eq!(
        s.scalar(&panel_query(&d, "Deployment frequency", 0, &none))
            .await,
        0.0
    );

    // The range follows the picker: over 30 days the older events count too
    // (9101 success 216h ago, 9102 failure 192h ago, apps revision 200h ago):
    // 15 deployments / 30 days = 0.5/day; 7 failed of 22, and 9201 and 9101
    // found failed later (#51, #52, the revert; #54) = 9 of 22 = 40.9 %.
    let month = Selection {
        range_s: 30 * DAY,
        environment: vec![],
        source: vec![],
    };
    assert!(close(
        s.scalar(&panel_query(&d, "Deployment frequency", 0, &month))
            .await,
        0.5
    ));
    assert!(close(
        s.scalar(&panel_query(&d, "Change failure rate", 0, &month))
            .await,
        100.0 * 9.0 / 22.0
    ));
}

/// The value of each series `promql` answers, keyed by one label.
async fn by_label(s: &Scenario, promql: &str, label: &str) -> BTreeMap<String, f64> {
    s.query(promql)
        .await
        .unwrap_or_else(|e| panic!("{promql}: {e}"))
        .into_iter()
        .map(|(l, v)| (l.get(label).cloned().unwrap_or_default(), v))
        .collect()
}

fn map(pairs: &[(&str, f64)]) -> BTreeMap<String, f64> {
    pairs.iter().map(|(k, v)| (k.to_string(), *v)).collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn detail_panels_show_the_scenario_per_source() {
    let s = Scenario::start().await;
    let d = dashboard();
    let q = |title: &str, i: usize| panel_query(&d, title, i, &Selection::all());
    let assert_close = |title: &str, got: BTreeMap<String, f64>, want: BTreeMap<String, f64>| {
        assert_eq!(
            got.keys().collect::<Vec<_>>(),
            want.keys().collect::<Vec<_>>(),
            "{title}: {got:?}"
        );
        for (k, w) in &want {
            assert!(close(got[k], *w), "{title} {k}: got {}, want {w}", got[k]);
        }
    };

    let per_source: [(&str, &[(&str, f64)]); 6] = [
        (
            "Deployments in range by source",
            &[
                ("Deploy API", 4.0),
                ("Deploy Web", 3.0),
                ("apps", 3.0),
                ("web", 2.0),
                ("api", 1.0),
            ],
        ),
        // Deploy API: 9105, 9106 failed of 6; Deploy Web: 9202, 9205 of 5;
        // canary web: 2 Failed of 4 outcomes; Flux and canary api: none failed.
        (
            "Change failure rate by source",
            &[
                ("Deploy API", 100.0 * 2.0 / 6.0),
                ("Deploy Web", 40.0),
                ("apps", 0.0),
                ("web", 50.0),
                ("api", 0.0),
            ],
        ),
        // Lead times: Deploy API 6 4 4 1 h, Deploy Web 5 2 3 h, apps 2 8 1 h.
        // Medians: 4h, 3h, 2h. p90 (rank 0.9 × (n − 1)): API 2.7 → 4h + 0.7 × 2h
        // = 5.4h; Web 1.8 → 3h + 0.8 × 2h = 4.6h; apps 1.8 → 2h + 0.8 × 6h = 6.8h.
        (
            "Lead time median by source",
            &[
                ("Deploy API", 4.0 * 3600.0),
                ("Deploy Web", 3.0 * 3600.0),
                ("apps", 2.0 * 3600.0),
            ],
        ),
        (
            "Lead time p90 by source",
            &[
                ("Deploy API", 5.4 * 3600.0),
                ("Deploy Web", 4.6 * 3600.0),
                ("apps", 6.8 * 3600.0),
            ],
        ),
        // Recoveries: Deploy API 48h and 3h (median 25.5h), Deploy Web 2h, canary web 2h.
        (
            "Recovery time median by source",
            &[
                ("Deploy API", 25.5 * 3600.0),
                ("Deploy Web", 7200.0),
                ("web", 7200.0),
            ],
        ),
        // Commits shipped: API 9103 3, 9104 1, 9107 3, 9108 1; Web 9203 1, 9204 1.
        (
            "Commits shipped by source",
            &[("Deploy API", 8.0), ("Deploy Web", 2.0)],
        ),
    ];
    for (title, want) in per_source {
        let got = by_label(&s, &q(title, 0), "source").await;
        assert_close(title, got, map(want));
    }
    assert_eq!(s.query(&q("Recoveries", 0)).await.unwrap().len(), 4);
    // Rework = the 3 successes that recovered, of 7 successful workflow deployments.
    assert!(close(
        s.scalar(&q("Deployment rework rate", 0)).await,
        300.0 / 7.0
    ));
    // The newest revision per Kustomization: apps's (Ready, lead 1h), infra's (not Ready).
    let latest = by_label(&s, &q("Latest Flux revision", 1), "kustomization").await;
    assert_eq!(latest, map(&[("apps", 1.0), ("infra", 0.0)]));
    let lead = by_label(&s, &q("Latest Flux revision", 2), "kustomization").await;
    assert_eq!(lead, map(&[("apps", 3600.0)]));
    let phases: BTreeMap<String, String> = s
        .query(&q("Canary phases", 0))
        .await
        .unwrap()
        .into_iter()
        .map(|(l, _)| (l["canary"].clone(), l["phase"].clone()))
        .collect();
    assert_eq!(
        phases,
        [("api", "Succeeded"), ("web", "Failed")]
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .into()
    );
    // Recent deployments: 13 deployments + 6 failures, 10 with a lead time,
    // and the two queries' rows join (Grafana's merge) on identical labels.
    let rows = s.query(&q("Recent deployments", 0)).await.unwrap();
    let leads = s.query(&q("Recent deployments", 1)).await.unwrap();
    assert_eq!((rows.len(), leads.len()), (19, 10));
    for (l, _) in &leads {
        assert!(
            rows.iter().any(|(r, _)| r == l),
            "lead time row {l:?} joins no deployment"
        );
    }
    for (l, _) in &rows {
        for label in ["source", "status"] {
            assert!(l.contains_key(label), "{label} in {l:?}");
        }
    }

    // Deployments per day by event time, read as Grafana reads the bar chart
    // (range query, step 1d, ending now), though Prometheus has held the data
    // for seconds only: `@ end()` places each event on its own day.
    // The bar k days ago counts events [24k, 24k + 24) hours ago; every event
    // is half an hour past its listed hour (HALF), so 9106 (71h) is 71.5h ago.
    //   Deployments: 0: 9108 20.5h, 9204 10.5h, apps 18.5h, api 16.5h = 4;
    //     2: 9107 69.5h, 9203 48.5h, web 58.5h = 3;  4: apps 96.5h, web 100.5h = 2;
    //     5: 9104 120.5h, 9201 130.5h, apps 140.5h = 3;  6: 9103 144.5h = 1.
    //   Failures: 0: 9205 6.5h, web 5.5h = 2;
    //     2: 9106 71.5h, 9202 50.5h, web 60.5h = 3;  3: 9105 72.5h = 1.
    let per_day = |title: &'static str| {
        let p = panel(&d, title);
        let s = &s;
        let d = &d;
        async move {
            let mut days = BTreeMap::new();
            for t in targets(p) {
                let series = s
                    .query_range(&interpolate(d, p, t, &Selection::all()), 7 * DAY, DAY)
                    .await
                    .unwrap();
                for (_, points) in series {
                    for (at, v) in points {
                        let days_ago = ((s.at - at) / DAY as f64).round() as i64;
                        *days.entry(days_ago).or_insert(0.0) += v;
                    }
                }
            }
            days
        }
    };
    let days: Vec<(i64, f64)> = per_day("Deployments per interval by source")
        .await
        .into_iter()
        .collect();
    assert_eq!(days, [(0, 4.0), (2, 3.0), (4, 2.0), (5, 3.0), (6, 1.0)]);
    let days: Vec<(i64, f64)> = per_day("Failed deployments per interval by source")
        .await
        .into_iter()
        .collect();
    assert_eq!(days, [(0, 2.0), (2, 3.0), (3, 1.0)]);
}

#[tokio::test(flavor = "multi_thread")]
async fn recording_rules_and_the_original_queries_give_the_same_numbers() {
    let s = Scenario::start().await;

    // The recording rules' expressions, evaluated as Prometheus would.
    // 7 days: the headline's numbers (CFR as a ratio). 30 days: also 9101
    // (success, head lead 1h), 9102 (failure) and the apps revision of 200h
    // ago (lead 1h): 15 deployments / 30 = 0.5/day; 7 of 22 failed and 9201,
    // 9101 found failed later: 9 of 22; lead times 1 1 1 1 2 2 3 4 4 5 6 8 h
    // → rank 5.5 → 2.5h; recovery also 9101's 3h: 2 2 3 3 4 48 → 3h.
    let want: BTreeMap<&str, f64> = [
        ("dora:deployment_frequency:per_day7d", FREQUENCY_ALL),
        ("dora:lead_time_seconds:median7d", LEAD_ALL),
        ("dora:change_failure_rate:ratio7d", CFR_ALL / 100.0),
        ("dora:recovery_seconds:median7d", RECOVERY_ALL),
        ("dora:rework_rate:ratio7d", 3.0 / 7.0),
        ("dora:deployment_frequency:per_day30d", 0.5),
        ("dora:lead_time_seconds:median30d", 2.5 * 3600.0),
        ("dora:change_failure_rate:ratio30d", 9.0 / 22.0),
        ("dora:recovery_seconds:median30d", RECOVERY_ALL),
        ("dora:rework_rate:ratio30d", 3.0 / 8.0),
    ]
    .into();
    let rules = rule_exprs();
    assert_eq!(
        rules
            .iter()
            .map(|(r, _)| r.as_str())
            .collect::<BTreeSet<_>>(),
        want.keys().copied().collect(),
    );
    // The same records from the remote-write store the same runs wrote to.
    let from_store = rule_exprs_of(REMOTE_RULES);
    let evaluated = rules
        .iter()
        .map(|(r, e)| (&s.prom, r, e))
        .chain(from_store.iter().map(|(r, e)| (&s.remote, r, e)));
    for (prom, record, e) in evaluated {
        let r = s
            .query_on(prom, e)
            .await
            .unwrap_or_else(|err| panic!("{record}: {err}"));
        assert_eq!(
            r.len(),
            1,
            "{record}: one series (environment production): {r:?}"
        );
        assert_eq!(
            r[0].0.get("environment").map(String::as_str),
            Some("production"),
            "{record}"
        );
        assert!(
            close(r[0].1, want[record.as_str()]),
            "{record}: got {}, want {}",
            r[0].1,
            want[record.as_str()]
        );
    }

    // The original workflow's series carried `source`, `status`, `sha` and
    // `ref`; its dashboard's queries filter and group by them. Each query
    // with the answer on this history: (labels of a result, value), one
    // entry per result series; an empty list is an empty result.
    let api_sha = format!(
        r#"count(dora_workflow_deploy_event{{sha="{}",ref="main"}})"#,
        sha(9108)
    );
    let known: Vec<(&str, Vec<Answer>)> = vec![
        // Successful / failed workflow deployments in the last week.
        (
            r#"count(dora_workflow_deploy_timestamp{status="success"} > time() - 7*86400)"#,
            vec![(vec![], 7.0)],
        ),
        (
            r#"count(dora_workflow_deploy_timestamp{status="failure"} > time() - 7*86400)"#,
            vec![(vec![], 4.0)],
        ),
        // Every stored workflow run (one group each).
        ("sum(dora_workflow_deploy_event)", vec![(vec![], 13.0)]),
        // All 13 runs are on main.
        (
            r#"count(dora_workflow_deploy_event{ref="main"})"#,
            vec![(vec![], 13.0)],
        ),
        (
            r#"count by (ref) (dora_workflow_deploy_event{status="success"})"#,
            vec![(vec![("ref", "main")], 8.0)],
        ),
        // Failures on main per workflow: API 9102, 9105, 9106; Web 9202, 9205.
        (
            r#"sum by (source) (dora_workflow_deploy_event{ref="main",status="failure"})"#,
            vec![
                (vec![("source", "Deploy API")], 3.0),
                (vec![("source", "Deploy Web")], 2.0),
            ],
        ),
        (api_sha.as_str(), vec![(vec![], 1.0)]),
        (r#"dora_workflow_deploy_event{ref!="main"}"#, vec![]),
        // No second label for the same value.
        (r#"{__name__=~"dora_workflow_.+",branch!=""}"#, vec![]),
        // Head-commit lead time of all 8 successes: 1+2+4+1+1+5+2+3 = 19h / 8.
        (
            "avg(dora_workflow_lead_time_seconds)",
            vec![(vec![], 19.0 * 3600.0 / 8.0)],
        ),
        // Flux revisions applied in the last week: 140h, 96h, 18h and infra's (not Ready).
        (
            "count(dora_flux_applied_timestamp > time() - 7*86400)",
            vec![(vec![], 4.0)],
        ),
        ("sum(dora_flux_ready)", vec![(vec![], 4.0)]),
        (
            "max(dora_flux_lead_time_seconds)",
            vec![(vec![], 8.0 * 3600.0)],
        ),
        ("count(dora_flagger_canary_phase)", vec![(vec![], 2.0)]),
        (
            r#"count(dora_flagger_canary_timestamp{phase="Failed"} > time() - 7*86400)"#,
            vec![(vec![], 2.0)],
        ),
    ];
    // The documented list is checked too: each query docs/metrics.md shows
    // must be one of these, with its answer here.
    let documented = documented_original_queries();
    assert!(documented.len() >= 5, "{documented:?}");
    for q in &documented {
        assert!(
            known.iter().any(|(k, _)| k == q),
            "docs/metrics.md lists `{q}`: give its answer on this history here"
        );
    }
    assert!(
        documented.iter().any(|q| q.contains("ref=")),
        "{documented:?}"
    );
    for (q, want) in &known {
        let mut got = s.query(q).await.unwrap_or_else(|e| panic!("{q}: {e}"));
        got.sort_by(|a, b| a.0.cmp(&b.0));
        assert_eq!(got.len(), want.len(), "{q}: got {got:?}");
        for ((labels, value), (want_labels, want_value)) in got.iter().zip(want) {
            let want_labels: BTreeMap<String, String> = want_labels
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
            assert_eq!(labels, &want_labels, "{q}");
            assert!(
                close(*value, *want_value),
                "{q}: got {value}, want {want_value}"
            );
        }
    }
}

/// One result series of a query: its labels and its value.
type Answer = (Vec<(&'static str, &'static str)>, f64);

/// The queries of the "original queries keep working" list in
/// docs/metrics.md (the `- \`…\`` items after that sentence).
fn documented_original_queries() -> Vec<String> {
    let text = repo_file("docs/metrics.md");
    let (_, after) = text
        .split_once("The original queries keep working")
        .expect("docs/metrics.md: the \"original queries keep working\" list");
    after
        .lines()
        .skip_while(|l| !l.starts_with("- `"))
        .take_while(|l| l.starts_with("- `"))
        .map(|l| {
            l.trim_start_matches("- `")
                .trim_end_matches('`')
                .to_string()
        })
        .collect()
}

/// The same runs wrote to the Pushgateway and to a remote-write store: the
/// store holds the same series (names and labels), and the headline — every
/// selection the hand-computed test checks — gives the same numbers there,
/// with the dashboard's `history` variable on "Remote-write store".
#[tokio::test]
async fn a_remote_write_store_gives_the_same_headline() {
    let s = Scenario::start().await;
    let d = dashboard();

    let series = |prom: &Prometheus| {
        let url = prom.url.clone();
        async move {
            let body = api(
                &url,
                "series",
                &[
                    ("match[]", r#"{__name__=~"dora_.+"}"#),
                    ("start", "0"),
                    ("end", &(Timestamp::now().as_second() + 60).to_string()),
                ],
            )
            .await
            .unwrap();
            body.as_array()
                .unwrap()
                .iter()
                .map(labels)
                .collect::<BTreeSet<_>>()
        }
    };
    let scraped = series(&s.prom).await;
    let written = series(&s.remote).await;
    // Canary phases are state: the store keeps each phase a canary was in
    // when a run wrote it; the Pushgateway only the current one.
    let phase = |l: &BTreeMap<String, String>| l["__name__"] == "dora_flagger_canary_phase";
    let events = |set: &BTreeSet<BTreeMap<String, String>>| {
        set.iter()
            .filter(|l| !phase(l))
            .cloned()
            .collect::<BTreeSet<_>>()
    };
    assert_eq!(events(&scraped), events(&written));
    assert!(
        scraped
            .iter()
            .filter(|l| phase(l))
            .all(|l| written.contains(l))
    );
    assert!(events(&written).len() > 40, "{written:#?}");

    let selections = [
        Selection::all(),
        Selection {
            range_s: 7 * DAY,
            environment: vec!["production"],
            source: vec!["Deploy API", "web"],
        },
        Selection {
            range_s: 30 * DAY,
            environment: vec![],
            source: vec![],
        },
        Selection {
            range_s: 7 * DAY,
            environment: vec!["staging"],
            source: vec![],
        },
    ];
    for sel in &selections {
        for title in HEADLINE {
            let p = panel(&d, title);
            let t = targets(p)[0];
            let s = &s;
            let on = |prom, history| {
                let promql = interpolate_from(&d, p, t, sel, history);
                async move { s.query_on(prom, &promql).await.unwrap() }
            };
            let from_pushgateway = on(&s.prom, PUSHGATEWAY_HISTORY).await;
            let from_store = on(&s.remote, REMOTE_WRITE_HISTORY).await;
            assert_eq!(from_pushgateway.len(), from_store.len(), "{title}");
            for (a, b) in from_pushgateway.iter().zip(&from_store) {
                assert!(
                    close(a.1, b.1),
                    "{title} over {}s: Pushgateway {}, remote-write {}",
                    sel.range_s,
                    a.1,
                    b.1
                );
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_incidents_row_shows_the_scenarios_incidents_and_change_failures() {
    let s = Scenario::start().await;
    let d = dashboard();
    let query = |title: &str, i: usize| panel_query(&d, title, i, &Selection::all());
    // By hand (see `incidents()`), over the week: #52 is open; #51, #52 and
    // #53 opened in it (#54 is older); #51 (3h) and #53 (1h) were resolved
    // in it: median 2h; 9201 is the one deployment found failed, by both causes.
    assert_eq!(s.scalar(&query("Open incidents", 0)).await, 1.0);
    assert_eq!(s.scalar(&query("Incidents opened", 0)).await, 3.0);
    assert!(close(
        s.scalar(&query("Time to restore (median)", 0)).await,
        2.0 * 3_600.0
    ));
    assert_eq!(
        by_label(&s, &query("Change failures by cause", 0), "cause").await,
        map(&[("incident", 1.0), ("revert", 1.0)])
    );
    assert_eq!(
        by_label(&s, &query("Incidents", 1), "incident").await,
        map(&[("51", 3.0 * 3_600.0), ("53", 3_600.0)])
    );
    let opened = s.query(&query("Incidents", 0)).await.unwrap();
    let links: BTreeMap<String, (String, String)> = opened
        .into_iter()
        .map(|(l, _)| {
            let get = |k: &str| l.get(k).cloned().unwrap_or_default();
            (get("incident"), (get("link"), get("sha")))
        })
        .collect();
    let pinned = |link: &str, on: Option<u64>| (link.to_string(), on.map(sha).unwrap_or_default());
    assert_eq!(
        links,
        [
            ("51".to_string(), pinned("explicit", Some(9201))),
            ("52".to_string(), pinned("window", Some(9201))),
            ("53".to_string(), pinned("none", None)),
        ]
        .into()
    );
}
