//! STS `AssumeRoleWithWebIdentity`: a web identity token (GitHub's OIDC
//! token, or a token file) for a role's temporary credentials.

use reqwest::{Client, Url};
use serde::Deserialize;

use super::{ANSWER_LIMIT, Credentials, REQUEST_TIMEOUT};
use crate::http;
use crate::retry::{Attempt, Backoff, retry};
use crate::{Error, Failure, Result};

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
