//! AWS, the parts the action needs and nothing more: credentials as a
//! workflow supplies them, STS `AssumeRoleWithWebIdentity`, EKS
//! `DescribeCluster`, and the EKS bearer token (a presigned STS
//! `GetCallerIdentity`). Requests are signed with the AWS-maintained
//! `aws-sigv4` crate; the full SDK would add ~140 s of build and ~7 MB of
//! binary for three calls (see README).

use std::fmt;
use std::time::{Duration, SystemTime};

use aws_sigv4::http_request::{
    SignableBody, SignableRequest, SignatureLocation, SigningSettings, sign,
};
use aws_sigv4::sign::v4;
use aws_smithy_runtime_api::client::identity::Identity;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use reqwest::{Client, StatusCode, Url};
use serde::Deserialize;

use crate::http;
use crate::retry::{Attempt, Backoff, retry};
use crate::{Error, Failure, Result};

/// AWS credentials. `Debug` never shows the secret parts.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    pub access_key_id: String,
    pub secret_access_key: String,
    pub session_token: Option<String>,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"***")
            .field("session_token", &self.session_token.as_ref().map(|_| "***"))
            .finish()
    }
}

impl Credentials {
    fn identity(&self) -> Identity {
        aws_credential_types::Credentials::new(
            &self.access_key_id,
            &self.secret_access_key,
            self.session_token.clone(),
            None,
            "dora-action",
        )
        .into()
    }

    /// The secret parts, for `::add-mask::`.
    pub fn secrets(&self) -> Vec<&str> {
        let mut s = vec![self.secret_access_key.as_str()];
        s.extend(self.session_token.as_deref());
        s
    }
}

/// Where credentials come from, the first that applies (see README).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CredentialSource {
    /// Input `role-to-assume`: the job's own GitHub OIDC token → `AssumeRoleWithWebIdentity`.
    GitHubOidc {
        role_arn: String,
        request_url: String,
        request_token: String,
    },
    /// `AWS_WEB_IDENTITY_TOKEN_FILE` + `AWS_ROLE_ARN` (as EKS pod identity or a previous step leaves them).
    WebIdentityFile {
        role_arn: String,
        token_file: String,
    },
    /// `AWS_ACCESS_KEY_ID` / `AWS_SECRET_ACCESS_KEY` / `AWS_SESSION_TOKEN`,
    /// as aws-actions/configure-aws-credentials leaves them.
    Environment(Credentials),
}

/// What `cluster-name` needs to tell a user who supplied no credentials.
pub const NO_CREDENTIALS: &str = "no AWS credentials: either set `role-to-assume` (and give the job `permissions: id-token: write`), \
or run aws-actions/configure-aws-credentials before this step (it sets AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and AWS_SESSION_TOKEN)";

/// Picks the credential source from the `role-to-assume` input and the environment.
pub fn credential_source(
    role_to_assume: Option<&str>,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<CredentialSource> {
    if let Some(role_arn) = role_to_assume {
        let (Some(request_url), Some(request_token)) = (
            env("ACTIONS_ID_TOKEN_REQUEST_URL"),
            env("ACTIONS_ID_TOKEN_REQUEST_TOKEN"),
        ) else {
            return Err(Error::input(
                "role-to-assume",
                "the job cannot request a GitHub OIDC token: add `permissions: id-token: write` to the job (ACTIONS_ID_TOKEN_REQUEST_URL is not set)",
            ));
        };
        return Ok(CredentialSource::GitHubOidc {
            role_arn: role_arn.to_string(),
            request_url,
            request_token,
        });
    }
    if let (Some(token_file), Some(role_arn)) =
        (env("AWS_WEB_IDENTITY_TOKEN_FILE"), env("AWS_ROLE_ARN"))
    {
        return Ok(CredentialSource::WebIdentityFile {
            role_arn,
            token_file,
        });
    }
    match (env("AWS_ACCESS_KEY_ID"), env("AWS_SECRET_ACCESS_KEY")) {
        (Some(access_key_id), Some(secret_access_key)) => {
            Ok(CredentialSource::Environment(Credentials {
                access_key_id,
                secret_access_key,
                session_token: env("AWS_SESSION_TOKEN"),
            }))
        }
        (Some(_), None) => Err(Error::input(
            "cluster-name",
            "AWS_ACCESS_KEY_ID is set but AWS_SECRET_ACCESS_KEY is not",
        )),
        _ => Err(Error::input("cluster-name", NO_CREDENTIALS)),
    }
}

/// The region: input `aws-region`, else `AWS_REGION`, else `AWS_DEFAULT_REGION`.
pub fn region(input: Option<&str>, env: &dyn Fn(&str) -> Option<String>) -> Result<String> {
    input
        .map(String::from)
        .or_else(|| env("AWS_REGION"))
        .or_else(|| env("AWS_DEFAULT_REGION"))
        .ok_or_else(|| Error::input("aws-region", "no region: set the `aws-region` input (or AWS_REGION, as configure-aws-credentials does)"))
}

/// The service endpoint: `AWS_ENDPOINT_URL_<SERVICE>`, else `AWS_ENDPOINT_URL`, else AWS's own.
pub fn endpoint(service: &str, region: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<Url> {
    let specific = format!("AWS_ENDPOINT_URL_{}", service.to_uppercase());
    let (name, url) = match env(&specific) {
        Some(u) => (specific, u),
        None => match env("AWS_ENDPOINT_URL") {
            Some(u) => ("AWS_ENDPOINT_URL".to_string(), u),
            None => (
                String::new(),
                format!("https://{service}.{region}.amazonaws.com"),
            ),
        },
    };
    Url::parse(&url).map_err(|e| Error::input(&name, format!("invalid value `{url}`: {e}")))
}

/// Characters SigV4 leaves unescaped in a query (RFC 3986 unreserved); the
/// same set botocore uses, so presigned URLs come out byte for byte alike.
const QUERY: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// The EKS bearer token for `cluster`: a presigned STS `GetCallerIdentity`
/// URL with the `x-k8s-aws-id` header signed, valid for 60 s, as
/// `k8s-aws-v1.` + unpadded base64url — what `aws eks get-token` prints.
///
/// The URL always names the regional STS host, whatever endpoint override is
/// set: the cluster's authenticator, not this action, calls it.
pub fn eks_token(
    creds: &Credentials,
    region: &str,
    cluster: &str,
    time: SystemTime,
) -> Result<String> {
    let host = format!("sts.{region}.amazonaws.com");
    let base = format!("https://{host}/?Action=GetCallerIdentity&Version=2011-06-15");
    let mut settings = SigningSettings::default();
    settings.signature_location = SignatureLocation::QueryParams;
    settings.expires_in = Some(Duration::from_secs(60));
    let identity = creds.identity();
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(region)
        .name("sts")
        .time(time)
        .settings(settings)
        .build()
        .map_err(|e| Error::Aws(format!("cannot sign the EKS token: {e}").into()))?
        .into();
    let headers = [("host", host.as_str()), ("x-k8s-aws-id", cluster)];
    let signable =
        SignableRequest::new("GET", &base, headers.into_iter(), SignableBody::Bytes(&[]))
            .map_err(|e| Error::Aws(format!("cannot sign the EKS token: {e}").into()))?;
    let (instructions, signature) = sign(signable, &params)
        .map_err(|e| Error::Aws(format!("cannot sign the EKS token: {e}").into()))?
        .into_parts();
    // botocore's order: the auth parameters, the session token, then the signature last.
    let mut url = base;
    for (name, value) in instructions
        .params()
        .iter()
        .filter(|(n, _)| *n != "X-Amz-Signature")
    {
        url.push_str(&format!("&{name}={}", utf8_percent_encode(value, QUERY)));
    }
    url.push_str(&format!("&X-Amz-Signature={signature}"));
    Ok(format!("k8s-aws-v1.{}", URL_SAFE_NO_PAD.encode(url)))
}

/// The SigV4 headers (`authorization`, `x-amz-date`, and
/// `x-amz-security-token` for temporary credentials) for a request with
/// `headers` and `body`, signed at `time`: what botocore's `SigV4Auth` adds.
/// Pure, so a test can compare it with botocore at a fixed time.
#[allow(clippy::too_many_arguments)]
pub fn sigv4_headers(
    creds: &Credentials,
    region: &str,
    service: &str,
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    body: &[u8],
    time: SystemTime,
) -> Result<Vec<(String, String)>> {
    let failed =
        |e: &dyn fmt::Display| Error::Aws(format!("cannot sign the {service} request: {e}").into());
    let identity = creds.identity();
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(region)
        .name(service)
        .time(time)
        .settings(SigningSettings::default())
        .build()
        .map_err(|e| failed(&e))?
        .into();
    let signable = SignableRequest::new(
        method,
        url,
        headers.iter().copied(),
        SignableBody::Bytes(body),
    )
    .map_err(|e| failed(&e))?;
    let (instructions, _) = sign(signable, &params)
        .map_err(|e| failed(&e))?
        .into_parts();
    Ok(instructions
        .headers()
        .map(|(n, v)| (n.to_string(), v.to_string()))
        .collect())
}

/// What `DescribeCluster` says about a cluster.
#[derive(Debug, Clone, PartialEq)]
pub enum Cluster {
    /// Ready to be reached: its API endpoint and CA bundle (PEM).
    Active {
        arn: String,
        endpoint: Url,
        ca_pem: Vec<u8>,
    },
    /// Not there: skip the run.
    Missing,
    /// There, but not usable (CREATING, DELETING, FAILED, PENDING).
    NotReady { status: String },
}

/// An AWS client for one region and set of credentials; counts its calls.
#[derive(Debug)]
pub struct Aws {
    pub region: String,
    creds: Credentials,
    eks: Url,
    http: Client,
    calls: std::sync::atomic::AtomicUsize,
}

const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// How much of a successful STS, EKS or OIDC answer is read: each is a few
/// KB (credentials, a cluster's description, a token); more is no such answer.
const ANSWER_LIMIT: usize = 256 << 10;

#[derive(Deserialize)]
struct DescribeClusterResponse {
    cluster: ClusterBody,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ClusterBody {
    arn: Option<String>,
    status: Option<String>,
    endpoint: Option<String>,
    certificate_authority: Option<CertificateAuthority>,
}

#[derive(Deserialize)]
struct CertificateAuthority {
    data: Option<String>,
}

/// The `x-amzn-ErrorType` of an AWS REST-JSON error, without its `:URL` suffix.
fn error_type(headers: &reqwest::header::HeaderMap, body: &str) -> String {
    let from_header = headers
        .get("x-amzn-errortype")
        .and_then(|v| v.to_str().ok())
        .map(|v| v.split(':').next().unwrap_or(v).to_string());
    from_header
        .or_else(|| {
            let v: serde_json::Value = serde_json::from_str(body).ok()?;
            let t = v.get("__type").or_else(|| v.get("code"))?.as_str()?;
            Some(t.rsplit('#').next().unwrap_or(t).to_string())
        })
        .unwrap_or_default()
}

fn error_message(body: &str) -> String {
    serde_json::from_str::<serde_json::Value>(body)
        .ok()
        .and_then(|v| {
            v.get("message")
                .or_else(|| v.get("Message"))
                .and_then(|m| m.as_str())
                .map(String::from)
        })
        .unwrap_or_else(|| body.trim().chars().take(300).collect())
}

impl Aws {
    pub fn new(region: String, creds: Credentials, eks: Url, http: Client) -> Aws {
        Aws {
            region,
            creds,
            eks,
            http,
            calls: Default::default(),
        }
    }

    /// AWS calls made so far.
    pub fn calls(&self) -> usize {
        self.calls.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// The credentials in use (to sign the EKS token).
    pub fn credentials(&self) -> &Credentials {
        &self.creds
    }

    /// EKS `DescribeCluster`. A missing cluster is an answer, not an error;
    /// access denied is an error that names the permission to grant.
    pub async fn describe_cluster(&self, name: &str) -> Result<Cluster> {
        let mut url = self.eks.clone();
        url.path_segments_mut()
            .map_err(|()| {
                Error::Aws(format!("EKS endpoint {} cannot take a path", self.eks).into())
            })?
            .pop_if_empty()
            .extend(["clusters", name]);
        let (status, headers, body) =
            retry(Backoff::AWS, || async {
                self.calls
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let request = match self.signed_get(&url, "eks") {
                    Ok(r) => r,
                    Err(e) => return Attempt::Fail(e.to_string().into()),
                };
                match request.send().await {
                    Err(e) => Attempt::Retry(Failure::transport(e).context("EKS DescribeCluster")),
                    Ok(response) => {
                        let status = response.status();
                        let headers = response.headers().clone();
                        // A body cut off by the request timeout is no answer: retried.
                        let body =
                            match http::answer_text(response, "EKS DescribeCluster", ANSWER_LIMIT)
                                .await
                            {
                                Ok(body) => body,
                                Err(outcome) => return outcome,
                            };
                        let kind = error_type(&headers, &body);
                        if status.is_server_error()
                            || status == StatusCode::TOO_MANY_REQUESTS
                            || kind.contains("Throttl")
                        {
                            Attempt::Retry(Failure::answered(
                                status,
                                format!(
                                    "EKS DescribeCluster: HTTP {status} {kind}: {}",
                                    error_message(&body)
                                ),
                            ))
                        } else {
                            Attempt::Done((status, headers, body))
                        }
                    }
                }
            })
            .await
            .map_err(Error::Aws)?;
        if status.is_success() {
            let parsed: DescribeClusterResponse = serde_json::from_str(&body).map_err(|e| {
                Error::Aws(format!("EKS DescribeCluster {name}: unexpected answer: {e}").into())
            })?;
            return cluster_from(name, parsed.cluster);
        }
        let kind = error_type(&headers, &body);
        let message = error_message(&body);
        match kind.as_str() {
            "ResourceNotFoundException" => Ok(Cluster::Missing),
            _ if status == StatusCode::NOT_FOUND => Ok(Cluster::Missing),
            "AccessDeniedException" | "AccessDenied" => Err(Error::Aws(Failure::answered(
                status,
                format!(
                    "access denied to EKS DescribeCluster: grant `eks:DescribeCluster` on arn:aws:eks:{}:<account-id>:cluster/{name} (see examples/iam-policy.json); AWS said: {message}",
                    self.region
                ),
            ))),
            "UnrecognizedClientException"
            | "InvalidSignatureException"
            | "ExpiredTokenException"
            | "InvalidClientTokenId" => Err(Error::Aws(Failure::answered(
                status,
                format!(
                    "AWS rejected the credentials ({kind}): {message}; check the role or the configure-aws-credentials step"
                ),
            ))),
            _ => Err(Error::Aws(Failure::answered(
                status,
                format!("EKS DescribeCluster {name}: HTTP {status} {kind}: {message}"),
            ))),
        }
    }

    /// A GET signed with SigV4 in headers for `service`.
    fn signed_get(&self, url: &Url, service: &str) -> Result<reqwest::RequestBuilder> {
        let signed = sigv4_headers(
            &self.creds,
            &self.region,
            service,
            "GET",
            url.as_str(),
            &[],
            &[],
            SystemTime::now(),
        )?;
        let mut request = self
            .http
            .get(url.clone())
            .timeout(REQUEST_TIMEOUT)
            .header("accept", "application/json");
        for (name, value) in signed {
            request = request.header(name, value);
        }
        Ok(request)
    }
}

fn cluster_from(name: &str, c: ClusterBody) -> Result<Cluster> {
    let status = c.status.unwrap_or_default();
    // UPDATING clusters keep serving their API.
    if status != "ACTIVE" && status != "UPDATING" {
        return Ok(Cluster::NotReady {
            status: if status.is_empty() {
                "unknown".into()
            } else {
                status
            },
        });
    }
    let endpoint = c.endpoint.ok_or_else(|| {
        Error::Aws(format!("EKS cluster {name} is {status} but has no endpoint").into())
    })?;
    let endpoint = Url::parse(&endpoint).map_err(|e| {
        Error::Aws(format!("EKS cluster {name}: endpoint `{endpoint}`: {e}").into())
    })?;
    let data = c
        .certificate_authority
        .and_then(|ca| ca.data)
        .ok_or_else(|| {
            Error::Aws(format!("EKS cluster {name} has no certificate authority data").into())
        })?;
    let ca_pem = base64::engine::general_purpose::STANDARD
        .decode(data.trim())
        .map_err(|e| {
            Error::Aws(
                format!("EKS cluster {name}: certificate authority data is not base64: {e}").into(),
            )
        })?;
    Ok(Cluster::Active {
        arn: c.arn.unwrap_or_default(),
        endpoint,
        ca_pem,
    })
}

/// Fetches the job's GitHub OIDC token for `audience` (the runner's
/// `ACTIONS_ID_TOKEN_REQUEST_URL`, which already carries a query).
pub async fn github_oidc_token(
    http: &Client,
    request_url: &str,
    request_token: &str,
    audience: &str,
) -> Result<String> {
    let mut url = Url::parse(request_url).map_err(|e| {
        Error::input(
            "role-to-assume",
            format!("ACTIONS_ID_TOKEN_REQUEST_URL is not a URL: {e}"),
        )
    })?;
    url.query_pairs_mut().append_pair("audience", audience);
    #[derive(Deserialize)]
    struct TokenResponse {
        value: String,
    }
    let body = retry(Backoff::AWS, || async {
        let response = match http
            .get(url.clone())
            .bearer_auth(request_token)
            .timeout(REQUEST_TIMEOUT)
            .send()
            .await
        {
            Ok(r) => r,
            Err(e) => {
                return Attempt::Retry(Failure::transport(e).context("GitHub OIDC token request"));
            }
        };
        let status = response.status();
        // A token is a few KB; the endpoint comes from the environment, but
        // what it answers is bounded all the same.
        let body =
            match http::answer_text(response, "GitHub OIDC token request", ANSWER_LIMIT).await {
                Ok(body) => body,
                Err(outcome) => return outcome,
            };
        match status {
            s if s.is_success() => Attempt::Done(body),
            s if s.is_server_error() => Attempt::Retry(Failure::answered(
                s,
                format!("GitHub OIDC token request: HTTP {s}"),
            )),
            s => Attempt::Fail(Failure::answered(
                s,
                format!(
                    "GitHub OIDC token request: HTTP {s}: {}",
                    body.trim().chars().take(200).collect::<String>()
                ),
            )),
        }
    })
    .await
    .map_err(Error::Aws)?;
    let parsed: TokenResponse = serde_json::from_str(&body).map_err(|e| {
        Error::Aws(format!("GitHub OIDC token request: unexpected answer: {e}").into())
    })?;
    Ok(parsed.value)
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct AssumeRoleResponse {
    assume_role_with_web_identity_result: AssumeRoleResult,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct AssumeRoleResult {
    credentials: StsCredentials,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct StsCredentials {
    access_key_id: String,
    secret_access_key: String,
    session_token: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct StsErrorResponse {
    error: StsError,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct StsError {
    code: String,
    message: Option<String>,
}

/// STS `AssumeRoleWithWebIdentity` (unsigned: the web identity token is the
/// credential). Throttling and 5xx are retried; anything else names the role.
pub async fn assume_role_with_web_identity(
    http: &Client,
    sts: &Url,
    role_arn: &str,
    session_name: &str,
    token: &str,
) -> Result<Credentials> {
    let form = [
        ("Action", "AssumeRoleWithWebIdentity"),
        ("Version", "2011-06-15"),
        ("RoleArn", role_arn),
        ("RoleSessionName", session_name),
        ("WebIdentityToken", token),
        ("DurationSeconds", "900"),
    ];
    let (status, body) = retry(Backoff::AWS, || async {
        let response = match http
            .post(sts.clone())
            .form(&form)
            .timeout(REQUEST_TIMEOUT)
            .send()
            .await
        {
            Ok(r) => r,
            Err(e) => {
                return Attempt::Retry(
                    Failure::transport(e).context("STS AssumeRoleWithWebIdentity"),
                );
            }
        };
        let status = response.status();
        let body = match http::answer_text(response, "STS AssumeRoleWithWebIdentity", ANSWER_LIMIT)
            .await
        {
            Ok(body) => body,
            Err(outcome) => return outcome,
        };
        let code = quick_xml::de::from_str::<StsErrorResponse>(&body)
            .map(|e| e.error.code)
            .unwrap_or_default();
        if status.is_server_error() || code == "Throttling" || code == "IDPCommunicationError" {
            Attempt::Retry(Failure::answered(
                status,
                format!("STS AssumeRoleWithWebIdentity: HTTP {status} {code}"),
            ))
        } else {
            Attempt::Done((status, body))
        }
    })
    .await
    .map_err(Error::Aws)?;
    if status.is_success() {
        let parsed: AssumeRoleResponse = quick_xml::de::from_str(&body).map_err(|e| {
            Error::Aws(format!("STS AssumeRoleWithWebIdentity: unexpected answer: {e}").into())
        })?;
        let c = parsed.assume_role_with_web_identity_result.credentials;
        return Ok(Credentials {
            access_key_id: c.access_key_id,
            secret_access_key: c.secret_access_key,
            session_token: Some(c.session_token),
        });
    }
    let (code, message) = match quick_xml::de::from_str::<StsErrorResponse>(&body) {
        Ok(e) => (e.error.code, e.error.message.unwrap_or_default()),
        Err(_) => (
            format!("HTTP {status}"),
            body.trim().chars().take(300).collect(),
        ),
    };
    let hint = match code.as_str() {
        "AccessDenied" => {
            " (does the role's trust policy allow this repository's OIDC subject, with audience sts.amazonaws.com?)"
        }
        "ExpiredTokenException" => " (the web identity token expired)",
        "InvalidIdentityToken" => {
            " (is token.actions.githubusercontent.com an IAM OIDC provider in this account?)"
        }
        _ => "",
    };
    Err(Error::Aws(Failure::answered(
        status,
        format!("STS AssumeRoleWithWebIdentity for {role_arn} failed: {code}: {message}{hint}"),
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env_of(pairs: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        move |k| {
            pairs
                .iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| v.to_string())
        }
    }

    #[test]
    fn role_to_assume_comes_first_and_needs_id_token_permission() {
        let env = env_of(&[
            ("ACTIONS_ID_TOKEN_REQUEST_URL", "https://x/?a=1"),
            ("ACTIONS_ID_TOKEN_REQUEST_TOKEN", "t"),
            ("AWS_ACCESS_KEY_ID", "AK"),
        ]);
        assert!(matches!(
            credential_source(Some("arn:aws:iam::123456789012:role/r"), &env).unwrap(),
            CredentialSource::GitHubOidc { .. }
        ));
        let err = credential_source(Some("arn:aws:iam::123456789012:role/r"), &env_of(&[]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("permissions: id-token: write"), "{err}");
    }

    #[test]
    fn web_identity_file_then_environment_keys() {
        let env = env_of(&[
            ("AWS_WEB_IDENTITY_TOKEN_FILE", "/t"),
            ("AWS_ROLE_ARN", "arn:r"),
            ("AWS_ACCESS_KEY_ID", "AK"),
            ("AWS_SECRET_ACCESS_KEY", "SK"),
        ]);
        assert_eq!(
            credential_source(None, &env).unwrap(),
            CredentialSource::WebIdentityFile {
                role_arn: "arn:r".into(),
                token_file: "/t".into()
            }
        );
        let env = env_of(&[
            ("AWS_ACCESS_KEY_ID", "AK"),
            ("AWS_SECRET_ACCESS_KEY", "SK"),
            ("AWS_SESSION_TOKEN", "ST"),
        ]);
        let CredentialSource::Environment(c) = credential_source(None, &env).unwrap() else {
            panic!()
        };
        assert_eq!(c.session_token.as_deref(), Some("ST"));
        assert!(!format!("{c:?}").contains("SK") && !format!("{c:?}").contains("ST"));
    }

    #[test]
    fn no_credentials_says_exactly_what_to_add() {
        let err = credential_source(None, &env_of(&[]))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("role-to-assume")
                && err.contains("id-token: write")
                && err.contains("configure-aws-credentials"),
            "{err}"
        );
    }

    #[test]
    fn region_and_endpoints_follow_the_standard_variables() {
        assert_eq!(
            region(Some("eu-west-1"), &env_of(&[("AWS_REGION", "us-east-1")])).unwrap(),
            "eu-west-1"
        );
        assert_eq!(
            region(None, &env_of(&[("AWS_DEFAULT_REGION", "us-east-2")])).unwrap(),
            "us-east-2"
        );
        assert!(
            region(None, &env_of(&[]))
                .unwrap_err()
                .to_string()
                .starts_with("input `aws-region`")
        );
        let env = env_of(&[
            ("AWS_ENDPOINT_URL", "http://127.0.0.1:5000"),
            ("AWS_ENDPOINT_URL_EKS", "http://127.0.0.1:6000"),
        ]);
        assert_eq!(
            endpoint("eks", "eu-west-1", &env).unwrap().as_str(),
            "http://127.0.0.1:6000/"
        );
        assert_eq!(
            endpoint("sts", "eu-west-1", &env).unwrap().as_str(),
            "http://127.0.0.1:5000/"
        );
        assert_eq!(
            endpoint("sts", "eu-west-1", &env_of(&[])).unwrap().as_str(),
            "https://sts.eu-west-1.amazonaws.com/"
        );
    }

    #[test]
    fn the_eks_token_is_a_presigned_get_caller_identity() {
        let creds = Credentials {
            access_key_id: "AKIDEXAMPLE".into(),
            secret_access_key: "secret".into(),
            session_token: Some("to+k/en=".into()),
        };
        let time = SystemTime::UNIX_EPOCH + Duration::from_secs(1_795_000_000);
        let token = eks_token(&creds, "eu-west-1", "prod-eks", time).unwrap();
        let b64 = token.strip_prefix("k8s-aws-v1.").unwrap();
        assert!(!b64.contains('='));
        let url = String::from_utf8(URL_SAFE_NO_PAD.decode(b64).unwrap()).unwrap();
        assert!(url.starts_with("https://sts.eu-west-1.amazonaws.com/?Action=GetCallerIdentity&Version=2011-06-15&X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIDEXAMPLE%2F"), "{url}");
        assert!(url.contains("&X-Amz-Expires=60&X-Amz-SignedHeaders=host%3Bx-k8s-aws-id&X-Amz-Security-Token=to%2Bk%2Fen%3D&X-Amz-Signature="), "{url}");
        assert_eq!(
            eks_token(&creds, "eu-west-1", "prod-eks", time).unwrap(),
            token,
            "deterministic for a fixed time"
        );
        assert_ne!(
            eks_token(&creds, "eu-west-1", "other", time).unwrap(),
            token,
            "the cluster name is signed"
        );
    }

    #[test]
    fn cluster_states() {
        let body = |status: &str| ClusterBody {
            arn: Some("arn:aws:eks:eu-west-1:123456789012:cluster/c".into()),
            status: Some(status.into()),
            endpoint: Some("https://ABC.gr7.eu-west-1.eks.amazonaws.com".into()),
            certificate_authority: Some(CertificateAuthority {
                data: Some("LS0tLS1CRUdJTg==".into()),
            }),
        };
        assert!(matches!(
            cluster_from("c", body("ACTIVE")).unwrap(),
            Cluster::Active { .. }
        ));
        assert!(matches!(
            cluster_from("c", body("UPDATING")).unwrap(),
            Cluster::Active { .. }
        ));
        for s in ["CREATING", "DELETING", "FAILED", "PENDING"] {
            assert_eq!(
                cluster_from("c", body(s)).unwrap(),
                Cluster::NotReady { status: s.into() }
            );
        }
    }

    #[test]
    fn sts_xml_is_parsed() {
        let xml = r#"<AssumeRoleWithWebIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
  <AssumeRoleWithWebIdentityResult>
    <SubjectFromWebIdentityToken>repo:octo-org/shop:ref:refs/heads/main</SubjectFromWebIdentityToken>
    <Credentials>
      <AccessKeyId>ASIAEXAMPLE</AccessKeyId>
      <SecretAccessKey>secret</SecretAccessKey>
      <SessionToken>session</SessionToken>
      <Expiration>2026-11-26T12:00:00Z</Expiration>
    </Credentials>
  </AssumeRoleWithWebIdentityResult>
  <ResponseMetadata><RequestId>1</RequestId></ResponseMetadata>
</AssumeRoleWithWebIdentityResponse>"#;
        let parsed: AssumeRoleResponse = quick_xml::de::from_str(xml).unwrap();
        assert_eq!(
            parsed
                .assume_role_with_web_identity_result
                .credentials
                .access_key_id,
            "ASIAEXAMPLE"
        );
        let err = r#"<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><Error><Type>Sender</Type><Code>AccessDenied</Code><Message>Not authorized</Message></Error><RequestId>1</RequestId></ErrorResponse>"#;
        let parsed: StsErrorResponse = quick_xml::de::from_str(err).unwrap();
        assert_eq!(parsed.error.code, "AccessDenied");
    }
}
