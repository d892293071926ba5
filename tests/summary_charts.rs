//! The job summary's pictures: a dry run of workflows mode on a month of
//! history draws the deployments per day and the lead time as Mermaid
//! `xychart-beta` blocks, and the real Mermaid (`@mermaid-js/mermaid-cli`,
//! installed into `tests/mermaid/node_modules` by `scripts/test.sh`, drawing
//! with Debian's Chromium) parses and renders each one. A broken block must
//! fail the same way, so the check is a real one.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::json;
use support::{Action, rest_run};
use wiremock::matchers::{method, path_regex};
use wiremock::{Mock, MockServer, ResponseTemplate};

const DAY: i64 = 86_400;

/// The Mermaid CLI of `tests/mermaid`.
fn mmdc() -> PathBuf {
    let bin = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/mermaid/node_modules/.bin/mmdc");
    assert!(
        bin.exists(),
        "{} is missing: run scripts/test.sh setup (npm install in tests/mermaid)",
        bin.display()
    );
    bin
}

/// Renders `chart` with the real Mermaid: `Ok(svg)` or `Err(what it said)`.
fn render(chart: &str, dir: &Path, name: &str) -> Result<String, String> {
    let input = dir.join(format!("{name}.mmd"));
    let output = dir.join(format!("{name}.svg"));
    let puppeteer = dir.join("puppeteer.json");
    std::fs::write(
        &puppeteer,
        json!({"executablePath": "/usr/bin/chromium", "args": ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync"]}).to_string(),
    )
    .unwrap();
    std::fs::write(&input, chart).unwrap();
    let out = Command::new(mmdc())
        .arg("-p")
        .arg(&puppeteer)
        .arg("-i")
        .arg(&input)
        .arg("-o")
        .arg(&output)
        .arg("-q")
        .output()
        .expect("run mmdc");
    if !out.status.success() {
        return Err(format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    std::fs::read_to_string(&output).map_err(|e| e.to_string())
}

/// The ```mermaid blocks of a Markdown text.
fn mermaid_blocks(md: &str) -> Vec<String> {
    md.split("```mermaid\n")
        .skip(1)
        .map(|rest| rest.split("```").next().unwrap_or_default().to_string())
        .collect()
}

/// When the head commit of day `i`'s run was made (1 to 7 hours before it).
fn lead_ago(i: i64) -> i64 {
    i * DAY + 3_600 + (i % 7 + 1) * 3_600
}

/// GitHub serving a month of `deploy.yml`: a run a day, every fifth failed.
async fn month() -> MockServer {
    let gh = MockServer::start().await;
    let runs: Vec<_> = (0..30)
        .rev()
        .map(|i: i64| {
            let conclusion = if i % 5 == 4 { "failure" } else { "success" };
            let ago = i * DAY + 3_600;
            rest_run(
                9_000 + i as u64,
                conclusion,
                ago,
                &format!("{:040x}", 0xbeef00 + i),
                lead_ago(i),
            )
        })
        .collect();
    Mock::given(method("GET"))
        .and(path_regex(
            r"^/repos/octo-org/shop/actions/workflows/[^/]+/runs$",
        ))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"total_count": runs.len(), "workflow_runs": runs})),
        )
        .mount(&gh)
        .await;
    // Each deployment shipped its head commit alone (the same lead time as the run's).
    Mock::given(method("GET"))
        .and(path_regex("^/repos/octo-org/shop/compare/"))
        .respond_with(|request: &wiremock::Request| {
            let head = request.url.path().rsplit("...").next().unwrap_or_default();
            let i = i64::from_str_radix(head, 16).unwrap_or(0xbeef00) - 0xbeef00;
            let committed = support::seconds_ago(lead_ago(i)).to_string();
            ResponseTemplate::new(200).set_body_json(json!({
                "status": "ahead", "ahead_by": 1, "total_commits": 1,
                "commits": [{"sha": head, "commit": {"author": {"date": committed}, "committer": {"date": committed}}}]
            }))
        })
        .mount(&gh)
        .await;
    Mock::given(method("GET"))
        .and(path_regex("^/repos/octo-org/shop/issues$"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!([])))
        .mount(&gh)
        .await;
    gh
}

#[tokio::test(flavor = "multi_thread")]
async fn a_month_of_history_is_drawn_and_the_real_mermaid_renders_it() {
    let gh = month().await;
    let out = Action::new()
        .scheduled("0 * * * *")
        .input("workflows", "deploy.yml")
        .input("lookback", "30d")
        .input("dry-run", "true")
        .input("github-token", "ghs_charts")
        .env("GITHUB_API_URL", &gh.uri())
        .run()
        .await;
    out.assert_code(0);
    let blocks = mermaid_blocks(&out.summary);
    assert_eq!(blocks.len(), 2, "{}", out.summary);
    assert!(
        blocks[0].contains("xychart-beta") && blocks[0].contains("bar ["),
        "{}",
        blocks[0]
    );
    assert!(blocks[1].contains("line ["), "{}", blocks[1]);
    // 30 events: the table is detail, collapsed below the pictures.
    assert!(
        out.summary
            .contains("<details><summary>All 30 events</summary>"),
        "{}",
        out.summary
    );
    assert!(out.summary.len() < 1 << 20, "within GitHub's summary bound");
    assert!(out.warning_lines().is_empty(), "{}", out.stdout);
    // Kept for `scripts/summary-screenshot.sh`, which renders docs/summary.png from it.
    let kept = Path::new(env!("CARGO_TARGET_TMPDIR")).join("summary-charts.md");
    std::fs::write(&kept, &out.summary).unwrap();
    let dir = tempfile::tempdir().unwrap();
    for (i, block) in blocks.iter().enumerate() {
        let svg = render(block, dir.path(), &format!("chart{i}"))
            .unwrap_or_else(|e| panic!("Mermaid refused chart {i}:\n{block}\n{e}"));
        assert!(svg.contains("<svg"), "chart {i} rendered: {svg:.200}");
    }
    // The same check fails on a block Mermaid cannot parse.
    let broken = blocks[0].replacen("x-axis [", "x-axis [[", 1);
    assert!(
        render(&broken, dir.path(), "broken").is_err(),
        "a syntax error must fail:\n{broken}"
    );
}
