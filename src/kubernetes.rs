//! The Kubernetes API server of the cluster: a kube client built from the
//! endpoint and certificate authority EKS reports, authenticated with the
//! EKS bearer token, TLS verified against that CA only.

use std::time::Duration;

use http::header::{AUTHORIZATION, HeaderValue};
use reqwest::Url;
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;

use crate::{Error, Result};

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
            Error::Kubernetes(format!(
                "the cluster's certificate authority is not PEM: {e}"
            ))
        })?;
    if certs.is_empty() {
        return Err(Error::Kubernetes(
            "the cluster's certificate authority holds no certificate".into(),
        ));
    }
    let uri: http::Uri = endpoint
        .as_str()
        .parse()
        .map_err(|e| Error::Kubernetes(format!("cluster endpoint `{endpoint}`: {e}")))?;
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
        .map_err(|e| Error::Kubernetes(format!("cannot set up the client: {e}")))
}
