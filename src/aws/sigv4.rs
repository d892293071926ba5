//! SigV4 signing with the AWS-maintained `aws-sigv4` crate: request
//! headers (EKS, remote-write to AMP) and the EKS bearer token (a presigned
//! STS `GetCallerIdentity`, byte for byte what botocore makes).

use std::fmt;
use std::time::{Duration, SystemTime};

use aws_sigv4::http_request::{
    SignableBody, SignableRequest, SignatureLocation, SigningInstructions, SigningSettings, sign,
};
use aws_sigv4::sign::v4;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};

use super::Credentials;
use crate::{Error, Result};

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
    let headers = [("host", host.as_str()), ("x-k8s-aws-id", cluster)];
    let request = Request {
        method: "GET",
        url: &base,
        headers: &headers,
        body: &[],
    };
    let (instructions, signature) = sign_request(
        creds,
        region,
        "sts",
        time,
        settings,
        request,
        "the EKS token",
    )?;
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
    let request = Request {
        method,
        url,
        headers,
        body,
    };
    let what = format!("the {service} request");
    let settings = SigningSettings::default();
    let (instructions, _) = sign_request(creds, region, service, time, settings, request, &what)?;
    Ok(instructions
        .headers()
        .map(|(n, v)| (n.to_string(), v.to_string()))
        .collect())
}

/// What SigV4 reads of a request.
struct Request<'a> {
    method: &'a str,
    url: &'a str,
    headers: &'a [(&'a str, &'a str)],
    body: &'a [u8],
}

/// Signs `request` as `service` in `region` at `time`, the way `settings`
/// say: the signing instructions (headers or query parameters) and the
/// signature. A failure is an AWS error saying `what` could not be signed.
fn sign_request(
    creds: &Credentials,
    region: &str,
    service: &str,
    time: SystemTime,
    settings: SigningSettings,
    request: Request<'_>,
    what: &str,
) -> Result<(SigningInstructions, String)> {
    let failed = |e: &dyn fmt::Display| Error::Aws(format!("cannot sign {what}: {e}").into());
    let identity = creds.identity();
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(region)
        .name(service)
        .time(time)
        .settings(settings)
        .build()
        .map_err(|e| failed(&e))?
        .into();
    let signable = SignableRequest::new(
        request.method,
        request.url,
        request.headers.iter().copied(),
        SignableBody::Bytes(request.body),
    )
    .map_err(|e| failed(&e))?;
    Ok(sign(signable, &params)
        .map_err(|e| failed(&e))?
        .into_parts())
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
