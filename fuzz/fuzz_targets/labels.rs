//! Arbitrary label values through both encodings the Pushgateway reads: the
//! group path (decoded as the Pushgateway decodes it, after the URL library
//! resolved it) and the text exposition (parsed back by hand) must give the
//! exact values.
#![no_main]

use std::collections::BTreeMap;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use dora_action::dora::{self, Deploy, EventKey, History, Status};
use dora_action::sinks::pushgateway::group_path;
use libfuzzer_sys::fuzz_target;

/// The exposition read back by hand, as the property tests read it.
#[path = "../../tests/support/exposition.rs"]
mod exposition;
use exposition::sample_labels;

/// `metrics/<name>[@base64]/<value>/...` back to labels, as Pushgateway 1.5 does.
fn decode(path: &str) -> BTreeMap<String, String> {
    let mut segments = path.split('/');
    assert_eq!(segments.next(), Some("metrics"), "{path}");
    let segments: Vec<&str> = segments.collect();
    assert!(segments.len().is_multiple_of(2), "{path}");
    segments
        .chunks(2)
        .map(|pair| match pair[0].strip_suffix("@base64") {
            Some(name) => {
                let bytes = URL_SAFE_NO_PAD
                    .decode(pair[1].trim_end_matches('='))
                    .unwrap_or_else(|e| panic!("{path}: {e}"));
                (name.to_string(), String::from_utf8(bytes).unwrap())
            }
            None => {
                let value = percent_encoding::percent_decode_str(pair[1])
                    .decode_utf8()
                    .unwrap_or_else(|e| panic!("{path}: {e}"));
                (pair[0].to_string(), value.into_owned())
            }
        })
        .collect()
}

fuzz_target!(
    |input: (String, String, String, String, String, u64, u32)| {
        let (job, repository, source, branch, sha, run_id, time) = input;
        let deploy = Deploy {
            repository,
            source,
            key: EventKey::Run { run_id, attempt: 1 },
            status: Status::Success,
            branch,
            sha,
            environment: "production".into(),
            time: jiff::Timestamp::from_second(i64::from(time)).unwrap(),
            commit_time: None,
            url: None,
            history: History::default(),
        };
        let group = dora::deploy_group(&deploy);
        let path = group_path(
            &job,
            group.grouping.iter().map(|(k, v)| (k.as_str(), v.as_str())),
        );
        let base = url::Url::parse("http://pushgateway.test/p/").unwrap();
        let wire = base.join(&path).unwrap();
        let wire = wire
            .path()
            .strip_prefix("/p/")
            .expect("the path stays below the base");
        assert_eq!(decode(wire), group.labels(&job), "{path}");
        let mut want: BTreeMap<String, String> = [
            ("source", &deploy.source),
            ("branch", &deploy.branch),
            ("sha", &deploy.sha),
        ]
        .into_iter()
        .filter(|(_, v)| !v.is_empty())
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect();
        want.insert("status".into(), "success".into());
        want.insert("environment".into(), "production".into());
        assert_eq!(
            sample_labels(&group.exposition),
            want,
            "{}",
            group.exposition
        );
    }
);
