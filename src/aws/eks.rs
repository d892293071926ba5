//! EKS `DescribeCluster`: whether the cluster exists and is ACTIVE, and
//! where its API server is.

use std::time::SystemTime;

use base64::Engine;
use reqwest::{Client, StatusCode, Url};
use serde::Deserialize;

use super::{ANSWER_LIMIT, Credentials, REQUEST_TIMEOUT, sigv4_headers};
use crate::http;
use crate::retry::{Attempt, Backoff, retry};
use crate::{Error, Failure, Result};

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

/// The `message` (or `Message`) of an AWS error answer, else the start of its body.
fn error_message(body: &str) -> String {
    let message =
        |v: serde_json::Value| Some(v.get("message").or(v.get("Message"))?.as_str()?.to_string());
    serde_json::from_str(body)
        .ok()
        .and_then(message)
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
