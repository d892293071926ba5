//! AWS for the tests: known test credentials, an independent SigV4 checker,
//! `moto_server` (STS and EKS emulation) and an EKS DescribeCluster stub.
//!
//! Two kinds of fake, because neither alone is enough:
//!
//! - [`Moto`] is real AWS emulation from PyPI (`moto[server]`): STS
//!   `AssumeRoleWithWebIdentity` and EKS create/describe with real error
//!   shapes. But it checks no signatures, and its DescribeCluster answers a
//!   random endpoint and a CA that is not a certificate, so nothing can
//!   connect to "its" cluster.
//! - [`EksStub`] (wiremock) answers DescribeCluster with the real response
//!   shape pointing at a [`super::kube::FakeApiServer`], plus the error cases
//!   (not found, access denied, throttling, any status).
//!
//! Signatures are checked by [`verify_sigv4_header_auth`] and, for EKS
//! tokens, by `kube::verify_eks_token`: both written here from the SigV4
//! specification with `hmac` + `sha2`, *not* with the `aws-sigv4` crate the
//! action signs with, so that a test compares two independent
//! implementations instead of one with itself.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, SystemTime};

use hmac::{Hmac, KeyInit, Mac};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tempfile::TempDir;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use super::Action;
use super::kube::FakeApiServer;
use super::process::{Service, Spec, http, tempdir};

/// The account moto and the EKS stub report (moto's default account).
pub const ACCOUNT_ID: &str = "123456789012";

/// One set of AWS credentials, as `aws-actions/configure-aws-credentials`
/// leaves them in the environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AwsCredentials {
    pub access_key_id: String,
    pub secret_access_key: String,
    pub session_token: Option<String>,
}

impl AwsCredentials {
    /// Long-term test credentials (AWS's documentation example key), no
    /// session token.
    pub fn test() -> AwsCredentials {
        AwsCredentials {
            access_key_id: "AKIAIOSFODNN7EXAMPLE".to_string(),
            secret_access_key: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY".to_string(),
            session_token: None,
        }
    }

    /// Temporary test credentials, as an assumed role has them. The session
    /// token contains `/`, `+` and `=` on purpose: all three must be
    /// percent-encoded in a presigned URL, and a client that forgets it
    /// produces a token that fails the signature check.
    pub fn test_session() -> AwsCredentials {
        AwsCredentials {
            access_key_id: "ASIAIOSFODNN7SESSION".to_string(),
            secret_access_key: "je7MtGbClwBF/2Zp9Utk/h3yCo8nvbEXAMPLEKEY".to_string(),
            session_token: Some(
                "FwoGZXIvYXdzEDoaDTestSession/Token+With/Slashes+And=Padding==".to_string(),
            ),
        }
    }

    /// The `AWS_*` variables that carry these credentials.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        let mut env = vec![
            ("AWS_ACCESS_KEY_ID", self.access_key_id.clone()),
            ("AWS_SECRET_ACCESS_KEY", self.secret_access_key.clone()),
        ];
        if let Some(token) = &self.session_token {
            env.push(("AWS_SESSION_TOKEN", token.clone()));
        }
        env
    }
}

impl Action {
    /// Sets `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY` and (if any)
    /// `AWS_SESSION_TOKEN`, as `aws-actions/configure-aws-credentials` does.
    pub fn aws_credentials(self, credentials: &AwsCredentials) -> Self {
        credentials
            .env()
            .into_iter()
            .fold(self, |action, (k, v)| action.env(k, &v))
    }
}

// ------------------------------------------------------------------ SigV4

/// Characters SigV4 leaves unencoded: `A-Z a-z 0-9 - _ . ~` (RFC 3986
/// unreserved). Everything else is `%XX` with upper-case hex.
const SIGV4_ENCODE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');
/// The same, but keeping `/`: for the canonical URI.
const SIGV4_ENCODE_PATH: &AsciiSet = &SIGV4_ENCODE.remove(b'/');

/// `hex(sha256(""))`: the payload hash of a request without a body, which
/// botocore also uses for a presigned (query-string) STS request.
pub const EMPTY_SHA256: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

/// SigV4 URI encoding of one query key or value.
pub fn sigv4_encode(s: &str) -> String {
    utf8_percent_encode(s, SIGV4_ENCODE).to_string()
}

/// `hex(sha256(data))`.
pub fn sha256_hex(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

fn hmac_sha256(key: &[u8], data: &[u8]) -> Vec<u8> {
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(key).expect("HMAC takes any key");
    mac.update(data);
    mac.finalize().into_bytes().to_vec()
}

/// The canonical query string: every (decoded) pair SigV4-encoded, sorted by
/// key then value, joined with `&`.
pub fn canonical_query(pairs: &[(String, String)]) -> String {
    let mut encoded: Vec<(String, String)> = pairs
        .iter()
        .map(|(k, v)| (sigv4_encode(k), sigv4_encode(v)))
        .collect();
    encoded.sort();
    encoded
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&")
}

/// The SigV4 signature (hex) of `canonical_request`, for credential scope
/// `date/region/service/aws4_request`, signed at `amz_date`
/// (`YYYYMMDDTHHMMSSZ`).
pub fn sigv4_signature(
    secret_access_key: &str,
    amz_date: &str,
    region: &str,
    service: &str,
    canonical_request: &str,
) -> String {
    let date = amz_date.get(..8).unwrap_or(amz_date);
    let scope = format!("{date}/{region}/{service}/aws4_request");
    let string_to_sign = format!(
        "AWS4-HMAC-SHA256\n{amz_date}\n{scope}\n{}",
        sha256_hex(canonical_request.as_bytes())
    );
    let mut key = hmac_sha256(
        format!("AWS4{secret_access_key}").as_bytes(),
        date.as_bytes(),
    );
    for part in [region, service, "aws4_request"] {
        key = hmac_sha256(&key, part.as_bytes());
    }
    hex::encode(hmac_sha256(&key, string_to_sign.as_bytes()))
}

/// `YYYYMMDDTHHMMSSZ` (SigV4's `X-Amz-Date`) as a timestamp.
pub fn parse_amz_date(amz_date: &str) -> Result<jiff::Timestamp, String> {
    jiff::civil::DateTime::strptime("%Y%m%dT%H%M%SZ", amz_date)
        .and_then(|dt| dt.to_zoned(jiff::tz::TimeZone::UTC))
        .map(|z| z.timestamp())
        .map_err(|e| format!("X-Amz-Date {amz_date:?} is not YYYYMMDDTHHMMSSZ: {e}"))
}

/// How far a SigV4 date may be from now: AWS rejects requests more than
/// 15 minutes off (clock skew), and aws-iam-authenticator treats an EKS token
/// as expired 15 minutes after its `X-Amz-Date`.
pub const MAX_SKEW: Duration = Duration::from_secs(15 * 60);

/// Checks the `Authorization: AWS4-HMAC-SHA256 …` header of a request the
/// way an AWS service does, by recomputing the signature: credential scope
/// `<date>/<region>/<service>/aws4_request` with `credentials`'
/// access key, `x-amz-date` within 15 minutes of `now`, `x-amz-security-token`
/// equal to the session token when there is one, the payload hash
/// (`x-amz-content-sha256` if sent, else the body's), and the canonical URI
/// double-encoded as every service but S3 expects.
///
/// `raw_path` and `raw_query` are the request target as sent (still
/// percent-encoded). Returns why the request would be rejected.
#[allow(clippy::too_many_arguments)]
pub fn verify_sigv4_header_auth(
    method: &str,
    raw_path: &str,
    raw_query: Option<&str>,
    headers: &[(String, String)],
    body: &[u8],
    credentials: &AwsCredentials,
    service: &str,
    region: &str,
    now: jiff::Timestamp,
) -> Result<(), String> {
    let header = |name: &str| -> Vec<&str> {
        headers
            .iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .collect()
    };
    let authorization = match header("authorization").as_slice() {
        [one] => *one,
        [] => return Err("no Authorization header".into()),
        _ => return Err("more than one Authorization header".into()),
    };
    let rest = authorization
        .strip_prefix("AWS4-HMAC-SHA256 ")
        .ok_or_else(|| format!("Authorization is not AWS4-HMAC-SHA256: {authorization:?}"))?;
    let mut fields = BTreeMap::new();
    for part in rest.split(',') {
        let (k, v) = part
            .trim()
            .split_once('=')
            .ok_or_else(|| format!("malformed Authorization part {part:?}"))?;
        fields.insert(k, v);
    }
    let (Some(credential), Some(signed_headers), Some(signature)) = (
        fields.get("Credential"),
        fields.get("SignedHeaders"),
        fields.get("Signature"),
    ) else {
        return Err(format!(
            "Authorization lacks Credential, SignedHeaders or Signature: {authorization:?}"
        ));
    };
    let amz_date = match header("x-amz-date").as_slice() {
        [one] => one.to_string(),
        _ => return Err("want exactly one x-amz-date header".into()),
    };
    let expected_credential = format!(
        "{}/{}/{region}/{service}/aws4_request",
        credentials.access_key_id,
        amz_date.get(..8).unwrap_or(&amz_date)
    );
    if *credential != expected_credential {
        return Err(format!(
            "Credential {credential:?}, want {expected_credential:?}"
        ));
    }
    check_skew(&amz_date, now)?;
    let token = header("x-amz-security-token");
    match (&credentials.session_token, token.as_slice()) {
        (Some(want), [got]) if got == want => {}
        (Some(_), _) => return Err("x-amz-security-token missing or wrong".into()),
        (None, []) => {}
        (None, _) => return Err("x-amz-security-token sent with long-term credentials".into()),
    }
    let signed: Vec<&str> = signed_headers.split(';').collect();
    for required in ["host", "x-amz-date"] {
        if !signed.contains(&required) {
            return Err(format!("SignedHeaders {signed_headers:?} lacks {required}"));
        }
    }
    if credentials.session_token.is_some() && !signed.contains(&"x-amz-security-token") {
        return Err(format!(
            "SignedHeaders {signed_headers:?} lacks x-amz-security-token"
        ));
    }
    let mut canonical_headers = String::new();
    for name in &signed {
        let values = header(name);
        if values.is_empty() {
            return Err(format!("signed header {name} was not sent"));
        }
        let value = values
            .iter()
            .map(|v| v.split_whitespace().collect::<Vec<_>>().join(" "))
            .collect::<Vec<_>>()
            .join(",");
        canonical_headers.push_str(&format!("{name}:{value}\n"));
    }
    let payload_hash = match header("x-amz-content-sha256").as_slice() {
        [one] => one.to_string(),
        _ => sha256_hex(body),
    };
    let pairs = query_pairs(raw_query.unwrap_or(""));
    let canonical_uri = if raw_path.is_empty() {
        "/".to_string()
    } else {
        utf8_percent_encode(raw_path, SIGV4_ENCODE_PATH).to_string()
    };
    let canonical_request = format!(
        "{method}\n{canonical_uri}\n{}\n{canonical_headers}\n{signed_headers}\n{payload_hash}",
        canonical_query(&pairs)
    );
    let want = sigv4_signature(
        &credentials.secret_access_key,
        &amz_date,
        region,
        service,
        &canonical_request,
    );
    if *signature != want {
        return Err(format!(
            "signature mismatch: got {signature}, recomputed {want} over\n{canonical_request}"
        ));
    }
    Ok(())
}

/// A query string's pairs, decoded the way AWS services decode them
/// (`application/x-www-form-urlencoded`, so a raw `+` is a space: a client
/// that leaves `+` unencoded in a session token fails the signature check,
/// as it would against AWS).
pub fn query_pairs(raw_query: &str) -> Vec<(String, String)> {
    reqwest::Url::parse(&format!("http://x/?{raw_query}"))
        .expect("any query string parses")
        .query_pairs()
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

/// Errors unless `amz_date` is a SigV4 date within [`MAX_SKEW`] of `now`.
pub fn check_skew(amz_date: &str, now: jiff::Timestamp) -> Result<(), String> {
    let date = parse_amz_date(amz_date)?;
    let skew = (now.as_second() - date.as_second()).unsigned_abs();
    if skew > MAX_SKEW.as_secs() {
        return Err(format!(
            "X-Amz-Date {amz_date} is {skew} s from now (limit {} s)",
            MAX_SKEW.as_secs()
        ));
    }
    Ok(())
}

/// Signs `request` with the `aws-sigv4` crate, the one the action signs
/// with: how the tests *make* signed requests (for moto, the EKS stub, the
/// fake API server), which the independent checkers here then verify.
pub fn aws_sigv4_sign(
    request: aws_sigv4::http_request::SignableRequest<'_>,
    credentials: &AwsCredentials,
    service: &str,
    region: &str,
    time: SystemTime,
    settings: aws_sigv4::http_request::SigningSettings,
) -> aws_sigv4::http_request::SigningInstructions {
    let identity = aws_credential_types::Credentials::new(
        &credentials.access_key_id,
        &credentials.secret_access_key,
        credentials.session_token.clone(),
        None,
        "dora-tests",
    )
    .into();
    let params = aws_sigv4::sign::v4::SigningParams::builder()
        .identity(&identity)
        .region(region)
        .name(service)
        .time(time)
        .settings(settings)
        .build()
        .expect("signing params")
        .into();
    let (instructions, _) = aws_sigv4::http_request::sign(request, &params)
        .expect("sign")
        .into_parts();
    instructions
}

/// Signs a request with the `aws-sigv4` crate (the one the action uses), in
/// the `Authorization` header, and returns the headers to add. For driving
/// moto (which needs the credential scope to route and pick the region) and
/// for tests of [`verify_sigv4_header_auth`] itself.
#[allow(clippy::too_many_arguments)]
pub fn sign_headers(
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    body: &[u8],
    credentials: &AwsCredentials,
    service: &str,
    region: &str,
    time: SystemTime,
) -> Vec<(String, String)> {
    use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings};
    let request = SignableRequest::new(
        method,
        url,
        headers.iter().copied(),
        SignableBody::Bytes(body),
    )
    .expect("signable request");
    let settings = SigningSettings::default();
    let instructions = aws_sigv4_sign(request, credentials, service, region, time, settings);
    let (headers, _) = instructions.into_parts();
    headers
        .into_iter()
        .map(|h| (h.name().to_string(), h.value().to_string()))
        .collect()
}

// ------------------------------------------------------------------- moto

/// `moto_server` (PyPI `moto[server]`) on a free loopback port, killed on
/// drop. One process plays every service; it routes a request by the
/// service in the SigV4 credential scope (so EKS calls must be signed) or,
/// for unsigned calls, by the `Action` of a form body (STS
/// `AssumeRoleWithWebIdentity`).
pub struct Moto {
    /// Base URL, `http://127.0.0.1:PORT`, no trailing slash: the value for
    /// `AWS_ENDPOINT_URL`, `AWS_ENDPOINT_URL_STS` or `AWS_ENDPOINT_URL_EKS`.
    pub url: String,
    _service: Service,
    _dir: TempDir,
}

/// What moto (or AWS) answered.
#[derive(Debug, Clone)]
pub struct AwsResponse {
    pub status: u16,
    /// `x-amzn-ErrorType`, for REST-JSON services' errors.
    pub error_type: Option<String>,
    pub content_type: Option<String>,
    pub body: String,
}

impl Moto {
    /// Starts `.venv/bin/moto_server -H 127.0.0.1 -p PORT` (panics with the
    /// set-up hint if the venv lacks it) and waits until *our* process has
    /// bound the port and answers. Retries on another port after a clash,
    /// like the other services.
    pub async fn start() -> Moto {
        let bin = Path::new(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/moto_server");
        assert!(
            bin.exists(),
            "{} is missing: run scripts/test.sh setup",
            bin.display()
        );
        let dir = tempdir("dora-moto-");
        let spec = Spec {
            name: "moto",
            bin: &bin,
            // Werkzeug logs to stderr; unbuffered so the "Running on" line
            // is in the file as soon as it is printed.
            env: &[("PYTHONUNBUFFERED", "1")],
            // Werkzeug prints this only after binding; a parallel test's
            // moto on the same port would answer too, and ours then exits.
            bound: |port| format!("Running on http://127.0.0.1:{port}"),
            ready_path: "/moto-api/",
            clash: "in use",
        };
        let (service, url) = Service::spawn(&spec, dir.path(), |port| {
            vec![
                "-H".into(),
                "127.0.0.1".into(),
                "-p".into(),
                port.to_string(),
            ]
        })
        .await;
        Moto {
            url,
            _service: service,
            _dir: dir,
        }
    }

    /// Creates EKS cluster `name` in `region` (a signed `POST /clusters`:
    /// moto ignores the signature but takes the region from its credential
    /// scope; an unsigned call is routed to S3). The cluster is ACTIVE at
    /// once. Returns moto's `cluster` object.
    pub async fn create_cluster(&self, name: &str, region: &str) -> Value {
        let body = json!({
            "name": name,
            "version": "1.31",
            "roleArn": format!("arn:aws:iam::{ACCOUNT_ID}:role/eks-cluster"),
            "resourcesVpcConfig": {"subnetIds": ["subnet-0a1b2c3d"]},
        })
        .to_string();
        let response = self
            .signed("POST", "/clusters", body.as_bytes(), "eks", region)
            .await;
        assert_eq!(response.status, 200, "moto CreateCluster: {response:?}");
        let value: Value = serde_json::from_str(&response.body).expect("CreateCluster JSON");
        value["cluster"].clone()
    }

    /// EKS DescribeCluster of `name` in `region`, signed.
    pub async fn describe_cluster(&self, name: &str, region: &str) -> AwsResponse {
        self.signed("GET", &format!("/clusters/{name}"), b"", "eks", region)
            .await
    }

    /// STS `AssumeRoleWithWebIdentity` as botocore sends it: unsigned POST of
    /// a form body. moto accepts any token and returns fresh credentials
    /// (see [`Moto::issued_credentials`]). It does *not* understand the same
    /// call as a GET with a query string (it answers an S3 bucket listing).
    pub async fn assume_role_with_web_identity(
        &self,
        role_arn: &str,
        web_identity_token: &str,
    ) -> AwsResponse {
        let body = format!(
            "Action=AssumeRoleWithWebIdentity&Version=2011-06-15&RoleArn={}&RoleSessionName=dora-action&WebIdentityToken={}",
            sigv4_encode(role_arn),
            sigv4_encode(web_identity_token)
        );
        let response = http()
            .post(format!("{}/", self.url))
            .header(
                "content-type",
                "application/x-www-form-urlencoded; charset=utf-8",
            )
            .body(body)
            .send()
            .await
            .expect("POST AssumeRoleWithWebIdentity to moto");
        aws_response(response).await
    }

    /// Every credential set moto's STS has handed out so far (from its
    /// `/moto-api/data.json` state dump). A test that lets the action assume
    /// a role through moto gives these to the fake API server (see
    /// `FakeApiConfig::moto_url`), so the action's EKS token can be checked
    /// against the credentials it actually got.
    pub async fn issued_credentials(&self) -> Vec<AwsCredentials> {
        moto_issued_credentials(&self.url).await
    }

    async fn signed(
        &self,
        method: &str,
        path: &str,
        body: &[u8],
        service: &str,
        region: &str,
    ) -> AwsResponse {
        let url = format!("{}{path}", self.url);
        let host = self.url.trim_start_matches("http://").to_string();
        let content_type = "application/json";
        let mut headers = vec![("host", host.as_str())];
        if !body.is_empty() {
            headers.push(("content-type", content_type));
        }
        let signing = sign_headers(
            method,
            &url,
            &headers,
            body,
            &AwsCredentials::test(),
            service,
            region,
            SystemTime::now(),
        );
        let mut request = http().request(method.parse().expect("HTTP method"), &url);
        if !body.is_empty() {
            request = request.header("content-type", content_type);
        }
        for (k, v) in signing {
            request = request.header(k, v);
        }
        let response = request
            .body(body.to_vec())
            .send()
            .await
            .unwrap_or_else(|e| panic!("{method} {url}: {e}"));
        aws_response(response).await
    }
}

async fn aws_response(response: reqwest::Response) -> AwsResponse {
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let status = response.status().as_u16();
    let error_type = header("x-amzn-errortype");
    let content_type = header("content-type");
    let body = response.text().await.expect("response body");
    AwsResponse {
        status,
        error_type,
        content_type,
        body,
    }
}

/// The credentials in moto's STS state (`sts.AssumedRole` of
/// `/moto-api/data.json`); empty if moto cannot be reached.
pub async fn moto_issued_credentials(moto_url: &str) -> Vec<AwsCredentials> {
    let Ok(response) = http()
        .get(format!("{moto_url}/moto-api/data.json"))
        .send()
        .await
    else {
        return Vec::new();
    };
    let Ok(data) = response.json::<Value>().await else {
        return Vec::new();
    };
    data["sts"]["AssumedRole"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|role| {
            Some(AwsCredentials {
                access_key_id: role["access_key_id"].as_str()?.to_string(),
                secret_access_key: role["secret_access_key"].as_str()?.to_string(),
                session_token: role["session_token"].as_str().map(str::to_string),
            })
        })
        .collect()
}

// ---------------------------------------------------------------- EKS stub

/// An EKS API stub (wiremock) for `AWS_ENDPOINT_URL_EKS`: `GET
/// /clusters/{name}` (DescribeCluster) answers what the test mounted. An
/// unmounted cluster gets wiremock's bare 404, which no real EKS sends:
/// mount [`EksStub::not_found`] for the real "missing cluster" answer.
pub struct EksStub {
    server: MockServer,
}

/// One DescribeCluster request the stub received.
#[derive(Debug, Clone)]
pub struct EksRequest {
    pub method: String,
    /// Path as sent, e.g. `/clusters/dora-test`.
    pub path: String,
    pub query: Option<String>,
    /// All headers (lower-case names), in the order received.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl EksRequest {
    /// The `Authorization` header, if any.
    pub fn authorization(&self) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == "authorization")
            .map(|(_, v)| v.as_str())
    }

    /// Recomputes the SigV4 signature with `credentials` for service `eks`
    /// in `region` (see [`verify_sigv4_header_auth`]).
    pub fn verify_signature(
        &self,
        credentials: &AwsCredentials,
        region: &str,
    ) -> Result<(), String> {
        verify_sigv4_header_auth(
            &self.method,
            &self.path,
            self.query.as_deref(),
            &self.headers,
            &self.body,
            credentials,
            "eks",
            region,
            jiff::Timestamp::now(),
        )
    }
}

/// The EKS cluster ARN for `name` in `region`.
pub fn cluster_arn(name: &str, region: &str) -> String {
    format!("arn:aws:eks:{region}:{ACCOUNT_ID}:cluster/{name}")
}

/// A DescribeCluster response body as EKS sends it (REST-JSON; `createdAt`
/// is epoch seconds as a number). `endpoint` and `ca_pem` go into
/// `endpoint` and `certificateAuthority.data` (base64 of the PEM, as EKS
/// does); `None` leaves them out, as for a cluster still `CREATING` (EKS
/// assigns both only once the control plane exists).
pub fn describe_cluster_body(
    name: &str,
    region: &str,
    status: &str,
    endpoint: Option<&str>,
    ca_pem: Option<&str>,
) -> Value {
    use base64::Engine as _;
    let mut cluster = json!({
        "name": name,
        "arn": cluster_arn(name, region),
        "createdAt": 1.764e9,
        "version": "1.31",
        "roleArn": format!("arn:aws:iam::{ACCOUNT_ID}:role/eks-cluster"),
        "resourcesVpcConfig": {
            "subnetIds": ["subnet-0a1b2c3d", "subnet-4e5f6a7b"],
            "securityGroupIds": [],
            "clusterSecurityGroupId": "sg-0123456789abcdef0",
            "vpcId": "vpc-0123456789abcdef0",
            "endpointPublicAccess": true,
            "endpointPrivateAccess": true,
            "publicAccessCidrs": ["0.0.0.0/0"]
        },
        "kubernetesNetworkConfig": {"serviceIpv4Cidr": "172.20.0.0/16", "ipFamily": "ipv4"},
        "logging": {"clusterLogging": [{"types": ["api", "audit", "authenticator", "controllerManager", "scheduler"], "enabled": false}]},
        "identity": {"oidc": {"issuer": format!("https://oidc.eks.{region}.amazonaws.com/id/0123456789ABCDEF0123456789ABCDEF")}},
        "status": status,
        "certificateAuthority": {},
        "platformVersion": "eks.12",
        "tags": {},
        "accessConfig": {"authenticationMode": "API_AND_CONFIG_MAP"},
        "upgradePolicy": {"supportType": "STANDARD"}
    });
    if let Some(endpoint) = endpoint {
        cluster["endpoint"] = json!(endpoint);
    }
    if let Some(pem) = ca_pem {
        cluster["certificateAuthority"] =
            json!({"data": base64::engine::general_purpose::STANDARD.encode(pem)});
    }
    json!({ "cluster": cluster })
}

/// A REST-JSON error response as EKS sends it: the error code in
/// `x-amzn-ErrorType`, `{"message": …}` in the body.
pub fn eks_error(status: u16, error_type: &str, message: &str) -> ResponseTemplate {
    ResponseTemplate::new(status)
        .insert_header("x-amzn-ErrorType", error_type)
        .insert_header("x-amzn-RequestId", "2b3c4d5e-0000-4000-8000-000000000000")
        .set_body_raw(
            json!({ "message": message }).to_string(),
            "application/json",
        )
}

impl EksStub {
    /// Starts an empty stub on a free loopback port.
    pub async fn start() -> EksStub {
        EksStub {
            server: MockServer::start().await,
        }
    }

    /// Base URL (no trailing slash), the value for `AWS_ENDPOINT_URL_EKS`.
    pub fn url(&self) -> String {
        self.server.uri()
    }

    /// Cluster `name` in `region` is ACTIVE, its endpoint and CA those of `api`.
    pub async fn active(&self, name: &str, region: &str, api: &FakeApiServer) {
        self.with_status(name, region, "ACTIVE", api).await;
    }

    /// Cluster `name` has `status` (`CREATING`, `ACTIVE`, `DELETING`,
    /// `FAILED`, `UPDATING`, `PENDING`). A `CREATING` cluster has no endpoint
    /// and no CA yet, as in EKS; every other status has `api`'s.
    pub async fn with_status(&self, name: &str, region: &str, status: &str, api: &FakeApiServer) {
        let body = if status == "CREATING" {
            describe_cluster_body(name, region, status, None, None)
        } else {
            describe_cluster_body(name, region, status, Some(&api.url()), Some(&api.ca_pem()))
        };
        self.respond(name, ResponseTemplate::new(200).set_body_json(body))
            .await;
    }

    /// Cluster `name` does not exist: 404 `ResourceNotFoundException`, with
    /// EKS's error type header and message.
    pub async fn not_found(&self, name: &str) {
        self.respond(
            name,
            eks_error(
                404,
                "ResourceNotFoundException:http://internal.amazon.com/coral/com.amazonaws.eks/",
                &format!("No cluster found for name: {name}."),
            ),
        )
        .await;
    }

    /// The caller lacks `eks:DescribeCluster` on cluster `name`: 403
    /// `AccessDeniedException` naming the action and the cluster ARN.
    pub async fn access_denied(&self, name: &str, region: &str) {
        self.respond(
            name,
            eks_error(
                403,
                "AccessDeniedException",
                &format!(
                    "User: arn:aws:sts::{ACCOUNT_ID}:assumed-role/dora/x is not authorized to perform: \
                     eks:DescribeCluster on resource: {}",
                    cluster_arn(name, region)
                ),
            ),
        )
        .await;
    }

    /// The next `times` DescribeCluster calls for `name` get 429
    /// `ThrottlingException`; later ones fall through to whatever else is
    /// mounted (mount the success answer as well).
    pub async fn throttle(&self, name: &str, times: u64) {
        self.fail(name, times, 429, "ThrottlingException", "Rate exceeded")
            .await;
    }

    /// The next `times` DescribeCluster calls for `name` get `status` with
    /// error type `error_type` (e.g. 500 `ServerException`, 503
    /// `ServiceUnavailableException`), then fall through.
    pub async fn fail(&self, name: &str, times: u64, status: u16, error_type: &str, message: &str) {
        Mock::given(method("GET"))
            .and(path(format!("/clusters/{name}")))
            .respond_with(eks_error(status, error_type, message))
            .up_to_n_times(times)
            // Lower number = higher priority: these answer before the
            // steady-state mock until used up.
            .with_priority(1)
            .named(format!("{name}: {status} {error_type} x{times}"))
            .mount(&self.server)
            .await;
    }

    /// Mounts any answer for DescribeCluster of `name`.
    pub async fn respond(&self, name: &str, response: ResponseTemplate) {
        Mock::given(method("GET"))
            .and(path(format!("/clusters/{name}")))
            .respond_with(response)
            .named(format!("DescribeCluster {name}"))
            .mount(&self.server)
            .await;
    }

    /// Every request received so far, of any path.
    pub async fn requests(&self) -> Vec<EksRequest> {
        self.server
            .received_requests()
            .await
            .unwrap_or_default()
            .into_iter()
            .map(|r| EksRequest {
                method: r.method.as_str().to_string(),
                path: r.url.path().to_string(),
                query: r.url.query().map(str::to_string),
                headers: r
                    .headers
                    .iter()
                    .map(|(k, v)| {
                        (
                            k.as_str().to_string(),
                            String::from_utf8_lossy(v.as_bytes()).into_owned(),
                        )
                    })
                    .collect(),
                body: r.body,
            })
            .collect()
    }

    /// Panics unless at least one request arrived and every one was
    /// SigV4-signed for service `eks` in `region` with `credentials`:
    /// `Authorization: AWS4-HMAC-SHA256 Credential=<akid>/<date>/<region>/eks/aws4_request, …`
    /// with a signature that recomputes (see [`verify_sigv4_header_auth`]).
    pub async fn assert_signed(&self, credentials: &AwsCredentials, region: &str) {
        let requests = self.requests().await;
        assert!(!requests.is_empty(), "the EKS stub received no request");
        for request in &requests {
            let prefix = format!("AWS4-HMAC-SHA256 Credential={}/", credentials.access_key_id);
            let suffix = format!("/{region}/eks/aws4_request,");
            let auth = request.authorization().unwrap_or_default();
            assert!(
                auth.starts_with(&prefix) && auth.contains(&suffix),
                "{} {} is not signed for eks/{region} by {}: Authorization {auth:?}",
                request.method,
                request.path,
                credentials.access_key_id
            );
            if let Err(why) = request.verify_signature(credentials, region) {
                panic!(
                    "{} {}: bad SigV4 signature: {why}",
                    request.method, request.path
                );
            }
        }
    }
}
