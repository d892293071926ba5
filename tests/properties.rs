//! Bad input at scale: property tests over everything the action parses
//! from outside (event payloads, REST runs, inputs, durations, Flux
//! revisions and Git URLs) and everything it writes for another program to
//! parse back (Pushgateway paths and the text exposition).
//!
//! Each property states what must hold for *any* input, not for a handful of
//! examples: parsing returns a value or a clean error and never panics, and
//! where an encoding has a decoding the two round-trip. Inputs are generated
//! from the real payload shapes in `tests/fixtures` (GitHub's own examples),
//! mutated structurally: fields dropped or replaced by wrong types, null,
//! numbers out of range, huge or odd unicode strings, odd timestamps.
//!
//! A few properties go through real programs: the Pushgateway (group paths
//! and expositions with arbitrary label values must come back as the exact
//! labels) and the built binary (a mutated payload ends in exit 0 or 1 with
//! at most one `::error::` line, never a panic). Case counts are set per
//! property so the whole file runs in about 20 s (2 cores); the cargo-fuzz
//! targets in `fuzz/` run the same entry points for as long as one likes.

mod support;

use std::collections::BTreeMap;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use dora_action::dora::{self, Deploy, EventKey, History, Status};
use dora_action::inputs::{Branches, Inputs, Raw};
use dora_action::sinks::pushgateway::group_path;
use dora_action::sources::cluster::objects::{Revision, github_repository, parse_revision};
use dora_action::sources::payload::{self, Observation, Rules};
use dora_action::{Error, duration};
use jiff::Timestamp;
use proptest::prelude::*;
use proptest::sample::{Index, select};
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use reqwest::Url;
use serde_json::{Value, json};
use support::{Action, GitHubMock, fixture};

/// Proptest's settings with `cases` cases (the default is 256). Failures
/// found by the `TestRunner`-driven properties are kept, like those of the
/// `proptest!` ones, in `tests/properties.proptest-regressions`.
fn cases(cases: u32) -> Config {
    Config {
        cases,
        source_file: Some(file!()),
        ..Config::default()
    }
}

// ---------------------------------------------------------------------------
// Generators: odd values of every JSON type.

/// Strings a payload or an input should never be trusted to avoid.
fn odd_string() -> impl Strategy<Value = String> {
    odd_string_up_to(100_000)
}

/// [`odd_string`] with huge ones at most `max` characters long (the kernel
/// refuses environment variables over 128 KiB).
fn odd_string_up_to(max: usize) -> impl Strategy<Value = String> {
    prop_oneof![
        Just(String::new()),
        any::<String>(),
        "\\PC{0,24}",
        odd_timestamp().prop_map(|t| t.text),
        select(vec![
            " ",
            "\t",
            "success",
            "failure",
            "completed",
            "main",
            "null",
            "0",
            "-1",
            "💥",
            "\u{0}",
            "\u{202e}evil",
            "a\nb",
            "a\r\nb",
            "a\"b\\c",
            "..",
            ".",
            "/",
            "%",
            "%2F",
            "@base64",
            "==",
            "::error::x",
            "\u{feff}main",
            "ﬀ",
            "İ",
        ])
        .prop_map(String::from),
        // Huge: far beyond any real field, small enough to keep cases fast.
        (1usize..max, select(vec!["x", "é", "🚀", "\\", "\""])).prop_map(|(n, s)| s.repeat(n)),
    ]
}

/// Numbers at and beyond the edges of what the payload's fields hold.
fn odd_number() -> impl Strategy<Value = Value> {
    prop_oneof![
        any::<u64>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from), // NaN and infinities become null
        select(vec![
            json!(0),
            json!(-1),
            json!(1),
            json!(u64::MAX),
            json!(i64::MIN),
            json!(1e300),
            json!(-0.0),
            json!(1.5),
            json!(4294967296u64),
        ]),
    ]
}

/// Any JSON value, shallow, with odd leaves.
fn odd_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        odd_number(),
        odd_string().prop_map(Value::String),
    ];
    leaf.prop_recursive(2, 12, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map("[a-z_]{1,12}", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// An RFC 3339-shaped timestamp with each component possibly out of range,
/// and what it denotes when it is valid (an independent oracle: civil date
/// arithmetic written here, not jiff's).
#[derive(Debug, Clone)]
struct OddTimestamp {
    text: String,
    /// Nanoseconds since the epoch, when every component is in range.
    valid: Option<i128>,
    /// Whether a lenient parser may go either way (leap second, offsets of
    /// 24 h or more, more than 9 fraction digits, a space separator).
    lenient: bool,
}

fn odd_timestamp() -> impl Strategy<Value = OddTimestamp> {
    (
        (
            prop_oneof![0i32..=9999, 1960i32..=2100],
            0u32..=13,
            0u32..=32,
            select(vec!['T', 't', ' ']),
        ),
        (0u32..=25, 0u32..=61, 0u32..=61),
        prop::option::of("[0-9]{1,12}"),
        prop_oneof![
            Just(None),
            (any::<bool>(), 0u32..=25, 0u32..=61).prop_map(Some)
        ],
        any::<bool>(),
    )
        .prop_map(
            |((year, month, day, sep), (h, m, s), fraction, offset, lower_z)| {
                let mut text = format!("{year:04}-{month:02}-{day:02}{sep}{h:02}:{m:02}:{s:02}");
                if let Some(f) = &fraction {
                    text.push('.');
                    text.push_str(f);
                }
                let offset_seconds = match offset {
                    None => {
                        text.push(if lower_z { 'z' } else { 'Z' });
                        0
                    }
                    Some((negative, oh, om)) => {
                        text.push_str(&format!(
                            "{}{oh:02}:{om:02}",
                            if negative { '-' } else { '+' }
                        ));
                        let s = i64::from(oh * 3600 + om * 60);
                        if negative { -s } else { s }
                    }
                };
                let (oh, om) = offset.map_or((0, 0), |(_, h, m)| (h, m));
                let fraction_digits = fraction.as_ref().map_or(0, String::len);
                let in_range = (1..=12).contains(&month)
                    && day >= 1
                    && day <= days_in_month(year, month)
                    && h < 24
                    && m < 60
                    && s <= 60
                    && om < 60;
                let lenient = s == 60 || oh >= 24 || fraction_digits > 9 || sep == ' ';
                let valid = in_range.then(|| {
                    let days = days_from_civil(year, month, day);
                    let seconds =
                        days * 86_400 + i64::from(h * 3600 + m * 60 + s.min(59)) - offset_seconds;
                    let nanos: i128 = fraction.as_deref().map_or(0, |f| {
                        let nine: String =
                            f.chars().chain(std::iter::repeat('0')).take(9).collect();
                        nine.parse().unwrap()
                    });
                    i128::from(seconds) * 1_000_000_000 + nanos
                });
                OddTimestamp {
                    text,
                    valid,
                    lenient,
                }
            },
        )
}

fn is_leap(year: i32) -> bool {
    (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
}

fn days_in_month(year: i32, month: u32) -> u32 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
fn days_from_civil(year: i32, month: u32, day: u32) -> i64 {
    let y = i64::from(year) - i64::from(month <= 2);
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (i64::from(month) + 9) % 12;
    let doy = (153 * mp + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

// ---------------------------------------------------------------------------
// Payloads: GitHub's example shapes, mutated.

/// The fixtures that are payloads of a deploy event, with their event name.
fn payload_fixtures() -> Vec<(&'static str, Value)> {
    let mut out = Vec::new();
    for (event, dir) in [
        ("workflow_run", "workflow_run"),
        ("deployment_status", "deployment_status"),
    ] {
        let path = fixture(dir);
        let mut names: Vec<_> = std::fs::read_dir(&path)
            .expect("list fixtures")
            .map(|e| e.expect("fixture entry").path())
            .filter(|p| p.file_name().is_some_and(|n| n != "not_json.json"))
            .collect();
        names.sort();
        for p in names {
            let text = std::fs::read_to_string(&p).expect("read fixture");
            out.push((event, serde_json::from_str(&text).expect("fixture is JSON")));
        }
    }
    out
}

/// The fields the payload parser reads: mutations aim at them most of the time.
const READ_FIELDS: &[&str] = &[
    "action",
    "repository",
    "repository.full_name",
    "repository.default_branch",
    "workflow",
    "workflow.name",
    "workflow.path",
    "workflow_run",
    "workflow_run.id",
    "workflow_run.run_attempt",
    "workflow_run.updated_at",
    "workflow_run.head_sha",
    "workflow_run.head_branch",
    "workflow_run.conclusion",
    "workflow_run.event",
    "workflow_run.name",
    "workflow_run.path",
    "workflow_run.workflow_id",
    "workflow_run.head_commit",
    "workflow_run.head_commit.timestamp",
    "workflow_run.html_url",
    "workflow_run.repository.full_name",
    "workflow_run.repository.default_branch",
    "deployment",
    "deployment.id",
    "deployment.environment",
    "deployment.ref",
    "deployment.sha",
    "deployment_status",
    "deployment_status.id",
    "deployment_status.state",
    "deployment_status.created_at",
    "deployment_status.target_url",
    "deployment_status.log_url",
];

/// A step of a path into a JSON value.
#[derive(Debug, Clone, PartialEq)]
enum Step {
    Key(String),
    At(usize),
}

/// Every path in `v` (not the root), depth first.
fn all_paths(v: &Value, prefix: &mut Vec<Step>, out: &mut Vec<Vec<Step>>) {
    match v {
        Value::Object(map) => {
            for (k, child) in map {
                prefix.push(Step::Key(k.clone()));
                out.push(prefix.clone());
                all_paths(child, prefix, out);
                prefix.pop();
            }
        }
        Value::Array(items) => {
            for (i, child) in items.iter().enumerate() {
                prefix.push(Step::At(i));
                out.push(prefix.clone());
                all_paths(child, prefix, out);
                prefix.pop();
            }
        }
        _ => {}
    }
}

/// Where an edit lands: any existing path, or one of the fields the parser reads.
#[derive(Debug, Clone)]
enum Target {
    Existing(Index),
    Read(&'static str),
}

#[derive(Debug, Clone)]
enum Edit {
    Remove(Target),
    Replace(Target, Value),
}

fn edit() -> impl Strategy<Value = Edit> {
    let target = prop_oneof![
        1 => any::<Index>().prop_map(Target::Existing),
        2 => select(READ_FIELDS).prop_map(Target::Read),
    ];
    prop_oneof![
        1 => target.clone().prop_map(Edit::Remove),
        4 => (target, odd_json()).prop_map(|(t, v)| Edit::Replace(t, v)),
    ]
}

fn dotted(path: &str) -> Vec<Step> {
    path.split('.').map(|k| Step::Key(k.to_string())).collect()
}

/// The path an edit's target denotes in `v` (`None` if `v` has no paths).
fn resolve(v: &Value, target: &Target) -> Option<Vec<Step>> {
    match target {
        Target::Read(p) => Some(dotted(p)),
        Target::Existing(i) => {
            let mut paths = Vec::new();
            all_paths(v, &mut Vec::new(), &mut paths);
            (!paths.is_empty()).then(|| paths[i.index(paths.len())].clone())
        }
    }
}

/// Applies an edit; a missing parent of a read field is created (replacing
/// whatever non-object was there), so every read field can be set.
fn apply(v: &mut Value, edit: &Edit) {
    let (target, new) = match edit {
        Edit::Remove(t) => (t, None),
        Edit::Replace(t, value) => (t, Some(value.clone())),
    };
    let Some(path) = resolve(v, target) else {
        return;
    };
    let (last, parents) = path.split_last().expect("paths are not empty");
    let mut cur = v;
    for step in parents {
        cur = match step {
            Step::Key(k) => {
                if !cur.is_object() {
                    if new.is_none() {
                        return;
                    }
                    *cur = json!({});
                }
                cur.as_object_mut()
                    .unwrap()
                    .entry(k.clone())
                    .or_insert_with(|| json!({}))
            }
            Step::At(i) => match cur.get_mut(*i) {
                Some(c) => c,
                None => return,
            },
        };
    }
    match (last, new) {
        (Step::Key(k), None) => {
            if let Some(map) = cur.as_object_mut() {
                map.remove(k);
            }
        }
        (Step::Key(k), Some(new)) => {
            if !cur.is_object() {
                *cur = json!({});
            }
            cur[k.as_str()] = new;
        }
        (Step::At(i), None) => {
            if let Some(items) = cur.as_array_mut().filter(|a| *i < a.len()) {
                items.remove(*i);
            }
        }
        (Step::At(i), Some(new)) => {
            if let Some(slot) = cur.get_mut(*i) {
                *slot = new;
            }
        }
    }
}

/// A fixture with 1–4 edits, and the event name it was sent as (usually its own).
#[derive(Debug, Clone)]
struct Mutated {
    event: &'static str,
    value: Value,
}

fn mutated(fixtures: Vec<(&'static str, Value)>) -> impl Strategy<Value = Mutated> {
    (
        select(fixtures),
        prop::collection::vec(edit(), 1..5),
        prop_oneof![8 => Just(None), 1 => select(vec!["workflow_run", "deployment_status", "push", ""]).prop_map(Some)],
    )
        .prop_map(|((event, original), edits, other_event)| {
            let mut value = original;
            for e in &edits {
                apply(&mut value, e);
            }
            Mutated {
                event: other_event.unwrap_or(event),
                value,
            }
        })
}

fn rules(branches: &Branches) -> Rules<'_> {
    Rules {
        deploy_branches: branches,
        environment: "production",
    }
}

/// What must hold of every deployment the parser accepts: the fields that
/// become labels are filled, and its group renders and has a path that
/// decodes back to its labels.
fn check_deploy(d: &Deploy) -> Result<(), TestCaseError> {
    prop_assert!(!d.repository.is_empty(), "empty repository: {d:?}");
    prop_assert!(!d.source.is_empty(), "empty source: {d:?}");
    prop_assert!(!d.branch.is_empty(), "empty branch: {d:?}");
    prop_assert!(!d.sha.is_empty(), "empty sha: {d:?}");
    let group = dora::deploy_group(d);
    prop_assert!(group.exposition.contains(dora::names::DEPLOY_TIMESTAMP));
    let labels = decode_group_path(&wire_path(&group_path(
        "dora",
        group.grouping.iter().map(|(k, v)| (k.as_str(), v.as_str())),
    )))?;
    prop_assert_eq!(labels, group.labels("dora"));
    Ok(())
}

#[test]
fn mutated_payloads_parse_to_a_deploy_or_a_clean_error() {
    let fixtures = payload_fixtures();
    let branches = vec![
        Branches::DefaultBranch,
        Branches::Patterns(vec!["*".into()]),
    ];
    let mut runner = TestRunner::new(cases(1024));
    runner
        .run(&(mutated(fixtures), select(branches)), |(m, b)| {
            let bytes = serde_json::to_vec(&m.value).unwrap();
            match payload::parse(m.event, &bytes, &rules(&b)) {
                Ok(Observation::Deploy { deploy, .. }) => check_deploy(&deploy)?,
                Ok(Observation::NotADeploy { reason }) => prop_assert!(!reason.is_empty()),
                Err(e) => prop_assert!(
                    e.contains('`') || e.starts_with("not "),
                    "an error names the field or says what the payload is not: {e}"
                ),
            }
            Ok(())
        })
        .unwrap();
}

/// Whether `path` is, contains or lies inside a field the parser reads.
fn touches_read_field(path: &[Step]) -> bool {
    READ_FIELDS.iter().any(|f| {
        let f = dotted(f);
        let n = f.len().min(path.len());
        f[..n] == path[..n]
    })
}

#[test]
fn fields_the_parser_does_not_read_never_change_the_result() {
    let fixtures = payload_fixtures();
    let mut runner = TestRunner::new(cases(512));
    let strategy = (
        select(fixtures),
        prop::collection::vec((any::<Index>(), prop::option::of(odd_json())), 1..5),
    );
    runner
        .run(&strategy, |((event, original), edits)| {
            let mut value = original.clone();
            for (i, new) in edits {
                let mut paths = Vec::new();
                all_paths(&value, &mut Vec::new(), &mut paths);
                paths.retain(|p| !touches_read_field(p));
                if paths.is_empty() {
                    break;
                }
                let target = paths[i.index(paths.len())].clone();
                apply_at(&mut value, &target, new);
            }
            let b = Branches::DefaultBranch;
            let want = payload::parse_value(event, &original, &rules(&b));
            let got = payload::parse_value(event, &value, &rules(&b));
            prop_assert_eq!(got, want);
            Ok(())
        })
        .unwrap();
}

/// Removes (`None`) or replaces the value at an existing path.
fn apply_at(v: &mut Value, path: &[Step], new: Option<Value>) {
    let (last, parents) = path.split_last().expect("paths are not empty");
    let mut cur = v;
    for step in parents {
        cur = match step {
            Step::Key(k) => &mut cur[k.as_str()],
            Step::At(i) => &mut cur[*i],
        };
    }
    match (last, new) {
        (Step::Key(k), None) => {
            cur.as_object_mut().unwrap().remove(k);
        }
        (Step::At(i), None) => {
            cur.as_array_mut().unwrap().remove(*i);
        }
        (Step::Key(k), Some(new)) => cur[k.as_str()] = new,
        (Step::At(i), Some(new)) => cur[*i] = new,
    }
}

#[test]
fn arbitrary_bytes_and_cut_or_flipped_payloads_never_panic() {
    let texts: Vec<Vec<u8>> = payload_fixtures()
        .into_iter()
        .map(|(_, v)| serde_json::to_vec(&v).unwrap())
        .collect();
    let b = Branches::DefaultBranch;
    let strategy = prop_oneof![
        prop::collection::vec(any::<u8>(), 0..256),
        (
            select(texts),
            any::<Index>(),
            prop::collection::vec((any::<Index>(), any::<u8>()), 0..4)
        )
            .prop_map(|(mut t, cut, flips)| {
                for (at, byte) in flips {
                    let i = at.index(t.len());
                    t[i] = byte;
                }
                t.truncate(cut.index(t.len() + 1));
                t
            }),
    ];
    let mut runner = TestRunner::new(cases(512));
    runner
        .run(&strategy, |bytes| {
            for event in ["workflow_run", "deployment_status"] {
                if let Ok(Observation::Deploy { deploy, .. }) =
                    payload::parse(event, &bytes, &rules(&b))
                {
                    check_deploy(&deploy)?;
                }
            }
            Ok(())
        })
        .unwrap();
}

#[test]
fn numbers_beyond_u64_in_the_payload_text_are_clean_errors() {
    // serde_json reads these as floats (or refuses them); none is an id.
    let text = std::fs::read_to_string(fixture("workflow_run/success.json")).unwrap();
    let b = Branches::DefaultBranch;
    for number in [
        "18446744073709551616",
        "-1",
        "1e400",
        "1.0",
        "-0",
        "7001.5",
        "1e3",
    ] {
        let mutated = text.replace("\"id\": 7001,", &format!("\"id\": {number},"));
        assert_ne!(mutated, text, "the fixture's run id moved");
        match payload::parse("workflow_run", mutated.as_bytes(), &rules(&b)) {
            Err(e) => assert!(
                e.contains("workflow_run.id") || e.starts_with("not valid JSON"),
                "{number}: {e}"
            ),
            Ok(o) => panic!("{number}: accepted as a run id: {o:?}"),
        }
    }
}

proptest! {
    #![proptest_config(cases(1024))]

    /// Odd timestamps are read as the instant they denote, or refused with
    /// the field named; never shifted, never a panic.
    #[test]
    fn event_times_are_read_exactly_or_refused(t in odd_timestamp(), deployment in any::<bool>()) {
        let (event, file, field) = if deployment {
            ("deployment_status", "deployment_status/success.json", "deployment_status.created_at")
        } else {
            ("workflow_run", "workflow_run/success.json", "workflow_run.updated_at")
        };
        let mut v: Value =
            serde_json::from_str(&std::fs::read_to_string(fixture(file)).unwrap()).unwrap();
        apply(&mut v, &Edit::Replace(Target::Read(field), Value::String(t.text.clone())));
        let b = Branches::DefaultBranch;
        match (payload::parse_value(event, &v, &rules(&b)), t.valid) {
            (Ok(Observation::Deploy { deploy, .. }), Some(nanos)) => {
                prop_assert_eq!(deploy.time.as_nanosecond(), nanos, "{}", t.text);
                check_deploy(&deploy)?;
            }
            (Err(e), valid) => {
                prop_assert!(e.contains(field), "{}: {}", t.text, e);
                prop_assert!(valid.is_none() || t.lenient || jiff_range_edge(&t), "a valid time refused: {}: {}", t.text, e);
            }
            (Ok(o), valid) => prop_assert!(
                valid.is_some() || t.lenient,
                "an invalid time accepted: {}: {:?}", t.text, o
            ),
        }
    }

    /// A run read from the REST API maps exactly as the same run in a
    /// `workflow_run` event, whatever state the run is in.
    #[test]
    fn rest_runs_map_like_the_event_with_the_same_run(
        m in mutated(payload_fixtures()).prop_filter("workflow_run", |m| m.event == "workflow_run"),
        repository in "[a-z]{1,8}/[a-z]{1,8}",
        default_branch in prop::option::of(select(vec!["main", "master", "release"])),
    ) {
        let Some(run) = m.value.get("workflow_run").cloned() else { return Ok(()) };
        let mut repo = json!({"full_name": repository});
        if let Some(b) = default_branch {
            repo["default_branch"] = json!(b);
        }
        let payload = json!({"action": "completed", "workflow_run": run.clone(), "repository": repo});
        let b = Branches::DefaultBranch;
        let from_rest = payload::rest_run(run, &repository, default_branch, &rules(&b));
        let from_event = payload::parse_value("workflow_run", &payload, &rules(&b));
        if let Ok(Observation::Deploy { deploy, .. }) = &from_rest {
            check_deploy(deploy)?;
        }
        prop_assert_eq!(from_rest, from_event);
    }
}

/// Whether applying the offset takes a valid date beyond jiff's timestamp
/// range (-9999-01-01..=9999-12-31): such times are refused, rightly.
fn jiff_range_edge(t: &OddTimestamp) -> bool {
    t.valid.is_some_and(|n| {
        let max = Timestamp::MAX.as_nanosecond();
        let min = Timestamp::MIN.as_nanosecond();
        n > max || n < min
    })
}

// ---------------------------------------------------------------------------
// Inputs.

/// Values that are valid for some input, to mix with arbitrary ones.
const PLAUSIBLE: &[&str] = &[
    "auto",
    "event",
    "workflows",
    "cluster",
    "true",
    "false",
    "TRUE",
    "False",
    "30d",
    "0",
    "1d12h",
    "9223372036854775807s",
    "9223372036854775808s",
    "18446744073709551615s",
    "https://pushgateway.example:9091",
    "http://u:p@127.0.0.1:9091/pg/",
    "https://h/?q=1",
    "ftp://h",
    "observability/pushgateway:9091",
    "observability/pushgateway:http",
    "ns/svc:0",
    "ns/svc:65536",
    "prod-eks",
    "eu-west-1",
    "arn:aws:iam::123456789012:role/dora",
    "arn:aws:iam::123456789012:role/",
    "flux-system/applications",
    "*",
    "*, a/b",
    "a/b,\nc/d.e",
    "main, release/*",
    "deploy.yml",
    ",,,",
    "dora",
    "production",
];

fn input_value() -> impl Strategy<Value = String> {
    prop_oneof![
        2 => select(PLAUSIBLE).prop_map(String::from),
        2 => (select(PLAUSIBLE), odd_string_up_to(20_000), any::<bool>()).prop_map(|(p, s, before)| {
            if before { format!("{s}{p}") } else { format!("{p}{s}") }
        }),
        2 => odd_string_up_to(20_000),
    ]
}

/// [`input_value`] as a runner can hand it to a process: an environment
/// variable cannot hold NUL (`execve` takes C strings), so a value that had
/// one arrives cut there. Spawning with a NUL would fail the test harness,
/// not the action.
fn process_input_value() -> impl Strategy<Value = String> {
    input_value().prop_map(|v| match v.split_once('\0') {
        Some((before, _)) => before.to_string(),
        None => v,
    })
}

/// The documented inputs, as the drift test reads them: `Raw`'s fields.
fn input_names() -> Vec<String> {
    match serde_json::to_value(Raw::default()).unwrap() {
        Value::Object(map) => map.keys().cloned().collect(),
        _ => unreachable!("Raw serializes as an object"),
    }
}

fn env_of(pairs: &[(String, String)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| (format!("INPUT_{}", k.to_uppercase()), v.clone()))
        .collect()
}

#[test]
fn any_input_values_give_inputs_or_one_error_naming_the_input() {
    let names = input_names();
    assert!(names.len() >= 17, "inputs: {names:?}");
    let strategy = prop::collection::vec((select(names.clone()), input_value()), 0..8);
    let mut runner = TestRunner::new(cases(2048));
    runner
        .run(&strategy, |pairs| {
            match Inputs::from_env(env_of(&pairs)) {
                Ok(inputs) => {
                    prop_assert!(!inputs.job.chars().any(char::is_control));
                    prop_assert!(inputs.lookback > 0);
                    prop_assert!(inputs.retention != Some(0));
                    prop_assert!(inputs.lookback <= i64::MAX as u64, "{}", inputs.lookback);
                    prop_assert!(inputs.retention.is_none_or(|r| r <= i64::MAX as u64));
                    if let Some(url) = &inputs.pushgateway_url {
                        prop_assert!(matches!(url.scheme(), "http" | "https"));
                        prop_assert!(url.query().is_none() && url.fragment().is_none());
                    }
                    if inputs.aws_region.is_some() || inputs.role_to_assume.is_some() {
                        prop_assert!(inputs.cluster_name.is_some());
                    }
                }
                Err(Error::Input { name, message }) => {
                    prop_assert!(
                        name == "*" || names.contains(&name),
                        "error names no input: {} {}",
                        name,
                        message
                    );
                    prop_assert!(!message.is_empty());
                }
                Err(other) => prop_assert!(false, "not an input error: {other}"),
            }
            Ok(())
        })
        .unwrap();
}

#[test]
fn inputs_are_read_the_same_whatever_whitespace_surrounds_them() {
    let names = input_names();
    let strategy = (
        prop::collection::vec((select(names), input_value()), 1..6),
        select(vec![" ", "\t", "\n", " \r\n ", "  "]),
    );
    let mut runner = TestRunner::new(cases(512));
    runner
        .run(&strategy, |(pairs, pad)| {
            let padded: Vec<(String, String)> = pairs
                .iter()
                .map(|(k, v)| (k.clone(), format!("{pad}{v}{pad}")))
                .collect();
            let a = Inputs::from_env(env_of(&pairs)).map_err(|e| e.to_string());
            let b = Inputs::from_env(env_of(&padded)).map_err(|e| e.to_string());
            prop_assert_eq!(format!("{a:?}"), format!("{b:?}"));
            Ok(())
        })
        .unwrap();
}

/// The textbook glob matcher (`*` = any run of characters), to check the
/// action's own against.
fn glob_oracle(pattern: &[char], text: &[char]) -> bool {
    let mut reach = vec![false; text.len() + 1];
    reach[0] = true;
    for p in pattern {
        if *p == '*' {
            for i in 1..=text.len() {
                reach[i] = reach[i] || reach[i - 1];
            }
        } else {
            for i in (1..=text.len()).rev() {
                reach[i] = reach[i - 1] && text[i - 1] == *p;
            }
            reach[0] = false;
        }
    }
    reach[text.len()]
}

proptest! {
    #![proptest_config(cases(2048))]

    #[test]
    fn deploy_branch_patterns_match_like_a_glob(
        patterns in prop::collection::vec("[ab/é*]{0,6}", 1..3),
        branch in "[ab/é]{0,8}",
    ) {
        let want = patterns.iter().any(|p| {
            glob_oracle(&p.chars().collect::<Vec<_>>(), &branch.chars().collect::<Vec<_>>())
        });
        prop_assert_eq!(Branches::Patterns(patterns).matches(&branch, None), want);
    }
}

// ---------------------------------------------------------------------------
// Durations.

fn unit() -> impl Strategy<Value = (char, u64)> {
    select(vec![
        ('w', 7 * 86_400),
        ('d', 86_400),
        ('h', 3_600),
        ('m', 60),
        ('s', 1),
    ])
}

proptest! {
    #![proptest_config(cases(1024))]

    #[test]
    fn any_text_is_a_duration_that_fits_signed_seconds_or_an_error(text in prop_oneof![
        any::<String>(),
        "[0-9wdhms \\-+.]{0,24}",
    ]) {
        if let Ok(seconds) = duration::parse(&text) {
            prop_assert!(seconds <= i64::MAX as u64, "{:?} → {}", text, seconds);
            let _ = duration::human(seconds as i64);
        }
    }

    #[test]
    fn duration_groups_add_up(
        groups in prop::collection::vec((prop_oneof![0u64..1000, any::<u64>()], unit()), 1..5),
        pad in select(vec!["", " ", "\t", "\n "]),
    ) {
        let text: String = groups.iter().map(|(n, (u, _))| format!("{n}{u}")).collect();
        let total = groups.iter().try_fold(0u64, |acc, (n, (_, size))| {
            n.checked_mul(*size).and_then(|s| acc.checked_add(s))
        }).filter(|t| *t <= i64::MAX as u64);
        match (duration::parse(&format!("{pad}{text}{pad}")), total) {
            (Ok(got), Some(want)) => prop_assert_eq!(got, want),
            (Err(e), None) => prop_assert!(e.contains("too large"), "{}: {}", text, e),
            (got, want) => prop_assert!(false, "{}: got {:?}, want {:?}", text, got, want),
        }
    }

    #[test]
    fn human_durations_never_panic(seconds in any::<i64>()) {
        let text = duration::human(seconds);
        prop_assert!(!text.is_empty());
        prop_assert_eq!(text.starts_with('-'), seconds < 0);
    }
}

// ---------------------------------------------------------------------------
// Flux revisions and GitRepository URLs.

fn sha_of(len: std::ops::RangeInclusive<usize>) -> impl Strategy<Value = String> {
    prop::collection::vec(select(b"0123456789abcdefABCDEF".to_vec()), len)
        .prop_map(|b| String::from_utf8(b).unwrap())
}

proptest! {
    #![proptest_config(cases(1024))]

    #[test]
    fn any_revision_names_a_real_part_of_itself(revision in prop_oneof![
        any::<String>(),
        "[a-z0-9/@:.]{0,12}",
        ("\\PC{0,10}", select(vec!["@sha1:", "@sha256:", "@blake3:", "/", "@", ""]), sha_of(0..=70))
            .prop_map(|(r, sep, sha)| format!("{r}{sep}{sha}")),
        ("[a-z@:/]{0,10}", sha_of(7..=40)).prop_map(|(r, sha)| format!("{r}/{sha}")),
    ]) {
        let Revision { reference, sha } = parse_revision(&revision);
        if let Some(sha) = &sha {
            prop_assert!((7..=64).contains(&sha.len()) && sha.bytes().all(|b| b.is_ascii_hexdigit()));
            prop_assert!(revision.ends_with(sha.as_str()));
        }
        if let Some(r) = &reference {
            prop_assert!(!r.is_empty(), "an empty reference from {:?}", revision);
            prop_assert!(revision.starts_with(r.as_str()));
        }
    }

    #[test]
    fn git_revisions_split_back_into_reference_and_commit(
        reference in "\\PC{0,20}",
        sha in sha_of(7..=64),
    ) {
        let want_ref = Some(reference.clone()).filter(|r| !r.is_empty());
        prop_assert_eq!(
            parse_revision(&format!("{reference}@sha1:{sha}")),
            Revision { reference: want_ref.clone(), sha: Some(sha.clone()) }
        );
        prop_assert_eq!(
            parse_revision(&format!("{reference}@sha256:{sha}")),
            Revision { reference: want_ref, sha: None }
        );
    }

    #[test]
    fn github_urls_in_every_form_name_their_repository(
        owner in "[A-Za-z0-9][A-Za-z0-9-]{0,38}",
        repo in "[A-Za-z0-9_][A-Za-z0-9_.-]{0,30}"
            .prop_filter("GitHub refuses these names", |r| r != "." && r != ".." && !r.ends_with(".git")),
        host in select(vec!["github.com", "ghe.example.com"]),
        form in 0usize..6,
        suffix in select(vec!["", ".git", "/", ".git/"]),
    ) {
        let url = match form {
            0 => format!("https://{host}/{owner}/{repo}{suffix}"),
            1 => format!("http://{host}/{owner}/{repo}{suffix}"),
            2 => format!("https://x-access-token:t@{host}/{owner}/{repo}{suffix}"),
            3 => format!("ssh://git@{host}/{owner}/{repo}{suffix}"),
            4 => format!("git@{host}:{owner}/{repo}{suffix}"),
            _ => format!("  https://{host}/{owner}/{repo}{suffix} "),
        };
        prop_assert_eq!(github_repository(&url, host), Some(format!("{owner}/{repo}")), "{}", url);
        let other = if host == "github.com" { "ghe.example.com" } else { "github.com" };
        prop_assert_eq!(github_repository(&url, other), None, "{} is not on {}", url, other);
    }

    #[test]
    fn any_url_gives_an_owner_and_a_name_or_nothing(url in prop_oneof![
        any::<String>(),
        ("[a-z:/@.]{0,12}", select(vec!["github.com", "github.com:", "github.com/"]), "[a-z/.@:]{0,12}")
            .prop_map(|(a, h, b)| format!("{a}{h}{b}")),
    ]) {
        if let Some(repo) = github_repository(&url, "github.com") {
            let parts: Vec<&str> = repo.split('/').collect();
            prop_assert!(parts.len() == 2 && parts.iter().all(|p| !p.is_empty()), "{:?} → {:?}", url, repo);
        }
    }
}

// ---------------------------------------------------------------------------
// Pushgateway paths and expositions.

/// The path as it goes on the wire: joined to a base URL the way the
/// Pushgateway client joins it (`Url::join`), so any normalisation the URL
/// library applies (dot segments!) is part of what is checked.
fn wire_path(path: &str) -> String {
    let base = Url::parse("http://pushgateway.test/prefix/").unwrap();
    let joined = base.join(path).unwrap();
    joined
        .path()
        .strip_prefix("/prefix/")
        .unwrap_or_else(|| panic!("{path} left the base path: {joined}"))
        .to_string()
}

/// Decodes a group path the way the Pushgateway (1.5, `splitLabels` and
/// `decodeBase64`) does: `metrics`, then `name/value` pairs,
/// `name@base64/value` in the URL-safe alphabet, plain values percent-decoded
/// (Go's router sees the decoded path).
fn decode_group_path(path: &str) -> Result<BTreeMap<String, String>, TestCaseError> {
    let mut segments = path.split('/');
    prop_assert_eq!(segments.next(), Some("metrics"), "{}", path);
    let segments: Vec<&str> = segments.collect();
    prop_assert!(segments.len() % 2 == 0, "odd number of segments: {}", path);
    let mut labels = BTreeMap::new();
    for pair in segments.chunks(2) {
        let (name, value) = (pair[0], pair[1]);
        let (name, value) = match name.strip_suffix("@base64") {
            Some(name) => {
                // As the Pushgateway decodes: padding trimmed, then unpadded base64url.
                let bytes = URL_SAFE_NO_PAD
                    .decode(value.trim_end_matches('='))
                    .map_err(|e| TestCaseError::fail(format!("{value}: {e}")))?;
                (name, String::from_utf8(bytes).unwrap())
            }
            None => {
                let v = percent_encoding::percent_decode_str(value)
                    .decode_utf8()
                    .map_err(|e| TestCaseError::fail(format!("{value}: {e}")))?;
                (name, v.into_owned())
            }
        };
        prop_assert!(
            labels.insert(name.to_string(), value).is_none(),
            "{name} twice in {path}"
        );
    }
    Ok(labels)
}

/// Label values: anything a payload or a Kubernetes object can carry.
fn label_value() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        "[./@=%a-z]{0,6}",
        select(vec![
            "", ".", "..", "...", "/", "a/b", "=", "%2F", "%2e%2e", "a b", "\"", "\\", "\n", "é",
            "🚀", "@base64",
        ])
        .prop_map(String::from),
    ]
}

proptest! {
    #![proptest_config(cases(2048))]

    #[test]
    fn group_paths_decode_to_the_exact_labels(
        job in label_value(),
        grouping in prop::collection::btree_map("[a-z_][a-z0-9_]{0,10}", label_value(), 0..5)
            .prop_filter("job is not a grouping label", |g| !g.contains_key("job")),
    ) {
        let path = group_path(&job, grouping.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        let mut want = grouping.clone();
        want.insert("job".into(), job.clone());
        prop_assert_eq!(decode_group_path(&wire_path(&path))?, want, "{}", path);
    }
}

/// A deployment with arbitrary strings wherever a payload puts one.
fn arbitrary_deploy() -> impl Strategy<Value = Deploy> {
    let key = prop_oneof![
        (any::<u64>(), 1u64..10).prop_map(|(run_id, attempt)| EventKey::Run { run_id, attempt }),
        (any::<u64>(), any::<u64>())
            .prop_map(|(id, status_id)| EventKey::Deployment { id, status_id }),
        (label_value(), label_value()).prop_map(|(namespace, revision)| EventKey::Flux {
            namespace,
            revision
        }),
        (label_value(), label_value(), any::<i32>()).prop_map(|(namespace, phase, t)| {
            EventKey::Canary {
                namespace,
                phase,
                transition: i64::from(t),
            }
        }),
    ];
    (
        (
            label_value(),
            label_value(),
            key,
            select(vec![Status::Success, Status::Failure, Status::NotReady]),
        ),
        (label_value(), label_value(), label_value()),
        (0i64..4_000_000_000, prop::option::of(0i64..4_000_000_000)),
    )
        .prop_map(
            |((repository, source, key, status), (branch, sha, environment), (time, commit))| {
                Deploy {
                    repository,
                    source,
                    key,
                    status,
                    branch,
                    sha,
                    environment,
                    time: Timestamp::from_second(time).unwrap(),
                    commit_time: commit.map(|c| Timestamp::from_second(c).unwrap()),
                    url: None,
                    history: History::default(),
                }
            },
        )
}

/// Real Pushgateway: a group with arbitrary label values (grouping labels in
/// the path, series labels in the exposition, quotes, backslashes and
/// newlines included) is accepted and stored with exactly those labels.
/// A small number of cases: each is a real PUT and a full listing.
#[test]
fn a_real_pushgateway_stores_arbitrary_labels_exactly() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let server = rt.block_on(support::Pushgateway::start());
    let client = dora_action::sinks::pushgateway::Pushgateway::new(
        Url::parse(&server.url).unwrap(),
        reqwest::Client::new(),
    );
    let mut runner = TestRunner::new(cases(24));
    let strategy = (
        label_value().prop_filter("job is never empty (the input)", |j| !j.trim().is_empty()),
        arbitrary_deploy(),
    );
    runner
        .run(&strategy, |(job, deploy)| {
            let group = dora::deploy_group(&deploy);
            let want_labels = group.labels(&job);
            let want_series = support::exposition::sample_labels(&group.exposition);
            rt.block_on(async {
                client
                    .put(&job, &group.grouping, &group.exposition, Some(true))
                    .await
                    .map_err(|e| TestCaseError::fail(format!("{e}\n{}", group.exposition)))?;
                let stored = client
                    .groups(&dora::FAMILIES)
                    .await
                    .map_err(|e| TestCaseError::fail(e.to_string()))?;
                prop_assert!(
                    stored.iter().any(|g| g.labels == want_labels),
                    "group {:?} not stored as such; stored: {:?}",
                    want_labels,
                    stored.iter().map(|g| &g.labels).collect::<Vec<_>>()
                );
                let listed = server.groups().await;
                let g = listed.iter().find(|g| g.labels == want_labels).unwrap();
                prop_assert!(g.last_push_successful);
                for samples in g.metrics.values() {
                    for (labels, _) in samples {
                        // The Pushgateway adds the grouping labels and `instance`.
                        let mut want = want_series.clone();
                        want.extend(want_labels.clone());
                        want.entry("instance".into()).or_default();
                        prop_assert_eq!(labels, &want);
                    }
                }
                client
                    .delete(&want_labels.clone().into())
                    .await
                    .map_err(|e| TestCaseError::fail(e.to_string()))?;
                prop_assert!(
                    server
                        .groups()
                        .await
                        .iter()
                        .all(|g| g.labels != want_labels),
                    "not deleted"
                );
                Ok(())
            })
        })
        .unwrap();
}

// ---------------------------------------------------------------------------
// The whole process.

/// A runtime, and a GitHub on it answering nothing: GitHub look-ups (a
/// deployment's commit time) get a quick 404, not the internet.
fn local_github() -> (tokio::runtime::Runtime, GitHubMock) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let github = rt.block_on(GitHubMock::empty());
    (rt, github)
}

/// The built binary in dry run on mutated payloads (and odd inputs): exit 0
/// or 1, no panic, no backtrace hint, and exactly one `::error::` line when
/// it fails (none when it does not).
/// What the process test hands the binary can always be spawned: the CI
/// failure of session 5 was a generated NUL, refused by `execve`.
#[test]
fn process_inputs_never_hold_nul() {
    let mut runner = TestRunner::new(cases(4096));
    runner
        .run(&process_input_value(), |v| {
            prop_assert!(!v.contains('\0'), "{:?}", v);
            Ok(())
        })
        .unwrap();
}

#[test]
fn the_process_ends_cleanly_on_mutated_payloads() {
    let (rt, github) = local_github();
    let strategy = (
        mutated(payload_fixtures()),
        prop::collection::vec(
            (
                select(vec![
                    "retention",
                    "lookback",
                    "job",
                    "environment",
                    "deploy-branches",
                ]),
                process_input_value(),
            ),
            0..2,
        ),
    );
    let mut runner = TestRunner::new(cases(16));
    runner
        .run(&strategy, |(m, inputs)| {
            let outcome = rt.block_on(async {
                let mut action = Action::new()
                    .input("dry-run", "true")
                    .env("GITHUB_API_URL", &github.uri());
                let path = action.dir().join("event.json");
                std::fs::write(&path, serde_json::to_vec(&m.value).unwrap()).unwrap();
                action = action.event(m.event, &path);
                for (name, value) in &inputs {
                    action = action.input(name, value);
                }
                action.run().await
            });
            check_clean_end(&outcome)
        })
        .unwrap();
}

/// Durations at the edge of signed seconds, where a subtraction from the
/// current time once overflowed (a panic in a debug build): each ends cleanly.
#[test]
fn durations_at_the_edge_of_signed_seconds_end_cleanly() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    for input in ["retention", "lookback"] {
        for value in [
            "9223372036854775807s",
            "9223372036854775808s",
            "18446744073709551615s",
            "15250w",
        ] {
            let outcome = rt.block_on(
                Action::new()
                    .input("dry-run", "true")
                    .input(input, value)
                    .fixture_event("workflow_run", "success.json")
                    .run(),
            );
            if let Err(e) = check_clean_end(&outcome) {
                panic!("{input}: {value}: {e}");
            }
        }
    }
}

fn check_clean_end(outcome: &support::Outcome) -> Result<(), TestCaseError> {
    let all = format!("{}\n{}", outcome.stdout, outcome.stderr);
    prop_assert!(
        matches!(outcome.code, 0 | 1),
        "exit {}: {}",
        outcome.code,
        all
    );
    prop_assert!(!all.contains("panicked"), "a panic: {}", all);
    prop_assert!(!all.contains("RUST_BACKTRACE"), "a backtrace hint: {}", all);
    let errors = outcome.error_lines();
    let want = if outcome.code == 1 { 1 } else { 0 };
    prop_assert_eq!(errors.len(), want, "exit {}: {}", outcome.code, all);
    Ok(())
}

/// A panic ends in one `::error::` line and exit 1, even when stdout itself
/// is what failed. With stdout on `/dev/full` (as with a closed pipe or a
/// full disk) the first print panics; the hook must not panic in turn, which
/// would abort the process with a bare "panicked while processing panic".
/// The line goes to stderr then, which the runner reads for commands too.
#[test]
fn a_panic_is_one_error_line_and_exit_1_even_when_stdout_fails() {
    let dir = tempfile::tempdir().unwrap();
    let full = std::fs::File::options()
        .write(true)
        .open("/dev/full")
        .expect("/dev/full");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_dora-action"))
        .env_clear()
        .env("GITHUB_EVENT_NAME", "workflow_run")
        .env("GITHUB_EVENT_PATH", fixture("workflow_run/success.json"))
        .env("INPUT_DRY-RUN", "true")
        .current_dir(dir.path())
        .stdin(std::process::Stdio::null())
        .stdout(full)
        .stderr(std::process::Stdio::piped())
        .output()
        .expect("run dora-action");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{:?}: {stderr}", out.status);
    let errors: Vec<&str> = stderr
        .lines()
        .filter(|l| l.starts_with("::error::"))
        .collect();
    assert_eq!(errors.len(), 1, "{stderr}");
    assert!(
        errors[0].starts_with("::error::dora-action crashed (a bug, please report it): ")
            && errors[0].contains("failed printing to stdout"),
        "{stderr}"
    );
    for bare in ["while processing panic", "aborting", "RUST_BACKTRACE"] {
        assert!(!stderr.contains(bare), "{bare}: {stderr}");
    }
}

// ---------------------------------------------------------------------------
// Hostile strings: what reaches stdout, the summary or an output.

/// What a payload value may hold to inject a workflow command (the runner
/// ends a line at CR too), end a line elsewhere, or break Markdown.
const HOSTILE: [&str; 30] = [
    "\r",
    "\n",
    "\r\n",
    "\u{2028}",
    "\u{2029}",
    "\u{85}",
    "\0",
    "\u{1b}[2K",
    "|",
    "`",
    "```",
    "````",
    "<",
    ">",
    "&",
    "&lt;",
    "%0A",
    "%0D",
    "%25",
    "::error::pwned",
    "::warning::pwned",
    "##[error]pwned",
    "[",
    "](javascript:x)",
    ")",
    "<script>",
    "</details>",
    "\\",
    "*_~",
    "# ",
];

/// Strings built of [`HOSTILE`] fragments and arbitrary text.
fn hostile_string() -> impl Strategy<Value = String> {
    prop::collection::vec(
        prop_oneof![
            4 => select(HOSTILE.to_vec()).prop_map(String::from),
            1 => "\\PC{0,6}",
            1 => any::<String>(),
        ],
        0..8,
    )
    .prop_map(|parts| parts.concat())
}

/// What must hold of a summary whatever the payload held: every table row
/// has its table's cell count, the only raw HTML is the action's own, at
/// most one code block, no character that ends a line for the runner or a
/// log viewer, no line the runner would read as a command.
fn check_summary(md: &str) -> Result<(), TestCaseError> {
    use support::commands::{OWN_HTML, foreign_commands, parse_markdown};
    let parsed = parse_markdown(md);
    prop_assert!(
        parsed.rows.iter().all(|n| *n == 8),
        "rows {:?}:\n{}",
        parsed.rows,
        md
    );
    for html in &parsed.html {
        prop_assert!(
            OWN_HTML.contains(&html.as_str()),
            "raw HTML {:?}:\n{}",
            html,
            md
        );
    }
    prop_assert!(parsed.code.len() <= 1, "{}", md);
    for link in &parsed.links {
        prop_assert!(
            link.starts_with("https://") || link.starts_with("http://"),
            "{}",
            link
        );
    }
    prop_assert!(
        !md.contains(['\r', '\0', '\u{85}', '\u{2028}', '\u{2029}', '\u{1b}']),
        "{:?}",
        md
    );
    prop_assert!(
        foreign_commands(md).is_empty(),
        "{:?}",
        foreign_commands(md)
    );
    Ok(())
}

/// In process, many cases: the summary of deployments whose every string
/// field (and a warning, and the exposition) is hostile.
#[test]
fn hostile_strings_never_break_the_summary() {
    let strategy = (
        prop::collection::vec(
            (
                arbitrary_deploy(),
                (
                    hostile_string(),
                    hostile_string(),
                    hostile_string(),
                    hostile_string(),
                ),
                (hostile_string(), any::<bool>()),
            ),
            1..4,
        ),
        hostile_string(),
        any::<bool>(),
    );
    let mut runner = TestRunner::new(cases(512));
    runner
        .run(&strategy, |(deploys, warning, window)| {
            let recorded: Vec<Deploy> = deploys
                .into_iter()
                .map(
                    |(d, (source, branch, environment, sha), (url, prefixed))| Deploy {
                        source,
                        branch,
                        environment,
                        sha,
                        url: Some(if prefixed {
                            format!("https://github.com/octo-org/shop/actions/runs/1?{url}")
                        } else {
                            url
                        }),
                        ..d
                    },
                )
                .collect();
            let exposition = recorded
                .iter()
                .map(|d| dora::deploy_group(d).exposition)
                .collect::<String>();
            let report = dora_action::report::Report {
                recorded,
                dry_run: true,
                job: "dora".into(),
                warnings: vec![warning],
                exposition: Some(exposition),
                server_url: "https://github.com".into(),
                window: window.then_some(86_400),
                ..Default::default()
            };
            check_summary(&report.markdown())?;
            let outputs = report.outputs();
            for (name, value) in outputs.pairs() {
                prop_assert!(
                    value.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'),
                    "{}={:?}",
                    name,
                    value
                );
            }
            Ok(())
        })
        .unwrap();
}

/// The log printer: whatever the text, no piece of its output (split at
/// CR, LF, NEL, U+2028, U+2029) reads as a workflow command.
#[test]
fn logged_text_never_reads_as_a_command() {
    let mut runner = TestRunner::new(cases(1024));
    runner
        .run(&hostile_string(), |text| {
            let out = dora_action::actions::log_text(&text, 1 << 20);
            prop_assert!(
                support::commands::foreign_commands(&out).is_empty(),
                "{:?} → {:?}",
                text,
                out
            );
            let escaped = dora_action::actions::escape_data(&text);
            let breaks = ['\r', '\n', '\u{85}', '\u{2028}', '\u{2029}', '\0'];
            prop_assert!(!escaped.contains(breaks), "{:?}", escaped);
            Ok(())
        })
        .unwrap();
}

/// The built binary in dry run, with every payload string that reaches the
/// log, the summary or a label hostile (workflow names, branch, sha,
/// repository, the run's URL; a deployment's environment, ref and target
/// URL): the only `::` lines of stdout are the action's own, and the
/// summary keeps its structure.
#[test]
fn the_process_injects_no_command_from_any_payload_string() {
    let (rt, github) = local_github();
    let strategy = (prop::collection::vec(hostile_string(), 6), any::<bool>());
    let mut runner = TestRunner::new(cases(24));
    runner
        .run(&strategy, |(s, deployment)| {
            let (event, mut payload) = if deployment {
                (
                    "deployment_status",
                    read_fixture("deployment_status/success.json"),
                )
            } else {
                ("workflow_run", read_fixture("workflow_run/success.json"))
            };
            if deployment {
                payload["workflow"] = json!({"name": s[0]});
                payload["deployment"]["environment"] = s[1].clone().into();
                payload["deployment"]["ref"] = s[2].clone().into();
                payload["deployment"]["sha"] = s[3].clone().into();
                payload["deployment_status"]["target_url"] =
                    format!("https://example.test/{}", s[4]).into();
            } else {
                payload["workflow"]["name"] = s[0].clone().into();
                payload["workflow_run"]["head_branch"] = s[1].clone().into();
                payload["repository"]["default_branch"] = s[1].clone().into();
                payload["workflow_run"]["head_sha"] = s[3].clone().into();
                payload["workflow_run"]["html_url"] =
                    format!("https://github.com/octo-org/shop/actions/runs/7001{}", s[4]).into();
                payload["repository"]["full_name"] = format!("octo-org/{}", s[5]).into();
            }
            let outcome = rt.block_on(async {
                let action = Action::new()
                    .input("dry-run", "true")
                    .env("GITHUB_API_URL", &github.uri());
                let path = action.dir().join("event.json");
                std::fs::write(&path, serde_json::to_vec(&payload).unwrap()).unwrap();
                action.event(event, &path).run().await
            });
            check_clean_end(&outcome)?;
            let foreign = support::commands::foreign_commands(&outcome.stdout);
            prop_assert!(foreign.is_empty(), "{:?}\n{}", foreign, outcome.stdout);
            prop_assert!(
                !outcome
                    .stdout
                    .contains(['\r', '\0', '\u{85}', '\u{2028}', '\u{2029}']),
                "{:?}",
                outcome.stdout
            );
            if outcome.code == 0 {
                check_summary(&outcome.summary)?;
            } else {
                prop_assert!(
                    support::commands::parse_markdown(&outcome.summary)
                        .html
                        .is_empty(),
                    "{}",
                    outcome.summary
                );
            }
            for (name, value) in &outcome.outputs {
                if name == "report-file" {
                    // The action's own path, whatever the payload said.
                    prop_assert!(
                        value == "dora-report.json" || value.is_empty(),
                        "{:?}",
                        value
                    );
                    continue;
                }
                prop_assert!(
                    value.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'),
                    "{:?}",
                    value
                );
            }
            Ok(())
        })
        .unwrap();
}

fn read_fixture(rel: &str) -> Value {
    serde_json::from_slice(&std::fs::read(fixture(rel)).unwrap()).unwrap()
}
