//! Tests of the test harness itself (`tests/support`): if these fail, every
//! other integration test's failure is suspect. They start real Pushgateway
//! and Prometheus processes, so they also pin down the service behaviour the
//! action relies on.

mod support;

use std::collections::BTreeMap;
use std::time::Duration;

use support::{Prometheus, Pushgateway, fixture, parse_output_file};

fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn pushed_group_is_listed_with_its_labels_and_values() {
    let pg = Pushgateway::start().await;
    assert!(pg.groups().await.is_empty(), "a fresh pushgateway is empty");

    let body = "# TYPE dora_harness_timestamp gauge\n\
                dora_harness_timestamp{status=\"success\"} 1.7955e+09\n\
                dora_harness_plain 3\n";
    assert_eq!(pg.put_raw("/metrics/job/dora/run_id/1", body).await, 200);

    let groups = pg.groups().await;
    assert_eq!(groups.len(), 1, "{groups:#?}");
    let group = &groups[0];
    assert_eq!(group.labels, labels(&[("job", "dora"), ("run_id", "1")]));
    assert!(group.last_push_successful);
    assert!(group.push_time_seconds > 1.0e9, "push time is a Unix time");
    assert!(
        !group.metrics.contains_key("push_time_seconds"),
        "pushgateway's own bookkeeping series are not metrics"
    );
    assert_eq!(group.value("dora_harness_timestamp"), 1.7955e9);
    assert_eq!(group.value("dora_harness_plain"), 3.0);
    // Pushgateway copies the grouping labels into every sample and adds instance="".
    assert_eq!(
        group.sample_labels("dora_harness_timestamp"),
        &labels(&[
            ("instance", ""),
            ("job", "dora"),
            ("run_id", "1"),
            ("status", "success")
        ])
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn rejected_push_is_a_400_and_leaves_an_empty_failed_group() {
    let pg = Pushgateway::start().await;
    assert_eq!(
        pg.put_raw(
            "/metrics/job/dora/run_id/1",
            "# TYPE dora_t gauge\ndora_t 1\n"
        )
        .await,
        200
    );
    // Same name, another type, another group: rejected as a whole.
    assert_eq!(
        pg.put_raw(
            "/metrics/job/dora/run_id/2",
            "# TYPE dora_t counter\ndora_t 2\n"
        )
        .await,
        400
    );
    // A timestamped sample is rejected too.
    assert_eq!(
        pg.put_raw("/metrics/job/dora/run_id/3", "dora_u 1 1700000000000\n")
            .await,
        400
    );
    let failed = pg.groups_matching(&[("run_id", "2")]).await;
    assert_eq!(
        failed.len(),
        1,
        "the rejected group still exists: {failed:#?}"
    );
    assert!(!failed[0].last_push_successful);
    assert!(failed[0].metrics.is_empty());
    assert_eq!(failed[0].push_time_seconds, 0.0);
}

#[tokio::test(flavor = "multi_thread")]
async fn base64_path_segments_carry_slashes_in_label_values() {
    let pg = Pushgateway::start().await;
    // "octo-org/shop" in unpadded base64url.
    let path = "/metrics/job/dora/repository@base64/b2N0by1vcmcvc2hvcA";
    assert_eq!(pg.put_raw(path, "dora_b 1\n").await, 200);
    let groups = pg.groups_matching(&[("repository", "octo-org/shop")]).await;
    assert_eq!(groups.len(), 1, "{:#?}", pg.groups().await);
}

#[tokio::test(flavor = "multi_thread")]
async fn prometheus_scrapes_the_pushed_group_with_honored_labels() {
    let pg = Pushgateway::start().await;
    let prom = Prometheus::start(&pg).await;
    let body = "# TYPE dora_harness_timestamp gauge\n\
                dora_harness_timestamp{status=\"success\",source=\"Deploy\"} 1795000000\n";
    assert_eq!(pg.put_raw("/metrics/job/dora/run_id/7001", body).await, 200);

    let samples = prom
        .query_until(
            "dora_harness_timestamp",
            |s| !s.is_empty(),
            Duration::from_secs(20),
        )
        .await;
    assert_eq!(samples.len(), 1, "{samples:#?}");
    assert_eq!(samples[0].value, 1_795_000_000.0);
    // honor_labels: the pushed job wins over the scrape job ("pushgateway"),
    // and the empty instance Pushgateway adds means no instance label at all.
    assert_eq!(
        samples[0].labels,
        labels(&[
            ("__name__", "dora_harness_timestamp"),
            ("job", "dora"),
            ("run_id", "7001"),
            ("source", "Deploy"),
            ("status", "success"),
        ])
    );

    // Aggregations and scalars come back as samples too.
    let count = prom
        .query("count(dora_harness_timestamp{status=\"success\"} > 1700000000)")
        .await;
    assert_eq!(count.len(), 1);
    assert_eq!(count[0].value, 1.0);
    assert!(count[0].labels.is_empty());
    assert_eq!(prom.query("scalar(vector(42))").await[0].value, 42.0);
}

#[tokio::test(flavor = "multi_thread")]
#[should_panic(expected = "bad_data")]
async fn invalid_promql_panics_with_prometheus_error_text() {
    let pg = Pushgateway::start().await;
    let prom = Prometheus::start(&pg).await;
    prom.query("sum(").await;
}

#[tokio::test(flavor = "multi_thread")]
#[should_panic(expected = "condition not met")]
async fn query_until_gives_up_showing_the_last_result() {
    let pg = Pushgateway::start().await;
    let prom = Prometheus::start(&pg).await;
    prom.query_until("vector(1)", |s| s.is_empty(), Duration::from_millis(600))
        .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn services_in_parallel_get_their_own_ports_and_die_on_drop() {
    let (a, b) = tokio::join!(Pushgateway::start(), Pushgateway::start());
    assert_ne!(a.url, b.url);
    assert_eq!(a.put_raw("/metrics/job/a", "only_in_a 1\n").await, 200);
    assert!(b.groups().await.is_empty(), "b does not see a's push");

    let url = a.url.clone();
    drop(a);
    let after = reqwest::Client::new()
        .get(format!("{url}/-/ready"))
        .send()
        .await;
    assert!(
        after.is_err(),
        "pushgateway still answers after drop: {after:?}"
    );
}

#[test]
fn output_file_parses_both_forms() {
    let text = "skipped=false\n\
                summary<<ghadelimiter_1f2e\nline one\n\nline=three<<x\nghadelimiter_1f2e\n\
                \n\
                url=http://a/?b=c<<d\n\
                empty=\n\
                skipped=true\n";
    let outputs = parse_output_file(text).unwrap();
    assert_eq!(outputs["summary"], "line one\n\nline=three<<x");
    assert_eq!(
        outputs["url"], "http://a/?b=c<<d",
        "= before << is name=value"
    );
    assert_eq!(outputs["empty"], "");
    assert_eq!(outputs["skipped"], "true", "the last write wins");
    assert_eq!(outputs.len(), 4);
}

#[test]
fn output_file_errors_where_the_runner_would() {
    assert!(parse_output_file("a<<EOF\nno end\n").is_err());
    assert!(parse_output_file("no separator\n").is_err());
    assert!(parse_output_file("=value\n").is_err());
    assert!(parse_output_file("").unwrap().is_empty());
}

/// Drift check: the README's dry-run example is the success fixture, and
/// every fixture but `not_json.json` is valid JSON.
#[test]
fn fixtures_are_json_and_the_example_is_the_success_fixture() {
    let dir = fixture("");
    for sub in ["workflow_run", "deployment_status", "github"] {
        for entry in std::fs::read_dir(dir.join(sub)).unwrap() {
            let path = entry.unwrap().path();
            let text = std::fs::read_to_string(&path).unwrap();
            let parsed = serde_json::from_str::<serde_json::Value>(&text);
            let want_valid = path.file_name().unwrap() != "not_json.json";
            assert_eq!(parsed.is_ok(), want_valid, "{}", path.display());
        }
    }
    let example =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/workflow_run.json");
    assert_eq!(
        std::fs::read_to_string(example).unwrap(),
        std::fs::read_to_string(fixture("workflow_run/success.json")).unwrap()
    );
}
