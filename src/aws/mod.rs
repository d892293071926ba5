//! AWS, the parts the action needs and nothing more: credentials as a
//! workflow supplies them, STS `AssumeRoleWithWebIdentity`, EKS
//! `DescribeCluster`, and the EKS bearer token (a presigned STS
//! `GetCallerIdentity`). Requests are signed with the AWS-maintained
//! `aws-sigv4` crate; the full SDK would add ~140 s of build and ~7 MB of
//! binary for three calls (see docs/eks.md).

//!
//! - this file: credentials as a workflow supplies them, the region and the
//!   endpoints (with the standard `AWS_ENDPOINT_URL_*` overrides);
//! - `sigv4`. Signing (request headers, and the presigned EKS token);
//! - `sts`. `AssumeRoleWithWebIdentity`;
//! - `eks`. `DescribeCluster`.

mod eks;
mod sigv4;
mod sts;

use std::fmt;

use aws_smithy_runtime_api::client::identity::Identity;
use reqwest::Url;

pub use eks::{Aws, Cluster};
pub use sigv4::{eks_token, sigv4_headers};
pub use sts::assume_role_with_web_identity;

use crate::{Error, Result};

/// Requests to AWS give up on an answer after this long.
pub(crate) const REQUEST_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);
/// How much of a successful STS, EKS or OIDC answer is read: each is a few
/// KB (credentials, a cluster's description, a token); more is no such answer.
pub(crate) const ANSWER_LIMIT: usize = 256 << 10;

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

/// Where credentials come from, the first that applies (see docs/eks.md).
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
}
