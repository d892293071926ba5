//! Tests of the cluster-side test support (`tests/support/{kube,aws,oidc}.rs`):
//! the fake Kubernetes API server's token check and service proxy, the EKS
//! stub's shapes, moto, and the OIDC stub. If these fail, every test of the
//! action against a cluster is suspect.

mod support;

use std::time::{Duration, SystemTime};

use base64::Engine as _;
use serde_json::{Value, json};

use support::Pushgateway;
use support::aws::{AwsCredentials, EksStub, Moto, sign_headers, verify_sigv4_header_auth};
use support::kube::{
    FakeApiConfig, FakeApiServer, RecordedRequest, TOKEN_PREFIX, presigned_eks_token,
    verify_eks_token,
};
use support::oidc::OidcStub;

const CLUSTER: &str = "dora-test";
const REGION: &str = "eu-west-1";

/// The URL inside a token.
fn token_url(token: &str) -> String {
    let encoded = token.strip_prefix(TOKEN_PREFIX).expect("token prefix");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(encoded)
        .expect("base64url");
    String::from_utf8(bytes).expect("UTF-8")
}

/// A token wrapping `url`.
fn token_of(url: &str) -> String {
    format!(
        "{TOKEN_PREFIX}{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(url)
    )
}

/// `GET path` on the fake server with `token` (if any); status and JSON body.
async fn get(api: &FakeApiServer, path: &str, token: Option<&str>) -> (u16, Value) {
    let mut request = api.client().get(format!("{}{path}", api.url()));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request
        .send()
        .await
        .expect("request to the fake API server");
    let status = response.status().as_u16();
    let body = response.json().await.expect("JSON body");
    (status, body)
}

fn unauthorized() -> Value {
    json!({"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure",
           "message":"Unauthorized","reason":"Unauthorized","code":401})
}

/// botocore's token (what `aws eks get-token` prints) for cluster
/// `dora-test` in eu-west-1 with [`AwsCredentials::test`] at
/// 2026-11-26T12:00:00Z, made with botocore 1.44.8 by mimicking awscli's
/// `get_token.py` (a fixed clock patched into `botocore.auth`).
const BOTOCORE_TOKEN: &str = "k8s-aws-v1.aHR0cHM6Ly9zdHMuZXUtd2VzdC0xLmFtYXpvbmF3cy5jb20vP0FjdGlvbj1HZXRDYWxsZXJJZGVudGl0eSZWZXJzaW9uPTIwMTEtMDYtMTUmWC1BbXotQWxnb3JpdGhtPUFXUzQtSE1BQy1TSEEyNTYmWC1BbXotQ3JlZGVudGlhbD1BS0lBSU9TRk9ETk43RVhBTVBMRSUyRjIwMjYxMTI2JTJGZXUtd2VzdC0xJTJGc3RzJTJGYXdzNF9yZXF1ZXN0JlgtQW16LURhdGU9MjAyNjExMjZUMTIwMDAwWiZYLUFtei1FeHBpcmVzPTYwJlgtQW16LVNpZ25lZEhlYWRlcnM9aG9zdCUzQngtazhzLWF3cy1pZCZYLUFtei1TaWduYXR1cmU9ODE3N2Y5ODI2ODg2N2U1YjkwY2RmYjIyNTc4NmZmYWMyNGYyMjdjNDY2NDQ5NWFmODYwZjQ2MjNiZTM4OTkzZQ";
/// The same with the session token `FwoGZXIvYXdzEXAMPLE/session+token==`.
const BOTOCORE_SESSION_TOKEN: &str = "k8s-aws-v1.aHR0cHM6Ly9zdHMuZXUtd2VzdC0xLmFtYXpvbmF3cy5jb20vP0FjdGlvbj1HZXRDYWxsZXJJZGVudGl0eSZWZXJzaW9uPTIwMTEtMDYtMTUmWC1BbXotQWxnb3JpdGhtPUFXUzQtSE1BQy1TSEEyNTYmWC1BbXotQ3JlZGVudGlhbD1BS0lBSU9TRk9ETk43RVhBTVBMRSUyRjIwMjYxMTI2JTJGZXUtd2VzdC0xJTJGc3RzJTJGYXdzNF9yZXF1ZXN0JlgtQW16LURhdGU9MjAyNjExMjZUMTIwMDAwWiZYLUFtei1FeHBpcmVzPTYwJlgtQW16LVNpZ25lZEhlYWRlcnM9aG9zdCUzQngtazhzLWF3cy1pZCZYLUFtei1TZWN1cml0eS1Ub2tlbj1Gd29HWlhJdllYZHpFWEFNUExFJTJGc2Vzc2lvbiUyQnRva2VuJTNEJTNEJlgtQW16LVNpZ25hdHVyZT1hZDU0YTc3YWU4Yzc5N2ZiOTc0YTYwNTczMWNjNzk2YzIwMGI2NzZhMjIzNDc2NzUwMjBkOTFmYmQ5ZTNhMGE1";

fn botocore_time() -> jiff::Timestamp {
    "2026-11-26T12:00:00Z".parse().expect("timestamp")
}

#[test]
fn the_token_check_accepts_botocores_tokens_so_it_checks_what_sts_checks() {
    // The check was written from the SigV4 spec; botocore is the reference
    // implementation `aws eks get-token` uses. Both agreeing is what makes
    // the fake server's verdict on the action's tokens worth anything.
    verify_eks_token(
        BOTOCORE_TOKEN,
        CLUSTER,
        REGION,
        &[AwsCredentials::test()],
        botocore_time(),
    )
    .expect("botocore's token is valid");
    let session = AwsCredentials {
        session_token: Some("FwoGZXIvYXdzEXAMPLE/session+token==".to_string()),
        ..AwsCredentials::test()
    };
    verify_eks_token(
        BOTOCORE_SESSION_TOKEN,
        CLUSTER,
        REGION,
        &[session],
        botocore_time(),
    )
    .expect("botocore's token with a session token is valid");
    // ... and only for that cluster, region and time.
    let other_cluster = verify_eks_token(
        BOTOCORE_TOKEN,
        "other",
        REGION,
        &[AwsCredentials::test()],
        botocore_time(),
    );
    assert!(other_cluster.unwrap_err().contains("signature mismatch"));
    let later = botocore_time() + jiff::SignedDuration::from_mins(16);
    let expired = verify_eks_token(
        BOTOCORE_TOKEN,
        CLUSTER,
        REGION,
        &[AwsCredentials::test()],
        later,
    );
    assert!(expired.unwrap_err().contains("from now"));
}

#[test]
fn aws_sigv4_presigns_the_same_token_as_botocore() {
    // The `aws-sigv4` crate with these settings reproduces botocore's token
    // byte for byte (parameter order included), so tests may build tokens
    // with `presigned_eks_token`.
    let time = SystemTime::from(botocore_time());
    assert_eq!(
        presigned_eks_token(CLUSTER, REGION, &AwsCredentials::test(), time),
        BOTOCORE_TOKEN
    );
    let session = AwsCredentials {
        session_token: Some("FwoGZXIvYXdzEXAMPLE/session+token==".to_string()),
        ..AwsCredentials::test()
    };
    assert_eq!(
        presigned_eks_token(CLUSTER, REGION, &session, time),
        BOTOCORE_SESSION_TOKEN
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn valid_token_is_accepted_and_every_tampered_one_gets_401() {
    let api = FakeApiServer::start(FakeApiConfig::new(CLUSTER, REGION)).await;
    let credentials = AwsCredentials::test_session();
    let token = presigned_eks_token(CLUSTER, REGION, &credentials, SystemTime::now());

    let (status, body) = get(&api, "/version", Some(&token)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["major"], "1");

    let url = token_url(&token);
    let signature = url.rsplit("X-Amz-Signature=").next().unwrap().to_string();
    let mut flipped = signature.clone();
    let last = flipped.pop().unwrap();
    flipped.push(if last == '0' { '1' } else { '0' });
    let long_term = AwsCredentials::test();
    let unknown = AwsCredentials {
        access_key_id: "AKIAUNKNOWNKEY000000".to_string(),
        ..AwsCredentials::test()
    };
    let wrong_secret = AwsCredentials {
        secret_access_key: "not-the-secret".to_string(),
        ..AwsCredentials::test()
    };
    let twenty_minutes_ago = SystemTime::now() - Duration::from_secs(20 * 60);
    // (case, token, what the rejection must say: each case fails for its
    // own reason, not for an earlier, accidental one).
    let sig = "signature mismatch";
    let cases: Vec<(&str, String, &str)> = vec![
        (
            "changed signature",
            token_of(&url.replace(&signature, &flipped)),
            sig,
        ),
        (
            "token for another cluster",
            presigned_eks_token("other-cluster", REGION, &credentials, SystemTime::now()),
            sig,
        ),
        (
            "token for another region",
            presigned_eks_token(CLUSTER, "us-east-1", &credentials, SystemTime::now()),
            "token URL is not https://sts.eu-west-1.amazonaws.com/",
        ),
        (
            "expired date",
            presigned_eks_token(CLUSTER, REGION, &credentials, twenty_minutes_ago),
            // 1200 s, or a second more when the clock ticks between signing and checking.
            "s from now (limit 900 s)",
        ),
        (
            "unknown access key",
            presigned_eks_token(CLUSTER, REGION, &unknown, SystemTime::now()),
            "unknown access key AKIAUNKNOWNKEY000000",
        ),
        (
            "wrong secret",
            presigned_eks_token(CLUSTER, REGION, &wrong_secret, SystemTime::now()),
            sig,
        ),
        (
            "session token dropped",
            token_of(&url.replace(
                &format!(
                    "&X-Amz-Security-Token={}",
                    support::aws::sigv4_encode(credentials.session_token.as_deref().unwrap())
                ),
                "",
            )),
            "X-Amz-Security-Token missing",
        ),
        (
            "padded base64",
            format!("{token}=="),
            "not unpadded base64url",
        ),
        (
            "no prefix",
            token.trim_start_matches(TOKEN_PREFIX).to_string(),
            "does not start with k8s-aws-v1.",
        ),
        (
            "Expires changed",
            token_of(&url.replace("X-Amz-Expires=60", "X-Amz-Expires=900")),
            "X-Amz-Expires",
        ),
        (
            "extra parameter",
            token_of(&format!("{url}&X-Amz-Extra=1")),
            "not allowed: X-Amz-Extra",
        ),
        (
            "garbage",
            "k8s-aws-v1.!!!".to_string(),
            "not unpadded base64url",
        ),
    ];
    // A valid token for long-term credentials is accepted too.
    let plain = presigned_eks_token(CLUSTER, REGION, &long_term, SystemTime::now());
    assert_eq!(get(&api, "/version", Some(&plain)).await.0, 200);

    for (case, bad, _) in &cases {
        let (status, body) = get(&api, "/version", Some(bad)).await;
        assert_eq!((status, &body), (401, &unauthorized()), "{case}");
    }
    let (status, body) = get(&api, "/version", None).await;
    assert_eq!((status, body), (401, unauthorized()), "no token");

    let requests = api.requests();
    assert_eq!(requests.len(), 2 + cases.len() + 1);
    assert!(requests[0].authorized && requests[1].authorized);
    for (request, (case, _, reason)) in requests[2..].iter().zip(&cases) {
        assert!(!request.authorized, "{case}: {request:?}");
        let rejection = request.rejection.as_deref().unwrap_or_default();
        assert!(rejection.contains(reason), "{case}: {rejection}");
    }
    assert_eq!(
        requests[0],
        RecordedRequest {
            method: "GET".to_string(),
            path_and_query: "/version".to_string(),
            authorized: true,
            rejection: None,
            token: Some(token.clone()),
        }
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn reject_all_tokens_refuses_even_a_valid_token() {
    let api = FakeApiServer::start(FakeApiConfig::new(CLUSTER, REGION).reject_all_tokens()).await;
    let token = api.token(&AwsCredentials::test());
    let (status, body) = get(&api, "/version", Some(&token)).await;
    assert_eq!((status, body), (401, unauthorized()));
    assert!(!api.requests()[0].authorized);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_server_is_trusted_only_through_its_own_ca() {
    let api = FakeApiServer::start(FakeApiConfig::new(CLUSTER, REGION)).await;
    let other = FakeApiServer::start(FakeApiConfig::new(CLUSTER, REGION)).await;
    assert_ne!(api.ca_pem(), other.ca_pem(), "a CA per instance");
    assert!(api.ca_pem().starts_with("-----BEGIN CERTIFICATE-----"));
    // The other server's CA does not vouch for this one.
    let wrong = other
        .client()
        .get(format!("{}/version", api.url()))
        .send()
        .await;
    assert!(wrong.is_err(), "TLS must fail with a foreign CA: {wrong:?}");
    // The certificate is valid for `localhost` as well as 127.0.0.1.
    let port = api.url().rsplit(':').next().unwrap().to_string();
    let token = api.token(&AwsCredentials::test());
    let response = api
        .client()
        .get(format!("https://localhost:{port}/version"))
        .bearer_auth(&token)
        .send()
        .await
        .expect("https://localhost works");
    assert_eq!(response.status(), 200);
}

#[tokio::test(flavor = "multi_thread")]
async fn configured_objects_are_served_and_unknown_paths_are_a_kubernetes_404() {
    let path = "/apis/kustomize.toolkit.fluxcd.io/v1/namespaces/flux-system/kustomizations";
    let list = json!({"apiVersion": "kustomize.toolkit.fluxcd.io/v1", "kind": "KustomizationList",
                      "metadata": {"resourceVersion": "1"}, "items": []});
    let api =
        FakeApiServer::start(FakeApiConfig::new(CLUSTER, REGION).object(path, list.clone())).await;
    let token = api.token(&AwsCredentials::test());
    assert_eq!(get(&api, path, Some(&token)).await, (200, list));
    // The query (kube adds e.g. `?limit=500`) does not change the answer.
    assert_eq!(
        get(&api, &format!("{path}?limit=500"), Some(&token))
            .await
            .0,
        200
    );
    let (status, body) = get(
        &api,
        "/apis/flagger.app/v1beta1/namespaces/x/canaries",
        Some(&token),
    )
    .await;
    assert_eq!(status, 404);
    assert_eq!(body["kind"], "Status");
    assert_eq!(body["reason"], "NotFound");
    assert_eq!(body["code"], 404);

    let updated = json!({"kind": "KustomizationList", "items": [{"metadata": {"name": "apps"}}]});
    api.set_object(path, updated.clone());
    assert_eq!(get(&api, path, Some(&token)).await, (200, updated));
}

#[tokio::test(flavor = "multi_thread")]
async fn service_proxy_round_trip_reaches_the_real_pushgateway() {
    let pg = Pushgateway::start().await;
    let api = FakeApiServer::start(FakeApiConfig::new(CLUSTER, REGION).pushgateway(&pg.url)).await;
    let token = api.token(&AwsCredentials::test_session());
    let client = api.client();

    // A label value with `/` goes in an `@base64` segment (base64url, `=`
    // padding kept): the proxy must forward those bytes untouched.
    let value = base64::engine::general_purpose::URL_SAFE.encode("octo-org/shop");
    assert!(value.ends_with('='), "the case worth testing: {value}");
    let group = format!("/metrics/job/dora/repository@base64/{value}/run_id/42");
    let body = "# TYPE dora_proxy_test gauge\ndora_proxy_test 1.7e+09\n";
    for prefix in [
        "/api/v1/namespaces/observability/services/pushgateway:9091/proxy",
        "/api/v1/namespaces/observability/services/http:pushgateway:9091/proxy",
        "/api/v1/namespaces/observability/services/pushgateway/proxy",
    ] {
        let response = client
            .put(format!("{}{prefix}{group}", api.url()))
            .bearer_auth(&token)
            .header("content-type", "text/plain; version=0.0.4")
            .body(body)
            .send()
            .await
            .expect("PUT through the proxy");
        assert_eq!(response.status(), 200, "{prefix}");
    }
    let groups = pg.groups().await;
    assert_eq!(groups.len(), 1, "{groups:#?}");
    assert_eq!(groups[0].labels["repository"], "octo-org/shop");
    assert_eq!(groups[0].labels["run_id"], "42");
    assert_eq!(groups[0].value("dora_proxy_test"), 1.7e9);

    // Reading through the proxy returns the Pushgateway's body.
    let listed: Value = client
        .get(format!(
            "{}/api/v1/namespaces/observability/services/pushgateway:9091/proxy/api/v1/metrics",
            api.url()
        ))
        .bearer_auth(&token)
        .send()
        .await
        .expect("GET through the proxy")
        .json()
        .await
        .expect("JSON");
    assert_eq!(listed["status"], "success");

    // The Pushgateway's own errors come back as they are.
    let rejected = client
        .put(format!(
            "{}/api/v1/namespaces/observability/services/pushgateway:9091/proxy/metrics/job/dora/run_id/43",
            api.url()
        ))
        .bearer_auth(&token)
        .body("not the text format {\n")
        .send()
        .await
        .expect("bad PUT");
    assert_eq!(rejected.status(), 400);

    let deleted = client
        .delete(format!(
            "{}/api/v1/namespaces/observability/services/pushgateway:9091/proxy{group}",
            api.url()
        ))
        .bearer_auth(&token)
        .send()
        .await
        .expect("DELETE through the proxy");
    assert_eq!(deleted.status(), 202);
    assert!(
        pg.groups_matching(&[("run_id", "42")]).await.is_empty(),
        "group deleted"
    );

    // Other services, ports or schemes are not proxied; no token, no proxy.
    for path in [
        "/api/v1/namespaces/monitoring/services/pushgateway:9091/proxy/metrics",
        "/api/v1/namespaces/observability/services/prometheus:9090/proxy/metrics",
        "/api/v1/namespaces/observability/services/pushgateway:9999/proxy/metrics",
        "/api/v1/namespaces/observability/services/https:pushgateway:9091/proxy/metrics",
    ] {
        let (status, body) = get(&api, path, Some(&token)).await;
        assert_eq!(
            (status, body["kind"].as_str()),
            (404, Some("Status")),
            "{path}"
        );
    }
    let (status, _) = get(
        &api,
        "/api/v1/namespaces/observability/services/pushgateway:9091/proxy/metrics",
        None,
    )
    .await;
    assert_eq!(status, 401);

    let recorded = api.requests();
    assert_eq!(
        recorded[0].path_and_query,
        format!("/api/v1/namespaces/observability/services/pushgateway:9091/proxy{group}"),
        "the raw request target is recorded"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn proxy_without_a_pushgateway_is_a_503_status() {
    let api = FakeApiServer::start(FakeApiConfig::new(CLUSTER, REGION)).await;
    let token = api.token(&AwsCredentials::test());
    let (status, body) = get(
        &api,
        "/api/v1/namespaces/observability/services/pushgateway:9091/proxy/api/v1/metrics",
        Some(&token),
    )
    .await;
    assert_eq!(
        (status, body["reason"].as_str()),
        (503, Some("ServiceUnavailable"))
    );
}

/// DescribeCluster against the stub as the action would send it: SigV4
/// signed for `eks` with the `aws-sigv4` crate.
async fn describe(
    eks: &EksStub,
    name: &str,
    credentials: &AwsCredentials,
) -> (u16, Option<String>, Value) {
    let url = format!("{}/clusters/{name}", eks.url());
    let host = eks.url().trim_start_matches("http://").to_string();
    let headers = sign_headers(
        "GET",
        &url,
        &[("host", host.as_str())],
        b"",
        credentials,
        "eks",
        REGION,
        SystemTime::now(),
    );
    let mut request = reqwest::Client::new().get(&url);
    for (k, v) in headers {
        request = request.header(k, v);
    }
    let response = request.send().await.expect("DescribeCluster");
    let status = response.status().as_u16();
    let error_type = response
        .headers()
        .get("x-amzn-errortype")
        .map(|v| v.to_str().unwrap().to_string());
    (status, error_type, response.json().await.expect("JSON"))
}

#[tokio::test(flavor = "multi_thread")]
async fn eks_stub_answers_the_real_describe_cluster_shapes() {
    let api = FakeApiServer::start(FakeApiConfig::new(CLUSTER, REGION)).await;
    let eks = EksStub::start().await;
    let credentials = AwsCredentials::test_session();
    eks.active(CLUSTER, REGION, &api).await;
    eks.with_status("creating", REGION, "CREATING", &api).await;
    eks.with_status("deleting", REGION, "DELETING", &api).await;
    eks.not_found("gone").await;
    eks.access_denied("secret", REGION).await;

    let (status, _, body) = describe(&eks, CLUSTER, &credentials).await;
    assert_eq!(status, 200);
    let cluster = &body["cluster"];
    assert_eq!(cluster["name"], CLUSTER);
    assert_eq!(
        cluster["arn"],
        format!("arn:aws:eks:{REGION}:123456789012:cluster/{CLUSTER}")
    );
    assert_eq!(cluster["status"], "ACTIVE");
    assert_eq!(cluster["endpoint"], api.url());
    assert!(cluster["createdAt"].is_number());
    let ca = base64::engine::general_purpose::STANDARD
        .decode(cluster["certificateAuthority"]["data"].as_str().unwrap())
        .unwrap();
    assert_eq!(String::from_utf8(ca).unwrap(), api.ca_pem());

    let (status, _, body) = describe(&eks, "creating", &credentials).await;
    assert_eq!(status, 200);
    assert_eq!(body["cluster"]["status"], "CREATING");
    assert!(body["cluster"].get("endpoint").is_none(), "no endpoint yet");
    let (_, _, body) = describe(&eks, "deleting", &credentials).await;
    assert_eq!(body["cluster"]["status"], "DELETING");

    let (status, error_type, body) = describe(&eks, "gone", &credentials).await;
    assert_eq!(status, 404);
    assert!(
        error_type
            .unwrap()
            .starts_with("ResourceNotFoundException:")
    );
    assert_eq!(body["message"], "No cluster found for name: gone.");

    let (status, error_type, body) = describe(&eks, "secret", &credentials).await;
    assert_eq!(
        (status, error_type.as_deref()),
        (403, Some("AccessDeniedException"))
    );
    let message = body["message"].as_str().unwrap();
    assert!(message.contains("eks:DescribeCluster"), "{message}");
    assert!(
        message.contains("arn:aws:eks:eu-west-1:123456789012:cluster/secret"),
        "{message}"
    );

    eks.assert_signed(&credentials, REGION).await;
    let requests = eks.requests().await;
    assert_eq!(requests.len(), 5);
    assert_eq!(requests[0].path, format!("/clusters/{CLUSTER}"));
}

#[tokio::test(flavor = "multi_thread")]
async fn eks_stub_throttles_n_times_then_answers() {
    let api = FakeApiServer::start(FakeApiConfig::new(CLUSTER, REGION)).await;
    let eks = EksStub::start().await;
    eks.active(CLUSTER, REGION, &api).await;
    eks.throttle(CLUSTER, 2).await;
    let credentials = AwsCredentials::test();
    let mut seen = Vec::new();
    for _ in 0..3 {
        let (status, error_type, _) = describe(&eks, CLUSTER, &credentials).await;
        seen.push((status, error_type));
    }
    assert_eq!(
        seen,
        vec![
            (429, Some("ThrottlingException".to_string())),
            (429, Some("ThrottlingException".to_string())),
            (200, None)
        ]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_sigv4_check_catches_a_wrong_signature() {
    // The EKS stub's `assert_signed` is only worth something if it fails
    // on bad signatures.
    let credentials = AwsCredentials::test_session();
    let url = "http://127.0.0.1:1234/clusters/dora-test";
    let signed = sign_headers(
        "GET",
        url,
        &[("host", "127.0.0.1:1234")],
        b"",
        &credentials,
        "eks",
        REGION,
        SystemTime::now(),
    );
    let mut headers: Vec<(String, String)> = vec![("host".into(), "127.0.0.1:1234".into())];
    headers.extend(signed);
    let check = |headers: &[(String, String)], credentials: &AwsCredentials, region: &str| {
        verify_sigv4_header_auth(
            "GET",
            "/clusters/dora-test",
            None,
            headers,
            b"",
            credentials,
            "eks",
            region,
            jiff::Timestamp::now(),
        )
    };
    check(&headers, &credentials, REGION).expect("aws-sigv4's signature verifies");
    assert!(check(&headers, &credentials, "us-east-1").is_err());
    let other_secret = AwsCredentials {
        secret_access_key: "other".into(),
        ..credentials.clone()
    };
    assert!(
        check(&headers, &other_secret, REGION)
            .unwrap_err()
            .contains("signature mismatch")
    );
    let mut moved = headers.clone();
    moved[0].1 = "127.0.0.1:9999".into();
    assert!(check(&moved, &credentials, REGION).is_err());
}

#[tokio::test(flavor = "multi_thread")]
async fn moto_creates_and_describes_clusters_per_region_and_assumes_roles() {
    let moto = Moto::start().await;

    // A missing cluster: 404 ResourceNotFoundException, REST-JSON.
    let missing = moto.describe_cluster("nope", REGION).await;
    assert_eq!(missing.status, 404, "{missing:?}");
    assert_eq!(
        missing.error_type.as_deref(),
        Some("ResourceNotFoundException")
    );
    let body: Value = serde_json::from_str(&missing.body).unwrap();
    assert_eq!(body["message"], "No cluster found for name: nope.");

    let created = moto.create_cluster(CLUSTER, REGION).await;
    assert_eq!(created["status"], "ACTIVE");
    assert_eq!(
        created["arn"],
        format!("arn:aws:eks:{REGION}:123456789012:cluster/{CLUSTER}")
    );
    let described = moto.describe_cluster(CLUSTER, REGION).await;
    assert_eq!(described.status, 200, "{described:?}");
    let body: Value = serde_json::from_str(&described.body).unwrap();
    assert_eq!(body["cluster"]["status"], "ACTIVE");
    assert!(body["cluster"]["createdAt"].is_number(), "{body}");
    // moto takes the region from the signature's credential scope.
    let elsewhere = moto.describe_cluster(CLUSTER, "us-east-1").await;
    assert_eq!(elsewhere.status, 404, "{elsewhere:?}");

    // STS AssumeRoleWithWebIdentity takes any token.
    let oidc = OidcStub::start().await;
    let assumed = moto
        .assume_role_with_web_identity("arn:aws:iam::123456789012:role/dora", oidc.id_token())
        .await;
    assert_eq!(assumed.status, 200, "{assumed:?}");
    assert!(
        assumed
            .body
            .starts_with("<AssumeRoleWithWebIdentityResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\">"),
        "{}",
        assumed.body
    );
    for element in [
        "<AccessKeyId>",
        "<SecretAccessKey>",
        "<SessionToken>",
        "<Expiration>",
        "<Arn>arn:aws:sts::123456789012:assumed-role/dora/dora-action</Arn>",
    ] {
        assert!(
            assumed.body.contains(element),
            "{element}: {}",
            assumed.body
        );
    }
    let issued = moto.issued_credentials().await;
    assert_eq!(issued.len(), 1);
    assert!(assumed.body.contains(&format!(
        "<AccessKeyId>{}</AccessKeyId>",
        issued[0].access_key_id
    )));
}

#[tokio::test(flavor = "multi_thread")]
async fn fake_api_server_accepts_credentials_moto_issued() {
    let moto = Moto::start().await;
    let api = FakeApiServer::start(
        FakeApiConfig::new(CLUSTER, REGION)
            .credentials(vec![])
            .moto(&moto.url),
    )
    .await;
    let stranger = api.token(&AwsCredentials::test());
    assert_eq!(get(&api, "/version", Some(&stranger)).await.0, 401);

    let assumed = moto
        .assume_role_with_web_identity("arn:aws:iam::123456789012:role/dora", "a.b.c")
        .await;
    assert_eq!(assumed.status, 200);
    let issued = moto.issued_credentials().await;
    assert_eq!(issued.len(), 1);
    assert!(issued[0].session_token.is_some());
    let token = api.token(&issued[0]);
    assert_eq!(get(&api, "/version", Some(&token)).await.0, 200);
}

#[tokio::test(flavor = "multi_thread")]
async fn oidc_stub_serves_a_token_for_the_right_request_token_and_records_the_audience() {
    let oidc = OidcStub::start().await;
    let url = oidc.request_url();
    assert!(url.ends_with("?api-version=2.0"), "{url}");
    let client = reqwest::Client::new();
    let ok = client
        .get(format!("{url}&audience=sts.amazonaws.com"))
        .bearer_auth(oidc.request_token())
        .send()
        .await
        .expect("token request");
    assert_eq!(ok.status(), 200);
    let body: Value = ok.json().await.unwrap();
    assert_eq!(body["count"], 1);
    assert_eq!(body["value"], oidc.id_token());
    assert_eq!(oidc.id_token().split('.').count(), 3, "JWT-shaped");

    let wrong = client
        .get(format!("{url}&audience=sts.amazonaws.com"))
        .bearer_auth("not-the-token")
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 401);
    assert_eq!(
        oidc.audiences().await,
        vec![
            Some("sts.amazonaws.com".to_string()),
            Some("sts.amazonaws.com".to_string())
        ]
    );
    assert_eq!(oidc.request_count().await, 2);
}
