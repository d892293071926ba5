//! Hostile servers: every outside system the action talks to (GitHub, the
//! Pushgateway, remote-write, EKS and STS through stand-ins, the OIDC token
//! endpoint) played by a server that lies. It names another host or port in
//! a pagination `Link`, redirects to another origin, answers with hundreds of
//! megabytes or a body that never ends. For each, the run must end within
//! its bound with one clear error (or a warning where nothing is lost), no
//! credential may reach the other server (it must get no request at all),
//! the action's peak memory stays under 100 MB and its summary under 1 MiB.

mod support;

use std::time::Duration;

use serde_json::json;
use support::aws::AwsCredentials;
use support::hostile::{HostileServer, Reply};
use support::oidc::OidcStub;
use support::{Action, Outcome, fixture, rest_run};

const TOKEN: &str = "ghs_hostileServersNeverSeeThisToken0123";
const PASSWORD: &str = "pgBasicPassw0rdNeverForeign";
const MIB: u64 = 1 << 20;
/// The bound on the action's peak resident memory, whatever a server sends.
const MEMORY: u64 = 100 * MIB;
/// "Huge": what the adversarial pass sent (200 MB).
const HUGE: u64 = 200 * MIB;
const CLUSTER: &str = "prod-eks";
const REGION: &str = "eu-west-1";
const RUNS: &str = "/repos/octo-org/shop/actions/workflows/deploy.yml/runs";

/// Every run here: memory watched (killed past the bound), and a time bound.
fn action(limit: Duration) -> Action {
    Action::new().memory_limit(MEMORY).timeout(limit)
}

/// What holds for every hostile run: memory and summary bounded, no secret shown.
fn assert_bounded(out: &Outcome, secrets: &[&str]) {
    let (peak, killed) = out.peak_rss.expect("memory was watched");
    assert!(
        !killed && peak < MEMORY,
        "peak resident memory {} MiB (bound {} MiB; killed: {killed})\n--- stdout ---\n{}",
        peak / MIB,
        MEMORY / MIB,
        out.stdout.chars().take(2_000).collect::<String>()
    );
    assert!(
        out.summary.len() < MIB as usize,
        "summary of {} bytes",
        out.summary.len()
    );
    assert!(
        out.stdout.len() < MIB as usize,
        "stdout of {} bytes",
        out.stdout.len()
    );
    out.assert_no_secret(secrets);
}

/// The one `::error::` line of a failed run.
fn the_error(out: &Outcome) -> String {
    let errors = out.error_lines();
    assert_eq!(errors.len(), 1, "{}", out.stdout);
    errors[0].to_string()
}

/// Workflows mode against GitHub at `api`, as a dry run (nothing else is contacted).
fn history_from(api: &str) -> Action {
    action(Duration::from_secs(60))
        .env("GITHUB_EVENT_NAME", "schedule")
        .input("workflows", "deploy.yml")
        .input("deploy-branches", "main")
        .input("dry-run", "true")
        .input("github-token", TOKEN)
        .env("GITHUB_API_URL", api)
}

/// A page of runs whose `Link: rel="next"` names `next`.
fn page_linking_to(next: &str) -> Reply {
    Reply::Full {
        code: 200,
        headers: vec![
            ("content-type".into(), "application/json".into()),
            ("link".into(), format!("<{next}{RUNS}?page=2>; rel=\"next\"")),
        ],
        body: json!({"total_count": 2, "workflow_runs": [rest_run(7101, "success", 3_600, "a1", 7_200)]})
            .to_string(),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_github_token_never_follows_pagination_to_another_host_or_port() {
    let foreign = HostileServer::foreign().await;
    // Another port: the foreign server. Another host: `localhost` at the
    // API's own port (the same machine by another name is another origin).
    for other in ["port", "host"] {
        let own_port = std::sync::Arc::new(std::sync::OnceLock::<u16>::new());
        let (foreign_url, port) = (foreign.url.clone(), own_port.clone());
        let gh = HostileServer::start(move |_, target| {
            let next = match other {
                "port" => foreign_url.clone(),
                _ => format!("http://localhost:{}", port.get().expect("port set")),
            };
            if target.contains("page=2") {
                Reply::json(200, &json!({"total_count": 2, "workflow_runs": []}))
            } else {
                page_linking_to(&next)
            }
        })
        .await;
        own_port.set(gh.port).expect("set once");
        let out = history_from(&gh.url).run().await;
        out.assert_code(1);
        let error = the_error(&out);
        assert!(
            error.contains("not followed") && error.contains("outside the API"),
            "another {other}: {error}"
        );
        foreign.assert_untouched(&format!("pagination to another {other}"));
        assert!(
            gh.seen().iter().all(|r| !r.target.contains("page=2")),
            "another {other}: the next page was asked for: {:#?}",
            gh.seen()
        );
        assert_bounded(&out, &[TOKEN]);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_redirect_to_another_origin_is_followed_by_no_client() {
    let foreign = HostileServer::foreign().await;
    let to = foreign.url.clone();

    // GitHub: the run list redirects elsewhere.
    let target = to.clone();
    let gh =
        HostileServer::start(move |_, path| Reply::redirect(302, &format!("{target}{path}"))).await;
    let out = history_from(&gh.url).run().await;
    out.assert_code(1);
    assert!(the_error(&out).contains("redirected to"), "{}", out.stdout);
    assert_bounded(&out, &[TOKEN]);
    foreign.assert_untouched("GitHub redirect");

    // The Pushgateway (basic auth in its URL): the listing and pushes redirect elsewhere.
    let target = to.clone();
    let pg =
        HostileServer::start(move |_, path| Reply::redirect(307, &format!("{target}{path}"))).await;
    let pg_url = format!("http://dora:{PASSWORD}@127.0.0.1:{}/", pg.port);
    let out = action(Duration::from_secs(60))
        .event("workflow_run", &fixture("workflow_run/success.json"))
        .input("pushgateway-url", &pg_url)
        .input("retention", "0")
        .run()
        .await;
    out.assert_code(1);
    assert!(the_error(&out).contains("redirected to"), "{}", out.stdout);
    assert_bounded(&out, &[PASSWORD]);
    foreign.assert_untouched("Pushgateway redirect");

    // Remote-write with SigV4 (its session token is a header reqwest would
    // not strip) and with a bearer token: the write redirects elsewhere.
    let creds = AwsCredentials::test_session();
    let session = creds.session_token.clone().unwrap();
    let target = to.clone();
    let rw =
        HostileServer::start(move |_, path| Reply::redirect(307, &format!("{target}{path}"))).await;
    for auth in ["sigv4", "bearer"] {
        let mut run = action(Duration::from_secs(60))
            .event("workflow_run", &fixture("workflow_run/success.json"))
            .input("remote-write-url", &format!("{}/api/v1/write", rw.url))
            .aws_credentials(&creds);
        run = match auth {
            "sigv4" => run
                .input("remote-write-auth", "sigv4")
                .input("aws-region", REGION),
            _ => run.input("remote-write-bearer-token", TOKEN),
        };
        let out = run.run().await;
        out.assert_code(1);
        assert!(
            the_error(&out).contains("redirected to"),
            "{auth}: {}",
            out.stdout
        );
        assert_bounded(&out, &[TOKEN, &session, &creds.secret_access_key]);
        foreign.assert_untouched(&format!("remote-write redirect ({auth})"));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_huge_pushgateway_error_is_read_a_few_kilobytes_deep() {
    // 500 with 200 MB, every time: retried within the Pushgateway's budget (30 s).
    let pg = HostileServer::start(|_, _| Reply::huge(500, Some(HUGE))).await;
    let out = action(Duration::from_secs(60))
        .event("workflow_run", &fixture("workflow_run/success.json"))
        .input("pushgateway-url", &pg.url)
        .input("retention", "0")
        .run()
        .await;
    out.assert_code(1);
    let error = the_error(&out);
    assert!(error.contains("HTTP 500"), "{error}");
    assert!(
        error.len() < 4_000,
        "the error line is {} bytes",
        error.len()
    );
    assert_bounded(&out, &[]);
}

#[tokio::test(flavor = "multi_thread")]
async fn one_huge_group_in_the_listing_costs_bounded_memory_and_loses_nothing() {
    // A listing with another job's 160 MiB group before a normal one; pushes succeed.
    let pg = HostileServer::start(|method, _| match method {
        "GET" => Reply::Huge {
            code: 200,
            content_type: "application/json".into(),
            head: r#"{"status":"success","data":[{"labels":{"job":"node","instance":"a"},"big":{"metrics":[{"labels":{"v":""#.into(),
            fill: b'a',
            size: Some(160 * MIB),
            tail: r#""},"value":"1"}]}},{"labels":{"job":"other","instance":"b"}}]}"#.into(),
        },
        _ => Reply::json(200, &json!({})),
    })
    .await;
    // Run 7008: an upkeep event, one of those that read the listing.
    let action = action(Duration::from_secs(60));
    let mut payload: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(fixture("workflow_run/success.json")).unwrap(),
    )
    .unwrap();
    payload["workflow_run"]["id"] = json!(7008);
    let path = action.dir().join("upkeep.json");
    std::fs::write(&path, payload.to_string()).unwrap();
    let out = action
        .event("workflow_run", &path)
        .input("pushgateway-url", &pg.url)
        .input("retention", "0")
        .run()
        .await;
    out.assert_code(0);
    assert_bounded(&out, &[]);
    assert!(
        out.warning_lines()
            .iter()
            .any(|w| w.contains("skipped unread")),
        "{}",
        out.stdout
    );
    assert_eq!(out.output("events"), "1");
    assert!(
        pg.seen().iter().any(|r| r.method == "PUT"),
        "the event was pushed: {:?}",
        pg.seen()
            .iter()
            .map(|r| (&r.method, &r.target))
            .collect::<Vec<_>>()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn huge_and_endless_github_answers_cost_bounded_memory() {
    for (what, reply) in [
        ("a 404 with 200 MB", Reply::huge(404, Some(HUGE))),
        (
            "a run list that never ends",
            Reply::endless_json(r#"{"total_count":1,"workflow_runs":[{"name":""#),
        ),
    ] {
        let gh = HostileServer::start(move |_, _| reply.clone()).await;
        let out = history_from(&gh.url)
            .timeout(Duration::from_secs(30))
            .run()
            .await;
        out.assert_code(1);
        let error = the_error(&out);
        assert!(
            error.len() < 4_000,
            "{what}: the error line is {} bytes",
            error.len()
        );
        assert_bounded(&out, &[TOKEN]);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn huge_and_endless_remote_write_answers_cost_bounded_memory() {
    for (what, reply) in [
        ("a 400 with 200 MB", Reply::huge(400, Some(HUGE))),
        ("a 204 that never ends", Reply::huge(200, None)),
    ] {
        let rw = HostileServer::start(move |_, _| reply.clone()).await;
        let out = action(Duration::from_secs(60))
            .event("workflow_run", &fixture("workflow_run/success.json"))
            .input("remote-write-url", &format!("{}/api/v1/write", rw.url))
            .input("remote-write-bearer-token", TOKEN)
            .run()
            .await;
        assert!(out.code == 0 || out.code == 1, "{what}: exit {}", out.code);
        if out.code == 1 {
            let error = the_error(&out);
            assert!(
                error.len() < 4_000,
                "{what}: the error line is {} bytes",
                error.len()
            );
        }
        assert_bounded(&out, &[TOKEN]);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn endless_eks_sts_and_oidc_answers_cost_bounded_memory() {
    let creds = AwsCredentials::test();
    let endless = || Reply::endless_json(r#"{"cluster":{"name":""#);

    // EKS DescribeCluster through AWS_ENDPOINT_URL_EKS.
    let eks = HostileServer::start(move |_, _| endless()).await;
    let out = action(Duration::from_secs(40))
        .event("workflow_run", &fixture("workflow_run/success.json"))
        .input("cluster-name", CLUSTER)
        .input("aws-region", REGION)
        .aws_credentials(&creds)
        .env("AWS_ENDPOINT_URL_EKS", &eks.url)
        .run()
        .await;
    out.assert_code(1);
    assert!(
        the_error(&out).contains("EKS DescribeCluster"),
        "{}",
        out.stdout
    );
    assert_bounded(&out, &[&creds.secret_access_key]);

    // STS AssumeRoleWithWebIdentity through AWS_ENDPOINT_URL_STS, after a real OIDC token.
    let oidc = OidcStub::start().await;
    let sts = HostileServer::start(|_, _| Reply::Huge {
        code: 200,
        content_type: "text/xml".into(),
        head: "<AssumeRoleWithWebIdentityResponse><AssumeRoleWithWebIdentityResult><Credentials><AccessKeyId>".into(),
        fill: b'A',
        size: None,
        tail: String::new(),
    })
    .await;
    let mut run = action(Duration::from_secs(40))
        .event("workflow_run", &fixture("workflow_run/success.json"))
        .input("cluster-name", CLUSTER)
        .input("aws-region", REGION)
        .input("role-to-assume", "arn:aws:iam::123456789012:role/dora")
        .env("AWS_ENDPOINT_URL_STS", &sts.url)
        .env("AWS_ENDPOINT_URL_EKS", &eks.url);
    for (k, v) in oidc.env() {
        run = run.env(k, &v);
    }
    let eks_before = eks.seen().len();
    let out = run.run().await;
    out.assert_code(1);
    assert!(the_error(&out).contains("STS"), "{}", out.stdout);
    assert_eq!(
        eks.seen().len(),
        eks_before,
        "EKS is asked only after STS answered"
    );
    assert_bounded(&out, &[oidc.request_token(), oidc.id_token()]);

    // The OIDC token endpoint itself.
    let token_endpoint =
        HostileServer::start(|_, _| Reply::endless_json(r#"{"count":1,"value":""#)).await;
    let request_token = "ghs_runtimeRequestTokenHostile0123456789";
    let out = action(Duration::from_secs(40))
        .event("workflow_run", &fixture("workflow_run/success.json"))
        .input("cluster-name", CLUSTER)
        .input("aws-region", REGION)
        .input("role-to-assume", "arn:aws:iam::123456789012:role/dora")
        .env(
            "ACTIONS_ID_TOKEN_REQUEST_URL",
            &format!("{}/idtoken?api-version=2.0", token_endpoint.url),
        )
        .env("ACTIONS_ID_TOKEN_REQUEST_TOKEN", request_token)
        .env("AWS_ENDPOINT_URL_STS", &sts.url)
        .run()
        .await;
    out.assert_code(1);
    assert!(the_error(&out).contains("OIDC"), "{}", out.stdout);
    assert_eq!(sts.seen().len(), 1, "STS is asked only after a token came");
    assert_bounded(&out, &[request_token]);
}

/// The cluster's API server answers a Kustomization list of 40 MiB (one
/// object with a huge annotation): the page is read up to its bound, then
/// the source fails with a clear error; memory stays bounded, the EKS token
/// shows nowhere. (The kube client follows no redirect at all.)
#[tokio::test(flavor = "multi_thread")]
async fn a_huge_kubernetes_list_page_costs_bounded_memory() {
    use support::Pushgateway;
    use support::aws::EksStub;
    use support::kube::{FakeApiConfig, FakeApiServer};
    const KUSTOMIZATIONS: &str =
        "/apis/kustomize.toolkit.fluxcd.io/v1/namespaces/flux-system/kustomizations";
    let creds = AwsCredentials::test();
    let pg = Pushgateway::start().await;
    let huge = json!({
        "apiVersion": "v1", "kind": "KustomizationList", "metadata": {"resourceVersion": "1"},
        "items": [{"apiVersion": "kustomize.toolkit.fluxcd.io/v1", "kind": "Kustomization",
            "metadata": {"name": "apps", "namespace": "flux-system",
                "annotations": {"huge": "x".repeat(40 << 20)}}}]
    });
    let api = FakeApiServer::start(
        FakeApiConfig::new(CLUSTER, REGION)
            .pushgateway(&pg.url)
            .object(KUSTOMIZATIONS, huge),
    )
    .await;
    let eks = EksStub::start().await;
    eks.active(CLUSTER, REGION, &api).await;
    let out = action(Duration::from_secs(60))
        .env("GITHUB_EVENT_NAME", "schedule")
        .input("cluster-name", CLUSTER)
        .input("aws-region", REGION)
        .input("kustomizations", "flux-system/apps")
        .input("retention", "0")
        .aws_credentials(&creds)
        .env("AWS_ENDPOINT_URL_EKS", &eks.url())
        .run()
        .await;
    out.assert_code(1);
    assert!(
        the_error(&out).contains("larger than"),
        "the page bound is named: {}",
        out.stdout
    );
    assert_bounded(&out, &[&creds.secret_access_key]);
}
