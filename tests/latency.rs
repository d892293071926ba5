//! Latency: an event-mode run with a cluster waits for at most four network
//! round trips, one after the other, however many calls it makes.
//!
//! Every outside service the run talks to sits behind a [`DelayProxy`] that
//! holds each request (and each client flight of a TLS handshake) back for
//! [`DELAY`]: the EKS API (DescribeCluster), the Kubernetes API server (and
//! through its service proxy the Pushgateway), GitHub REST (the workflow's
//! recent runs and the compare of the changes shipped). The credentials come
//! from the environment, so STS is not called (the EKS token is presigned in
//! the process); `AWS_ENDPOINT_URL_STS` still points at a delayed stub that
//! must see no request.
//!
//! The critical path is DescribeCluster → the API server's TLS handshake →
//! the Pushgateway's `/-/ready` (the warm-up that opens the connection) →
//! the PUT (on the same connection): four round trips. GitHub's two look-ups
//! run beside the handshake and the warm-up. The group listing is not on
//! the path: event mode reads it only on upkeep events (one in 16, by run
//! id), and the run ids here are none of those.
//!
//! The allowance for the process's own work is measured in the same test:
//! the same runs through the same proxies with no delay. Each figure is the
//! median of [`RUNS`] runs (a shared machine is noisy), and the bound is
//! that median + 4 × [`DELAY`] + ½ × [`DELAY`]: round trips are counted to
//! the nearest whole one (timer overshoot is about a millisecond per
//! flight), so a fifth round trip on the path fails the test by half a delay.

mod support;

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::aws::{AwsCredentials, EksStub, describe_cluster_body};
use support::delay::DelayProxy;
use support::kube::{FakeApiConfig, FakeApiServer};
use support::{Action, Pushgateway, fixture};
use wiremock::matchers::{any, method, path, path_regex};
use wiremock::{Mock, MockServer, ResponseTemplate};

const CLUSTER: &str = "latency-eks";
const REGION: &str = "eu-west-1";
const DELAY: Duration = Duration::from_millis(50);
const ROUND_TRIPS: u32 = 4;
const RUNS: usize = 5;
const SHA: &str = "9f8e7d6c5b4a39281706f5e4d3c2b1a098765432";
const PREVIOUS_SHA: &str = "1111111111111111111111111111111111111111";

/// The services, and one set of proxies in front of them.
struct Services {
    pg: Pushgateway,
    api: FakeApiServer,
    gh: MockServer,
    sts: MockServer,
}

/// The services as the action sees them through proxies adding `delay`.
struct Route {
    eks: EksStub,
    proxies: Vec<DelayProxy>,
}

async fn services() -> Services {
    let pg = Pushgateway::start().await;
    let api = FakeApiServer::start(FakeApiConfig::new(CLUSTER, REGION).pushgateway(&pg.url)).await;
    let gh = MockServer::start().await;
    // The workflow's recent runs: one earlier success, so the changes the
    // event shipped are asked for (one compare call).
    let event: Value = serde_json::from_str(
        &std::fs::read_to_string(fixture("workflow_run/success.json")).unwrap(),
    )
    .unwrap();
    let mut previous = event["workflow_run"].clone();
    previous["id"] = json!(6990);
    previous["head_sha"] = json!(PREVIOUS_SHA);
    for field in ["created_at", "run_started_at", "updated_at"] {
        previous[field] = json!("2026-11-19T10:30:00Z");
    }
    Mock::given(method("GET"))
        .and(path_regex(
            r"^/repos/octo-org/shop/actions/workflows/[^/]+/runs$",
        ))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"total_count": 1, "workflow_runs": [previous]})),
        )
        .mount(&gh)
        .await;
    Mock::given(method("GET"))
        .and(path(format!(
            "/repos/octo-org/shop/compare/{PREVIOUS_SHA}...{SHA}"
        )))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "status": "ahead", "ahead_by": 1, "total_commits": 1,
            "commits": [{"sha": SHA, "commit": {
                "author": {"date": "2026-11-20T09:30:00Z"},
                "committer": {"date": "2026-11-20T09:30:00Z"}}}]
        })))
        .mount(&gh)
        .await;
    let sts = MockServer::start().await;
    Mock::given(any())
        .respond_with(ResponseTemplate::new(500))
        .mount(&sts)
        .await;
    Services { pg, api, gh, sts }
}

impl Services {
    /// Proxies adding `delay` in front of every service, and an EKS stub
    /// (behind one of them) whose cluster endpoint is the API server's proxy.
    async fn route(&self, delay: Duration) -> Route {
        let eks = EksStub::start().await;
        let api = DelayProxy::start(&self.api.url(), delay).await;
        eks.respond(
            CLUSTER,
            ResponseTemplate::new(200).set_body_json(describe_cluster_body(
                CLUSTER,
                REGION,
                "ACTIVE",
                Some(&api.url()),
                Some(&self.api.ca_pem()),
            )),
        )
        .await;
        let proxies = vec![
            DelayProxy::start(&eks.url(), delay).await,
            api,
            DelayProxy::start(&self.gh.uri(), delay).await,
            DelayProxy::start(&self.sts.uri(), delay).await,
        ];
        Route { eks, proxies }
    }

    /// One run recording run `run_id` (a new event each time) through
    /// `route`; its wall time, from spawning the process to its exit.
    async fn run(&self, route: &Route, run_id: u64) -> Duration {
        let (wall, flights) = self.run_traced(route, run_id).await;
        if std::env::var_os("DORA_LATENCY_TRACE").is_some() {
            eprintln!("run {run_id}: {wall:?}\n{flights}");
        }
        wall
    }

    /// [`Services::run`], and what each proxy saw (for explaining a slow run).
    async fn run_traced(&self, route: &Route, run_id: u64) -> (Duration, String) {
        let action = Action::new();
        let payload = patched_event(action.dir(), run_id);
        let [eks, _, gh, sts] = &route.proxies[..] else {
            unreachable!("four proxies")
        };
        let action = action
            .event("workflow_run", &payload)
            .input("cluster-name", CLUSTER)
            .input("aws-region", REGION)
            .input("retention", "0")
            .input("github-token", "ghs_latency")
            .aws_credentials(&AwsCredentials::test())
            .env("AWS_ENDPOINT_URL_EKS", &eks.url())
            .env("AWS_ENDPOINT_URL_STS", &sts.url())
            .env("GITHUB_API_URL", &gh.url());
        let start = Instant::now();
        let out = action.run().await;
        let wall = start.elapsed();
        out.assert_code(0);
        assert_eq!(out.output("events"), "1", "{}", out.stdout);
        assert_eq!(
            out.output("lead-time-seconds"),
            "3600",
            "the compare's commit time was used: {}",
            out.stdout
        );
        assert!(out.warning_lines().is_empty(), "{}", out.stdout);
        let stored = self
            .pg
            .groups_matching(&[("run_id", &run_id.to_string())])
            .await;
        assert_eq!(stored.len(), 1, "run {run_id} was pushed");
        let flights = ["EKS", "API server", "GitHub", "STS"]
            .iter()
            .zip(&route.proxies)
            .map(|(name, proxy)| format!("  {name}: {:?}", proxy.flights_since(start)))
            .collect::<Vec<_>>()
            .join("\n");
        (wall, flights)
    }
}

/// The success fixture as run `run_id`.
fn patched_event(dir: &Path, run_id: u64) -> std::path::PathBuf {
    let mut v: Value = serde_json::from_str(
        &std::fs::read_to_string(fixture("workflow_run/success.json")).unwrap(),
    )
    .unwrap();
    v["workflow_run"]["id"] = json!(run_id);
    let out = dir.join("event.json");
    std::fs::write(&out, v.to_string()).unwrap();
    out
}

fn median(mut times: Vec<Duration>) -> Duration {
    times.sort();
    times[times.len() / 2]
}

#[tokio::test(flavor = "multi_thread")]
async fn an_event_run_with_a_cluster_waits_for_at_most_four_round_trips() {
    let services = services().await;
    let direct = services.route(Duration::ZERO).await;
    let delayed = services.route(DELAY).await;
    let mut baseline = Vec::new();
    let mut slow = Vec::new();
    // Interleaved, so a burst of load on the machine hits both alike.
    for i in 0..RUNS as u64 {
        // Run ids 8001…, 9001…: no upkeep events (`dora::plan::upkeep_due`).
        baseline.push(services.run(&direct, 8001 + i).await);
        slow.push(services.run(&delayed, 9001 + i).await);
    }
    // Every service was reached through its proxy (STS: not at all).
    assert_eq!(delayed.eks.requests().await.len(), RUNS);
    assert_eq!(services.sts.received_requests().await.unwrap().len(), 0);
    let github = services.gh.received_requests().await.unwrap();
    assert_eq!(github.len(), 2 * 2 * RUNS, "runs list and compare, per run");
    let proxied = services
        .api
        .requests()
        .iter()
        .filter(|r| r.path_and_query.contains("/proxy/"))
        .count();
    assert_eq!(
        proxied,
        2 * 2 * RUNS,
        "the warm-up and the PUT, per run: no listing"
    );

    let work = median(baseline.clone());
    let took = median(slow.clone());
    let bound = work + DELAY * ROUND_TRIPS + DELAY / 2;
    eprintln!(
        "process work (no delay): {baseline:?}, median {work:?}\n\
         with {DELAY:?} per round trip: {slow:?}, median {took:?}\n\
         bound: {work:?} + {ROUND_TRIPS} × {DELAY:?} + {:?} = {bound:?}; round trips on the path ≈ {:.1}",
        DELAY / 2,
        took.saturating_sub(work).as_secs_f64() / DELAY.as_secs_f64()
    );
    assert!(
        took <= bound,
        "the run took {took:?} with {DELAY:?} per round trip, {work:?} without: more than {ROUND_TRIPS} round trips in a row"
    );
}
