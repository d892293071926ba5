//! A fake GitHub Actions OIDC token endpoint (wiremock).
//!
//! On a runner, a job with `permissions: id-token: write` gets
//! `ACTIONS_ID_TOKEN_REQUEST_URL` (already carrying `?api-version=2.0`) and
//! `ACTIONS_ID_TOKEN_REQUEST_TOKEN`; a client appends `&audience=…` and sends
//! the request token as a bearer token, and gets `{"count":1,"value":"<JWT>"}`.
//! This stub answers exactly that, and only with the right request token,
//! and lets a test read which audience was asked for.

use base64::Engine as _;
use serde_json::json;
use wiremock::matchers::{header, method, path, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

/// The runner's token request path (the run-service URL shape).
const TOKEN_PATH: &str = "/00000000-0000-0000-0000-000000000000/_apis/distributedtask/hubs/Actions/plans/6d2e8c21-0000-4000-8000-000000000001/jobs/6d2e8c21-0000-4000-8000-000000000002/idtoken";

/// The OIDC stub; stops when dropped.
pub struct OidcStub {
    server: MockServer,
    request_token: String,
    id_token: String,
}

impl OidcStub {
    /// Starts the stub. It answers `GET <request_url>&audience=<any>` with
    /// `Authorization: Bearer <request_token>` with the ID token, and
    /// anything else on that path with 401.
    pub async fn start() -> OidcStub {
        let server = MockServer::start().await;
        let request_token = "ghs_runtimeRequestTokenForIdTokens0123456789".to_string();
        let id_token = fake_jwt();
        Mock::given(method("GET"))
            .and(path(TOKEN_PATH))
            .and(query_param("api-version", "2.0"))
            .and(header(
                "authorization",
                format!("Bearer {request_token}").as_str(),
            ))
            .respond_with(
                ResponseTemplate::new(200).set_body_json(json!({"count": 1, "value": id_token})),
            )
            .with_priority(1)
            .named("OIDC token request")
            .mount(&server)
            .await;
        Mock::given(path(TOKEN_PATH))
            .respond_with(
                ResponseTemplate::new(401)
                    .set_body_json(json!({"message": "Bad credentials or missing api-version"})),
            )
            .named("OIDC token request without the right token")
            .mount(&server)
            .await;
        OidcStub {
            server,
            request_token,
            id_token,
        }
    }

    /// `ACTIONS_ID_TOKEN_REQUEST_URL`: ends in `?api-version=2.0`, like the
    /// runner's, so a client must append the audience with `&`.
    pub fn request_url(&self) -> String {
        format!("{}{TOKEN_PATH}?api-version=2.0", self.server.uri())
    }

    /// `ACTIONS_ID_TOKEN_REQUEST_TOKEN`: a secret, must never be printed.
    pub fn request_token(&self) -> &str {
        &self.request_token
    }

    /// The ID token (a JWT) the stub hands out: a secret too.
    pub fn id_token(&self) -> &str {
        &self.id_token
    }

    /// Both variables, for `Action::env`.
    pub fn env(&self) -> [(&'static str, String); 2] {
        [
            ("ACTIONS_ID_TOKEN_REQUEST_URL", self.request_url()),
            ("ACTIONS_ID_TOKEN_REQUEST_TOKEN", self.request_token.clone()),
        ]
    }

    /// The `audience` of every token request so far (`None` for a request
    /// without one), in order.
    pub async fn audiences(&self) -> Vec<Option<String>> {
        self.server
            .received_requests()
            .await
            .unwrap_or_default()
            .iter()
            .map(|r| {
                r.url
                    .query_pairs()
                    .find(|(k, _)| k == "audience")
                    .map(|(_, v)| v.into_owned())
            })
            .collect()
    }

    /// How many requests reached the stub (right token or not).
    pub async fn request_count(&self) -> usize {
        self.server
            .received_requests()
            .await
            .unwrap_or_default()
            .len()
    }
}

/// A token shaped like GitHub's: `header.claims.signature`, base64url
/// without padding, with the claims STS looks at (`iss`, `aud`, `sub`). The
/// signature is random bytes: moto checks none, and the action must treat
/// the token as opaque.
fn fake_jwt() -> String {
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let now = jiff::Timestamp::now().as_second();
    let header = json!({"typ": "JWT", "alg": "RS256", "x5t": "dora-test", "kid": "dora-test"});
    let claims = json!({
        "iss": "https://token.actions.githubusercontent.com",
        "aud": "sts.amazonaws.com",
        "sub": "repo:octo-org/shop:ref:refs/heads/main",
        "repository": "octo-org/shop",
        "ref": "refs/heads/main",
        "iat": now,
        "nbf": now - 5,
        "exp": now + 300,
    });
    let mut signature = [0u8; 256];
    getrandom::fill(&mut signature).expect("random bytes");
    format!(
        "{}.{}.{}",
        b64.encode(header.to_string()),
        b64.encode(claims.to_string()),
        b64.encode(signature)
    )
}
