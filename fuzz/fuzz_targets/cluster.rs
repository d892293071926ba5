//! Any text as a Flux revision and as a GitRepository URL: the parts found
//! are real parts of the text, and a repository is `owner/name`.
#![no_main]

use dora_action::sources::cluster::objects::{github_repository, parse_revision};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|text: &str| {
    let revision = parse_revision(text);
    if let Some(sha) = &revision.sha {
        assert!((7..=64).contains(&sha.len()) && sha.bytes().all(|b| b.is_ascii_hexdigit()));
        assert!(text.ends_with(sha.as_str()), "{text:?}");
    }
    if let Some(reference) = &revision.reference {
        assert!(
            !reference.is_empty() && text.starts_with(reference.as_str()),
            "{text:?}"
        );
    }
    for host in ["github.com", "ghe.example.com"] {
        if let Some(repo) = github_repository(text, host) {
            let parts: Vec<&str> = repo.split('/').collect();
            assert!(
                parts.len() == 2 && parts.iter().all(|p| !p.is_empty()),
                "{text:?} → {repo}"
            );
        }
    }
});
