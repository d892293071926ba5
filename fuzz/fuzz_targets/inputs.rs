//! `name=value` lines as `INPUT_*` variables: inputs whose invariants hold,
//! or one input error naming an input; every value also as a duration.
#![no_main]

use dora_action::inputs::Inputs;
use dora_action::{Error, duration};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let pairs: Vec<(String, String)> = text
        .split('\n')
        .filter_map(|line| line.split_once('='))
        .map(|(k, v)| {
            // `\` stands for a newline inside a value (lists are newline-separated).
            (format!("INPUT_{}", k.to_uppercase()), v.replace('\\', "\n"))
        })
        .collect();
    for (_, value) in &pairs {
        if let Ok(seconds) = duration::parse(value) {
            assert!(i64::try_from(seconds).is_ok(), "{value:?}");
            let _ = duration::human(seconds as i64);
        }
    }
    match Inputs::from_env(pairs) {
        Ok(inputs) => {
            assert!(inputs.lookback > 0);
            assert!(inputs.retention != Some(0));
            assert!(!inputs.job.chars().any(char::is_control));
            if let Some(url) = &inputs.pushgateway_url {
                assert!(matches!(url.scheme(), "http" | "https"));
            }
        }
        Err(Error::Input { name, message }) => {
            assert!(!name.is_empty() && !message.is_empty());
        }
        Err(other) => panic!("not an input error: {other}"),
    }
});
