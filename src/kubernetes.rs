//! The Kubernetes API server of the cluster: a kube client built from the
//! endpoint and certificate authority EKS reports, authenticated with the
//! EKS bearer token, TLS verified against that CA only.

use std::time::Duration;

use http::header::{AUTHORIZATION, HeaderValue};
use reqwest::Url;
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;

use futures_util::future::BoxFuture;
use reqwest::StatusCode;

use crate::inputs::ServiceRef;
use crate::sinks::pushgateway::{Body as TunnelBody, Tunnel};
use crate::{Error, Failure, Result};

/// A kube client for the cluster at `endpoint`, trusting only the
/// certificates in `ca_pem`, sending `token` as bearer.
///
/// kube's own retries are off: every caller has its bounded retry policy, and
/// two layers of retries would multiply the time a failing run takes.
pub fn client(endpoint: &Url, ca_pem: &[u8], token: &str) -> Result<kube::Client> {
    let certs: Vec<Vec<u8>> = CertificateDer::pem_slice_iter(ca_pem)
        .map(|c| c.map(|c| c.as_ref().to_vec()))
        .collect::<std::result::Result<_, _>>()
        .map_err(|e| {
            Error::Kubernetes(format!("the cluster's certificate authority is not PEM: {e}").into())
        })?;
    if certs.is_empty() {
        return Err(Error::Kubernetes(
            "the cluster's certificate authority holds no certificate".into(),
        ));
    }
    let uri: http::Uri = endpoint
        .as_str()
        .parse()
        .map_err(|e| Error::Kubernetes(format!("cluster endpoint `{endpoint}`: {e}").into()))?;
    let mut bearer = HeaderValue::from_str(&format!("Bearer {token}"))
        .map_err(|_| Error::Kubernetes("the EKS token is not a valid header value".into()))?;
    bearer.set_sensitive(true);
    let mut config = kube::Config::new(uri);
    config.root_cert = Some(certs);
    config.headers = vec![(AUTHORIZATION, bearer)];
    config.default_retry = false;
    config.connect_timeout = Some(Duration::from_secs(10));
    config.read_timeout = Some(Duration::from_secs(10));
    kube::Client::try_from(config)
        .map_err(|e| Error::Kubernetes(format!("cannot set up the client: {e}").into()))
}

/// The Pushgateway in the cluster, reached through the API server's service
/// proxy (`/api/v1/namespaces/<ns>/services/<name>:<port>/proxy/`): the
/// Pushgateway sink's [`Tunnel`], so the sink knows nothing of Kubernetes.
pub struct ServiceProxy {
    client: kube::Client,
    base: String,
    /// The API server, for messages.
    endpoint: String,
}

impl ServiceProxy {
    pub fn new(client: kube::Client, service: &ServiceRef, endpoint: &Url) -> ServiceProxy {
        ServiceProxy {
            client,
            base: proxy_path(service),
            endpoint: endpoint.to_string(),
        }
    }
}

/// The API server path of a service's proxy.
fn proxy_path(service: &ServiceRef) -> String {
    let port = service
        .port
        .as_deref()
        .map(|p| format!(":{p}"))
        .unwrap_or_default();
    format!(
        "/api/v1/namespaces/{}/services/{}{port}/proxy/",
        service.namespace, service.name
    )
}

/// `path` (origin-form, from the Pushgateway's root) below the proxy's `base`.
fn proxied(base: &str, path: &http::Uri) -> std::result::Result<http::Uri, String> {
    format!("{}{path}", base.trim_end_matches('/'))
        .parse()
        .map_err(|e| format!("cannot build request for {path}: {e}"))
}

impl Tunnel for ServiceProxy {
    fn send(
        &self,
        request: http::Request<Vec<u8>>,
        timeout: Duration,
    ) -> BoxFuture<'_, std::result::Result<http::Response<TunnelBody>, String>> {
        Box::pin(async move {
            let (mut parts, body) = request.into_parts();
            parts.uri = proxied(&self.base, &parts.uri)?;
            let request = http::Request::from_parts(parts, kube::client::Body::from(body));
            let endpoint = &self.endpoint;
            let response = tokio::time::timeout(timeout, self.client.send(request))
                .await
                .map_err(|_| format!("timed out after {timeout:?} at {endpoint}"))?
                .map_err(|e| format!("API server {endpoint}: {e}"))?;
            Ok(response.map(|body| {
                use http_body_util::BodyExt;
                body.map_err(|e| Box::new(e) as Box<dyn std::error::Error + Send + Sync>)
                    .boxed_unsync()
            }))
        })
    }

    fn display(&self) -> String {
        format!(
            "{}{} (the API server's service proxy)",
            self.endpoint.trim_end_matches('/'),
            self.base
        )
    }

    fn refusal(&self, status: StatusCode, body: &str) -> Option<String> {
        api_server_refusal(status, body)
    }
}

/// The API server answers for itself (not the Pushgateway) with a
/// `metav1.Status`: word its refusals so the user knows what to fix.
fn api_server_refusal(status: StatusCode, body: &str) -> Option<String> {
    let v: serde_json::Value = serde_json::from_str(body).ok()?;
    if v.get("kind")?.as_str()? != "Status" {
        return None;
    }
    let message = v.get("message").and_then(|m| m.as_str()).unwrap_or("");
    Some(match status {
        StatusCode::UNAUTHORIZED => format!(
            "the API server rejected the EKS token (401 {message}): give the action's IAM role access to the cluster (an EKS access entry, or aws-auth)"
        ),
        StatusCode::FORBIDDEN => format!(
            "the API server forbids it (403): grant get, create and delete on `services/proxy` for the Pushgateway service (examples/rbac.yaml): {message}"
        ),
        StatusCode::NOT_FOUND => format!(
            "the API server has no such service (404): check `pushgateway-service`: {message}"
        ),
        _ => return None,
    })
}

/// Why a list call failed, as the caller must treat it.
#[derive(Debug)]
pub enum ListError {
    /// 404 on the resource: its CRD is not installed. That source is skipped
    /// with this warning.
    NotInstalled(String),
    /// 403: RBAC does not allow it; the message names the verb and resource to grant.
    Forbidden(Failure),
    /// Anything else, after retries.
    Failed(Failure),
}

/// Items per list page: a few pages even for thousands of objects, and
/// bounded memory per answer.
const PAGE: usize = 500;

/// Lists every object at `path` (e.g. `/apis/flagger.app/v1beta1/canaries`),
/// following `continue` tokens. `what` names the resource in messages
/// (`canaries.flagger.app`).
pub async fn list(
    client: &kube::Client,
    path: &str,
    what: &str,
) -> std::result::Result<Vec<serde_json::Value>, ListError> {
    let mut items = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let mut uri = format!("{path}?limit={PAGE}");
        if let Some(t) = &token {
            uri.push_str("&continue=");
            uri.push_str(
                &percent_encoding::utf8_percent_encode(t, percent_encoding::NON_ALPHANUMERIC)
                    .to_string(),
            );
        }
        let body = get(client, &uri, what).await?;
        let mut page: serde_json::Value = serde_json::from_slice(&body).map_err(|e| {
            ListError::Failed(format!("list {what}: unexpected answer: {e}").into())
        })?;
        if let Some(page_items) = page.get_mut("items").and_then(|i| i.as_array_mut()) {
            items.append(page_items);
        }
        token = page
            .pointer("/metadata/continue")
            .and_then(|c| c.as_str())
            .filter(|c| !c.is_empty())
            .map(String::from);
        if token.is_none() {
            return Ok(items);
        }
    }
}

/// The most one list page may take: 500 Flux or Flagger objects are a few
/// MB (managed fields included); more is no such answer.
const PAGE_LIMIT: usize = 32 << 20;

/// Reads `body` as it arrives, up to `limit` bytes (`false`: cut there).
async fn read_capped(
    mut body: kube::client::Body,
    limit: usize,
) -> std::result::Result<(Vec<u8>, bool), String> {
    use http_body_util::BodyExt;
    let mut bytes = Vec::new();
    while let Some(frame) = body.frame().await {
        let Ok(data) = frame.map_err(|e| e.to_string())?.into_data() else {
            continue;
        };
        let room = limit - bytes.len();
        if data.len() > room {
            bytes.extend_from_slice(&data[..room]);
            return Ok((bytes, false));
        }
        bytes.extend_from_slice(&data);
    }
    Ok((bytes, true))
}

/// One GET with the bounded retry policy: timeouts, 429 and 5xx are retried;
/// a refusal is final and keeps its kind.
async fn get(
    client: &kube::Client,
    uri: &str,
    what: &str,
) -> std::result::Result<Vec<u8>, ListError> {
    use crate::retry::{Attempt, Backoff, retry};
    let outcome = retry(Backoff::AWS, || async {
        let request = match http::Request::get(uri).body(kube::client::Body::empty()) {
            Ok(r) => r,
            Err(e) => return Attempt::Done(Err(ListError::Failed(format!("list {what}: {e}").into()))),
        };
        let response = match tokio::time::timeout(Duration::from_secs(10), client.send(request)).await {
            Err(_) => return Attempt::Retry(format!("list {what}: timed out").into()),
            Ok(Err(e)) => return Attempt::Retry(format!("list {what}: {e}").into()),
            Ok(Ok(r)) => r,
        };
        let status = response.status();
        let limit = if status.is_success() { PAGE_LIMIT } else { crate::http::ERROR_BODY_LIMIT };
        let body = match read_capped(response.into_body(), limit).await {
            Ok((b, complete)) if complete || !status.is_success() => b,
            Ok(_) => return Attempt::Done(Err(ListError::Failed(Failure::answered(status, format!(
                "list {what}: a page of the answer is larger than {}: not read further",
                crate::http::size(PAGE_LIMIT)
            ))))),
            Err(e) => return Attempt::Retry(format!("list {what}: reading the answer: {e}").into()),
        };
        let message = || {
            serde_json::from_slice::<serde_json::Value>(&body)
                .ok()
                .and_then(|v| v.get("message").and_then(|m| m.as_str()).map(String::from))
                .unwrap_or_else(|| String::from_utf8_lossy(&body).chars().take(200).collect())
        };
        let refused = |e: ListError| Attempt::Done(Err(e));
        match status.as_u16() {
            200..=299 => Attempt::Done(Ok(body)),
            401 => refused(ListError::Failed(Failure::answered(status, format!(
                "list {what}: the API server rejected the EKS token (401): give the action's IAM role access to the cluster (an EKS access entry, or aws-auth)"
            )))),
            403 => refused(ListError::Forbidden(Failure::answered(status, format!(
                "list {what}: forbidden (403): grant `list` on `{what}` (examples/rbac.yaml): {}",
                message()
            )))),
            404 => refused(ListError::NotInstalled(format!("{what} is not installed in the cluster (404 on its API): skipped"))),
            429 | 500..=599 => Attempt::Retry(Failure::answered(status, format!("list {what}: HTTP {status}: {}", message()))),
            _ => refused(ListError::Failed(Failure::answered(status, format!("list {what}: HTTP {status}: {}", message())))),
        }
    })
    .await;
    outcome.map_err(ListError::Failed)?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_proxy_path_names_the_service_and_port() {
        let svc = ServiceRef {
            namespace: "observability".into(),
            name: "pushgateway".into(),
            port: Some("9091".into()),
        };
        assert_eq!(
            proxy_path(&svc),
            "/api/v1/namespaces/observability/services/pushgateway:9091/proxy/"
        );
        let svc = ServiceRef { port: None, ..svc };
        assert_eq!(
            proxy_path(&svc),
            "/api/v1/namespaces/observability/services/pushgateway/proxy/"
        );
    }

    #[test]
    fn a_pushgateway_path_goes_below_the_proxy_path() {
        let base = "/api/v1/namespaces/observability/services/pushgateway:9091/proxy/";
        let path: http::Uri = "/metrics/job/dora/env@base64/=".parse().unwrap();
        assert_eq!(
            proxied(base, &path).unwrap(),
            "/api/v1/namespaces/observability/services/pushgateway:9091/proxy/metrics/job/dora/env@base64/="
        );
    }

    #[test]
    fn api_server_refusals_are_told_apart_from_pushgateway_answers() {
        let status = r#"{"kind":"Status","apiVersion":"v1","status":"Failure","message":"Unauthorized","reason":"Unauthorized","code":401}"#;
        assert!(
            api_server_refusal(StatusCode::UNAUTHORIZED, status)
                .unwrap()
                .contains("rejected the EKS token")
        );
        assert!(
            api_server_refusal(StatusCode::FORBIDDEN, status)
                .unwrap()
                .contains("services/proxy")
        );
        assert_eq!(
            api_server_refusal(StatusCode::BAD_REQUEST, "text format parsing error"),
            None
        );
    }
}
