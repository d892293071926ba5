//! Cluster access end to end: AWS credentials the three ways a workflow
//! supplies them, the EKS existence check and its skips, the in-process EKS
//! token, and the Pushgateway reached through the API server's service proxy.
//! moto plays STS and EKS where it behaves like AWS; an EKS stub returns the
//! fake API server's endpoint and CA where moto cannot (its are random).

mod support;

use support::aws::{AwsCredentials, EksStub, Moto, cluster_arn};
use support::kube::{FakeApiConfig, FakeApiServer};
use support::oidc::OidcStub;
use support::{Action, Pushgateway, fixture};
use wiremock::matchers::any;
use wiremock::{Mock, MockServer, ResponseTemplate};

const CLUSTER: &str = "prod-eks";
const REGION: &str = "eu-west-1";
const ROLE: &str = "arn:aws:iam::123456789012:role/dora-action";
const GITHUB_TOKEN: &str = "ghs_eksTestTokenNeverPrinted0987654321";

/// A GitHub REST mock that answers every call with an empty run list, and
/// counts calls (a skipped run must make none).
async fn github() -> MockServer {
    let server = MockServer::start().await;
    Mock::given(any())
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(serde_json::json!({"total_count": 0, "workflow_runs": []})),
        )
        .mount(&server)
        .await;
    server
}

/// The success event, against `cluster-name`, with GitHub at `gh`.
fn deploy_event(gh: &MockServer) -> Action {
    Action::new()
        .event("workflow_run", &fixture("workflow_run/success.json"))
        .input("cluster-name", CLUSTER)
        .input("aws-region", REGION)
        .input("retention", "0")
        .input("github-token", GITHUB_TOKEN)
        .env("GITHUB_API_URL", &gh.uri())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_missing_cluster_is_a_clean_skip_with_no_further_call() {
    let moto = Moto::start().await;
    let gh = github().await;
    let pg = Pushgateway::start().await;
    let out = deploy_event(&gh)
        .aws_credentials(&AwsCredentials::test())
        .env("AWS_ENDPOINT_URL_EKS", &moto.url)
        .env("AWS_ENDPOINT_URL_STS", &moto.url)
        .input("pushgateway-url", &pg.url)
        .run()
        .await;
    out.assert_code(0);
    assert_eq!(out.output("skipped"), "true");
    assert_eq!(out.output("cluster-exists"), "false");
    assert_eq!(out.output("events"), "0");
    let notices = out.notice_lines();
    assert_eq!(notices.len(), 1, "{}", out.stdout);
    assert!(
        notices[0].contains(&format!(
            "EKS cluster `{CLUSTER}` does not exist in {REGION}"
        )),
        "{notices:?}"
    );
    assert!(out.summary.contains("does not exist"), "{}", out.summary);
    assert_eq!(pg.groups().await, vec![], "nothing pushed");
    assert_eq!(
        gh.received_requests().await.unwrap().len(),
        0,
        "no GitHub call after the skip"
    );
    out.assert_no_secret(&[&AwsCredentials::test().secret_access_key, GITHUB_TOKEN]);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_cluster_that_is_not_active_is_skipped_with_its_status() {
    let api = FakeApiServer::start(FakeApiConfig::new(CLUSTER, REGION)).await;
    let eks = EksStub::start().await;
    eks.with_status(CLUSTER, REGION, "CREATING", &api).await;
    let gh = github().await;
    let out = deploy_event(&gh)
        .aws_credentials(&AwsCredentials::test())
        .env("AWS_ENDPOINT_URL_EKS", &eks.url())
        .run()
        .await;
    out.assert_code(0);
    assert_eq!(
        (out.output("skipped"), out.output("cluster-exists")),
        ("true", "false")
    );
    assert!(
        out.notice_lines()[0].contains("is CREATING, not ACTIVE"),
        "{}",
        out.stdout
    );
    assert!(api.requests().is_empty(), "the API server was not touched");
    eks.assert_signed(&AwsCredentials::test(), REGION).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn access_denied_names_the_missing_permission() {
    let eks = EksStub::start().await;
    eks.access_denied(CLUSTER, REGION).await;
    let gh = github().await;
    let out = deploy_event(&gh)
        .aws_credentials(&AwsCredentials::test())
        .env("AWS_ENDPOINT_URL_EKS", &eks.url())
        .run()
        .await;
    out.assert_code(1);
    let errors = out.error_lines();
    assert_eq!(errors.len(), 1, "{}", out.stdout);
    assert!(errors[0].contains("`eks:DescribeCluster`"), "{errors:?}");
    assert!(
        errors[0].contains(&cluster_arn(CLUSTER, REGION)),
        "AWS's message names the ARN: {errors:?}"
    );
    assert!(
        out.outputs.is_empty(),
        "a failed run is not a skip: {:?}",
        out.outputs
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn eks_throttling_is_retried() {
    let pg = Pushgateway::start().await;
    let api = FakeApiServer::start(FakeApiConfig::new(CLUSTER, REGION).pushgateway(&pg.url)).await;
    let eks = EksStub::start().await;
    eks.throttle(CLUSTER, 2).await;
    eks.active(CLUSTER, REGION, &api).await;
    let gh = github().await;
    let out = deploy_event(&gh)
        .aws_credentials(&AwsCredentials::test())
        .env("AWS_ENDPOINT_URL_EKS", &eks.url())
        .run()
        .await;
    out.assert_code(0);
    assert_eq!(eks.requests().await.len(), 3);
    assert_eq!(pg.groups().await.len(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn credentials_from_the_environment_push_through_the_service_proxy() {
    let creds = AwsCredentials::test_session();
    let pg = Pushgateway::start().await;
    let api = FakeApiServer::start(FakeApiConfig::new(CLUSTER, REGION).pushgateway(&pg.url)).await;
    let eks = EksStub::start().await;
    eks.active(CLUSTER, REGION, &api).await;
    let gh = github().await;
    let out = deploy_event(&gh)
        .aws_credentials(&creds)
        .env("AWS_ENDPOINT_URL_EKS", &eks.url())
        .run()
        .await;
    out.assert_code(0);
    assert_eq!(
        (
            out.output("skipped"),
            out.output("cluster-exists"),
            out.output("events")
        ),
        ("false", "true", "1")
    );
    let groups = pg.groups_matching(&[("run_id", "7001")]).await;
    assert_eq!(
        groups.len(),
        1,
        "the event reached the in-cluster Pushgateway"
    );
    assert_eq!(
        groups[0].sample_labels("dora_workflow_deploy_event")["environment"],
        CLUSTER,
        "environment defaults to the cluster name"
    );
    let requests = api.requests();
    assert!(requests.iter().all(|r| r.authorized), "{requests:#?}");
    let proxy = "/api/v1/namespaces/observability/services/pushgateway:9091/proxy/";
    // Run 7001 is no upkeep event: the group listing is not read.
    assert!(
        !requests
            .iter()
            .any(|r| r.path_and_query == format!("{proxy}api/v1/metrics")),
        "{requests:#?}"
    );
    assert!(
        requests.iter().any(|r| r.method == "PUT"
            && r.path_and_query
                .starts_with(&format!("{proxy}metrics/job/dora/"))),
        "{requests:#?}"
    );
    assert!(out.summary.contains("service proxy"), "{}", out.summary);
    eks.assert_signed(&creds, REGION).await;
    let eks_token = requests[0].token.clone().expect("a bearer token was sent");
    out.assert_masked(&eks_token);
    out.assert_masked(creds.session_token.as_deref().unwrap());
    out.assert_no_secret(&[
        &creds.secret_access_key,
        creds.session_token.as_deref().unwrap(),
        &eks_token,
        GITHUB_TOKEN,
    ]);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_web_identity_token_file_is_exchanged_with_sts() {
    let moto = Moto::start().await;
    let pg = Pushgateway::start().await;
    let api = FakeApiServer::start(
        FakeApiConfig::new(CLUSTER, REGION)
            .pushgateway(&pg.url)
            .moto(&moto.url),
    )
    .await;
    let eks = EksStub::start().await;
    eks.active(CLUSTER, REGION, &api).await;
    let gh = github().await;
    let action = deploy_event(&gh);
    let token = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJyZXBvOm9jdG8tb3JnL3Nob3AifQ.c2lnbmF0dXJlRmlsZQ";
    let token_file = action.dir().join("web-identity-token");
    std::fs::write(&token_file, format!("{token}\n")).unwrap();
    let out = action
        .env("AWS_WEB_IDENTITY_TOKEN_FILE", token_file.to_str().unwrap())
        .env("AWS_ROLE_ARN", ROLE)
        .env("AWS_ENDPOINT_URL_STS", &moto.url)
        .env("AWS_ENDPOINT_URL_EKS", &eks.url())
        .run()
        .await;
    out.assert_code(0);
    assert_eq!(pg.groups().await.len(), 1);
    let issued = moto.issued_credentials().await;
    assert_eq!(issued.len(), 1, "one AssumeRoleWithWebIdentity");
    eks.assert_signed(&issued[0], REGION).await;
    assert!(api.requests().iter().all(|r| r.authorized));
    out.assert_masked(token);
    out.assert_no_secret(&[
        token,
        &issued[0].secret_access_key,
        issued[0].session_token.as_deref().unwrap(),
    ]);
}

#[tokio::test(flavor = "multi_thread")]
async fn role_to_assume_uses_the_jobs_own_oidc_token() {
    let moto = Moto::start().await;
    let oidc = OidcStub::start().await;
    let pg = Pushgateway::start().await;
    let api = FakeApiServer::start(
        FakeApiConfig::new(CLUSTER, REGION)
            .pushgateway(&pg.url)
            .moto(&moto.url),
    )
    .await;
    let eks = EksStub::start().await;
    eks.active(CLUSTER, REGION, &api).await;
    let gh = github().await;
    let mut action = deploy_event(&gh)
        .input("role-to-assume", ROLE)
        .env("AWS_ENDPOINT_URL_STS", &moto.url)
        .env("AWS_ENDPOINT_URL_EKS", &eks.url());
    for (k, v) in oidc.env() {
        action = action.env(k, &v);
    }
    let out = action.run().await;
    out.assert_code(0);
    assert_eq!(
        oidc.audiences().await,
        vec![Some("sts.amazonaws.com".to_string())]
    );
    assert_eq!(pg.groups().await.len(), 1);
    let issued = moto.issued_credentials().await;
    assert_eq!(issued.len(), 1);
    eks.assert_signed(&issued[0], REGION).await;
    let eks_token = api.requests()[0].token.clone().unwrap();
    out.assert_masked(oidc.id_token());
    out.assert_masked(oidc.request_token());
    out.assert_no_secret(&[
        oidc.id_token(),
        oidc.request_token(),
        &issued[0].secret_access_key,
        &eks_token,
        GITHUB_TOKEN,
    ]);
}

#[tokio::test(flavor = "multi_thread")]
async fn role_to_assume_without_id_token_permission_says_what_to_add() {
    let gh = github().await;
    let out = deploy_event(&gh).input("role-to-assume", ROLE).run().await;
    out.assert_code(1);
    let errors = out.error_lines();
    assert_eq!(errors.len(), 1, "{}", out.stdout);
    assert!(
        errors[0].contains("permissions: id-token: write"),
        "{errors:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn no_credentials_at_all_is_a_clear_error() {
    let gh = github().await;
    let out = deploy_event(&gh).run().await;
    out.assert_code(1);
    let errors = out.error_lines();
    assert_eq!(errors.len(), 1, "{}", out.stdout);
    for needed in [
        "role-to-assume",
        "id-token: write",
        "configure-aws-credentials",
    ] {
        assert!(errors[0].contains(needed), "{errors:?}");
    }
    let out = Action::new()
        .event("workflow_run", &fixture("workflow_run/success.json"))
        .input("cluster-name", CLUSTER)
        .aws_credentials(&AwsCredentials::test())
        .run()
        .await;
    out.assert_code(1);
    assert!(
        out.error_lines()[0].contains("input `aws-region`"),
        "{}",
        out.stdout
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_rejected_eks_token_is_a_clear_error_and_pushes_nothing() {
    let pg = Pushgateway::start().await;
    let api = FakeApiServer::start(
        FakeApiConfig::new(CLUSTER, REGION)
            .pushgateway(&pg.url)
            .reject_all_tokens(),
    )
    .await;
    let eks = EksStub::start().await;
    eks.active(CLUSTER, REGION, &api).await;
    let gh = github().await;
    let out = deploy_event(&gh)
        .aws_credentials(&AwsCredentials::test())
        .env("AWS_ENDPOINT_URL_EKS", &eks.url())
        .run()
        .await;
    out.assert_code(1);
    let errors = out.error_lines();
    assert_eq!(errors.len(), 1, "{}", out.stdout);
    assert!(
        errors[0].contains("rejected the EKS token") && errors[0].contains("access entry"),
        "{errors:?}"
    );
    assert_eq!(pg.groups().await, vec![]);
    let eks_token = api.requests()[0].token.clone().unwrap();
    out.assert_no_secret(&[&eks_token, &AwsCredentials::test().secret_access_key]);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_direct_pushgateway_url_still_checks_the_cluster_first() {
    let moto = Moto::start().await;
    moto.create_cluster(CLUSTER, REGION).await;
    let pg = Pushgateway::start().await;
    let gh = github().await;
    // moto's cluster exists (ACTIVE) with a random endpoint: with a URL given, it is not contacted.
    let out = deploy_event(&gh)
        .aws_credentials(&AwsCredentials::test())
        .env("AWS_ENDPOINT_URL_EKS", &moto.url)
        .input("pushgateway-url", &pg.url)
        .run()
        .await;
    out.assert_code(0);
    assert_eq!(out.output("cluster-exists"), "true");
    assert_eq!(pg.groups().await.len(), 1);
}
