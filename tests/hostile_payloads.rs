//! Hostile payloads and inputs against the built binary: a value from a
//! payload never becomes a workflow command, never breaks the summary's
//! Markdown and never makes the summary or the log unbounded; a password in
//! a URL input is never printed; inputs that name paths, URLs or durations
//! are refused before anything is contacted.

mod support;

use serde_json::Value;
use support::commands::{OWN_HTML, foreign_commands, parse_markdown};
use support::{Action, GitHubMock, Outcome, fixture};

/// The `workflow_run/success.json` fixture with `edit` applied, as a dry run
/// with GitHub REST on a local mock (nothing leaves the machine).
async fn dry_run(github: &GitHubMock, edit: impl FnOnce(&mut Value)) -> Outcome {
    let mut payload: Value =
        serde_json::from_slice(&std::fs::read(fixture("workflow_run/success.json")).unwrap())
            .unwrap();
    edit(&mut payload);
    let action = Action::new()
        .input("dry-run", "true")
        .env("GITHUB_API_URL", &github.uri());
    let path = action.dir().join("event.json");
    std::fs::write(&path, serde_json::to_vec(&payload).unwrap()).unwrap();
    action.event("workflow_run", &path).run().await
}

/// Every payload string the summary, the log or a label shows.
fn set_strings(p: &mut Value, value: &str) {
    p["workflow"]["name"] = value.into();
    p["workflow_run"]["name"] = value.into();
    // A URL with control characters is not linked at all; these would break the link or the table.
    p["workflow_run"]["html_url"] =
        "https://github.com/octo-org/shop/actions/runs/7001?x=a|b`c`<i>(d)[e] f\"".into();
}

const INJECTION: &str = "Deploy\r::error::pwned-cr\r\n::warning::pwned-crlf\u{2028}::notice::pwned-ls\u{85}::error::pwned-nel\0##[error]pwned-legacy | `x` ``` </details><script>alert(1)</script> %0A::error::pwned-enc";

#[tokio::test]
async fn a_carriage_return_in_a_workflow_name_injects_no_command() {
    let github = GitHubMock::empty().await;
    let out = dry_run(&github, |p| set_strings(p, INJECTION)).await;
    out.assert_code(0);
    assert_eq!(
        foreign_commands(&out.stdout),
        Vec::<String>::new(),
        "{}",
        out.stdout
    );
    assert!(out.error_lines().is_empty() && out.notice_lines().is_empty());
    for c in ['\r', '\0', '\u{2028}', '\u{85}'] {
        assert!(!out.stdout.contains(c), "{c:?} reached stdout");
        assert!(!out.summary.contains(c), "{c:?} reached the summary");
    }
    // The name is still there to read, escaped.
    assert!(
        out.stdout.contains(r"Deploy\r::error::pwned-cr"),
        "{}",
        out.stdout
    );
}

#[tokio::test]
async fn hostile_payload_strings_keep_the_summary_s_structure() {
    let github = GitHubMock::empty().await;
    let out = dry_run(&github, |p| set_strings(p, INJECTION)).await;
    out.assert_code(0);
    let md = parse_markdown(&out.summary);
    assert_eq!(
        md.rows,
        [8, 8],
        "one header, one row of 8 cells:\n{}",
        out.summary
    );
    for html in &md.html {
        assert!(
            OWN_HTML.contains(&html.as_str()),
            "raw HTML {html:?} in\n{}",
            out.summary
        );
    }
    assert_eq!(
        md.code.len(),
        1,
        "the exposition is one code block:\n{}",
        out.summary
    );
    assert!(md.code[0].contains("# group: job=dora"), "{}", md.code[0]);
    assert!(
        md.code[0].contains("</details><script>"),
        "shown as text: {}",
        md.code[0]
    );
    let run_link = md
        .links
        .iter()
        .find(|l| l.contains("/actions/runs/7001"))
        .expect("the run is linked");
    assert!(
        !run_link.contains(['|', '`', '<', '>', ' ', '(', ')']),
        "{run_link}"
    );
    assert!(out.summary.len() < 100_000);
}

#[tokio::test]
async fn a_link_from_the_payload_that_is_not_http_is_not_linked() {
    let github = GitHubMock::empty().await;
    let out = dry_run(&github, |p| {
        p["workflow_run"]["html_url"] = "javascript:alert(document.cookie)".into();
    })
    .await;
    out.assert_code(0);
    let md = parse_markdown(&out.summary);
    assert!(
        md.links
            .iter()
            .all(|l| l.starts_with("https://github.com/")),
        "{:?}",
        md.links
    );
}

#[tokio::test]
async fn a_20_mb_workflow_name_gives_a_small_summary_and_log() {
    let github = GitHubMock::empty().await;
    let huge = "N".repeat(20_000_000);
    let out = dry_run(&github, |p| {
        p["workflow"]["name"] = huge.as_str().into();
    })
    .await;
    out.assert_code(0);
    assert!(
        out.summary.len() < 300_000,
        "summary: {} bytes",
        out.summary.len()
    );
    assert!(
        out.stdout.len() < 1_100_000,
        "stdout: {} bytes",
        out.stdout.len()
    );
    assert!(
        out.summary.contains("more characters)"),
        "says what was cut"
    );
    assert_eq!(parse_markdown(&out.summary).rows, [8, 8]);
    for value in out.outputs.values() {
        assert!(value.len() < 100);
    }
}

/// Invalid URL inputs holding a password: refused, the password masked
/// before the message, and found in no stream.
#[tokio::test]
async fn a_password_in_an_invalid_url_input_is_never_printed() {
    let password = "hunter2-Zq9";
    for input in ["pushgateway-url", "remote-write-url"] {
        for url in [
            format!("http://user:{password}@host:99999/"),
            format!("http://user:{password}@host:9091/?push=1"),
            format!("ftp://user:{password}@host/"),
            format!("http://user:{password}@host/a b/"),
            format!("http://user:{password}@host/#x"),
        ] {
            let out = Action::new()
                .input(input, &url)
                .input("dry-run", "true")
                .fixture_event("workflow_run", "success.json")
                .run_expecting(1)
                .await;
            out.the_error(&[&format!("input `{input}`")]);
            out.assert_masked(password);
            let mask = out.stdout.find(&format!("::add-mask::{password}")).unwrap();
            assert!(mask < out.stdout.find("::error::").unwrap(), "masked first");
            out.assert_no_secret(&[password]);
        }
    }
}

/// Bad path, URL and duration inputs: input errors naming the input, and
/// GitHub is never called.
#[tokio::test]
async fn inputs_that_name_paths_are_refused_before_anything_is_contacted() {
    let github = GitHubMock::empty().await;
    for (input, value) in [
        ("workflows", "../../x.yml"),
        ("workflows", ".."),
        ("workflows", "dir/deploy.yml"),
        ("workflows", "deploy.yml?per_page=1"),
        ("workflows", "deploy.yml#x"),
        ("workflows", "de%2e%2e.yml"),
        ("workflows", "my deploy.yml"),
        ("lookback", "99999999999d"),
        ("lookback", "3654d"),
        ("retention", "99999999999d"),
        ("pushgateway-url", "http://127.0.0.1:9/a b/"),
        ("pushgateway-url", "http://127.0.0.1:9/x#y"),
    ] {
        let out = Action::new()
            .input("mode", "workflows")
            .input("workflows", "deploy.yml")
            .input("github-token", "ghs_test")
            .input("pushgateway-url", "http://127.0.0.1:9/")
            .input(input, value)
            .env("GITHUB_API_URL", &github.uri())
            .run_expecting(1)
            .await;
        let error = out.the_error(&[]);
        assert!(
            error.starts_with(&format!("::error::input `{input}`")),
            "{input}: {value}: {error}"
        );
        assert!(
            github.received_requests().await.unwrap().is_empty(),
            "{input}: {value}: GitHub was called"
        );
    }
}
